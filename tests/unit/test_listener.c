/* In-pod listeners (agent/proxy/listener.c) out of open files: accept()
 * fails with EMFILE and would leave the connection queued, the listener
 * readable and the loop spinning. Each queued connection is reset instead,
 * and the listener serves again once files are available. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/loop.h"
#include "proxy/listener.h"

static int accepted;

static void on_accept(struct listener *l, int fd, const struct sockaddr *peer, socklen_t len)
{
    accepted++;
    close(fd);
}

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own fd */
}

static int connect_to(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* The peer of a reset connection reads ECONNRESET. */
static bool was_reset(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c;
    return poll(&p, 1, 1000) == 1 && read(fd, &c, 1) == -1 && errno == ECONNRESET;
}

static void out_of_files_resets_queued_connections_and_recovers(void **state)
{
    struct loop *loop;
    assert_int_equal(loop_new(&loop), 0);
    int netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    struct meshd_addr a = listener_addr(AF_INET, 0, 1);
    struct listener l;
    assert_int_equal(listener_open(&l, loop, netns, &a, on_accept, NULL), 0);
    struct sockaddr_in bound;
    socklen_t blen = sizeof(bound);
    assert_int_equal(getsockname(l.io.fd, (struct sockaddr *)&bound, &blen), 0);
    uint16_t port = ntohs(bound.sin_port);

    int clients[5];
    for (int i = 0; i < 5; i++)
        clients[i] = connect_to(port); /* queued: the kernel completed them */
    struct rlimit saved, tight;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    tight = saved;
    tight.rlim_cur = (rlim_t)open_fds() + 16;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &tight), 0);
    /* Every descriptor below the limit taken: not one more file. */
    int fill[64], nfill = 0;
    while (nfill < 64 && (fill[nfill] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
        nfill++;
    assert_int_equal(errno, EMFILE);
    for (int i = 0; i < 3; i++)
        loop_run_once(loop, 50);
    while (nfill > 0)
        close(fill[--nfill]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    assert_int_equal(accepted, 0);
    for (int i = 0; i < 5; i++) {
        assert_true(was_reset(clients[i]));
        close(clients[i]);
    }
    /* Nothing left queued: the listener is not readable any more. */
    struct pollfd p = {.fd = l.io.fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 0), 0);
    /* With files again, it serves. */
    int c = connect_to(port);
    loop_run_once(loop, 200);
    assert_int_equal(accepted, 1);
    close(c);
    listener_close(&l);
    close(netns);
    loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(out_of_files_resets_queued_connections_and_recovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
