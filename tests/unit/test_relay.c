/* The byte pump (agent/proxy/relay.c) over real socket pairs on a real
 * event loop: bytes arrive intact both ways, half-close propagates, resets
 * propagate, and a slow reader applies backpressure instead of buffering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(buffers_follow_load, setup, teardown),
        cmocka_unit_test_setup_teardown(bytes_flow_both_ways_and_fin_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(large_transfer_is_intact_with_a_slow_reader, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(reset_from_one_side_resets_the_other, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
