/* The HBONE server (agent/proxy/hbone_inbound.c) on loopback, with a "pod"
 * that is the test's own network namespace: ztunnel's response codes —
 * 200 and bytes to the app, 400 for a malformed authority or one that is
 * not this pod or one of meshd's own ports (a self-call), 401 when policy
 * denies, 503 when the app refuses — each
 * leaving a record with the peer identity; a client that stalls in the
 * handshake cut off at the deadline; a loopback client refused; the
 * source's x-meshd-protocol hint choosing the parser, never the admission. */
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

#include "core/loop.h"
#include "enroll/pods.h"
#include "hbone/session.h"
#include "proxy/conns.h"
#include "proxy/hbone_inbound.h"
#include "support/tls_fixture.h"

#define HBONE_TEST_PORT 15998
#define DENIED_PORT     9

static SSL_CTX *server_ctx_fixture;
static SSL_CTX *server_ctx(void *ctx, const struct pod *pod)
{
    return server_ctx_fixture;
}

static int verify_client(void *ctx, SSL *ssl, char *id, size_t idlen, char *why, size_t whylen)
{
    snprintf(id, idlen, "spiffe://cluster.local/ns/foo/sa/client");
    return 0;
}

static int authorize(void *ctx, const struct pod *pod, const char *peer_id,
                     const struct meshd_addr *src, const struct meshd_addr *dst)
{
    return ntohs(dst->port) == DENIED_PORT ? -EACCES : 0;
}

static int last_status, done_count;
static void on_done(void *ctx, struct hbone_stream *st, void *sctx, int err,
                    const struct hbone_stream_stats *stats)
{
    last_status = stats->status;
    done_count++;
}

struct fx {
    struct loop *loop;
    struct conns *conns;
    struct hbone_inbound *hi;
    struct pod pod;
    SSL_CTX *cctx;
    int app_listener, app_port;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_int_equal(loop_new(&f->loop), 0);
    struct conns_opts co = {
        .max_conns = 100, .records = 64, .owner = {.own_map_fd = UPSTREAM_NO_CAPTURE}};
    assert_int_equal(conns_new(f->loop, &co, &f->conns), 0);
    server_ctx_fixture = tls_fixture_ctx(true);
    f->cctx = tls_fixture_ctx(false);
    struct hbone_inbound_opts o = {.port = HBONE_TEST_PORT,
                                   .handshake_timeout_ns = 1000000000ull,
                                   .idle_timeout_ns = 60000000000ull,
                                   .server_ctx = server_ctx,
                                   .verify_client = verify_client,
                                   .authorize = authorize,
                                   .loopback_clients = true};
    assert_int_equal(hbone_inbound_new(f->loop, f->conns, &o, &f->hi), 0);
    strcpy(f->pod.ns, "default");
    strcpy(f->pod.name, "server");
    f->pod.netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_int_equal(hbone_inbound_attach_pod(f->hi, &f->pod), 0);
    /* The app: a listener the accepted tunnels connect to. */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    f->app_listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_int_equal(bind(f->app_listener, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->app_listener, 8), 0);
    assert_int_equal(getsockname(f->app_listener, (struct sockaddr *)&a, &len), 0);
    f->app_port = ntohs(a.sin_port);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    hbone_inbound_detach_pod(f->hi, &f->pod);
    loop_run_once(f->loop, 0);
    hbone_inbound_free(f->hi);
    conns_free(f->conns);
    loop_free(f->loop);
    close(f->pod.netns_fd);
    close(f->app_listener);
    SSL_CTX_free(server_ctx_fixture);
    SSL_CTX_free(f->cctx);
    free(f);
    return 0;
}

static struct hbone_session *client_session_at(struct fx *f, uint16_t port)
{
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 || errno == EINPROGRESS);
    struct hbone_handler h = {.on_stream_done = on_done};
    struct hbone_session *s;
    assert_int_equal(hbone_session_new(f->loop, f->cctx, fd, false, &h, &s), 0);
    return s;
}

static struct hbone_session *client_session(struct fx *f)
{
    return client_session_at(f, HBONE_TEST_PORT);
}

/* Opens one CONNECT with `hdrs` and returns the status the server answered. */
static int connect_status_with(struct fx *f, struct hbone_session *s, const char *authority,
                               const struct hbone_connect_headers *hdrs)
{
    int near, far;
    assert_int_equal(tcp_fixture_pair(&near, &far), 0);
    struct hbone_stream *st;
    int before = done_count;
    last_status = 0;
    assert_int_equal(hbone_stream_open(s, authority, hdrs, near, NULL, &st), 0);
    shutdown(far, SHUT_WR); /* the client app has nothing to say */
    for (int i = 0; i < 3000 && done_count == before; i++) {
        loop_run_once(f->loop, 1);
        /* Accept (and close) app connections as the app would. */
        int app = accept4(f->app_listener, NULL, NULL, SOCK_NONBLOCK);
        if (app >= 0) {
            assert_int_equal(write(app, "hi", 2), 2);
            close(app);
        }
    }
    close(far);
    return last_status;
}

static int connect_status(struct fx *f, struct hbone_session *s, const char *authority)
{
    return connect_status_with(f, s, authority, NULL);
}

struct seen {
    int n200, n400, n401, n503, nself;
    char peer[256];
};

static void count_record(const struct conn_record *r, void *arg)
{
    struct seen *s = arg;
    snprintf(s->peer, sizeof(s->peer), "%s", r->peer_identity);
    if (r->response_flag == RESP_FLAG_DENY)
        s->n401++;
    else if (r->response_flag == RESP_FLAG_SELF_CALL)
        s->nself++;
    else if (r->response_flag == RESP_FLAG_UF)
        s->n503++;
    else
        s->n200++;
}

static void ztunnel_response_codes(void **state)
{
    struct fx *f = *state;
    struct hbone_session *s = client_session(f);
    char ok[32], denied[32], refused[32];
    snprintf(ok, sizeof(ok), "127.0.0.1:%d", f->app_port);
    snprintf(denied, sizeof(denied), "127.0.0.1:%d", DENIED_PORT);
    snprintf(refused, sizeof(refused), "127.0.0.1:%d", 1); /* nothing listens on 1 */
    assert_int_equal(connect_status(f, s, ok), 200);
    assert_int_equal(connect_status(f, s, "127.0.0.2:80"), 400); /* not this pod */
    assert_int_equal(connect_status(f, s, "not-an-address"), 400);
    assert_int_equal(connect_status(f, s, denied), 401);
    assert_int_equal(connect_status(f, s, refused), 503);
    /* ztunnel's self-call: meshd's own ports are never a destination. */
    assert_int_equal(connect_status(f, s, "127.0.0.1:15001"), 400);
    assert_int_equal(connect_status(f, s, "127.0.0.1:15006"), 400);
    assert_int_equal(connect_status(f, s, "127.0.0.1:15008"), 400);
    /* Records: one per CONNECT that named this pod, with the peer id. */
    for (int i = 0; i < 50; i++)
        loop_run_once(f->loop, 1);
    struct seen seen = {0};
    conns_foreach(f->conns, count_record, &seen);
    assert_int_equal(seen.n200, 1);
    assert_int_equal(seen.n401, 1);
    assert_int_equal(seen.n503, 1);
    assert_int_equal(seen.nself, 3);
    assert_string_equal(seen.peer, "spiffe://cluster.local/ns/foo/sa/client");
    struct hbone_inbound_stats st;
    hbone_inbound_get_stats(f->hi, &st);
    assert_int_equal(st.bad_requests, 2);
    assert_int_equal(st.denied, 1);
    assert_int_equal(st.upstream_failures, 1);
    assert_int_equal(st.self_calls, 3);
    hbone_session_close(s, "test over");
}

static void stalled_client_handshake_is_cut_off(void **state)
{
    struct fx *f = *state;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(HBONE_TEST_PORT),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(write(fd, "\x16\x03\x01", 3),
                     3); /* the start of a ClientHello, then nothing */
    for (int i = 0; i < 50; i++)
        loop_run_once(f->loop, 1);
    struct hbone_inbound_stats st;
    hbone_inbound_get_stats(f->hi, &st);
    assert_int_equal(st.sessions, 1);
    hbone_inbound_expire(f->hi, loop_now_ns()); /* within the deadline: kept */
    hbone_inbound_get_stats(f->hi, &st);
    assert_int_equal(st.sessions, 1);
    hbone_inbound_expire(f->hi, loop_now_ns() + 2000000000ull);
    loop_run_once(f->loop, 0);
    hbone_inbound_get_stats(f->hi, &st);
    assert_int_equal(st.sessions, 0);
    char buf[8];
    assert_true(read(fd, buf, sizeof(buf)) <= 0); /* closed on the staller */
    close(fd);
}

/* meshd's own configuration: a client on the pod's loopback can only be
 * meshd's app-facing side (127.0.0.6), never an HBONE peer: reset at
 * accept, before any TLS, and counted as a self-call. */
static void loopback_client_is_refused(void **state)
{
    struct fx *f = *state;
    struct hbone_inbound_opts o = {.port = HBONE_TEST_PORT - 1,
                                   .handshake_timeout_ns = 1000000000ull,
                                   .idle_timeout_ns = 60000000000ull,
                                   .server_ctx = server_ctx,
                                   .verify_client = verify_client};
    struct hbone_inbound *hi;
    struct pod pod = f->pod;
    assert_int_equal(hbone_inbound_new(f->loop, f->conns, &o, &hi), 0);
    assert_int_equal(hbone_inbound_attach_pod(hi, &pod), 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(HBONE_TEST_PORT - 1),
                            .sin_addr.s_addr = htonl(0x7f000006)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    for (int i = 0; i < 50; i++)
        loop_run_once(f->loop, 1);
    char buf[8];
    assert_int_equal(read(fd, buf, sizeof(buf)), -1);
    assert_int_equal(errno, ECONNRESET);
    struct hbone_inbound_stats st;
    hbone_inbound_get_stats(hi, &st);
    assert_int_equal(st.self_calls, 1);
    assert_int_equal(st.sessions_total, 0);
    close(fd);
    hbone_inbound_detach_pod(hi, &pod);
    hbone_inbound_free(hi);
}

/* HTTP at the destination: the source's x-meshd-protocol reaches
 * wants_http as said_http (and only when sent); a stream served per
 * request is admitted by authorize_http before anything is served, a
 * refusal answered 401 and recorded DENY as on L4, serve_http never
 * called; a stream not served per request is decided by authorize. */
static struct {
    int wants, said, l4, conn, served;
} http_calls;

static bool wants_http(void *ctx, const struct pod *pod, const struct meshd_addr *dst,
                       bool said_http)
{
    http_calls.wants++;
    http_calls.said += said_http;
    return said_http; /* an unnamed port: the source's word chooses the parser */
}

static int authorize_l4(void *ctx, const struct pod *pod, const char *peer_id,
                        const struct meshd_addr *src, const struct meshd_addr *dst)
{
    http_calls.l4++;
    return authorize(ctx, pod, peer_id, src, dst);
}

static int authorize_http_connection(void *ctx, const struct pod *pod, const char *peer_id,
                                     const struct meshd_addr *src, const struct meshd_addr *dst)
{
    http_calls.conn++;
    return authorize(ctx, pod, peer_id, src, dst);
}

static int serve_http(void *ctx, const struct pod *pod, const struct conn_record *rec,
                      struct hbone_stream *st, int app_fd)
{
    http_calls.served++;
    assert_true(rec->per_request);
    hbone_stream_accept(st, app_fd); /* bytes will do for this test */
    return 0;
}

static void the_sources_hint_chooses_the_parser_never_the_admission(void **state)
{
    struct fx *f = *state;
    const uint16_t port = HBONE_TEST_PORT - 2;
    struct hbone_inbound_opts o = {.port = port,
                                   .handshake_timeout_ns = 1000000000ull,
                                   .idle_timeout_ns = 60000000000ull,
                                   .server_ctx = server_ctx,
                                   .verify_client = verify_client,
                                   .authorize = authorize_l4,
                                   .wants_http = wants_http,
                                   .authorize_http = authorize_http_connection,
                                   .serve_http = serve_http,
                                   .loopback_clients = true};
    struct hbone_inbound *hi;
    struct pod pod = f->pod;
    assert_int_equal(hbone_inbound_new(f->loop, f->conns, &o, &hi), 0);
    assert_int_equal(hbone_inbound_attach_pod(hi, &pod), 0);
    struct hbone_session *s = client_session_at(f, port);
    char ok[32], denied[32];
    snprintf(ok, sizeof(ok), "127.0.0.1:%d", f->app_port);
    snprintf(denied, sizeof(denied), "127.0.0.1:%d", DENIED_PORT);
    const struct hbone_connect_headers hint = {.protocol = HBONE_PROTOCOL_HTTP};
    const struct hbone_connect_headers other = {.protocol = "tcp"};
    const struct {
        const char *behaviour;
        bool to_denied;
        const struct hbone_connect_headers *hdrs;
        int status, said, l4, conn, served;
    } rows[] = {
        {"hinted, allowed: admitted by authorize_http, then served", false, &hint, 200, 1, 0, 1, 1},
        {"hinted, refused: 401, nothing served", true, &hint, 401, 1, 0, 1, 0},
        {"no hint: bytes, decided by authorize", false, NULL, 200, 0, 1, 0, 0},
        {"no hint, refused: 401 by authorize", true, NULL, 401, 0, 1, 0, 0},
        {"another value is no hint", true, &other, 401, 0, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        memset(&http_calls, 0, sizeof(http_calls));
        int status = connect_status_with(f, s, rows[i].to_denied ? denied : ok, rows[i].hdrs);
        if (status != rows[i].status || http_calls.wants != 1 || http_calls.said != rows[i].said ||
            http_calls.l4 != rows[i].l4 || http_calls.conn != rows[i].conn ||
            http_calls.served != rows[i].served)
            fail_msg("%s: status %d, said %d, l4 %d, conn %d, served %d", rows[i].behaviour, status,
                     http_calls.said, http_calls.l4, http_calls.conn, http_calls.served);
    }
    for (int i = 0; i < 50; i++)
        loop_run_once(f->loop, 1);
    struct seen seen = {0};
    conns_foreach(f->conns, count_record, &seen);
    assert_int_equal(seen.n401, 3); /* every refusal recorded DENY, hinted or not */
    struct hbone_inbound_stats st;
    hbone_inbound_get_stats(hi, &st);
    assert_int_equal(st.denied, 3);
    hbone_session_close(s, "test over");
    loop_run_once(f->loop, 0);
    hbone_inbound_detach_pod(hi, &pod);
    loop_run_once(f->loop, 0);
    hbone_inbound_free(hi);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as meshd does: see tls/conn.h */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(ztunnel_response_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(stalled_client_handshake_is_cut_off, setup, teardown),
        cmocka_unit_test_setup_teardown(loopback_client_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(the_sources_hint_chooses_the_parser_never_the_admission,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
