/* HBONE sessions (agent/hbone/session.c) end to end over real TCP on
 * loopback with real TLS 1.3 and nghttp2 on both sides: CONNECT tunnels
 * carry bytes both ways with half-close, rejections reach the client app as
 * a reset with the status recorded, a slow app reader applies backpressure
 * through HTTP/2 flow control, and garbage instead of TLS fails cleanly.
 * A stream's end can be an in-process pipe instead of a socket (what the
 * HTTP carrier uses): bytes both ways, its owner's backpressure held and
 * resumed without a byte lost, an orderly close and an abort as the peer
 * sees them, and no callback after either. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/loop.h"
#include "hbone/session.h"
#include "support/tls_fixture.h"

struct side {
    int done_calls, last_err, sessions_done;
    struct hbone_stream_stats last;
    int reject_status; /* server: reject instead of accepting */
    int app_far;       /* server: the test's end of the app connection */
    char authority[64];
    char protocol[16];
};

struct fx {
    struct loop *loop;
    SSL_CTX *cctx, *sctx;
    struct hbone_session *client, *server;
    struct side cs, ss;
    int app_near, app_far; /* client app: meshd's end, the test's end */
};

static void on_request(void *ctx, struct hbone_stream *st, const struct hbone_request *req)
{
    struct side *sd = ctx;
    snprintf(sd->authority, sizeof(sd->authority), "%s", req->authority);
    snprintf(sd->protocol, sizeof(sd->protocol), "%s", req->protocol);
    if (sd->reject_status) {
        hbone_stream_reject(st, sd->reject_status);
        return;
    }
    int near, far;
    assert_int_equal(tcp_fixture_pair(&near, &far), 0);
    sd->app_far = far;
    assert_int_equal(hbone_stream_accept(st, near), 0);
}

static void on_stream_done(void *ctx, struct hbone_stream *st, void *sctx, int err,
                           const struct hbone_stream_stats *stats)
{
    struct side *sd = ctx;
    sd->done_calls++;
    sd->last_err = err;
    sd->last = *stats;
}

static void on_session_done(void *ctx, struct hbone_session *s)
{
    ((struct side *)ctx)->sessions_done++;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    int c, s;
    assert_int_equal(loop_new(&f->loop), 0);
    f->cctx = tls_fixture_ctx(false);
    f->sctx = tls_fixture_ctx(true);
    assert_non_null(f->cctx);
    assert_non_null(f->sctx);
    assert_int_equal(tcp_fixture_pair(&c, &s), 0);
    struct hbone_handler ch = {
        .on_stream_done = on_stream_done, .on_session_done = on_session_done, .ctx = &f->cs};
    struct hbone_handler sh = {.on_request = on_request,
                               .on_stream_done = on_stream_done,
                               .on_session_done = on_session_done,
                               .ctx = &f->ss};
    f->ss.app_far = -1;
    assert_int_equal(hbone_session_new(f->loop, f->cctx, c, false, &ch, &f->client), 0);
    assert_int_equal(hbone_session_new(f->loop, f->sctx, s, true, &sh, &f->server), 0);
    /* TCP, not a socketpair: resets must be observable by the test. */
    assert_int_equal(tcp_fixture_pair(&f->app_near, &f->app_far), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->cs.sessions_done == 0)
        hbone_session_close(f->client, "test over");
    if (f->ss.sessions_done == 0)
        hbone_session_close(f->server, "test over");
    loop_run_once(f->loop, 0);
    loop_free(f->loop);
    SSL_CTX_free(f->cctx);
    SSL_CTX_free(f->sctx);
    close(f->app_far);
    if (f->ss.app_far >= 0)
        close(f->ss.app_far);
    free(f);
    return 0;
}

/* Runs the loop until cond() holds or 5 s pass; returns cond(). */
#define RUN_UNTIL(f, cond)                                                                         \
    ({                                                                                             \
        bool ok_ = false;                                                                          \
        for (int i_ = 0; i_ < 5000 && !(ok_ = (cond)); i_++)                                       \
            loop_run_once((f)->loop, 1);                                                           \
        ok_;                                                                                       \
    })

static ssize_t drain(int fd, char *buf, size_t cap)
{
    ssize_t n = read(fd, buf, cap);
    return n;
}

static void connect_tunnel_carries_bytes_both_ways(void **state)
{
    struct fx *f = *state;
    struct hbone_stream *st;
    struct hbone_connect_headers h = {.forwarded = "for=\"10.244.1.11:40000\"",
                                      .protocol = HBONE_PROTOCOL_HTTP};
    assert_int_equal(hbone_stream_open(f->client, "10.244.2.11:8080", &h, f->app_near, NULL, &st),
                     0);
    assert_true(RUN_UNTIL(f, f->ss.app_far >= 0));
    assert_string_equal(f->ss.authority, "10.244.2.11:8080");
    assert_string_equal(f->ss.protocol, "http"); /* the source's x-meshd-protocol */

    assert_int_equal(write(f->app_far, "ping", 4), 4);
    char buf[64];
    ssize_t n = -1;
    assert_true(RUN_UNTIL(f, (n = drain(f->ss.app_far, buf, sizeof(buf))) > 0));
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "ping", 4);

    assert_int_equal(write(f->ss.app_far, "pong!", 5), 5);
    assert_true(RUN_UNTIL(f, (n = drain(f->app_far, buf, sizeof(buf))) > 0));
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "pong!", 5);

    /* Half-close from the client app reaches the server app as EOF, and the
     * server can still answer afterwards. */
    shutdown(f->app_far, SHUT_WR);
    assert_true(RUN_UNTIL(f, drain(f->ss.app_far, buf, sizeof(buf)) == 0));
    assert_int_equal(write(f->ss.app_far, "late", 4), 4);
    assert_true(RUN_UNTIL(f, (n = drain(f->app_far, buf, sizeof(buf))) > 0));
    assert_memory_equal(buf, "late", 4);
    shutdown(f->ss.app_far, SHUT_WR);
    assert_true(RUN_UNTIL(f, f->cs.done_calls == 1 && f->ss.done_calls == 1));
    assert_int_equal(f->cs.last_err, 0);
    assert_int_equal(f->ss.last_err, 0);
    assert_int_equal(f->cs.last.status, 200);
    assert_int_equal(f->cs.last.bytes_sent, 4);
    assert_int_equal(f->cs.last.bytes_received, 9);
    assert_int_equal(f->ss.last.bytes_received, 4);
    assert_int_equal(hbone_session_streams(f->client), 0);
    assert_true(hbone_session_usable(f->client));
}

static void rejection_resets_the_client_app(void **state)
{
    struct fx *f = *state;
    struct hbone_stream *st;
    f->ss.reject_status = 401;
    assert_int_equal(hbone_stream_open(f->client, "10.244.2.11:8080", NULL, f->app_near, NULL, &st),
                     0);
    assert_true(RUN_UNTIL(f, f->cs.done_calls == 1));
    assert_int_equal(f->cs.last.status, 401);
    assert_string_equal(f->ss.protocol, ""); /* no x-meshd-protocol sent: none heard */
    assert_int_not_equal(f->cs.last_err, 0);
    char buf[8];
    ssize_t n = -1;
    RUN_UNTIL(f, (n = read(f->app_far, buf, sizeof(buf))) != -1 || errno != EAGAIN);
    assert_int_equal(n, -1);
    assert_int_equal(errno, ECONNRESET);
    /* The session survives a rejected stream. */
    assert_true(hbone_session_usable(f->client));
}

static void slow_reader_gets_every_byte_through_flow_control(void **state)
{
    struct fx *f = *state;
    struct hbone_stream *st;
    enum { TOTAL = 12 << 20 }; /* three stream windows */
    assert_int_equal(hbone_stream_open(f->client, "10.244.2.11:8080", NULL, f->app_near, NULL, &st),
                     0);
    assert_true(RUN_UNTIL(f, f->ss.app_far >= 0));
    char *chunk = malloc(65536);
    for (int i = 0; i < 65536; i++)
        chunk[i] = (char)(i * 31);
    size_t sent = 0, got = 0;
    uint64_t sum_sent = 0, sum_got = 0;
    char buf[65536];
    for (int iter = 0; iter < 200000 && got < TOTAL; iter++) {
        if (sent < TOTAL) {
            size_t want = TOTAL - sent < 65536 ? TOTAL - sent : 65536;
            ssize_t n = write(f->ss.app_far, chunk, want);
            for (ssize_t k = 0; k < n; k++)
                sum_sent += (unsigned char)chunk[k] * (uint64_t)((sent + (size_t)k) % 251 + 1);
            if (n > 0)
                sent += (size_t)n;
            if (sent == TOTAL)
                shutdown(f->ss.app_far, SHUT_WR);
        }
        loop_run_once(f->loop, 1);
        if (iter % 4 == 0) { /* the client app reads slowly */
            ssize_t n = read(f->app_far, buf, 4096);
            for (ssize_t k = 0; k < n; k++)
                sum_got += (unsigned char)buf[k] * (uint64_t)((got + (size_t)k) % 251 + 1);
            if (n > 0)
                got += (size_t)n;
        }
    }
    assert_int_equal(got, TOTAL);
    assert_true(sum_got == sum_sent);
    free(chunk);
}

/* The client's end of a stream as a pipe (hbone_pipe). */
struct pipe_end {
    char got[1 << 16];
    size_t len, total;
    uint64_t sum;
    bool paused, eof;
    int calls_after_end, writable, ends, end_err;
    bool ended;
};

static size_t pe_data(void *ctx, const char *p, size_t n)
{
    struct pipe_end *pe = ctx;
    if (pe->ended)
        pe->calls_after_end++;
    if (pe->paused)
        return 0;
    size_t take = n < 3000 ? n : 3000; /* takes a little at a time */
    for (size_t k = 0; k < take; k++)
        pe->sum += (unsigned char)p[k] * (uint64_t)((pe->total + k) % 251 + 1);
    if (pe->len + take <= sizeof(pe->got)) {
        memcpy(pe->got + pe->len, p, take);
        pe->len += take;
    }
    pe->total += take;
    return take;
}

static void pe_eof(void *ctx)
{
    struct pipe_end *pe = ctx;
    if (pe->ended)
        pe->calls_after_end++;
    pe->eof = true;
}

static void pe_writable(void *ctx)
{
    ((struct pipe_end *)ctx)->writable++;
}

static void pe_end(void *ctx, int err)
{
    struct pipe_end *pe = ctx;
    if (pe->ended)
        pe->calls_after_end++;
    pe->ends++;
    pe->end_err = err;
    pe->ended = true;
}

/* With `on_end` (pe_end), the pipe_end must outlive the session: the
 * session's teardown reports its streams' ends too. */
static struct hbone_stream *open_pipe_ending(struct fx *f, struct pipe_end *pe,
                                             void (*on_end)(void *, int))
{
    struct hbone_pipe p = {.on_data = pe_data,
                           .on_eof = pe_eof,
                           .on_writable = pe_writable,
                           .on_end = on_end,
                           .ctx = pe};
    struct hbone_stream *st = NULL;
    assert_int_equal(hbone_stream_open_pipe(f->client, "10.244.2.11:8080", NULL, &p, pe, &st), 0);
    assert_non_null(st);
    return st;
}

static struct hbone_stream *open_pipe(struct fx *f, struct pipe_end *pe)
{
    return open_pipe_ending(f, pe, NULL);
}

static void pipe_end_carries_bytes_and_closes_in_order(void **state)
{
    struct fx *f = *state;
    struct pipe_end pe = {0};
    struct hbone_stream *st = open_pipe(f, &pe);
    /* Queued before the peer answered: sent once it does. */
    assert_int_equal(hbone_stream_send(st, "ping", 4), 4);
    assert_true(RUN_UNTIL(f, f->ss.app_far >= 0));
    char buf[64];
    ssize_t n = -1;
    assert_true(RUN_UNTIL(f, (n = drain(f->ss.app_far, buf, sizeof(buf))) > 0));
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(write(f->ss.app_far, "pong!", 5), 5);
    assert_true(RUN_UNTIL(f, pe.len == 5));
    assert_memory_equal(pe.got, "pong!", 5);
    /* The peer's half-close reaches the pipe after its bytes. */
    shutdown(f->ss.app_far, SHUT_WR);
    assert_true(RUN_UNTIL(f, pe.eof));
    /* An orderly close: the server app reads EOF, both ends report 0. */
    pe.ended = true;
    hbone_stream_close(st);
    assert_true(RUN_UNTIL(f, drain(f->ss.app_far, buf, sizeof(buf)) == 0));
    assert_true(RUN_UNTIL(f, f->cs.done_calls == 1 && f->ss.done_calls == 1));
    assert_int_equal(f->cs.last_err, 0);
    assert_int_equal(f->ss.last_err, 0);
    assert_int_equal(f->cs.last.bytes_sent, 4);
    assert_int_equal(pe.calls_after_end, 0);
}

/* The pipe's owner pausing (taking nothing) holds the peer through flow
 * control; resumed, every byte arrives in order. */
static void pipe_end_backpressure_loses_nothing(void **state)
{
    struct fx *f = *state;
    enum { TOTAL = 6 << 20 }; /* past the stream window */
    struct pipe_end pe = {0};
    struct hbone_stream *st = open_pipe(f, &pe);
    assert_true(RUN_UNTIL(f, f->ss.app_far >= 0));
    char *chunk = malloc(65536);
    for (int i = 0; i < 65536; i++)
        chunk[i] = (char)(i * 31);
    size_t sent = 0;
    uint64_t sum_sent = 0;
    for (int iter = 0; iter < 400000 && pe.total < TOTAL; iter++) {
        if (sent < TOTAL) {
            size_t want = TOTAL - sent < 65536 ? TOTAL - sent : 65536;
            ssize_t n = write(f->ss.app_far, chunk, want);
            for (ssize_t k = 0; k < n; k++)
                sum_sent += (unsigned char)chunk[k] * (uint64_t)((sent + (size_t)k) % 251 + 1);
            if (n > 0)
                sent += (size_t)n;
        }
        bool was = pe.paused;
        pe.paused = (iter / 50) % 2 == 1; /* on and off */
        if (was && !pe.paused)
            hbone_stream_resume(st);
        loop_run_once(f->loop, 1);
    }
    assert_int_equal(pe.total, TOTAL);
    assert_true(pe.sum == sum_sent);
    free(chunk);
}

/* An error some other OpenSSL call left in the thread's queue is not
 * this session's: reads and writes that only wait (WANT_READ) still wait,
 * and the bytes go through. tls/conn.c clears the queue only when it is
 * not empty: this is what it must still do. */
static void stale_openssl_error_does_not_fail_the_session(void **state)
{
    struct fx *f = *state;
    struct hbone_stream *st;
    assert_int_equal(hbone_stream_open(f->client, "10.244.2.11:8080", NULL, f->app_near, NULL, &st),
                     0);
    assert_true(RUN_UNTIL(f, f->ss.app_far >= 0));
    char buf[64];
    ssize_t n = -1;
    for (int i = 0; i < 3; i++) {
        ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH); /* someone else's failure */
        assert_int_equal(write(f->app_far, "ping", 4), 4);
        assert_true(RUN_UNTIL(f, (n = drain(f->ss.app_far, buf, sizeof(buf))) > 0));
        assert_int_equal(n, 4);
        ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
        assert_int_equal(write(f->ss.app_far, "pong", 4), 4);
        assert_true(RUN_UNTIL(f, (n = drain(f->app_far, buf, sizeof(buf))) > 0));
        assert_int_equal(n, 4);
    }
    assert_int_equal(f->cs.done_calls, 0);
    assert_true(hbone_session_usable(f->client));
    ERR_clear_error();
}

/* The pipe's up buffer starts small (HBONE_UP_MIN) and grows while bytes
 * are queued, to HBONE_UP_BUF at most: a full one takes nothing more and
 * says when it has room again; every byte arrives, in order. */
static void pipe_send_buffer_grows_to_its_bound(void **state)
{
    struct fx *f = *state;
    enum { TOTAL = 300000 };
    struct pipe_end pe = {0};
    struct hbone_stream *st = open_pipe(f, &pe);
    assert_true(RUN_UNTIL(f, f->ss.app_far >= 0));
    char *data = malloc(TOTAL), *got = malloc(TOTAL);
    for (int i = 0; i < TOTAL; i++)
        data[i] = (char)(i * 7 + i / 251);
    /* Nothing drains between these calls (the loop does not run). */
    assert_int_equal(hbone_stream_send(st, data, 10), 10);
    assert_int_equal(hbone_stream_send(st, data + 10, 100000), HBONE_UP_BUF - 10);
    assert_int_equal(hbone_stream_send(st, data + HBONE_UP_BUF, 1), 0);
    size_t sent = HBONE_UP_BUF, rcvd = 0;
    int writable = pe.writable;
    for (int iter = 0; iter < 200000 && rcvd < TOTAL; iter++) {
        if (sent < TOTAL && pe.writable != writable) {
            writable = pe.writable;
            size_t k = hbone_stream_send(st, data + sent, TOTAL - sent);
            assert_true(k > 0 && k <= HBONE_UP_BUF);
            sent += k;
        }
        ssize_t n = read(f->ss.app_far, got + rcvd, TOTAL - rcvd);
        if (n > 0)
            rcvd += (size_t)n;
        loop_run_once(f->loop, 1);
    }
    assert_int_equal(rcvd, TOTAL);
    assert_memory_equal(got, data, TOTAL);
    assert_true(pe.writable >= 4); /* it filled and emptied at least that often */
    free(data);
    free(got);
}

/* An abort resets the peer's app; the pipe hears nothing more. */
static void pipe_end_abort_resets_the_peer(void **state)
{
    struct fx *f = *state;
    struct pipe_end pe = {0};
    struct hbone_stream *st = open_pipe(f, &pe);
    assert_int_equal(hbone_stream_send(st, "x", 1), 1);
    assert_true(RUN_UNTIL(f, f->ss.app_far >= 0));
    char buf[8];
    assert_true(RUN_UNTIL(f, drain(f->ss.app_far, buf, sizeof(buf)) == 1));
    pe.ended = true;
    hbone_stream_abort(st, -ECONNABORTED);
    ssize_t n = -1;
    RUN_UNTIL(f, (n = read(f->ss.app_far, buf, sizeof(buf))) != -1 || errno != EAGAIN);
    assert_int_equal(n, -1);
    assert_int_equal(errno, ECONNRESET);
    assert_true(RUN_UNTIL(f, f->cs.done_calls == 1));
    assert_int_not_equal(f->cs.last_err, 0);
    assert_int_equal(pe.calls_after_end, 0);
}

/* A revocation by someone else (a reload's policy) resets the peer and
 * tells the pipe's owner once, so it lets go of the stream; nothing else
 * reaches the pipe after. */
static void pipe_end_revoked_tells_its_owner(void **state)
{
    struct fx *f = *state;
    static struct pipe_end pe; /* outlives the session (pe_end) */
    memset(&pe, 0, sizeof(pe));
    struct hbone_stream *st = open_pipe_ending(f, &pe, pe_end);
    assert_int_equal(hbone_stream_send(st, "x", 1), 1);
    assert_true(RUN_UNTIL(f, f->ss.app_far >= 0));
    char buf[8];
    assert_true(RUN_UNTIL(f, drain(f->ss.app_far, buf, sizeof(buf)) == 1));
    hbone_stream_revoke(st, -EACCES);
    assert_int_equal(pe.ends, 1);
    assert_int_equal(pe.end_err, -EACCES);
    ssize_t n = -1;
    RUN_UNTIL(f, (n = read(f->ss.app_far, buf, sizeof(buf))) != -1 || errno != EAGAIN);
    assert_int_equal(n, -1);
    assert_int_equal(errno, ECONNRESET);
    assert_true(RUN_UNTIL(f, f->cs.done_calls == 1));
    assert_int_equal(pe.ends, 1);
    assert_int_equal(pe.calls_after_end, 0);
}

static void garbage_instead_of_tls_fails_the_session(void **state)
{
    struct fx *f = *state;
    int c, s;
    struct side sd = {0};
    struct hbone_session *srv;
    struct hbone_handler sh = {.on_session_done = on_session_done, .ctx = &sd};
    assert_int_equal(tcp_fixture_pair(&c, &s), 0);
    assert_int_equal(hbone_session_new(f->loop, f->sctx, s, true, &sh, &srv), 0);
    static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(c, junk, sizeof(junk) - 1), (ssize_t)sizeof(junk) - 1);
    assert_true(RUN_UNTIL(f, sd.sessions_done == 1));
    close(c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as meshd does: see tls/conn.h */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(connect_tunnel_carries_bytes_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(rejection_resets_the_client_app, setup, teardown),
        cmocka_unit_test_setup_teardown(slow_reader_gets_every_byte_through_flow_control, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(pipe_end_carries_bytes_and_closes_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(pipe_end_backpressure_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(pipe_send_buffer_grows_to_its_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(stale_openssl_error_does_not_fail_the_session, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(pipe_end_abort_resets_the_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(pipe_end_revoked_tells_its_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(garbage_instead_of_tls_fails_the_session, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
