/* The byte pump (agent/proxy/relay.c) over real socket pairs on a real
 * event loop: bytes arrive intact both ways, half-close propagates, resets
 * propagate, and a slow reader applies backpressure instead of buffering.
 * The same again through splice(2) (relay_start_splice, the same-node fast
 * path's relay), over TCP on loopback as there; its pipes hold at most
 * RELAY_PIPE_CAP and nothing once drained. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/loop.h"
#include "proxy/relay.h"

struct fixture {
    struct loop *loop;
    struct relay relay;
    int app, server; /* the far ends the test drives */
    int done_calls, done_err;
};

static struct fixture *current;

static void on_done(struct relay *r, int err)
{
    current->done_calls++;
    current->done_err = err;
    loop_stop(current->loop);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    int down[2], up[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, down), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, up), 0);
    assert_int_equal(loop_new(&f->loop), 0);
    f->app = down[0];
    f->server = up[0];
    current = f;
    assert_int_equal(relay_start(&f->relay, f->loop, down[1], up[1], on_done), 0);
    *state = f;
    return 0;
}

/* A connected TCP pair on loopback: [0] the test's end, [1] the relay's. */
static void tcp_pair(int sv[2])
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    sv[0] = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(sv[0], (struct sockaddr *)&a, sizeof(a)), 0);
    sv[1] = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    assert_true(sv[1] >= 0);
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    close(l);
}

static int setup_splice(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    int down[2], up[2];
    tcp_pair(down);
    tcp_pair(up);
    assert_int_equal(loop_new(&f->loop), 0);
    f->app = down[0];
    f->server = up[0];
    current = f;
    assert_int_equal(relay_start_splice(&f->relay, f->loop, down[1], up[1], on_done), 0);
    assert_true(f->relay.splice);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    relay_abort(&f->relay);
    close(f->app);
    close(f->server);
    loop_free(f->loop);
    free(f);
    return 0;
}

static ssize_t read_all(int fd, char *buf, size_t len)
{
    size_t got = 0;
    for (int tries = 0; tries < 1000 && got < len; tries++) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0)
            break;
        else if (errno != EAGAIN)
            return -1;
        else
            usleep(1000);
    }
    return (ssize_t)got;
}

static void buffers_follow_load(void **state)
{
    struct fixture *f = *state;
    /* Idle: nothing allocated. */
    assert_null(f->relay.buf[0].data);
    assert_null(f->relay.buf[1].data);
    /* A burst larger than the buffer, with nobody reading the far end:
     * the buffer grows to the maximum, and no further. */
    static char big[256 * 1024];
    ssize_t n = write(f->app, big, sizeof(big));
    assert_true(n > RELAY_BUF_MIN);
    for (int i = 0; i < 20; i++)
        loop_run_once(f->loop, 5);
    assert_int_equal(f->relay.buf[0].cap, RELAY_BUF_MAX);
    /* Drained by the far end: the memory is given back. */
    char sink[65536];
    for (int i = 0; i < 200 && f->relay.buf[0].data; i++) {
        while (read(f->server, sink, sizeof(sink)) > 0)
            ;
        loop_run_once(f->loop, 5);
    }
    assert_null(f->relay.buf[0].data);
    assert_int_equal(f->relay.buf[0].cap, RELAY_BUF_MAX); /* remembered */
}

static void pipes_hold_bytes_only_in_flight(void **state)
{
    struct fixture *f = *state;
    static char big[1 << 20];
    size_t wrote = 0;
    for (int i = 0; i < 50; i++) { /* nobody reads the far end */
        ssize_t n = write(f->app, big, sizeof(big));
        if (n > 0)
            wrote += (size_t)n;
        loop_run_once(f->loop, 5);
    }
    assert_true(wrote > RELAY_PIPE_CAP);
    assert_true(f->relay.in_pipe[0] > 0);
    assert_true(f->relay.in_pipe[0] <= RELAY_PIPE_CAP); /* bounded: backpressure */
    uint64_t moved = f->relay.bytes[RELAY_DOWN];
    for (int i = 0; i < 5; i++)
        loop_run_once(f->loop, 5);
    assert_int_equal(f->relay.bytes[RELAY_DOWN], moved); /* reading stopped */
    char sink[65536];
    size_t got = 0;
    for (int i = 0; i < 2000 && got < wrote; i++) {
        ssize_t n;
        while ((n = read(f->server, sink, sizeof(sink))) > 0)
            got += (size_t)n;
        loop_run_once(f->loop, 1);
    }
    assert_int_equal(got, wrote);
    assert_int_equal(f->relay.in_pipe[0], 0); /* drained: nothing held */
    assert_false(f->relay.pipe_full[0]);
}

static void bytes_flow_both_ways_and_fin_closes(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(write(f->app, "hello", 5), 5);
    assert_int_equal(write(f->server, "world!", 6), 6);
    shutdown(f->app, SHUT_WR);
    shutdown(f->server, SHUT_WR);
    assert_int_equal(loop_run(f->loop), 0);
    char buf[16];
    assert_int_equal(read_all(f->server, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(read_all(f->app, buf, sizeof(buf)), 6);
    assert_memory_equal(buf, "world!", 6);
    assert_int_equal(f->done_calls, 1);
    assert_int_equal(f->done_err, 0);
    assert_int_equal(f->relay.bytes[RELAY_DOWN], 5);
    assert_int_equal(f->relay.bytes[RELAY_UP], 6);
}

static void large_transfer_is_intact_with_a_slow_reader(void **state)
{
    struct fixture *f = *state;
    enum { TOTAL = 4 << 20 };
    char *src = malloc(TOTAL), *dst = malloc(TOTAL);
    for (size_t i = 0; i < TOTAL; i++)
        src[i] = (char)(i * 2654435761u >> 13);
    size_t sent = 0, got = 0;
    /* The loop runs until the relay finishes: a writer and a slow reader in
     * child processes drive the two far ends meanwhile. */
    pid_t pid = fork();
    if (pid == 0) {
        while (sent < TOTAL) {
            ssize_t n = write(f->app, src + sent, TOTAL - sent > 65536 ? 65536 : TOTAL - sent);
            if (n > 0)
                sent += (size_t)n;
            else
                usleep(100);
        }
        shutdown(f->app, SHUT_WR);
        _exit(0);
    }
    pid_t pid2 = fork();
    if (pid2 == 0) {
        while (got < TOTAL) {
            usleep(200); /* slow reader */
            ssize_t n = read(f->server, dst + got, TOTAL - got);
            if (n > 0)
                got += (size_t)n;
            else if (n == 0)
                break;
        }
        _exit(got == TOTAL && memcmp(src, dst, TOTAL) == 0 ? 0 : 1);
    }
    /* The server side never sends: close its write side so the relay can
     * finish once the app's FIN has been forwarded. */
    shutdown(f->server, SHUT_WR);
    close(f->app);
    assert_int_equal(loop_run(f->loop), 0);
    int st;
    waitpid(pid, &st, 0);
    assert_int_equal(WEXITSTATUS(st), 0);
    waitpid(pid2, &st, 0);
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(f->relay.bytes[RELAY_DOWN], TOTAL);
    free(src);
    free(dst);
}

static void reset_from_one_side_resets_the_other(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(write(f->app, "x", 1), 1);
    /* Unread data in the socket at close() makes the kernel send a reset;
     * for unix sockets the peer sees ECONNRESET on read. */
    close(f->server);
    f->server = open("/dev/null", O_RDONLY);
    assert_int_equal(loop_run(f->loop), 0);
    assert_int_equal(f->done_calls, 1);
    assert_true(f->relay.finished);
}

/* TCP: a reset (SO_LINGER 0) from the server reaches the app as one. */
static void tcp_reset_reaches_the_app(void **state)
{
    struct fixture *f = *state;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(f->server, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(f->server);
    f->server = open("/dev/null", O_RDONLY);
    assert_int_equal(loop_run(f->loop), 0);
    assert_int_equal(f->done_calls, 1);
    assert_true(f->done_err < 0);
    assert_int_equal(f->relay.failed_end, RELAY_UP);
    char b;
    ssize_t n = -1;
    errno = EAGAIN;
    for (int i = 0; i < 100 && n == -1 && errno == EAGAIN; i++) {
        n = read(f->app, &b, 1);
        if (n == -1 && errno == EAGAIN)
            usleep(1000);
    }
    assert_int_equal(n, -1);
    assert_int_equal(errno, ECONNRESET);
}

/* Out of files for the pipes (none, or only the first direction's): the
 * relay copies instead, leaves no pipe open, and works. */
static void copy_without_pipes(int spare)
{
    struct fixture *f = calloc(1, sizeof(*f));
    int down[2], up[2];
    tcp_pair(down);
    tcp_pair(up);
    assert_int_equal(loop_new(&f->loop), 0);
    f->app = down[0];
    f->server = up[0];
    current = f;
    struct rlimit old, none;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int probe = dup(0); /* the lowest free descriptor: nothing above is open */
    close(probe);
    none = old;
    none.rlim_cur = (rlim_t)(probe + spare);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &none), 0);
    int rc = relay_start_splice(&f->relay, f->loop, down[1], up[1], on_done);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(rc, 0);
    assert_false(f->relay.splice);
    assert_int_equal(f->relay.pipe[0][0], -1);
    assert_int_equal(f->relay.pipe[0][1], -1);
    int next = dup(0);
    assert_int_equal(next, probe); /* the first direction's pipe was closed */
    close(next);
    assert_int_equal(write(f->app, "hello", 5), 5);
    shutdown(f->app, SHUT_WR);
    shutdown(f->server, SHUT_WR);
    assert_int_equal(loop_run(f->loop), 0);
    char buf[8];
    assert_int_equal(read_all(f->server, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(f->done_err, 0);
    void *st = f;
    teardown(&st);
}

static void without_pipes_it_copies(void **state)
{
    (void)state;
    copy_without_pipes(0); /* no pipe at all */
    copy_without_pipes(2); /* one direction's, not the other's */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(buffers_follow_load, setup, teardown),
        cmocka_unit_test_setup_teardown(bytes_flow_both_ways_and_fin_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(large_transfer_is_intact_with_a_slow_reader, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(reset_from_one_side_resets_the_other, setup, teardown),
        cmocka_unit_test_setup_teardown(tcp_reset_reaches_the_app, setup_splice, teardown),
        cmocka_unit_test_setup_teardown(pipes_hold_bytes_only_in_flight, setup_splice, teardown),
        cmocka_unit_test_setup_teardown(bytes_flow_both_ways_and_fin_closes, setup_splice,
                                        teardown),
        cmocka_unit_test_setup_teardown(large_transfer_is_intact_with_a_slow_reader, setup_splice,
                                        teardown),
        cmocka_unit_test(without_pipes_it_copies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
