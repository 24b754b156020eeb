/* A hostile HTTP/2 client against meshd's HBONE server: it ignores
 * SETTINGS_MAX_CONCURRENT_STREAMS and opens 1,000 CONNECT streams on one
 * connection, hand-crafted frames over real TLS. The server never holds
 * more than its 100 streams, refuses the rest, and a well-behaved client
 * on another connection is served meanwhile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "core/loop.h"
#include "hbone/session.h"
#include "support/tls_fixture.h"

#define FLOOD 1000

struct attacker {
    int fd;
    SSL_CTX *ctx;
    int frames_sent;
};

static void put_frame_header(uint8_t *b, size_t len, uint8_t type, uint8_t flags, uint32_t id)
{
    b[0] = (uint8_t)(len >> 16), b[1] = (uint8_t)(len >> 8), b[2] = (uint8_t)len;
    b[3] = type, b[4] = flags;
    b[5] = (uint8_t)(id >> 24), b[6] = (uint8_t)(id >> 16), b[7] = (uint8_t)(id >> 8);
    b[8] = (uint8_t)id;
}

static void *attack(void *arg)
{
    struct attacker *a = arg;
    int fl = fcntl(a->fd, F_GETFL);
    fcntl(a->fd, F_SETFL, fl & ~O_NONBLOCK);
    SSL *ssl = SSL_new(a->ctx);
    SSL_set_fd(ssl, a->fd);
    if (SSL_connect(ssl) != 1)
        goto out;
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    uint8_t settings[9];
    put_frame_header(settings, 0, NGHTTP2_SETTINGS, 0, 0);
    if (SSL_write(ssl, preface, sizeof(preface) - 1) <= 0 || SSL_write(ssl, settings, 9) <= 0)
        goto out;
    nghttp2_hd_deflater *hd;
    nghttp2_hd_deflate_new(&hd, 4096);
    nghttp2_nv nva[] = {
        {(uint8_t *)":method", (uint8_t *)"CONNECT", 7, 7, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":authority", (uint8_t *)"127.0.0.1:1", 10, 11, NGHTTP2_NV_FLAG_NONE},
    };
    for (uint32_t i = 0; i < FLOOD; i++) {
        uint8_t frame[9 + 256];
        ssize_t n = nghttp2_hd_deflate_hd(hd, frame + 9, sizeof(frame) - 9, nva, 2);
        if (n < 0)
            break;
        put_frame_header(frame, (size_t)n, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 2 * i + 1);
        if (SSL_write(ssl, frame, 9 + (int)n) <= 0)
            break; /* the server may cut us off: that is allowed */
        a->frames_sent++;
    }
    nghttp2_hd_deflate_del(hd);
out:
    SSL_free(ssl);
    return NULL;
}

static int requests, max_streams_seen;
static struct hbone_session *flooded;
static void on_request(void *ctx, struct hbone_stream *st, const struct hbone_request *req)
{
    /* Leave every CONNECT pending, as a slow app would: streams pile up. */
    requests++;
    unsigned n = hbone_session_streams(hbone_stream_session(st));
    if ((int)n > max_streams_seen)
        max_streams_seen = (int)n;
}

static bool flooded_done;
static void on_session_done(void *ctx, struct hbone_session *s)
{
    if (s == flooded)
        flooded_done = true;
}

static int good_requests;
static void good_on_request(void *ctx, struct hbone_stream *st, const struct hbone_request *req)
{
    int near, far;
    good_requests++;
    if (tcp_fixture_pair(&near, &far) == 0) {
        hbone_stream_accept(st, near);
        close(far);
    }
}

static void stream_flood_is_bounded_and_isolated(void **state)
{
    struct loop *loop;
    assert_int_equal(loop_new(&loop), 0);
    SSL_CTX *sctx = tls_fixture_ctx(true), *cctx = tls_fixture_ctx(false);
    int c, s;
    assert_int_equal(tcp_fixture_pair(&c, &s), 0);
    struct hbone_handler sh = {.on_request = on_request, .on_session_done = on_session_done};
    assert_int_equal(hbone_session_new(loop, sctx, s, true, &sh, &flooded), 0);
    struct attacker a = {.fd = c, .ctx = cctx};
    pthread_t t;
    pthread_create(&t, NULL, attack, &a);

    /* A well-behaved client on its own connection, at the same time. */
    int gc, gs, app_near, app_far;
    assert_int_equal(tcp_fixture_pair(&gc, &gs), 0);
    struct hbone_session *good_srv, *good_cli;
    struct hbone_handler gh = {.on_request = good_on_request}, ch = {0};
    assert_int_equal(hbone_session_new(loop, sctx, gs, true, &gh, &good_srv), 0);
    assert_int_equal(hbone_session_new(loop, cctx, gc, false, &ch, &good_cli), 0);
    assert_int_equal(tcp_fixture_pair(&app_near, &app_far), 0);
    struct hbone_stream *gst;
    assert_int_equal(hbone_stream_open(good_cli, "127.0.0.1:2", NULL, app_near, NULL, &gst), 0);

    for (int i = 0; i < 3000; i++)
        loop_run_once(loop, 1);
    pthread_join(t, NULL);
    for (int i = 0; i < 500; i++)
        loop_run_once(loop, 1);

    print_message("frames sent %d, requests %d, max streams %d, session ended %d\n", a.frames_sent,
                  requests, max_streams_seen, flooded_done);
    assert_true(a.frames_sent > 100); /* the attack really went past the limit */
    assert_true(max_streams_seen <= HBONE_MAX_STREAMS);
    assert_true(requests <= HBONE_MAX_STREAMS);
    if (!flooded_done)
        assert_true(hbone_session_streams(flooded) <= HBONE_MAX_STREAMS);
    assert_int_equal(good_requests, 1); /* the other connection was served */

    if (!flooded_done)
        hbone_session_close(flooded, "test over");
    hbone_session_close(good_srv, "test over");
    hbone_session_close(good_cli, "test over");
    loop_run_once(loop, 0);
    close(c);
    close(app_far);
    loop_free(loop);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as meshd does: see tls/conn.h */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stream_flood_is_bounded_and_isolated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
