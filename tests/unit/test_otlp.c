/* OTLP/HTTP JSON export (agent/telemetry/otlp*.c, tracer.c): the JSON
 * mapping parsed back with jansson (hex ids, nanosecond strings, integer
 * enums, intValue strings, hostile strings made valid), grouping by
 * service.name, the collector spec, the queue's bounds and drops, and the
 * client against a collector on loopback: accepted batches on one
 * kept-alive connection, a refused connect, a 500, a silent collector
 * (timeout); and Istio's span attributes from a request record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"
#include "proxy/records.h"
#include "telemetry/http_metrics.h"
#include "telemetry/otlp.h"
#include "telemetry/tcp_metrics.h"
#include "telemetry/tracer.h"

static const uint8_t TID[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
static const uint8_t SID[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
static const uint8_t PID[8] = {0x05, 0xe3, 0xac, 0x9a, 0x4f, 0x6e, 0x3b, 0x90};

static json_t *attr_value(json_t *span, const char *key)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(span, "attributes"), i, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "key")), key) == 0)
            return json_object_get(a, "value");
    }
    return NULL;
}

static void test_span_json_mapping(void **state)
{
    (void)state;
    struct otlp_attr attrs[] = {{.key = "http.method", .str = "GET"},
                                {.key = "http.status_code", .i = 200},
                                {.key = "user_agent", .str = "bad\xff\xfe utf8\n\"q\""}};
    struct otlp_span s = {.trace_id = TID,
                          .span_id = SID,
                          .parent_id = PID,
                          .name = "b.default.svc.cluster.local:80/*",
                          .kind = OTLP_KIND_CLIENT,
                          .start_unix_ns = 1795255200123000000ull,
                          .end_unix_ns = 1795255200127000000ull,
                          .attrs = attrs,
                          .nattrs = 3};
    char *text = otlp_span_encode(&s);
    assert_non_null(text);
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "traceId")),
                        "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(json_string_value(json_object_get(j, "spanId")), "00f067aa0ba902b7");
    assert_string_equal(json_string_value(json_object_get(j, "parentSpanId")), "05e3ac9a4f6e3b90");
    assert_int_equal(json_integer_value(json_object_get(j, "kind")), 3);
    assert_string_equal(json_string_value(json_object_get(j, "startTimeUnixNano")),
                        "1795255200123000000");
    assert_string_equal(json_string_value(json_object_get(j, "endTimeUnixNano")),
                        "1795255200127000000");
    assert_string_equal(
        json_string_value(json_object_get(attr_value(j, "http.method"), "stringValue")), "GET");
    assert_string_equal(
        json_string_value(json_object_get(attr_value(j, "http.status_code"), "intValue")), "200");
    assert_string_equal(
        json_string_value(json_object_get(attr_value(j, "user_agent"), "stringValue")),
        "bad?? utf8\n\"q\"");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "status"), "code")), 0);
    json_decref(j);
    free(text);
    /* a root span has no parentSpanId; an error status is code 2 */
    s.parent_id = NULL;
    s.kind = OTLP_KIND_SERVER;
    s.error = true;
    text = otlp_span_encode(&s);
    j = json_loads(text, 0, &err);
    assert_null(json_object_get(j, "parentSpanId"));
    assert_int_equal(json_integer_value(json_object_get(j, "kind")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "status"), "code")), 2);
    json_decref(j);
    free(text);
}

static void test_request_groups_spans_by_service(void **state)
{
    (void)state;
    const char *services[] = {"a.ns", "b.ns", "a.ns"};
    const char *spans[] = {"{\"name\":\"1\"}", "{\"name\":\"2\"}", "{\"name\":\"3\"}"};
    size_t len;
    char *body = otlp_request_encode(services, spans, 3, &len);
    assert_non_null(body);
    assert_int_equal(strlen(body), len);
    json_error_t err;
    json_t *j = json_loads(body, 0, &err);
    assert_non_null(j);
    json_t *rs = json_object_get(j, "resourceSpans");
    assert_int_equal(json_array_size(rs), 2);
    json_t *first = json_array_get(rs, 0);
    json_t *attr0 =
        json_array_get(json_object_get(json_object_get(first, "resource"), "attributes"), 0);
    assert_string_equal(json_string_value(json_object_get(attr0, "key")), "service.name");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(attr0, "value"), "stringValue")), "a.ns");
    json_t *ss = json_array_get(json_object_get(first, "scopeSpans"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(ss, "scope"), "name")),
                        "meshd");
    json_t *sp = json_object_get(ss, "spans");
    assert_int_equal(json_array_size(sp), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(sp, 1), "name")), "3");
    json_decref(j);
    free(body);
    body = otlp_request_encode(NULL, NULL, 0, &len);
    assert_string_equal(body, "{\"resourceSpans\":[]}");
    free(body);
}

static void test_collector_spec(void **state)
{
    (void)state;
    static const struct {
        const char *spec;
        int rc;
        const char *name, *path;
    } rows[] = {
        {"127.0.0.1:4318", 0, "otel", "/v1/traces"},
        {"127.0.0.1:4318/custom/path", 0, "otel", "/custom/path"},
        {"jaeger=127.0.0.1:4318", 0, "jaeger", "/v1/traces"},
        {"[::1]:4318/v1/traces", 0, "otel", "/v1/traces"},
        {"127.0.0.1", -EINVAL, NULL, NULL},
        {"127.0.0.1:0", -EINVAL, NULL, NULL},
        {"collector.svc:4318", -EINVAL, NULL, NULL}, /* no DNS on the loop */
        {"=127.0.0.1:4318", -EINVAL, NULL, NULL},
        {"127.0.0.1:4318/a b", -EINVAL, NULL, NULL},
        {"127.0.0.1:4318/a\r\nX: y", -EINVAL, NULL, NULL},
        {"", -EINVAL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct otlp_collector c;
        int rc = otlp_collector_parse(rows[i].spec, &c);
        if (rc != rows[i].rc)
            fail_msg("\"%s\": rc %d", rows[i].spec, rc);
        if (rc == 0) {
            assert_string_equal(c.name, rows[i].name);
            assert_string_equal(c.path, rows[i].path);
        }
    }
}

/* --- a collector on loopback, served between loop rounds ---------------- */

enum mode { ANSWER_200, ANSWER_500, SILENT };

struct collector {
    int lfd, cfd;
    enum mode mode;
    int accepted, requests;
    char buf[1 << 20];
    size_t len;
    json_t *last; /* the last body, parsed */
};

static uint16_t collector_listen(struct collector *c, enum mode mode)
{
    memset(c, 0, sizeof(*c));
    c->cfd = -1;
    c->mode = mode;
    c->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(c->lfd, 8), 0);
    socklen_t sl = sizeof(sa);
    getsockname(c->lfd, (struct sockaddr *)&sa, &sl);
    return ntohs(sa.sin_port);
}

static void collector_step(struct collector *c)
{
    int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK);
    if (fd >= 0) {
        if (c->cfd >= 0)
            close(c->cfd);
        c->cfd = fd;
        c->accepted++;
        c->len = 0;
    }
    if (c->cfd < 0)
        return;
    ssize_t n = recv(c->cfd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
    if (n > 0)
        c->len += (size_t)n;
    c->buf[c->len] = '\0';
    char *end = strstr(c->buf, "\r\n\r\n");
    const char *cl = strcasestr(c->buf, "content-length:");
    if (!end || !cl)
        return;
    size_t body = strtoul(cl + 15, NULL, 10), head = (size_t)(end - c->buf) + 4;
    if (c->len < head + body)
        return;
    c->requests++;
    json_decref(c->last);
    c->last = json_loadb(c->buf + head, body, 0, NULL);
    memmove(c->buf, c->buf + head + body, c->len - head - body);
    c->len -= head + body;
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             "Content-Length: 2\r\n\r\n{}";
    static const char bad[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
    if (c->mode == ANSWER_200)
        assert_true(send(c->cfd, ok, sizeof(ok) - 1, 0) > 0);
    else if (c->mode == ANSWER_500)
        assert_true(send(c->cfd, bad, sizeof(bad) - 1, 0) > 0);
}

static void collector_close(struct collector *c)
{
    if (c->cfd >= 0)
        close(c->cfd);
    close(c->lfd);
    json_decref(c->last);
}

/* Runs the loop and the collector until `done` or ~3 s. */
static void run_until(struct loop *loop, struct collector *c, struct otlp *x,
                      bool (*done)(const struct otlp_stats *))
{
    for (int i = 0; i < 300; i++) {
        loop_run_once(loop, 10);
        if (c)
            collector_step(c);
        struct otlp_stats st;
        otlp_get_stats(x, &st);
        if (done(&st))
            return;
    }
}

static bool two_batches(const struct otlp_stats *st)
{
    return st->batches >= 2 || st->export_errors;
}

static bool one_error(const struct otlp_stats *st)
{
    return st->export_errors >= 1;
}

static struct otlp *exporter(struct loop *loop, uint16_t port, size_t queue_max, size_t batch_max,
                             unsigned timeout_ms)
{
    struct otlp_opts o = {
        .queue_max = queue_max, .batch_max = batch_max, .flush_ms = 50, .timeout_ms = timeout_ms};
    char spec[64];
    snprintf(spec, sizeof(spec), "127.0.0.1:%u", port);
    assert_int_equal(otlp_collector_parse(spec, &o.collector), 0);
    struct otlp *x;
    assert_int_equal(otlp_new(loop, &o, &x), 0);
    return x;
}

static void test_batches_reach_the_collector_on_one_connection(void **state)
{
    (void)state;
    struct loop *loop;
    assert_int_equal(loop_new(&loop), 0);
    struct collector *c = calloc(1, sizeof(*c));
    uint16_t port = collector_listen(c, ANSWER_200);
    struct otlp *x = exporter(loop, port, 64, 4, 2000);
    for (int i = 0; i < 6; i++) /* 4 now (a full batch), 2 after the flush interval */
        assert_true(otlp_enqueue(x, i % 2 ? "a.ns" : "b.ns", "{\"name\":\"s\"}"));
    run_until(loop, c, x, two_batches);
    struct otlp_stats st;
    otlp_get_stats(x, &st);
    assert_int_equal(st.batches, 2);
    assert_int_equal(st.exported, 6);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.queued, 0);
    assert_int_equal(c->accepted, 1); /* kept alive */
    assert_int_equal(c->requests, 2);
    json_t *rs = json_object_get(c->last, "resourceSpans");
    assert_int_equal(json_array_size(rs), 2);
    otlp_free(x);
    collector_close(c);
    free(c);
    loop_free(loop);
}

static void test_collector_down_refused_500_or_silent_cost_counted_drops(void **state)
{
    (void)state;
    static const struct {
        const char *behaviour;
        int mode; /* -1: nothing listens */
    } rows[] = {{"connection refused", -1}, {"500 answer", ANSWER_500}, {"no answer", SILENT}};
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        struct loop *loop;
        assert_int_equal(loop_new(&loop), 0);
        struct collector *c = calloc(1, sizeof(*c));
        uint16_t port = collector_listen(c, rows[r].mode < 0 ? ANSWER_200 : rows[r].mode);
        if (rows[r].mode < 0) {
            collector_close(c);
            free(c);
            c = NULL;
        }
        struct otlp *x = exporter(loop, port, 64, 3, 200);
        for (int i = 0; i < 3; i++)
            otlp_enqueue(x, "a.ns", "{}");
        run_until(loop, c, x, one_error);
        struct otlp_stats st;
        otlp_get_stats(x, &st);
        if (st.export_errors != 1 || st.dropped != 3 || st.exported != 0)
            fail_msg("%s: errors %llu dropped %llu exported %llu", rows[r].behaviour,
                     (unsigned long long)st.export_errors, (unsigned long long)st.dropped,
                     (unsigned long long)st.exported);
        otlp_free(x);
        if (c) {
            collector_close(c);
            free(c);
        }
        loop_free(loop);
    }
}

static void test_queue_bounds_and_drops(void **state)
{
    (void)state;
    struct loop *loop;
    assert_int_equal(loop_new(&loop), 0);
    struct otlp *x = exporter(loop, 9, 4, 8, 1000); /* nothing is run: the queue only fills */
    for (int i = 0; i < 4; i++)
        assert_true(otlp_enqueue(x, "a", "{}"));
    assert_false(otlp_enqueue(x, "a", "{}")); /* full */
    char *big = malloc(OTLP_SPAN_MAX + 2);
    memset(big, 'x', OTLP_SPAN_MAX + 1);
    big[OTLP_SPAN_MAX + 1] = '\0';
    assert_false(otlp_enqueue(x, "a", big)); /* too big, even with room */
    free(big);
    assert_false(otlp_enqueue(x, "a", NULL)); /* could not be encoded */
    struct otlp_stats st;
    otlp_get_stats(x, &st);
    assert_int_equal(st.queued, 4);
    assert_int_equal(st.dropped, 3);
    otlp_free(x); /* frees what is queued */
    loop_free(loop);
}

struct want {
    const char *key, *str; /* str NULL: the integer i */
    int64_t i;
};

static void expect_attrs(const struct otlp_span *o, const struct want *want, size_t n)
{
    for (size_t w = 0; w < n; w++) {
        size_t i = 0;
        while (i < o->nattrs && strcmp(o->attrs[i].key, want[w].key) != 0)
            i++;
        if (i == o->nattrs)
            fail_msg("no attribute %s", want[w].key);
        if (want[w].str)
            assert_string_equal(o->attrs[i].str, want[w].str);
        else
            assert_int_equal(o->attrs[i].i, want[w].i);
    }
}

static void test_span_attributes_as_istio_names_them(void **state)
{
    (void)state;
    struct trace_span s;
    struct trace_incoming in = {.format = TRACE_W3C, .has_span = true, .sampled = 1};
    memcpy(in.trace_id, TID, 16);
    memcpy(in.span_id, SID, 8);
    trace_span_begin(&s, &in, true, false, 1000);
    trace_span_tag(&s, "team", "pay");
    struct http_request_record r = {.response_code = 503,
                                    .request_bytes = 3,
                                    .response_bytes = 19,
                                    .duration_ns = 500,
                                    .method = "POST",
                                    .path = "/x?y=1",
                                    .protocol = "HTTP/1.1",
                                    .authority = "b",
                                    .user_agent = "curl",
                                    .request_id = "rid-1",
                                    .upstream_cluster = "outbound|80||b.default.svc.cluster.local",
                                    .response_flags = "UF"};
    snprintf(r.labels.v[TL_DESTINATION_SERVICE], TCP_LABEL_MAX, "b.default.svc.cluster.local");
    snprintf(r.labels.v[TL_SOURCE_CANONICAL_SERVICE], TCP_LABEL_MAX, "a");
    snprintf(r.labels.v[TL_SOURCE_CANONICAL_REVISION], TCP_LABEL_MAX, "v1");
    snprintf(r.labels.v[TL_SOURCE_WORKLOAD_NAMESPACE], TCP_LABEL_MAX, "default");
    struct conn_record conn = {0};
    addr_parse("10.0.0.5:41000", &conn.src);
    addr_parse("10.96.0.2:80", &conn.orig_dst);
    struct otlp_span o;
    struct otlp_attr attrs[TRACER_MAX_ATTRS];
    struct tracer_scratch x;
    tracer_span_of(&s, &r, &conn, "node-a", NULL, &o, attrs, &x);
    assert_string_equal(o.name, "b.default.svc.cluster.local:80/*");
    assert_int_equal(o.kind, OTLP_KIND_CLIENT);
    assert_true(o.error);
    assert_int_equal(o.end_unix_ns, 1500);
    assert_memory_equal(o.parent_id, SID, 8);
    assert_string_equal(x.service, "a.default");
    static const struct want want[] = {
        {"http.method", "POST", 0},
        {"http.url", "http://b/x?y=1", 0},
        {"http.status_code", NULL, 503},
        {"http.protocol", "HTTP/1.1", 0},
        {"upstream_cluster", "outbound|80||b.default.svc.cluster.local", 0},
        {"upstream_cluster.name", "outbound|80||b.default.svc.cluster.local", 0},
        {"peer.address", "10.0.0.5", 0},
        {"istio.canonical_service", "a", 0},
        {"istio.canonical_revision", "v1", 0},
        {"istio.namespace", "default", 0},
        {"istio.mesh_id", "cluster.local", 0},
        {"node_id", "node-a", 0},
        {"response_flags", "UF", 0},
        {"request_size", NULL, 3},
        {"response_size", NULL, 19},
        {"user_agent", "curl", 0},
        {"guid:x-request-id", "rid-1", 0},
        {"component", "proxy", 0},
        {"team", "pay", 0},
    };
    expect_attrs(&o, want, sizeof(want) / sizeof(want[0]));
    /* the destination: SERVER, its own workload, the inbound cluster */
    s.server = true;
    snprintf(r.labels.v[TL_DESTINATION_CANONICAL_SERVICE], TCP_LABEL_MAX, "b");
    snprintf(r.labels.v[TL_DESTINATION_WORKLOAD_NAMESPACE], TCP_LABEL_MAX, "shop");
    r.upstream_cluster = NULL;
    addr_parse("10.0.0.9:8080", &conn.orig_dst);
    tracer_span_of(&s, &r, &conn, "node-b", "mesh1", &o, attrs, &x);
    assert_int_equal(o.kind, OTLP_KIND_SERVER);
    assert_string_equal(x.service, "b.shop");
    assert_string_equal(x.cluster, "inbound|8080||");
    assert_string_equal(x.mesh_id, "mesh1");
    for (size_t i = 0; i < o.nattrs; i++) /* none unless a gateway verified its client */
        assert_string_not_equal(o.attrs[i].key, "istio.source_principal");
    /* an ISTIO_MUTUAL gateway's request: the client's verified id */
    r.source_principal = "spiffe://cluster.local/ns/default/sa/client";
    tracer_span_of(&s, &r, &conn, "node-b", "mesh1", &o, attrs, &x);
    static const struct want peer[] = {
        {"istio.source_principal", "spiffe://cluster.local/ns/default/sa/client", 0}};
    expect_attrs(&o, peer, 1);
}

/* A gateway's CLIENT span: named for the port the route chose (its
 * cluster's), not its listener's; http.url with the scheme
 * x-forwarded-proto gives, only http or https. */
static void test_client_span_port_and_url_scheme(void **state)
{
    (void)state;
    static const struct {
        const char *behaviour, *cluster, *proto, *dst, *name, *url;
        bool server;
    } rows[] = {
        {"gateway: the route's port from the cluster", "outbound|80||my.default.svc.cluster.local",
         "https", "10.244.1.11:8443", "my.default.svc.cluster.local:80/*", "https://app/p", false},
        {"sidecar-like source: the VIP's port, the same",
         "outbound|80||my.default.svc.cluster.local", NULL, "10.96.0.2:80",
         "my.default.svc.cluster.local:80/*", "http://app/p", false},
        {"a subset's cluster", "outbound|9080|v2|my.default.svc.cluster.local", "http",
         "10.244.1.11:8443", "my.default.svc.cluster.local:9080/*", "http://app/p", false},
        {"a cluster without a port: the connection's", "BlackHoleCluster", NULL, "10.96.0.2:81",
         "my.default.svc.cluster.local:81/*", "http://app/p", false},
        {"a port past 65535 ignored", "outbound|70000||x", NULL, "10.96.0.2:81",
         "my.default.svc.cluster.local:81/*", "http://app/p", false},
        {"SERVER: the destination port", "outbound|80||my.default.svc.cluster.local", "https",
         "10.244.2.11:8080", "my.default.svc.cluster.local:8080/*", "https://app/p", true},
        {"a hostile scheme is http", NULL, "javascript", "10.96.0.2:80",
         "my.default.svc.cluster.local:80/*", "http://app/p", false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct trace_span s;
        trace_span_begin(&s, NULL, true, rows[i].server, 0);
        struct http_request_record r = {.response_code = 200,
                                        .method = "GET",
                                        .path = "/p",
                                        .authority = "app",
                                        .upstream_cluster = rows[i].cluster,
                                        .forwarded_proto = rows[i].proto};
        snprintf(r.labels.v[TL_DESTINATION_SERVICE], TCP_LABEL_MAX, "my.default.svc.cluster.local");
        struct conn_record conn = {0};
        addr_parse("10.0.0.5:41000", &conn.src);
        addr_parse(rows[i].dst, &conn.orig_dst);
        struct otlp_span o;
        struct otlp_attr attrs[TRACER_MAX_ATTRS];
        struct tracer_scratch x;
        tracer_span_of(&s, &r, &conn, "n", NULL, &o, attrs, &x);
        if (strcmp(o.name, rows[i].name) != 0 || strcmp(x.url, rows[i].url) != 0)
            fail_msg("%s: name %s url %s", rows[i].behaviour, o.name, x.url);
    }
}

static void test_connection_span_as_a_new_trace(void **state)
{
    (void)state;
    struct trace_span s;
    trace_span_begin(&s, NULL, true, false, 0);
    struct conn_record rec = {.start_unix_ms = 1000,
                              .duration_ms = 250,
                              .bytes_sent = 7,
                              .bytes_received = 9,
                              .error = 104};
    snprintf(rec.direction, sizeof(rec.direction), "outbound");
    snprintf(rec.dst_service, sizeof(rec.dst_service), "db.default.svc.cluster.local");
    addr_parse("10.0.0.5:41000", &rec.src);
    addr_parse("10.96.0.9:5432", &rec.orig_dst);
    addr_parse("10.244.2.11:5432", &rec.upstream);
    struct tcp_labels l = {0};
    snprintf(l.v[TL_DESTINATION_SERVICE], TCP_LABEL_MAX, "db.default.svc.cluster.local");
    snprintf(l.v[TL_SOURCE_CANONICAL_SERVICE], TCP_LABEL_MAX, "api");
    snprintf(l.v[TL_SOURCE_WORKLOAD_NAMESPACE], TCP_LABEL_MAX, "default");
    snprintf(l.v[TL_CONNECTION_SECURITY_POLICY], TCP_LABEL_MAX, "mutual_tls");
    struct otlp_span o;
    struct otlp_attr attrs[TRACER_MAX_ATTRS];
    struct tracer_scratch x;
    tracer_conn_span_of(&s, &rec, &l, "node-a", NULL, &o, attrs, &x);
    assert_string_equal(o.name, "tcp db.default.svc.cluster.local:5432");
    assert_null(o.parent_id);
    assert_int_equal(o.kind, OTLP_KIND_CLIENT);
    assert_int_equal(o.start_unix_ns, 1000000000ull);
    assert_int_equal(o.end_unix_ns, 1250000000ull);
    assert_true(o.error);
    assert_string_equal(x.service, "api.default");
    assert_string_equal(x.cluster, "outbound|5432||db.default.svc.cluster.local");
    static const struct want want[] = {{"peer.address", "10.0.0.5", 0},
                                       {"upstream.address", "10.244.2.11:5432", 0},
                                       {"connection_security_policy", "mutual_tls", 0},
                                       {"istio.canonical_revision", "unknown", 0},
                                       {"component", "proxy", 0},
                                       {"request_size", NULL, 7},
                                       {"response_size", NULL, 9}};
    expect_attrs(&o, want, sizeof(want) / sizeof(want[0]));
}

static void test_environment_tags_read_only_metadata_variables(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        bool allowed;
    } rows[] = {{"ISTIO_META_CLUSTER_ID", true},  {"MESHD_TAG_TEAM", true}, {"HOME", false},
                {"AWS_SECRET_ACCESS_KEY", false}, {"ISTIO_METAX", false},   {"", false}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (tracer_env_allowed(rows[i].name) != rows[i].allowed)
            fail_msg("%s: %d", rows[i].name, !rows[i].allowed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_span_json_mapping),
        cmocka_unit_test(test_request_groups_spans_by_service),
        cmocka_unit_test(test_collector_spec),
        cmocka_unit_test(test_batches_reach_the_collector_on_one_connection),
        cmocka_unit_test(test_collector_down_refused_500_or_silent_cost_counted_drops),
        cmocka_unit_test(test_queue_bounds_and_drops),
        cmocka_unit_test(test_span_attributes_as_istio_names_them),
        cmocka_unit_test(test_client_span_port_and_url_scheme),
        cmocka_unit_test(test_connection_span_as_a_new_trace),
        cmocka_unit_test(test_environment_tags_read_only_metadata_variables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
