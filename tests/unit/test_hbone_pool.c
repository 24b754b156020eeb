/* The outbound HBONE pool (agent/hbone/pool.c) against a real HBONE server
 * on loopback: a warm destination costs a stream, not a handshake; the
 * stream cap opens a second session; a server failing identity verification
 * never carries a byte; idle sessions are expired. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/loop.h"
#include "hbone/pool.h"
#include "support/tls_fixture.h"

struct server {
    struct loop_io io;
    struct loop *loop;
    SSL_CTX *ctx;
    int sessions, requests;
    int app_fds[8];
    int napp;
};

static void srv_on_request(void *ctx, struct hbone_stream *st, const struct hbone_request *req)
{
    struct server *sv = ctx;
    int near, far;
    sv->requests++;
    assert_int_equal(tcp_fixture_pair(&near, &far), 0);
    if (sv->napp < 8)
        sv->app_fds[sv->napp++] = far;
    else
        close(far);
    hbone_stream_accept(st, near);
}

static void srv_on_accept(struct loop_io *io, uint32_t events)
{
    struct server *sv = (struct server *)io;
    int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    struct hbone_handler h = {.on_request = srv_on_request, .ctx = sv};
    struct hbone_session *s;
    if (hbone_session_new(sv->loop, sv->ctx, fd, true, &h, &s) == 0)
        sv->sessions++;
}

static int verdict; /* what the verifier answers */
static int verify(void *ctx, SSL *ssl, const char *expected, char *why, size_t len)
{
    if (verdict)
        snprintf(why, len, "test says no");
    return verdict;
}

static int streams_done;
static void on_stream_done(void *ctx, struct hbone_stream *st, void *sctx, int err,
                           const struct hbone_stream_stats *stats)
{
    streams_done++;
}

struct fx {
    struct loop *loop;
    struct server sv;
    struct hbone_pool *pool;
    SSL_CTX *cctx;
    int netns;
    struct hbone_pool_key key;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_int_equal(loop_new(&f->loop), 0);
    f->sv.loop = f->loop;
    f->sv.ctx = tls_fixture_ctx(true);
    f->cctx = tls_fixture_ctx(false);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 16), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    f->sv.io.fd = l;
    f->sv.io.cb = srv_on_accept;
    assert_int_equal(loop_add(f->loop, &f->sv.io, EPOLLIN), 0);
    f->netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_true(f->netns >= 0);
    struct hbone_pool_opts o = {.owner = {.own_map_fd = UPSTREAM_NO_CAPTURE},
                                .max_streams = 2,
                                .idle_timeout_ns = 1000000000ull,
                                .handshake_timeout_ns = 1000000000ull,
                                .verify_server = verify,
                                .on_stream_done = on_stream_done};
    assert_int_equal(hbone_pool_new(f->loop, &o, &f->pool), 0);
    snprintf(f->key.src_id, sizeof(f->key.src_id), "spiffe://cluster.local/ns/a/sa/client");
    snprintf(f->key.dst_id, sizeof(f->key.dst_id), "spiffe://cluster.local/ns/b/sa/server");
    struct sockaddr_in *sin = &a;
    addr_from_sockaddr((struct sockaddr *)sin, sizeof(*sin), &f->key.dst);
    verdict = 0;
    streams_done = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    hbone_pool_free(f->pool);
    for (int i = 0; i < 50; i++)
        loop_run_once(f->loop, 1);
    loop_del(f->loop, &f->sv.io);
    close(f->sv.io.fd);
    for (int i = 0; i < f->sv.napp; i++)
        close(f->sv.app_fds[i]);
    close(f->netns);
    loop_free(f->loop);
    SSL_CTX_free(f->sv.ctx);
    SSL_CTX_free(f->cctx);
    free(f);
    return 0;
}

static void run_ms(struct fx *f, int ms)
{
    uint64_t end = loop_now_ns() + (uint64_t)ms * 1000000u;
    while (loop_now_ns() < end)
        loop_run_once(f->loop, 2);
}

static int open_stream(struct fx *f, int *app_far)
{
    int near;
    assert_int_equal(tcp_fixture_pair(&near, app_far), 0);
    return hbone_pool_connect(f->pool, &f->key, f->netns, f->cctx, "127.0.0.1:80", NULL, near,
                              NULL);
}

static void warm_destination_reuses_the_session(void **state)
{
    struct fx *f = *state;
    int a1, a2, a3;
    assert_int_equal(open_stream(f, &a1), 0);
    run_ms(f, 100);
    assert_int_equal(open_stream(f, &a2), 0);
    run_ms(f, 100);
    struct hbone_pool_stats st;
    hbone_pool_get_stats(f->pool, &st);
    assert_int_equal(f->sv.sessions, 1);
    assert_int_equal(f->sv.requests, 2);
    assert_int_equal(st.sessions_opened, 1);
    assert_int_equal(st.sessions_reused, 1);
    /* max_streams = 2: the third stream needs a second session. */
    assert_int_equal(open_stream(f, &a3), 0);
    run_ms(f, 100);
    hbone_pool_get_stats(f->pool, &st);
    assert_int_equal(st.sessions_opened, 2);
    assert_int_equal(f->sv.sessions, 2);
    assert_int_equal(f->sv.requests, 3);
    /* Streams end when the apps close; the sessions then go idle and the
     * expiry closes them. */
    close(a1), close(a2), close(a3);
    for (int i = 0; i < f->sv.napp; i++)
        shutdown(f->sv.app_fds[i], SHUT_WR);
    run_ms(f, 200);
    assert_int_equal(streams_done, 3);
    hbone_pool_expire(f->pool, loop_now_ns() + 2000000000ull);
    run_ms(f, 50);
    hbone_pool_get_stats(f->pool, &st);
    assert_int_equal(st.sessions, 0);
}

static void server_failing_verification_gets_no_stream(void **state)
{
    struct fx *f = *state;
    verdict = -EPERM;
    int a1;
    assert_int_equal(open_stream(f, &a1), 0);
    run_ms(f, 200);
    struct hbone_pool_stats st;
    hbone_pool_get_stats(f->pool, &st);
    assert_int_equal(st.identity_mismatches, 1);
    assert_int_equal(st.sessions, 0);
    assert_int_equal(f->sv.requests, 0);
    assert_int_equal(streams_done, 1);
    char buf[4];
    assert_int_equal(read(a1, buf, sizeof(buf)), -1); /* the app got a reset */
    assert_int_equal(errno, ECONNRESET);
    close(a1);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as meshd does: see tls/conn.h */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(warm_destination_reuses_the_session, setup, teardown),
        cmocka_unit_test_setup_teardown(server_failing_verification_gets_no_stream, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
