/* The HTTP carrier's sessions (agent/http/proxy.c, request.c, upstream.c)
 * carrying requests between a client on a socket pair and a scripted
 * HTTP/1.1 upstream on loopback, on a real loop (tests/unit/support/
 * hp_fixture.h): the exact bytes each side receives for one request,
 * keep-alive and pipelining, request bodies re-framed, every response
 * framing towards HTTP/1.1 and HTTP/1.0 clients, HEAD, 204/304, 100
 * Continue, malformed requests refused before the upstream sees a byte,
 * the keep-alive pool (an upstream that closed is not reused, one cut
 * mid-request is not kept, the pool is bounded), the router's peer
 * accounting, and the sniffer's table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"
#include "support/hp_fixture.h"

#define REQ(path, extra) "GET " path " HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\n" extra "\r\n"
#define UP_REQ(path)     "GET " path " HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\n\r\n"
#define R200(body)       "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n" body

static struct http_proxy_stats stats(struct hpf *f)
{
    struct http_proxy_stats st;
    http_proxy_get_stats(f->hp, &st);
    return st;
}

/* The client hangs up and the session ends: the record closes once and
 * the router is let go once. */
static void hang_up(struct hpf *f)
{
    close(f->client);
    f->client = -1;
    hpf_wait_count(f, &f->nclosed, 1);
    assert_int_equal(f->nclosed, 1);
    assert_int_equal(f->releases, 1);
    assert_int_equal(stats(f).active_sessions, 0);
}

static void one_request_one_response(void **state)
{
    (void)state;
    struct hpf *f = hpf_new(0);
    hpf_script(f, (struct hpf_step[]){{.send = R200("hi")}}, 1);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, REQ("/a?x=1", "User-Agent: t\r\n"));
    hpf_expect(f, R200("hi"));
    assert_int_equal(f->accepts, 1);
    assert_string_equal(hpf_up_rx(f, 0), "GET /a?x=1 HTTP/1.1\r\nHost: svc\r\nx-request-id: "
                                         "r1\r\nUser-Agent: t\r\n\r\n");
    /* Routed once, as a first attempt, on the request's view. */
    assert_int_equal(f->routes, 1);
    assert_int_equal(f->avoided[0], -1);
    assert_string_equal(f->seen_path[0], "/a");
    assert_string_equal(f->seen_authority[0], "svc");
    /* Its endpoint freed once, not failed; reported once. */
    assert_int_equal(f->frees, 1);
    assert_int_equal(f->freed_endpoint[0], 100);
    assert_false(f->freed_failed[0]);
    assert_int_equal(f->nreports, 1);
    const struct hpf_report *r = &f->reports[0];
    assert_int_equal(r->status, 200);
    assert_string_equal(r->flags, "-");
    assert_string_equal(r->method, "GET");
    assert_string_equal(r->path, "/a?x=1");
    assert_string_equal(r->request_id, "r1");
    assert_int_equal(r->req_bytes, 0);
    assert_int_equal(r->resp_bytes, 2);
    char host[32];
    snprintf(host, sizeof(host), "127.0.0.1:%u", f->port);
    assert_string_equal(r->upstream_host, host);
    assert_true(r->decided);
    hang_up(f);
    assert_int_equal(f->closed.bytes_sent, strlen(REQ("/a?x=1", "User-Agent: t\r\n")));
    assert_int_equal(f->closed.bytes_received, strlen(R200("hi")));
    assert_string_equal(resp_flag_name(f->closed.response_flag), "-");
    assert_int_equal(f->nreports, 1);
    hpf_free(f);
}

/* Headers a Connection header lists are hop-by-hop (RFC 9110 7.6.1):
 * dropped from the request and from the response, whatever their case,
 * with one Connection header, several, or more than the carrier keeps
 * aside (then it looks through the whole head); the others go on. */
static void connection_listed_headers_dropped_both_ways(void **state)
{
    (void)state;
    static const struct {
        const char *behaviour, *req_extra, *up_extra, *resp, *client_resp;
    } rows[] = {
        {"no Connection header", "X-A: 1\r\n", "X-A: 1\r\n",
         "HTTP/1.1 200 OK\r\nX-Ok: 1\r\nContent-Length: 2\r\n\r\nhi",
         "HTTP/1.1 200 OK\r\nX-Ok: 1\r\nContent-Length: 2\r\n\r\nhi"},
        {"one, listing two", "Connection: X-A, keep-alive\r\nx-a: 1\r\nX-B: 2\r\n", "X-B: 2\r\n",
         "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nx-secret: s\r\nX-Ok: "
         "1\r\nContent-Length: 2\r\n\r\nhi",
         "HTTP/1.1 200 OK\r\nX-Ok: 1\r\nContent-Length: 2\r\n\r\nhi"},
        {"five, past the ones kept aside",
         "Connection: x-1\r\nConnection: x-2\r\nCONNECTION: X-3\r\nConnection: x-4\r\n"
         "Connection: x-5\r\nX-1: a\r\nX-2: a\r\nX-3: a\r\nX-4: a\r\nX-5: a\r\nX-6: a\r\n",
         "X-6: a\r\n",
         "HTTP/1.1 200 OK\r\nConnection: x-1\r\nConnection: x-2\r\nConnection: x-3\r\n"
         "Connection: x-4\r\nConnection: x-5, x-6\r\nX-1: a\r\nX-6: a\r\nX-7: "
         "a\r\nContent-Length: 2\r\n\r\nhi",
         "HTTP/1.1 200 OK\r\nX-7: a\r\nContent-Length: 2\r\n\r\nhi"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("%s\n", rows[i].behaviour);
        struct hpf *f = hpf_new(0);
        hpf_script(f, (struct hpf_step[]){{.send = rows[i].resp}}, 1);
        assert_int_equal(hpf_session(f), 0);
        char req[1024], up[1024];
        snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\n%s\r\n",
                 rows[i].req_extra);
        snprintf(up, sizeof(up), "GET / HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\n%s\r\n",
                 rows[i].up_extra);
        hpf_send(f, req);
        hpf_expect(f, rows[i].client_resp);
        assert_string_equal(hpf_up_rx(f, 0), up);
        hang_up(f);
        hpf_free(f);
    }
}

static void keep_alive_reuses_one_upstream(void **state)
{
    (void)state;
    struct hpf *f = hpf_new(0);
    hpf_script(
        f, (struct hpf_step[]){{.send = R200("a1")}, {.send = R200("a2")}, {.send = R200("a3")}},
        3);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, REQ("/1", ""));
    hpf_expect(f, R200("a1"));
    hpf_send(f, REQ("/2", ""));
    hpf_expect(f, R200("a2"));
    hpf_send(f, REQ("/3", ""));
    hpf_expect(f, R200("a3"));
    assert_int_equal(f->accepts, 1);
    assert_string_equal(hpf_up_rx(f, 0), UP_REQ("/1") UP_REQ("/2") UP_REQ("/3"));
    struct http_proxy_stats st = stats(f);
    assert_int_equal(st.upstreams_opened, 1);
    assert_int_equal(st.upstreams_reused, 2);
    assert_int_equal(st.upstreams_idle, 1);
    assert_int_equal(st.requests, 3);
    assert_int_equal(f->frees, 3);
    assert_int_equal(f->frees_failed, 0);
    assert_int_equal(f->nreports, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(f->reports[i].status, 200);
    hang_up(f);
    hpf_free(f);
}

static void pipelined_requests_answered_in_order(void **state)
{
    (void)state;
    struct hpf *f = hpf_new(0);
    hpf_script(
        f, (struct hpf_step[]){{.send = R200("b1")}, {.send = R200("b2")}, {.send = R200("b3")}},
        3);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, REQ("/1", "") REQ("/2", "") REQ("/3", ""));
    hpf_expect(f, R200("b1") R200("b2") R200("b3"));
    assert_int_equal(f->accepts, 1);
    assert_string_equal(hpf_up_rx(f, 0), UP_REQ("/1") UP_REQ("/2") UP_REQ("/3"));
    assert_int_equal(f->nreports, 3);
    assert_string_equal(f->reports[0].path, "/1");
    assert_string_equal(f->reports[2].path, "/3");
    hang_up(f);
    hpf_free(f);
}

/* What goes upstream is meshd's framing: chunk extensions and trailers
 * are not passed on, a Content-Length body is copied as is. */
static void request_bodies_reframed(void **state)
{
    (void)state;
    static const struct {
        const char *name, *req, *up;
        uint64_t body;
    } rows[] = {
        {"chunked: extensions and trailers dropped, sizes re-written",
         "POST /up HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\nTransfer-Encoding: "
         "chunked\r\n\r\n3;ext=1\r\nabc\r\n02\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n",
         "POST /up HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\nTransfer-Encoding: "
         "chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
         5},
        {"Content-Length: the length written from the parsed value",
         "POST /up HTTP/1.1\r\nHost: svc\r\ncontent-length: 005\r\nx-request-id: r1\r\n\r\nhello",
         "POST /up HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\nContent-Length: 5\r\n\r\nhello", 5},
        {"an empty chunked body",
         "POST /up HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\nTransfer-Encoding: "
         "chunked\r\n\r\n0\r\n\r\n",
         "POST /up HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\nTransfer-Encoding: "
         "chunked\r\n\r\n0\r\n\r\n",
         0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("  %s\n", rows[i].name);
        struct hpf *f = hpf_new(0);
        hpf_script(f, (struct hpf_step[]){{.send = R200("ok")}}, 1);
        assert_int_equal(hpf_session(f), 0);
        hpf_send(f, rows[i].req);
        hpf_expect(f, R200("ok"));
        assert_string_equal(hpf_up_rx(f, 0), rows[i].up);
        assert_int_equal(f->nreports, 1);
        assert_int_equal(f->reports[0].req_bytes, rows[i].body);
        hpf_free(f);
    }
}

/* Each framing the upstream may use, towards each kind of client. */
static void response_framings(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        bool http10;
        struct hpf_step step;
        const char *want;
        bool eof; /* the client's connection ends after it */
        uint64_t body;
    } rows[] = {
        {"Content-Length to 1.1: as is",
         false,
         {.send = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"},
         "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
         false,
         5},
        {"chunked to 1.1: re-chunked, extensions dropped",
         false,
         {.send = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n1\r\n!"
                  "\r\n0\r\n\r\n"},
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n",
         false,
         6},
        {"until close to 1.1: chunked, the client's connection persists",
         false,
         {.send = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello", .close = true},
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
         false,
         5},
        {"until close to 1.0: close-delimited",
         true,
         {.send = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello", .close = true},
         "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello",
         true,
         5},
        {"chunked to 1.0: de-chunked, close-delimited",
         true,
         {.send = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
         "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello",
         true,
         5},
        {"Content-Length to 1.0 (no keep-alive asked): closed after",
         true,
         {.send = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"},
         "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
         true,
         5},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("  %s\n", rows[i].name);
        struct hpf *f = hpf_new(0);
        hpf_script(f, &rows[i].step, 1);
        assert_int_equal(hpf_session(f), 0);
        hpf_send(f, rows[i].http10 ? "GET /a HTTP/1.0\r\nHost: svc\r\nx-request-id: r1\r\n\r\n"
                                   : REQ("/a", ""));
        hpf_expect(f, rows[i].want);
        /* An HTTP/1.0 request goes upstream as HTTP/1.1, kept alive. */
        assert_string_equal(hpf_up_rx(f, 0), UP_REQ("/a"));
        assert_int_equal(hpf_wait_eof(f), rows[i].eof);
        if (!rows[i].eof) { /* still served: the next request works */
            hpf_script(f, (struct hpf_step[]){{.send = R200("ok")}}, 1);
            hpf_send(f, REQ("/b", ""));
            hpf_expect(f, R200("ok"));
        }
        assert_int_equal(f->reports[0].status, 200);
        assert_int_equal(f->reports[0].resp_bytes, rows[i].body);
        assert_string_equal(f->reports[0].flags, "-");
        assert_int_equal(f->frees_failed, 0);
        hpf_free(f);
    }
}

/* Bodiless responses: HEAD keeps the length GET would have, 204 and 304
 * have none; the upstream stays reusable after each. */
static void bodiless_responses_keep_the_upstream(void **state)
{
    (void)state;
    static const struct {
        const char *name, *method, *resp, *want;
    } rows[] = {
        {"HEAD: the length of the body it does not carry", "HEAD",
         "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
         "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"},
        {"204 No Content", "DELETE", "HTTP/1.1 204 No Content\r\nx-a: 1\r\n\r\n",
         "HTTP/1.1 204 No Content\r\nx-a: 1\r\n\r\n"},
        {"304 Not Modified", "GET", "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n",
         "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n"},
        {"Content-Length: 0", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
         "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("  %s\n", rows[i].name);
        struct hpf *f = hpf_new(0);
        hpf_script(f, (struct hpf_step[]){{.send = rows[i].resp}, {.send = R200("ok")}}, 2);
        assert_int_equal(hpf_session(f), 0);
        char req[128], up[128];
        snprintf(req, sizeof(req), "%s /a HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\n\r\n",
                 rows[i].method);
        snprintf(up, sizeof(up), "%s /a HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\n\r\n",
                 rows[i].method);
        hpf_send(f, req);
        hpf_expect(f, rows[i].want);
        hpf_send(f, REQ("/b", ""));
        hpf_expect(f, R200("ok"));
        assert_int_equal(f->accepts, 1);
        char both[256];
        snprintf(both, sizeof(both), "%s%s", up, UP_REQ("/b"));
        assert_string_equal(hpf_up_rx(f, 0), both);
        assert_int_equal(f->reports[0].resp_bytes, 0);
        assert_int_equal(stats(f).upstreams_reused, 1);
        hpf_free(f);
    }
}

static void continue_passed_through(void **state)
{
    (void)state;
    static const char head[] = "POST /up HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\nExpect: "
                               "100-continue\r\nContent-Length: 5\r\n\r\n";
    struct hpf *f = hpf_new(0);
    hpf_script(f,
               (struct hpf_step[]){{.send = "HTTP/1.1 100 Continue\r\n\r\n", .on_head = true},
                                   {.send = R200("ok")}},
               2);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, head);
    hpf_expect(f, "HTTP/1.1 100 Continue\r\n\r\n");
    assert_string_equal(hpf_up_rx(f, 0), head); /* the head went ahead of its body */
    hpf_send(f, "hello");
    hpf_expect(f, R200("ok"));
    char want[256];
    snprintf(want, sizeof(want), "%shello", head);
    assert_string_equal(hpf_up_rx(f, 0), want);
    assert_int_equal(f->nreports, 1);
    assert_int_equal(f->reports[0].status, 200);
    assert_int_equal(f->reports[0].req_bytes, 5);
    hpf_free(f);
}

/* Refused before routing: the upstream never sees a byte, the client
 * gets the status and the connection closes. */
static void malformed_requests_refused(void **state)
{
    (void)state;
    static char big[70 * 1024];
    memset(big, 0, sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nHost: svc\r\nx-big: ", 34);
    memset(big + 34, 'a', sizeof(big) - 39);
    memcpy(big + sizeof(big) - 5, "\r\n\r\n", 4);
    static const struct {
        const char *name, *req, *status, *body, *flags;
    } rows[] = {
        {"two Content-Lengths",
         "POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
         "400 Bad Request", "Bad Request", "DPE"},
        {"Transfer-Encoding with Content-Length",
         "POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\nContent-Length: "
         "3\r\n\r\n0\r\n\r\n",
         "400 Bad Request", "Bad Request", "DPE"},
        {"obs-fold", "GET / HTTP/1.1\r\nHost: svc\r\nX-A: a\r\n b\r\n\r\n", "400 Bad Request",
         "Bad Request", "DPE"},
        {"no Host on HTTP/1.1", "GET / HTTP/1.1\r\nUser-Agent: t\r\n\r\n", "400 Bad Request",
         "Bad Request", "DPE"},
        {"CONNECT", "CONNECT svc:443 HTTP/1.1\r\nHost: svc:443\r\n\r\n", "405 Method Not Allowed",
         "CONNECT is not served", "DPE"},
        {"CONNECT, tunnel bytes after it never parsed as a request",
         "CONNECT svc:443 HTTP/1.1\r\nHost: svc:443\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: "
         "svc\r\n\r\n",
         "405 Method Not Allowed", "CONNECT is not served", "DPE"},
        {"an absolute-form target that is not http",
         "GET ftp://svc/x HTTP/1.1\r\nHost: svc\r\n\r\n", "400 Bad Request",
         "request target is not a path", "DPE"},
        {"a TLS ClientHello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "400 Bad Request",
         "Bad Request", "DPE"},
        {"a head past 60 KiB", big, "431 Request Header Fields Too Large", "Bad Request", "DPE"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("  %s\n", rows[i].name);
        struct hpf *f = hpf_new(0);
        hpf_script(f, (struct hpf_step[]){{.send = R200("no")}}, 1);
        assert_int_equal(hpf_session(f), 0);
        hpf_send(f, rows[i].req);
        char want[512];
        snprintf(want, sizeof(want),
                 "HTTP/1.1 %s\r\ncontent-type: text/plain\r\nserver: "
                 "meshd\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 rows[i].status, strlen(rows[i].body), rows[i].body);
        hpf_wait_client(f, strlen(want));
        assert_string_equal(f->cli, want);
        assert_true(hpf_wait_eof(f));
        hpf_spin(f, 10);
        assert_int_equal(f->accepts, 0);
        assert_int_equal(f->routes, 0);
        assert_int_equal(f->frees, 0);
        assert_int_equal(f->nreports, 1);
        assert_int_equal(f->reports[0].status, atoi(rows[i].status));
        assert_string_equal(f->reports[0].flags, rows[i].flags);
        assert_int_equal(stats(f).bad_requests, 1);
        assert_int_equal(f->nclosed, 1);
        assert_int_equal(f->releases, 1);
        hpf_free(f);
    }
}

/* The server closed its keep-alive connection after a response: the
 * next request opens another instead of failing on the dead one. */
static void upstream_closed_between_requests_not_reused(void **state)
{
    (void)state;
    struct hpf *f = hpf_new(0);
    hpf_script(f, (struct hpf_step[]){{.send = R200("c1"), .close = true}, {.send = R200("c2")}},
               2);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, REQ("/1", ""));
    hpf_expect(f, R200("c1"));
    hpf_spin(f, 20);
    assert_int_equal(stats(f).upstreams_idle, 0);
    hpf_send(f, REQ("/2", ""));
    hpf_expect(f, R200("c2"));
    assert_int_equal(f->accepts, 2);
    assert_string_equal(hpf_up_rx(f, 1), UP_REQ("/2"));
    assert_int_equal(stats(f).upstreams_reused, 0);
    assert_int_equal(stats(f).retries, 0);
    assert_int_equal(f->frees, 2);
    assert_int_equal(f->frees_failed, 0);
    assert_int_equal(f->reports[1].status, 200);
    hpf_free(f);
}

/* The client leaves in the middle of its body: the upstream, which has
 * half a request, is closed, never pooled; the record ends DC. */
static void client_gone_mid_request_upstream_not_pooled(void **state)
{
    (void)state;
    static const char part[] =
        "POST /up HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\nContent-Length: 10\r\n\r\nabc";
    struct hpf *f = hpf_new(0);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, part);
    uint64_t t0 = loop_now_ns();
    while ((f->accepts == 0 || f->up[0].len < strlen(part)) && hpf_ms_since(t0) < HPF_WAIT_MS)
        hpf_spin(f, 2);
    assert_string_equal(hpf_up_rx(f, 0), part);
    close(f->client);
    f->client = -1;
    hpf_wait_count(f, &f->nclosed, 1);
    t0 = loop_now_ns();
    while (!f->up[0].eof && hpf_ms_since(t0) < HPF_WAIT_MS)
        hpf_spin(f, 2);
    assert_true(f->up[0].eof); /* the proxy closed it */
    struct http_proxy_stats st = stats(f);
    assert_int_equal(st.upstreams_idle, 0);
    assert_int_equal(st.active_sessions, 0);
    assert_string_equal(resp_flag_name(f->closed.response_flag), "DC");
    assert_int_equal(f->frees, 1);
    assert_false(f->freed_failed[0]); /* the client's doing, not the endpoint's */
    assert_int_equal(f->nreports, 1);
    assert_int_equal(f->reports[0].status, 0);
    assert_int_equal(f->reports[0].req_bytes, 3);
    assert_int_equal(f->releases, 1);
    hpf_free(f);
}

/* Three sessions finish at once with max_idle_upstreams 2: two
 * upstreams are kept, the third closed. */
static void idle_pool_bounded(void **state)
{
    (void)state;
    struct hpf *f = hpf_new(2);
    int clients[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(hpf_session(f), 0);
        clients[i] = f->client;
        hpf_send(f, REQ("/p", ""));
    }
    f->client = -1;
    uint64_t t0 = loop_now_ns();
    while ((f->accepts < 3 || f->up[0].requests + f->up[1].requests + f->up[2].requests < 3) &&
           hpf_ms_since(t0) < HPF_WAIT_MS)
        hpf_spin(f, 2);
    assert_int_equal(f->accepts, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(send(f->up[i].io.fd, R200("ok"), strlen(R200("ok")), 0),
                         (ssize_t)strlen(R200("ok")));
    hpf_spin(f, 30);
    for (int i = 0; i < 3; i++) {
        char buf[256];
        ssize_t n = recv(clients[i], buf, sizeof(buf) - 1, MSG_DONTWAIT);
        assert_int_equal(n, (ssize_t)strlen(R200("ok")));
        buf[n] = '\0';
        assert_string_equal(buf, R200("ok"));
    }
    int closed = 0;
    for (int i = 0; i < 3; i++)
        closed += f->up[i].eof;
    assert_int_equal(closed, 1);
    assert_int_equal(stats(f).upstreams_idle, 2);
    assert_int_equal(f->frees, 3);
    assert_int_equal(f->frees_failed, 0);
    for (int i = 0; i < 3; i++)
        close(clients[i]);
    hpf_free(f);
}

/* A keep-alive client silent past idle_timeout is closed cleanly, with
 * nothing written, after a bodiless request too; one that stops halfway
 * through a head is answered 408 with connection: close at head_timeout
 * (Envoy's request_headers_timeout), recorded as a request (DPE), never
 * routed. */
static void idle_and_head_timeouts(void **state)
{
    (void)state;
    struct http_proxy_opts o = {.idle_timeout_ns = 150000000ull, .head_timeout_ns = 150000000ull};
    struct hpf *f = hpf_new_opts(&o);
    hpf_script(f, (struct hpf_step[]){{.send = R200("ok")}}, 1);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, REQ("/a", ""));
    hpf_expect(f, R200("ok"));
    uint64_t t0 = loop_now_ns();
    assert_true(hpf_wait_eof(f));
    assert_true(hpf_ms_since(t0) >= 140);
    assert_int_equal(f->nclosed, 1);
    assert_string_equal(resp_flag_name(f->closed.response_flag), "-");
    assert_int_equal(f->closed.error, 0);
    assert_int_equal(f->nreports, 1);
    assert_int_equal(f->cli_len, 0); /* the idle close wrote nothing */
    close(f->client);

    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, "GET /slow HTTP/1.1\r\nHost: s");
    t0 = loop_now_ns();
    static const char want[] = "HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\n"
                               "server: meshd\r\nContent-Length: 22\r\nConnection: close\r\n"
                               "\r\nrequest header timeout";
    hpf_wait_client(f, strlen(want));
    assert_string_equal(f->cli, want);
    assert_true(hpf_ms_since(t0) >= 140);
    assert_true(hpf_wait_eof(f));
    hpf_wait_count(f, &f->nclosed, 2);
    assert_int_equal(f->nclosed, 2);
    assert_int_equal(f->nreports, 2);
    assert_int_equal(f->reports[1].status, 408);
    assert_string_equal(f->reports[1].flags, "DPE");
    assert_int_equal(stats(f).timeouts, 1);
    assert_int_equal(f->routes, 1); /* the cut head was never routed */
    assert_int_equal(f->accepts, 1);
    hpf_free(f);
}

static void sniff_table(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *bytes;
        size_t n;
        int want;
    } rows[] = {
        {"GET", "GET / HTTP/1.1\r\n", 16, HTTP_SNIFF_HTTP1},
        {"OPTIONS", "OPTIONS * HTTP/1.1\r\n", 20, HTTP_SNIFF_HTTP1},
        {"PROPFIND (a WebDAV method)", "PROPFIND /d HTTP/1.1\r\n", 22, HTTP_SNIFF_HTTP1},
        {"a method alone, space pending", "GET", 3, -EAGAIN},
        {"nothing yet", "", 0, -EAGAIN},
        {"the HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24, HTTP_SNIFF_HTTP2},
        {"the HTTP/2 preface, cut", "PRI * HT", 8, -EAGAIN},
        {"PRI, then not the preface", "PRI /x HTTP/1.1\r\n", 17, HTTP_SNIFF_HTTP1},
        {"a TLS ClientHello", "\x16\x03\x01\x02\x00\x01", 6, HTTP_SNIFF_OTHER},
        {"lowercase method", "get / HTTP/1.1\r\n", 16, HTTP_SNIFF_OTHER},
        {"binary", "\x00\x01\x02\x03", 4, HTTP_SNIFF_OTHER},
        {"a leading space", " GET /", 6, HTTP_SNIFF_OTHER},
        {"a token too long for a method", "ABCDEFGHIJKLMNOPQRS", 19, HTTP_SNIFF_OTHER},
        {"a 16-letter token, cut", "ABCDEFGHIJKLMNOP", 16, -EAGAIN},
        {"SSH banner", "SSH-2.0-OpenSSH_9.2\r\n", 21, HTTP_SNIFF_OTHER},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("  %s\n", rows[i].name);
        assert_int_equal(http_sniff_bytes(rows[i].bytes, rows[i].n), rows[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_request_one_response),
        cmocka_unit_test(connection_listed_headers_dropped_both_ways),
        cmocka_unit_test(keep_alive_reuses_one_upstream),
        cmocka_unit_test(pipelined_requests_answered_in_order),
        cmocka_unit_test(request_bodies_reframed),
        cmocka_unit_test(response_framings),
        cmocka_unit_test(bodiless_responses_keep_the_upstream),
        cmocka_unit_test(continue_passed_through),
        cmocka_unit_test(malformed_requests_refused),
        cmocka_unit_test(upstream_closed_between_requests_not_reused),
        cmocka_unit_test(client_gone_mid_request_upstream_not_pooled),
        cmocka_unit_test(idle_pool_bounded),
        cmocka_unit_test(idle_and_head_timeouts),
        cmocka_unit_test(sniff_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
