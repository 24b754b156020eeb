/* The HTTP carrier's per-request policy (agent/http/request.c applied by
 * proxy.c) end to end on a real loop against a scripted loopback
 * upstream (tests/unit/support/hp_fixture.h): retries as Istio's default
 * policy makes them (a refused connect and a 503 retried on another
 * endpoint, each failed attempt freed as failed, the last 503 passed
 * on), perTryTimeout and the route's timeout (504 UT on the proxy's
 * ticker), fault abort and delay, the router's local replies, header
 * edits and rewrites as the upstream sees them, and x-request-id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/model_http.h"
#include "core/loop.h"
#include "support/hp_fixture.h"

#define REQ(path)  "GET " path " HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\n\r\n"
#define R200(body) "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n" body
#define R503       "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"
#define MS         1000000ull
#define UF_BODY                                                                                    \
    "upstream connect error or disconnect/reset before headers. reset reason: connection failure"

static struct http_proxy_stats stats(struct hpf *f)
{
    struct http_proxy_stats st;
    http_proxy_get_stats(f->hp, &st);
    return st;
}

/* meshd's local reply as the client receives it (kept alive). */
static const char *local(const char *status, const char *body)
{
    static char buf[1024];
    size_t n = strlen(body);
    snprintf(buf, sizeof(buf), "HTTP/1.1 %s\r\n%sserver: meshd\r\nContent-Length: %zu\r\n\r\n%s",
             status, n ? "content-type: text/plain\r\n" : "", n, body);
    return buf;
}

static void assert_frees(const struct hpf *f, int n, const bool *failed)
{
    assert_int_equal(f->frees, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(f->freed_endpoint[i], 100 + i); /* each attempt's own endpoint */
        assert_int_equal(f->freed_failed[i], failed[i]);
    }
}

/* Every retry avoids the endpoint of the attempt before it. */
static void assert_avoided(const struct hpf *f)
{
    assert_int_equal(f->avoided[0], -1);
    for (int i = 1; i < f->routes; i++) {
        assert_int_equal(f->avoided[i], 100 + i - 1);
        assert_ptr_equal(f->avoided_cluster[i], f);
    }
}

static void refused_connect_retried_twice_then_503(void **state)
{
    (void)state;
    struct hpf *f = hpf_new(0);
    /* Three refused endpoints, then (the next request) the live one. */
    struct hpf_plan dead = {.kind = HPF_FORWARD, .port = f->closed_port};
    hpf_plan(f, (struct hpf_plan[]){dead, dead, dead, {.kind = HPF_FORWARD}}, 4);
    hpf_script(f, (struct hpf_step[]){{.send = R200("ok")}}, 1);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, REQ("/a"));
    hpf_expect(f, local("503 Service Unavailable", UF_BODY));
    assert_int_equal(f->routes, 3); /* Istio's default: 2 retries */
    assert_avoided(f);
    assert_frees(f, 3, (bool[]){true, true, true});
    assert_int_equal(f->accepts, 0);
    assert_int_equal(stats(f).retries, 2);
    assert_int_equal(f->nreports, 1);
    assert_int_equal(f->reports[0].status, 503);
    assert_string_equal(f->reports[0].flags, "UF");
    /* The connection goes on. */
    hpf_send(f, REQ("/b"));
    hpf_expect(f, R200("ok"));
    assert_int_equal(f->reports[1].status, 200);
    assert_int_equal(f->frees, 4);
    assert_false(f->freed_failed[3]);
    hpf_free(f);
}

/* A 503 is retried on another endpoint with the whole request again,
 * body included; the client sees only the final answer. */
static void status_503_retried_with_the_body(void **state)
{
    (void)state;
    static const struct {
        const char *name, *req, *up;
    } rows[] = {
        {"bodiless", REQ("/a"), REQ("/a")},
        {"Content-Length body",
         "POST /a HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\nContent-Length: 5\r\n\r\nhello",
         "POST /a HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\nContent-Length: 5\r\n\r\nhello"},
        {"chunked body, its last chunk replayed too",
         "POST /a HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\nTransfer-Encoding: "
         "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
         "POST /a HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\nTransfer-Encoding: "
         "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("  %s\n", rows[i].name);
        struct hpf *f = hpf_new(0);
        hpf_script(f, (struct hpf_step[]){{.send = R503}, {.send = R200("ok")}}, 2);
        assert_int_equal(hpf_session(f), 0);
        hpf_send(f, rows[i].req);
        hpf_expect(f, R200("ok"));
        assert_int_equal(f->routes, 2);
        assert_avoided(f);
        assert_frees(f, 2, (bool[]){true, false});
        assert_int_equal(f->accepts, 2); /* the 503's connection is not reused */
        assert_string_equal(hpf_up_rx(f, 0), rows[i].up);
        assert_string_equal(hpf_up_rx(f, 1), rows[i].up);
        assert_int_equal(stats(f).retries, 1);
        assert_int_equal(f->nreports, 1);
        assert_int_equal(f->reports[0].status, 200);
        assert_string_equal(f->reports[0].flags, "-");
        hpf_free(f);
    }
}

/* Out of retries (or with none): the upstream's 503 itself goes on. */
static void last_503_passed_through(void **state)
{
    (void)state;
    static const struct cfg_http_route no_retries = {.retries = {.set = true, .attempts = 0}};
    static const struct {
        const char *name;
        const struct cfg_http_route *actions;
        int routes;
        const char *flags;
    } rows[] = {
        {"Istio's default: three tries, URX", NULL, 3, "URX"},
        {"retries: attempts 0, no retry policy to exhaust", &no_retries, 1, "-"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("  %s\n", rows[i].name);
        struct hpf *f = hpf_new(0);
        hpf_plan(f, (struct hpf_plan[]){{.kind = HPF_FORWARD, .actions = rows[i].actions}}, 1);
        hpf_script(f, (struct hpf_step[]){{.send = R503}, {.send = R503}, {.send = R503}}, 3);
        assert_int_equal(hpf_session(f), 0);
        hpf_send(f, REQ("/a"));
        hpf_expect(f, R503);
        assert_int_equal(f->routes, rows[i].routes);
        assert_frees(f, rows[i].routes, (bool[]){true, true, true});
        assert_int_equal(f->nreports, 1);
        assert_int_equal(f->reports[0].status, 503);
        assert_int_equal(f->reports[0].resp_bytes, 4);
        assert_string_equal(f->reports[0].flags, rows[i].flags);
        hpf_free(f);
    }
}

/* Deadlines on the proxy's ticker against an upstream that never
 * answers: 504 UT, perTryTimeout retried only when retryOn says so. */
static void deadlines_answer_504(void **state)
{
    (void)state;
    static const struct cfg_http_route per_try_5xx = {
        .retries = {
            .set = true, .attempts = 1, .per_try_timeout_ns = 100 * MS, .retry_on = CFG_RETRY_5XX}};
    static const struct cfg_http_route per_try_default = {
        .retries = {.set = true, .attempts = 2, .per_try_timeout_ns = 100 * MS}};
    static const struct cfg_http_route route_timeout = {.timeout_ns = 150 * MS};
    static const struct cfg_http_route both = {
        .timeout_ns = 250 * MS,
        .retries = {
            .set = true, .attempts = 5, .per_try_timeout_ns = 100 * MS, .retry_on = CFG_RETRY_5XX}};
    static const struct {
        const char *name;
        const struct cfg_http_route *actions;
        uint64_t min_ms;
        int min_routes, max_routes;
    } rows[] = {
        {"perTryTimeout, retryOn 5xx: retried once, then 504", &per_try_5xx, 200, 2, 2},
        {"perTryTimeout, retryOn unset: a timeout is not retried", &per_try_default, 100, 1, 1},
        {"the route's timeout", &route_timeout, 150, 1, 1},
        {"the route's timeout ends the retries", &both, 250, 2, 3},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("  %s\n", rows[i].name);
        struct hpf *f = hpf_new(0);
        hpf_plan(f, (struct hpf_plan[]){{.kind = HPF_FORWARD, .actions = rows[i].actions}}, 1);
        assert_int_equal(hpf_session(f), 0);
        uint64_t t0 = loop_now_ns();
        hpf_send(f, REQ("/slow"));
        hpf_expect(f, local("504 Gateway Timeout", "upstream request timeout"));
        uint64_t ms = hpf_ms_since(t0);
        assert_true(ms >= rows[i].min_ms && ms < rows[i].min_ms + 500);
        assert_true(f->routes >= rows[i].min_routes && f->routes <= rows[i].max_routes);
        assert_avoided(f);
        assert_int_equal(f->frees, f->routes);
        assert_int_equal(f->frees_failed, f->routes);
        assert_int_equal(f->accepts, f->routes);
        assert_int_equal(stats(f).timeouts, 1);
        assert_int_equal(stats(f).retries, (uint64_t)f->routes - 1);
        assert_int_equal(f->nreports, 1);
        assert_int_equal(f->reports[0].status, 504);
        assert_string_equal(f->reports[0].flags, "UT");
        /* The upstreams that timed out are closed, never pooled. */
        hpf_spin(f, 10);
        for (int u = 0; u < f->accepts; u++)
            assert_true(f->up[u].eof);
        assert_int_equal(stats(f).upstreams_idle, 0);
        hpf_free(f);
    }
}

/* The route's timeout after the response head went out: too late to
 * answer, the client's connection is cut (UT). */
static void timeout_mid_body_cuts_the_client(void **state)
{
    (void)state;
    static const struct cfg_http_route t = {.timeout_ns = 150 * MS};
    static const char part[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    struct hpf *f = hpf_new(0);
    hpf_plan(f, (struct hpf_plan[]){{.kind = HPF_FORWARD, .actions = &t}}, 1);
    hpf_script(f, (struct hpf_step[]){{.send = part}}, 1);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, REQ("/a"));
    assert_true(hpf_wait_eof(f));
    assert_string_equal(f->cli, part);
    hpf_wait_count(f, &f->nclosed, 1);
    assert_string_equal(resp_flag_name(f->closed.response_flag), "UT");
    assert_int_equal(f->frees, 1);
    assert_true(f->freed_failed[0]);
    assert_int_equal(f->nreports, 1);
    assert_int_equal(f->reports[0].status, 200);
    assert_int_equal(f->reports[0].resp_bytes, 3);
    hpf_free(f);
}

/* With no route timeout (Istio's default), an upstream that stalls is
 * bounded by the stream idle timeout: before its head, 408 SI; mid-body,
 * the client is cut (SI). A byte that moves restarts the clock. */
static void stalled_upstream_ends_at_the_stream_idle_timeout(void **state)
{
    (void)state;
    static const char part[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    struct http_proxy_opts o = {.stream_idle_timeout_ns = 150 * MS};

    print_message("  no answer at all: 408 stream timeout, the connection kept\n");
    struct hpf *f = hpf_new_opts(&o);
    hpf_script(f, (struct hpf_step[]){{.send = NULL}}, 1);
    assert_int_equal(hpf_session(f), 0);
    uint64_t t0 = loop_now_ns();
    hpf_send(f, REQ("/a"));
    hpf_expect(f, local("408 Request Timeout", "stream timeout"));
    assert_true(hpf_ms_since(t0) >= 140);
    hpf_wait_count(f, &f->nreports, 1);
    assert_int_equal(f->reports[0].status, 408);
    assert_string_equal(f->reports[0].flags, "SI");
    assert_int_equal(stats(f).timeouts, 1);
    hpf_free(f);

    print_message("  a head, then silence: the client is cut mid-body\n");
    f = hpf_new_opts(&o);
    hpf_script(f, (struct hpf_step[]){{.send = part}}, 1);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, REQ("/a"));
    assert_true(hpf_wait_eof(f));
    assert_string_equal(f->cli, part);
    hpf_wait_count(f, &f->nclosed, 1);
    assert_string_equal(resp_flag_name(f->closed.response_flag), "SI");
    assert_int_equal(f->nreports, 1);
    assert_int_equal(f->reports[0].resp_bytes, 3);
    hpf_free(f);

    print_message("  the default (5 min) leaves a slow upstream alone\n");
    f = hpf_new(0);
    hpf_script(f, (struct hpf_step[]){{.send = NULL}}, 1);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, REQ("/a"));
    hpf_spin(f, 300);
    assert_int_equal(f->cli_len, 0);
    assert_false(f->cli_eof);
    assert_int_equal(stats(f).timeouts, 0);
    hpf_free(f);
}

static void faults_abort_and_delay(void **state)
{
    (void)state;
    static const struct cfg_http_route abort_all = {
        .fault = {.abort_set = true, .abort_status = 503, .abort_ppm = 1000000}};
    static const struct cfg_http_route abort_none = {
        .fault = {.abort_set = true, .abort_status = 503, .abort_ppm = 0}};
    static const struct cfg_http_route delay_all = {
        .fault = {.delay_set = true, .delay_ns = 150 * MS, .delay_ppm = 1000000}};

    print_message("  abort at 100%%: answered locally, never forwarded\n");
    struct hpf *f = hpf_new(0);
    hpf_plan(f, (struct hpf_plan[]){{.kind = HPF_FORWARD, .actions = &abort_all}}, 1);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, REQ("/a"));
    hpf_expect(f, local("503 Service Unavailable", "fault filter abort"));
    hpf_spin(f, 10);
    assert_int_equal(f->accepts, 0);
    assert_int_equal(f->routes, 1);
    assert_frees(f, 1, (bool[]){false}); /* no endpoint's fault */
    assert_int_equal(f->reports[0].status, 503);
    assert_string_equal(f->reports[0].flags, "FI");
    hpf_free(f);

    print_message("  abort at 0%%: forwarded\n");
    f = hpf_new(0);
    hpf_plan(f, (struct hpf_plan[]){{.kind = HPF_FORWARD, .actions = &abort_none}}, 1);
    hpf_script(f, (struct hpf_step[]){{.send = R200("ok")}}, 1);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, REQ("/a"));
    hpf_expect(f, R200("ok"));
    assert_string_equal(f->reports[0].flags, "-");
    hpf_free(f);

    print_message("  delay: the upstream sees the request only after it\n");
    f = hpf_new(0);
    hpf_plan(f, (struct hpf_plan[]){{.kind = HPF_FORWARD, .actions = &delay_all}}, 1);
    hpf_script(f, (struct hpf_step[]){{.send = R200("ok")}}, 1);
    assert_int_equal(hpf_session(f), 0);
    uint64_t t0 = loop_now_ns();
    hpf_send(f, REQ("/a"));
    hpf_spin(f, 60);
    assert_int_equal(f->accepts, 0);
    hpf_expect(f, R200("ok"));
    assert_true(hpf_ms_since(t0) >= 150);
    assert_string_equal(hpf_up_rx(f, 0), REQ("/a"));
    assert_int_equal(f->routes, 1);
    assert_frees(f, 1, (bool[]){false});
    assert_int_equal(f->reports[0].status, 200);
    assert_string_equal(f->reports[0].flags, "DI");
    hpf_free(f);
}

/* A body that arrives during a fault's delay is not lost, even one too
 * big to keep for a retry. */
static void body_during_a_delay_reaches_the_upstream(void **state)
{
    (void)state;
    static const struct cfg_http_route delay = {
        .fault = {.delay_set = true, .delay_ns = 100 * MS, .delay_ppm = 1000000}};
    static const size_t sizes[] = {5, 70000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        print_message("  a %zu-byte body\n", sizes[i]);
        static char req[70000 + 256];
        int h = snprintf(req, sizeof(req),
                         "POST /up HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\nContent-Length: "
                         "%zu\r\n\r\n",
                         sizes[i]);
        memset(req + h, 'q', sizes[i]);
        req[(size_t)h + sizes[i]] = '\0';
        struct hpf *f = hpf_new(0);
        hpf_plan(f, (struct hpf_plan[]){{.kind = HPF_FORWARD, .actions = &delay}}, 1);
        hpf_script(f, (struct hpf_step[]){{.send = R200("ok")}}, 1);
        assert_int_equal(hpf_session(f), 0);
        hpf_send(f, req);
        hpf_expect(f, R200("ok"));
        assert_int_equal(f->accepts, 1);
        assert_string_equal(hpf_up_rx(f, 0), req);
        assert_int_equal(f->reports[0].req_bytes, sizes[i]);
        hpf_free(f);
    }
}

/* The router answers: no upstream, no endpoint freed, the connection
 * goes on. */
static void router_local_replies(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        struct hpf_plan plan;
        const char *want;
        int status;
        const char *flags;
    } rows[] = {
        {"redirect",
         {.kind = HPF_RESPOND, .status = 301, .location = "http://svc/new?q=1"},
         "HTTP/1.1 301 Moved Permanently\r\nlocation: http://svc/new?q=1\r\nserver: "
         "meshd\r\nContent-Length: 0\r\n\r\n",
         301,
         "-"},
        {"direct response with a body",
         {.kind = HPF_RESPOND, .status = 200, .body = "hello"},
         "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nserver: meshd\r\nContent-Length: "
         "5\r\n\r\nhello",
         200,
         "-"},
        {"no route",
         {.kind = HPF_RESPOND, .status = 404, .flag = RESP_FLAG_NR},
         "HTTP/1.1 404 Not Found\r\nserver: meshd\r\nContent-Length: 0\r\n\r\n",
         404,
         "NR"},
        {"no healthy upstream",
         {.kind = HPF_REFUSE, .flag = RESP_FLAG_UH},
         "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nserver: "
         "meshd\r\nContent-Length: 19\r\n\r\nno healthy upstream",
         503,
         "UH"},
        {"denied",
         {.kind = HPF_REFUSE, .flag = RESP_FLAG_DENY},
         "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\nserver: meshd\r\nContent-Length: "
         "19\r\n\r\nRBAC: access denied",
         403,
         "DENY"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("  %s\n", rows[i].name);
        struct hpf *f = hpf_new(0);
        hpf_plan(f, &rows[i].plan, 1);
        assert_int_equal(hpf_session(f), 0);
        hpf_send(f, REQ("/a?q=1"));
        hpf_expect(f, rows[i].want);
        hpf_send(f, REQ("/b")); /* kept alive: answered again */
        hpf_expect(f, rows[i].want);
        assert_int_equal(f->accepts, 0);
        assert_int_equal(f->routes, 2);
        assert_int_equal(f->frees, 0);
        assert_int_equal(stats(f).local_replies, 2);
        assert_int_equal(f->nreports, 2);
        assert_int_equal(f->reports[0].status, rows[i].status);
        assert_string_equal(f->reports[0].flags, rows[i].flags);
        assert_true(f->reports[0].decided);
        hpf_free(f);
    }
}

static void header_edits_and_rewrites_reach_the_upstream(void **state)
{
    (void)state;
    static const struct cfg_kv req_set[] = {{"x-set", "1"}}, req_add[] = {{"x-add", "2"}},
                               resp_set[] = {{"x-resp", "r"}}, dest_add[] = {{"x-dest", "d"}},
                               bad_set[] = {{"x-set", "a\r\nInjected: 1"}};
    static const char *const req_rm[] = {"x-drop"}, *const resp_rm[] = {"server"};
    static const struct cfg_http_match prefix[] = {
        {.uri = {.set = true, .kind = CFG_STR_PREFIX, .value = "/api/"}}};
    static const struct cfg_headers dest[] = {{.request = {.add = dest_add, .nadd = 1}}};
    static const struct cfg_http_route edits = {
        .match = prefix,
        .rewrite = {.set = true, .uri = "/v2/", .authority = "backend"},
        .headers = {.request = {.set = req_set,
                                .nset = 1,
                                .add = req_add,
                                .nadd = 1,
                                .remove = {req_rm, 1}},
                    .response = {.set = resp_set, .nset = 1, .remove = {resp_rm, 1}}},
        .dest_headers = dest};
    static const struct cfg_route vs_prefix = {.nmatch = 1};
    static const struct cfg_http_route whole = {.rewrite = {.set = true, .uri = "/new"}};
    static const struct cfg_route vs_any = {.nmatch = 0};
    static const struct cfg_http_route bad = {.headers = {.request = {.set = bad_set, .nset = 1}}};

    print_message("  prefix rewrite, authority, set/add/remove, destination headers\n");
    struct hpf *f = hpf_new(0);
    hpf_plan(f,
             (struct hpf_plan[]){{.kind = HPF_FORWARD, .actions = &edits, .vs_route = &vs_prefix}},
             1);
    hpf_script(f,
               (struct hpf_step[]){{.send = "HTTP/1.1 200 OK\r\nserver: app\r\nx-resp: "
                                            "old\r\nx-other: o\r\nContent-Length: 2\r\n\r\nhi"}},
               1);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, "GET /api/users?q=1 HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\nx-drop: "
                "gone\r\nx-set: old\r\nConnection: keep-alive, x-hop\r\nx-hop: v\r\nx-keep: "
                "k\r\n\r\n");
    hpf_expect(f, "HTTP/1.1 200 OK\r\nx-other: o\r\nx-resp: r\r\nContent-Length: 2\r\n\r\nhi");
    assert_string_equal(
        hpf_up_rx(f, 0),
        "GET /v2/users?q=1 HTTP/1.1\r\nHost: backend\r\nx-request-id: r1\r\nx-keep: "
        "k\r\nx-set: 1\r\nx-add: 2\r\nx-dest: d\r\n\r\n");
    /* The router matched on the request as sent. */
    assert_string_equal(f->seen_path[0], "/api/users");
    assert_string_equal(f->seen_authority[0], "svc");
    hpf_free(f);

    print_message("  a route without a prefix match: the whole path replaced\n");
    f = hpf_new(0);
    hpf_plan(f, (struct hpf_plan[]){{.kind = HPF_FORWARD, .actions = &whole, .vs_route = &vs_any}},
             1);
    hpf_script(f, (struct hpf_step[]){{.send = R200("ok")}}, 1);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, REQ("/old/path?q=1"));
    hpf_expect(f, R200("ok"));
    assert_string_equal(hpf_up_rx(f, 0), REQ("/new?q=1"));
    hpf_free(f);

    print_message("  an edit that would inject a line: nothing sent, the client cut\n");
    f = hpf_new(0);
    hpf_plan(f, (struct hpf_plan[]){{.kind = HPF_FORWARD, .actions = &bad}}, 1);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, REQ("/a"));
    assert_true(hpf_wait_eof(f));
    assert_int_equal(f->cli_len, 0);
    hpf_spin(f, 10);
    for (int u = 0; u < f->accepts; u++)
        assert_int_equal(f->up[u].len, 0);
    assert_int_equal(f->nclosed, 1);
    assert_int_equal(f->frees, 1);
    assert_int_equal(f->nreports, 1);
    hpf_free(f);
}

/* One read full of pipelined requests the router answers itself: each
 * answered, in order, none lost (and no stack spent per request). */
static void many_pipelined_local_replies_all_answered(void **state)
{
    (void)state;
    static const char one[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    static const char reply[] =
        "HTTP/1.1 204 No Content\r\nserver: meshd\r\nContent-Length: 0\r\n\r\n";
    enum { N = 16 * 1024 / (sizeof(one) - 1) };
    static char reqs[N * sizeof(one)], want[N * sizeof(reply)];
    reqs[0] = want[0] = '\0';
    for (int i = 0; i < N; i++) {
        strcat(reqs, one);
        strcat(want, reply);
    }
    struct hpf *f = hpf_new(0);
    hpf_plan(f, (struct hpf_plan[]){{.kind = HPF_RESPOND, .status = 204}}, 1);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, reqs);
    hpf_expect(f, want);
    assert_int_equal(f->routes, N);
    assert_int_equal(f->nreports, N);
    assert_int_equal(f->accepts, 0);
    hpf_free(f);
}

static bool is_uuid4(const char *s)
{
    if (strlen(s) != 36 || s[14] != '4')
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return false;
    }
    return true;
}

static void request_id_added_when_absent_kept_when_present(void **state)
{
    (void)state;
    struct hpf *f = hpf_new(0);
    hpf_script(
        f, (struct hpf_step[]){{.send = R200("a1")}, {.send = R200("a2")}, {.send = R200("a3")}},
        3);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, "GET /a HTTP/1.1\r\nHost: svc\r\n\r\n");
    hpf_expect(f, R200("a1"));
    hpf_send(f, "GET /b HTTP/1.1\r\nHost: svc\r\n\r\n");
    hpf_expect(f, R200("a2"));
    hpf_send(f, "GET /c HTTP/1.1\r\nHost: svc\r\nX-Request-Id: abc\r\n\r\n");
    hpf_expect(f, R200("a3"));
    char rest[HPF_BUF], id1[48], id2[48];
    /* One id in each request; the first two generated, and different. */
    assert_int_equal(hpf_strip_request_id(f->up[0].rx, rest, sizeof(rest), id1, sizeof(id1)), 3);
    assert_true(is_uuid4(id1));
    assert_string_equal(f->reports[0].request_id, id1);
    assert_true(is_uuid4(f->reports[1].request_id));
    assert_string_not_equal(f->reports[1].request_id, id1);
    /* The third kept its own, exactly once. */
    const char *third = strstr(f->up[0].rx, "GET /c");
    assert_non_null(third);
    assert_int_equal(hpf_strip_request_id(third, rest, sizeof(rest), id2, sizeof(id2)), 1);
    assert_string_equal(id2, "abc");
    assert_string_equal(rest, "GET /c HTTP/1.1\r\nHost: svc\r\n\r\n");
    assert_string_equal(f->reports[2].request_id, "abc");
    hpf_free(f);
}

/* A retry carries the id the first attempt had. */
static void request_id_same_on_every_attempt(void **state)
{
    (void)state;
    struct hpf *f = hpf_new(0);
    hpf_script(f, (struct hpf_step[]){{.send = R503}, {.send = R200("ok")}}, 2);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, "GET /a HTTP/1.1\r\nHost: svc\r\n\r\n");
    hpf_expect(f, R200("ok"));
    char rest[2][512], id[2][48];
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            hpf_strip_request_id(hpf_up_rx(f, i), rest[i], sizeof(rest[i]), id[i], sizeof(id[i])),
            1);
    assert_true(is_uuid4(id[0]));
    assert_string_equal(id[0], id[1]);
    assert_string_equal(f->reports[0].request_id, id[0]);
    hpf_free(f);
}

/* The source pod unenrolled while a request was in flight: its response
 * is delivered, then the connection ends. */
static void pod_gone_ends_after_the_response(void **state)
{
    (void)state;
    struct hpf *f = hpf_new(0);
    assert_int_equal(hpf_session(f), 0);
    hpf_send(f, REQ("/a"));
    hpf_wait_count(f, &f->up[0].requests, 1);
    assert_int_equal(f->up[0].requests, 1);
    f->pod_gone = true;
    assert_int_equal(send(f->up[0].io.fd, R200("ok"), strlen(R200("ok")), 0),
                     (ssize_t)strlen(R200("ok")));
    assert_true(hpf_wait_eof(f));
    assert_string_equal(f->cli, R200("ok"));
    assert_int_equal(f->nclosed, 1);
    assert_int_equal(f->nreports, 1);
    assert_int_equal(f->frees, 1);
    hpf_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refused_connect_retried_twice_then_503),
        cmocka_unit_test(status_503_retried_with_the_body),
        cmocka_unit_test(last_503_passed_through),
        cmocka_unit_test(deadlines_answer_504),
        cmocka_unit_test(timeout_mid_body_cuts_the_client),
        cmocka_unit_test(stalled_upstream_ends_at_the_stream_idle_timeout),
        cmocka_unit_test(faults_abort_and_delay),
        cmocka_unit_test(body_during_a_delay_reaches_the_upstream),
        cmocka_unit_test(router_local_replies),
        cmocka_unit_test(header_edits_and_rewrites_reach_the_upstream),
        cmocka_unit_test(many_pipelined_local_replies_all_answered),
        cmocka_unit_test(request_id_added_when_absent_kept_when_present),
        cmocka_unit_test(request_id_same_on_every_attempt),
        cmocka_unit_test(pod_gone_ends_after_the_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
