/* HBONE against bad peers, on real sockets: a server that accepts and
 * never completes the handshake is cut off by the pool's deadline; an app
 * that never reads costs at most one stream window of memory, and the
 * other streams on the same session keep flowing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/loop.h"
#include "hbone/internal.h"
#include "hbone/pool.h"
#include "support/tls_fixture.h"

static void run_ms(struct loop *loop, int ms)
{
    uint64_t end = loop_now_ns() + (uint64_t)ms * 1000000u;
    while (loop_now_ns() < end)
        loop_run_once(loop, 2);
}

static int streams_done, last_err;
static void on_stream_done(void *ctx, struct hbone_stream *st, void *sctx, int err,
                           const struct hbone_stream_stats *stats)
{
    streams_done++;
    last_err = err;
}

static int verify_ok(void *ctx, SSL *ssl, const char *expected, char *why, size_t len)
{
    return 0;
}

static void stalled_handshake_is_cut_off(void **state)
{
    struct loop *loop;
    assert_int_equal(loop_new(&loop), 0);
    /* A "server" that accepts TCP and then says nothing, ever. */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 4), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    struct hbone_pool_opts o = {.owner = {.own_map_fd = UPSTREAM_NO_CAPTURE},
                                .max_streams = 100,
                                .idle_timeout_ns = 60000000000ull,
                                .handshake_timeout_ns = 500000000ull,
                                .verify_server = verify_ok,
                                .on_stream_done = on_stream_done};
    struct hbone_pool *pool;
    assert_int_equal(hbone_pool_new(loop, &o, &pool), 0);
    struct hbone_pool_key key = {.src_id = "a", .dst_id = "b"};
    addr_from_sockaddr((struct sockaddr *)&a, sizeof(a), &key.dst);
    SSL_CTX *cctx = tls_fixture_ctx(false);
    int netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int near, far;
    assert_int_equal(tcp_fixture_pair(&near, &far), 0);
    streams_done = 0;
    assert_int_equal(hbone_pool_connect(pool, &key, netns, cctx, "127.0.0.1:1", NULL, near, NULL),
                     0);
    run_ms(loop, 200);
    assert_int_equal(streams_done, 0);      /* still waiting on the silent server */
    hbone_pool_expire(pool, loop_now_ns()); /* before the deadline: kept */
    assert_int_equal(streams_done, 0);
    hbone_pool_expire(pool, loop_now_ns() + 1000000000ull);
    run_ms(loop, 50);
    assert_int_equal(streams_done, 1);
    assert_int_not_equal(last_err, 0);
    struct hbone_pool_stats st;
    hbone_pool_get_stats(pool, &st);
    assert_int_equal(st.sessions, 0);
    assert_int_equal(st.handshake_failures, 1);
    char buf[4];
    assert_int_equal(read(far, buf, sizeof(buf)), -1); /* the app got a reset */
    assert_int_equal(errno, ECONNRESET);
    hbone_pool_free(pool);
    run_ms(loop, 10);
    close(far), close(l), close(netns);
    SSL_CTX_free(cctx);
    loop_free(loop);
}

/* ---- a reader that never reads ---- */

struct srv {
    int app_far[2];
    int n;
    struct hbone_stream *st[2];
};

static void on_request(void *ctx, struct hbone_stream *st, const struct hbone_request *req)
{
    struct srv *s = ctx;
    int near, far;
    assert_int_equal(tcp_fixture_pair(&near, &far), 0);
    s->st[s->n] = st;
    s->app_far[s->n++] = far;
    hbone_stream_accept(st, near);
}

static void app_that_never_reads_costs_one_window(void **state)
{
    struct loop *loop;
    assert_int_equal(loop_new(&loop), 0);
    SSL_CTX *cctx = tls_fixture_ctx(false), *sctx = tls_fixture_ctx(true);
    int c, s;
    assert_int_equal(tcp_fixture_pair(&c, &s), 0);
    struct srv sv = {0};
    struct hbone_handler ch = {0}, sh = {.on_request = on_request, .ctx = &sv};
    struct hbone_session *cs, *ss;
    assert_int_equal(hbone_session_new(loop, cctx, c, false, &ch, &cs), 0);
    assert_int_equal(hbone_session_new(loop, sctx, s, true, &sh, &ss), 0);
    int a_near, a_far, b_near, b_far;
    assert_int_equal(tcp_fixture_pair(&a_near, &a_far), 0);
    assert_int_equal(tcp_fixture_pair(&b_near, &b_far), 0);
    struct hbone_stream *sa, *sb;
    assert_int_equal(hbone_stream_open(cs, "127.0.0.1:1", NULL, a_near, NULL, &sa), 0);
    assert_int_equal(hbone_stream_open(cs, "127.0.0.1:2", NULL, b_near, NULL, &sb), 0);
    for (int i = 0; i < 500 && sv.n < 2; i++)
        loop_run_once(loop, 2);
    assert_int_equal(sv.n, 2);

    /* Stream A: the client app pushes 64 MiB; the server app never reads. */
    static char chunk[65536];
    size_t pushed = 0;
    for (int i = 0; i < 3000; i++) {
        ssize_t n = write(a_far, chunk, sizeof(chunk));
        if (n > 0)
            pushed += (size_t)n;
        loop_run_once(loop, 1);
    }
    /* Everything stalled: the sender was stopped after about one stream
     * window plus socket buffers, far below what it tried to send. */
    assert_true(pushed < (16u << 20));
    struct hbone_stream *srv_a = sv.st[0];
    assert_true(srv_a->down_len - srv_a->down_off <= HBONE_STREAM_WINDOW);

    /* Stream B on the same session still works both ways. */
    assert_int_equal(write(b_far, "ping", 4), 4);
    char buf[16];
    ssize_t n = -1;
    for (int i = 0; i < 2000 && n <= 0; i++) {
        loop_run_once(loop, 1);
        n = read(sv.app_far[1], buf, sizeof(buf));
    }
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "ping", 4);

    hbone_session_close(cs, "test over");
    hbone_session_close(ss, "test over");
    run_ms(loop, 10);
    close(a_far), close(b_far), close(sv.app_far[0]), close(sv.app_far[1]);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    loop_free(loop);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as meshd does: see tls/conn.h */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stalled_handshake_is_cut_off),
        cmocka_unit_test(app_that_never_reads_costs_one_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
