/* Istio's request metrics (agent/telemetry/http_metrics.c) over the shared
 * series table (series.c), and the TCP metrics moved onto it: exact
 * sample lines in Istio's label order, bucket counts for known requests,
 * the cardinality cap and expiry, hostile label values, `promtool check
 * metrics` on the page, and the carrier's entry points in conn_telemetry
 * (per-request destination labels from the configuration, the access-log
 * line on stdout). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/config_fixture.h"
#include "config/store.h"
#include "core/addr.h"
#include "core/textbuf.h"
#include "core/loop.h"
#include "proxy/records.h"
#include "telemetry/conn_telemetry.h"
#include "telemetry/http_metrics.h"
#include "telemetry/series.h"
#include "telemetry/tcp_metrics.h"

#define EXPIRY_NS (600ull * 1000000000ull)
#define MS        1000000ull

static void set(struct tcp_labels *l, enum tcp_label i, const char *v)
{
    snprintf(l->v[i], sizeof(l->v[i]), "%s", v);
}

/* Bookinfo's productpage calling reviews v2, as a client sidecar sees it. */
static struct tcp_labels bookinfo(void)
{
    struct tcp_labels l = {0};
    static const struct {
        enum tcp_label i;
        const char *v;
    } rows[] = {
        {TL_REPORTER, "source"},
        {TL_SOURCE_WORKLOAD, "productpage-v1"},
        {TL_SOURCE_WORKLOAD_NAMESPACE, "default"},
        {TL_SOURCE_PRINCIPAL, "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"},
        {TL_SOURCE_APP, "productpage"},
        {TL_SOURCE_VERSION, "v1"},
        {TL_SOURCE_CANONICAL_SERVICE, "productpage"},
        {TL_SOURCE_CANONICAL_REVISION, "v1"},
        {TL_SOURCE_CLUSTER, "Kubernetes"},
        {TL_DESTINATION_WORKLOAD, "reviews-v2"},
        {TL_DESTINATION_WORKLOAD_NAMESPACE, "default"},
        {TL_DESTINATION_PRINCIPAL, "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"},
        {TL_DESTINATION_APP, "reviews"},
        {TL_DESTINATION_VERSION, "v2"},
        {TL_DESTINATION_SERVICE, "reviews.default.svc.cluster.local"},
        {TL_DESTINATION_SERVICE_NAME, "reviews"},
        {TL_DESTINATION_SERVICE_NAMESPACE, "default"},
        {TL_DESTINATION_CANONICAL_SERVICE, "reviews"},
        {TL_DESTINATION_CANONICAL_REVISION, "v2"},
        {TL_DESTINATION_CLUSTER, "Kubernetes"},
        {TL_REQUEST_PROTOCOL, "http"},
        {TL_RESPONSE_FLAGS, "UF"}, /* the connection's: the request's own wins */
        {TL_CONNECTION_SECURITY_POLICY, "mutual_tls"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        set(&l, rows[i].i, rows[i].v);
    return l;
}

/* The labels of bookinfo() as Istio's stats filter orders them, up to
 * request_protocol; then response_code, grpc_response_status,
 * response_flags, connection_security_policy. */
#define BOOKINFO                                                                                   \
    "reporter=\"source\",source_workload=\"productpage-v1\",source_canonical_service="             \
    "\"productpage\",source_canonical_revision=\"v1\",source_workload_namespace=\"default\","      \
    "source_principal=\"spiffe://cluster.local/ns/default/sa/bookinfo-productpage\",source_app="   \
    "\"productpage\",source_version=\"v1\",source_cluster=\"Kubernetes\",destination_workload="    \
    "\"reviews-v2\",destination_workload_namespace=\"default\",destination_principal="             \
    "\"spiffe://cluster.local/ns/default/sa/bookinfo-reviews\",destination_app=\"reviews\","       \
    "destination_version=\"v2\",destination_service=\"reviews.default.svc.cluster.local\","        \
    "destination_canonical_service=\"reviews\",destination_canonical_revision=\"v2\","             \
    "destination_service_name=\"reviews\",destination_service_namespace=\"default\","              \
    "destination_cluster=\"Kubernetes\",request_protocol=\"http\""
#define OK_200                                                                                     \
    BOOKINFO ",response_code=\"200\",grpc_response_status=\"\",response_flags=\"-\","              \
             "connection_security_policy=\"mutual_tls\""

static struct http_request_record request(uint64_t duration_ms, uint64_t req, uint64_t resp)
{
    return (struct http_request_record){.labels = bookinfo(),
                                        .response_code = 200,
                                        .grpc_status = -1,
                                        .request_bytes = req,
                                        .response_bytes = resp,
                                        .duration_ns = duration_ms * MS};
}

static char *render(const struct http_metrics *m)
{
    struct textbuf r = {0};
    http_metrics_render(m, &r);
    textbuf_printf(&r, "%s", "");
    assert_int_equal(r.oom, 0);
    return r.data;
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = strstr(text, line); p; p = strstr(p + 1, line))
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

static void expect_lines(const char *text, const char *const *lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!has_line(text, lines[i]))
            fail_msg("no line\n%s\nin\n%s", lines[i], text);
}

static void requests_are_counted_in_istio_label_order(void **state)
{
    struct http_metrics *m;
    assert_int_equal(http_metrics_new(EXPIRY_NS, &m), 0);
    for (int i = 0; i < 3; i++) {
        struct http_request_record r = request(2, 10, 20);
        r.response_flags = "-";
        http_metrics_observe(m, &r, 1);
    }
    char *text = render(m);
    const char *lines[] = {
        "# HELP istio_requests_total Requests handled, by Istio's labels.",
        "# TYPE istio_requests_total counter",
        "istio_requests_total{" OK_200 "} 3",
        "# TYPE istio_request_duration_milliseconds histogram",
        "# TYPE istio_request_bytes histogram",
        "# TYPE istio_response_bytes histogram",
    };
    expect_lines(text, lines, sizeof(lines) / sizeof(lines[0]));
    assert_int_equal(http_metrics_series(m), 1);
    free(text);
    http_metrics_free(m);
}

/* Durations 0.4, 3, 7, 7, 4000000 ms (whole ms, as Envoy: 0.4 is 0);
 * request bodies 0, 1, 100, 1000, 2000000; responses 5 each. */
static void buckets_sums_and_counts_are_envoys(void **state)
{
    struct http_metrics *m;
    assert_int_equal(http_metrics_new(EXPIRY_NS, &m), 0);
    static const struct {
        uint64_t ns, req;
    } obs[] = {
        {400000, 0}, {3 * MS, 1}, {7 * MS, 100}, {7 * MS + 999999, 1000}, {4000000 * MS, 2000000}};
    for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++) {
        struct http_request_record r = request(0, obs[i].req, 5);
        r.duration_ns = obs[i].ns;
        http_metrics_observe(m, &r, 1);
    }
    char *text = render(m);
#define D "istio_request_duration_milliseconds_bucket{" OK_200
#define Q "istio_request_bytes_bucket{" OK_200
    const char *lines[] = {
        D ",le=\"0.5\"} 1",
        D ",le=\"1\"} 1",
        D ",le=\"5\"} 2",
        D ",le=\"10\"} 4",
        D ",le=\"1800000\"} 4",
        D ",le=\"3600000\"} 4",
        D ",le=\"+Inf\"} 5",
        "istio_request_duration_milliseconds_sum{" OK_200 "} 4000017",
        "istio_request_duration_milliseconds_count{" OK_200 "} 5",
        Q ",le=\"0.5\"} 1",
        Q ",le=\"1\"} 2",
        Q ",le=\"100\"} 3",
        Q ",le=\"1000\"} 4",
        Q ",le=\"1800000\"} 4",
        Q ",le=\"+Inf\"} 5",
        "istio_request_bytes_sum{" OK_200 "} 2001101",
        "istio_response_bytes_bucket{" OK_200 ",le=\"1\"} 0",
        "istio_response_bytes_bucket{" OK_200 ",le=\"5\"} 5",
        "istio_response_bytes_sum{" OK_200 "} 25",
    };
#undef D
#undef Q
    expect_lines(text, lines, sizeof(lines) / sizeof(lines[0]));
    /* Envoy's 19 bounds and +Inf: 20 bucket lines per histogram. */
    size_t buckets = 0;
    for (const char *p = strstr(text, "istio_request_duration_milliseconds_bucket{"); p;
         p = strstr(p + 1, "istio_request_duration_milliseconds_bucket{"))
        buckets++;
    assert_int_equal(buckets, 20);
    free(text);
    http_metrics_free(m);
}

/* Istio observes the stream's wire bytes (headers too) where known. */
static void wire_bytes_size_the_histograms_when_known(void **state)
{
    struct http_metrics *m;
    assert_int_equal(http_metrics_new(EXPIRY_NS, &m), 0);
    struct http_request_record r = request(1, 10, 20);
    r.request_wire_bytes = 300;
    r.response_wire_bytes = 7000;
    http_metrics_observe(m, &r, 1);
    char *text = render(m);
    const char *lines[] = {
        "istio_request_bytes_sum{" OK_200 "} 300",
        "istio_request_bytes_bucket{" OK_200 ",le=\"250\"} 0",
        "istio_request_bytes_bucket{" OK_200 ",le=\"500\"} 1",
        "istio_response_bytes_sum{" OK_200 "} 7000",
        "istio_response_bytes_bucket{" OK_200 ",le=\"5000\"} 0",
        "istio_response_bytes_bucket{" OK_200 ",le=\"10000\"} 1",
    };
    expect_lines(text, lines, sizeof(lines) / sizeof(lines[0]));
    free(text);
    http_metrics_free(m);
}

/* Each row: a request and the tail of its series' labels. */
static const struct series_schema counter_schema = {.payload = sizeof(uint64_t)};

/* A label replaced in the lookup (a request's own response_flags, read in
 * place) finds and makes the very series its label set copied and edited
 * would, through the last-asked and the hashed paths alike. */
static void a_replaced_label_is_the_series_of_the_edited_copy(void **state)
{
    struct series_table *t;
    assert_int_equal(series_table_new(&counter_schema, 100, EXPIRY_NS, &t), 0);
    struct tcp_labels l = bookinfo();
    set(&l, TL_RESPONSE_FLAGS, "-");
    static char longv[300];
    memset(longv, 'x', sizeof(longv) - 1);
    const struct {
        const char *behaviour;
        int label;
        const char *value; /* NULL with label -1 or out of range: l itself */
        const char *edited;
    } rows[] = {
        {"flags UH", TL_RESPONSE_FLAGS, "UH", "UH"},
        {"flags -, as the set holds", TL_RESPONSE_FLAGS, "-", "-"},
        {"flags UH again, after another", TL_RESPONSE_FLAGS, "UH", "UH"},
        {"the workload", TL_SOURCE_WORKLOAD, "ratings-v1", NULL},
        {"an empty value", TL_RESPONSE_FLAGS, "", ""},
        {"a value past a label's room, cut as a label is", TL_RESPONSE_FLAGS, longv, longv},
        {"no label", -1, "UH", "-"},
        {"no value", TL_RESPONSE_FLAGS, NULL, "-"},
        {"a label out of range", TL__COUNT, "UH", "-"},
    };
    for (int pass = 0; pass < 2; pass++) /* the second finds what the first made */
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
            struct tcp_labels copy = l;
            if (rows[i].label == TL_SOURCE_WORKLOAD)
                set(&copy, TL_SOURCE_WORKLOAD, rows[i].value);
            else
                set(&copy, TL_RESPONSE_FLAGS, rows[i].edited);
            size_t before = series_table_count(t);
            uint64_t *with = series_table_get_with(t, &l, rows[i].label, rows[i].value, NULL, 1);
            size_t made = series_table_count(t) - before;
            uint64_t *edited = series_table_get(t, &copy, NULL, 1);
            if (!with || with != edited || series_table_count(t) != before + made)
                fail_msg("pass %d, %s: not the edited copy's series", pass, rows[i].behaviour);
            if (pass == 1 && made)
                fail_msg("%s: a second series for one label set", rows[i].behaviour);
            ++*with;
        }
    /* flags "-" is l itself: rows 1, 6, 7 and 8, twice each. */
    struct tcp_labels same = l;
    uint64_t *plain = series_table_get(t, &same, NULL, 1);
    assert_non_null(plain);
    assert_int_equal(*plain, 8);
    assert_int_equal(series_table_count(t), 5);
    series_table_free(t);
}

static void codes_grpc_and_flags_are_labels(void **state)
{
    static const struct {
        const char *behaviour;
        int code, grpc;
        const char *protocol, *flags, *tail;
    } rows[] = {
        {"a 503 with its flags", 503, -1, "http", "UO",
         "request_protocol=\"http\",response_code=\"503\",grpc_response_status=\"\","
         "response_flags=\"UO\""},
        {"a reset has code 0", 0, -1, "http", "UC",
         "response_code=\"0\",grpc_response_status=\"\",response_flags=\"UC\""},
        {"gRPC with its status", 200, 14, "grpc", NULL,
         "request_protocol=\"grpc\",response_code=\"200\",grpc_response_status=\"14\","
         "response_flags=\"-\""},
        {"gRPC OK is 0, not empty", 200, 0, "grpc", "-",
         "response_code=\"200\",grpc_response_status=\"0\",response_flags=\"-\""},
    };
    struct http_metrics *m;
    assert_int_equal(http_metrics_new(EXPIRY_NS, &m), 0);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct http_request_record r = request(1, 0, 0);
        r.response_code = rows[i].code;
        r.grpc_status = rows[i].grpc;
        r.response_flags = rows[i].flags;
        set(&r.labels, TL_REQUEST_PROTOCOL, rows[i].protocol);
        http_metrics_observe(m, &r, 1);
    }
    assert_int_equal(http_metrics_series(m), sizeof(rows) / sizeof(rows[0]));
    char *text = render(m);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char want[512];
        snprintf(want, sizeof(want), "%s,connection_security_policy=\"mutual_tls\"} 1",
                 rows[i].tail);
        if (!strstr(text, want))
            fail_msg("%s: no series ending %s", rows[i].behaviour, want);
    }
    free(text);
    http_metrics_free(m);
}

static void missing_labels_are_unknown_and_hostile_ones_escaped(void **state)
{
    struct http_metrics *m;
    assert_int_equal(http_metrics_new(EXPIRY_NS, &m), 0);
    struct http_request_record r = {.grpc_status = -1, .response_code = 404};
    set(&r.labels, TL_REPORTER, "destination");
    set(&r.labels, TL_SOURCE_PRINCIPAL, "a\"b\\c\nd\x01\xc3\xa9");
    http_metrics_observe(m, &r, 1);
    char *text = render(m);
    assert_non_null(strstr(text,
                           "istio_requests_total{reporter=\"destination\","
                           "source_workload=\"unknown\",source_canonical_service=\"unknown\""));
    assert_non_null(strstr(text, "source_principal=\"a\\\"b\\\\c\\nd???\""));
    assert_non_null(strstr(text, "response_code=\"404\",grpc_response_status=\"\""));
    free(text);
    http_metrics_free(m);
}

static void new_label_sets_past_the_cap_are_dropped(void **state)
{
    struct http_metrics *m;
    assert_int_equal(http_metrics_new(EXPIRY_NS, &m), 0);
    struct http_request_record r = request(1, 0, 0);
    for (int i = 0; i < HTTP_METRICS_MAX_SERIES + 5; i++) {
        snprintf(r.labels.v[TL_DESTINATION_WORKLOAD], TCP_LABEL_MAX, "w%d", i);
        http_metrics_observe(m, &r, 1);
    }
    assert_int_equal(http_metrics_series(m), HTTP_METRICS_MAX_SERIES);
    assert_int_equal(http_metrics_dropped(m), 5);
    /* A series already in the table still counts. */
    set(&r.labels, TL_DESTINATION_WORKLOAD, "w7");
    http_metrics_observe(m, &r, 2);
    assert_int_equal(http_metrics_dropped(m), 5);
    char *text = render(m);
    assert_non_null(strstr(text, "destination_workload=\"w7\""));
    const char *w7 = strstr(text, "destination_workload=\"w7\"");
    const char *end = strchr(w7, '\n');
    assert_true(end - w7 > 2 && end[-1] == '2' && end[-2] == ' ');
    free(text);
    http_metrics_free(m);
}

static void idle_series_expire_and_updates_keep_them(void **state)
{
    struct http_metrics *m;
    assert_int_equal(http_metrics_new(EXPIRY_NS, &m), 0);
    struct http_request_record a = request(1, 0, 0), b = request(1, 0, 0);
    b.response_code = 500;
    http_metrics_observe(m, &a, 1000);
    http_metrics_observe(m, &b, 1000);
    http_metrics_observe(m, &b, 1000 + EXPIRY_NS); /* b is fresh again */
    http_metrics_expire(m, 1000 + EXPIRY_NS);
    assert_int_equal(http_metrics_series(m), 2); /* a is exactly at the expiry */
    http_metrics_expire(m, 1001 + EXPIRY_NS);
    assert_int_equal(http_metrics_series(m), 1);
    char *text = render(m);
    assert_null(strstr(text, "response_code=\"200\""));
    assert_non_null(strstr(text, "response_code=\"500\""));
    free(text);
    http_metrics_expire(m, 1002 + 2 * EXPIRY_NS);
    assert_int_equal(http_metrics_series(m), 0);
    /* The series asked for last (b) went too: the next request makes a
     * new one, counted from one, never the freed one. */
    http_metrics_observe(m, &b, 1003 + 2 * EXPIRY_NS);
    assert_int_equal(http_metrics_series(m), 1);
    text = render(m);
    assert_non_null(strstr(text, "response_code=\"500\""));
    const char *total = strstr(text, "istio_requests_total{");
    assert_non_null(total);
    const char *eol = strchr(total, '\n');
    assert_true(eol && eol[-1] == '1' && eol[-2] == ' ');
    free(text);
    http_metrics_free(m);
}

/* The total of the istio_requests_total series whose labels hold `has`. */
static long requests_with(const char *text, const char *has)
{
    for (const char *at = text; (at = strstr(at, "istio_requests_total{")); at++) {
        const char *eol = strchr(at, '\n');
        const char *close = strstr(at, "} ");
        char *found = strstr(at, has);
        if (eol && close && found && found < close)
            return strtol(close + 2, NULL, 10);
    }
    return -1;
}

/* Records with a kept label set's id (labels_id) find the series of the
 * last one by id, never that of another code, gRPC status or flags; a
 * series found so stays fresh, and one that expired is made again, not
 * the freed one used. Records without an id are compared. */
static void kept_label_sets_find_their_series_by_id(void **state)
{
    struct http_metrics *m;
    assert_int_equal(http_metrics_new(EXPIRY_NS, &m), 0);
    struct http_request_record ok = request(1, 0, 0), uo = request(1, 0, 0), gr = request(1, 0, 0),
                               other = request(1, 0, 0);
    ok.labels_id = uo.labels_id = gr.labels_id = 10;
    uo.response_code = 503;
    uo.response_flags = "UO";
    gr.grpc_status = 14;
    set(&other.labels, TL_DESTINATION_VERSION, "v9"); /* labels_id 0: compared */
    other.response_code = 201;
    const struct http_request_record *order[] = {&ok, &uo, &ok, &ok, &gr, &other, &ok, &uo};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        http_metrics_observe(m, order[i], 1000);
    assert_int_equal(http_metrics_series(m), 4);
    char *text = render(m);
    assert_int_equal(requests_with(text, "response_code=\"200\",grpc_response_status=\"\""), 4);
    assert_int_equal(requests_with(text, "response_flags=\"UO\""), 2);
    assert_int_equal(requests_with(text, "grpc_response_status=\"14\""), 1);
    assert_int_equal(requests_with(text, "response_code=\"201\""), 1);
    free(text);
    /* ok again at the expiry, found by id: it stays, the others go. */
    http_metrics_observe(m, &ok, 1000 + EXPIRY_NS);
    http_metrics_expire(m, 1001 + EXPIRY_NS);
    assert_int_equal(http_metrics_series(m), 1);
    /* Everything expires; ok's id comes back: a new series from one. */
    http_metrics_expire(m, 1002 + 2 * EXPIRY_NS);
    assert_int_equal(http_metrics_series(m), 0);
    http_metrics_observe(m, &ok, 1003 + 2 * EXPIRY_NS);
    http_metrics_observe(m, &ok, 1003 + 2 * EXPIRY_NS);
    text = render(m);
    assert_int_equal(requests_with(text, "response_code=\"200\""), 2);
    free(text);
    http_metrics_free(m);
}

/* The TCP table on the shared machinery: same labels, order and values,
 * open connections outlive the expiry, the same cap. */
static void tcp_metrics_keep_their_behaviour(void **state)
{
    struct tcp_metrics *m;
    assert_int_equal(tcp_metrics_new(EXPIRY_NS, &m), 0);
    struct tcp_labels open = bookinfo(), closed = bookinfo();
    set(&closed, TL_DESTINATION_VERSION, "v3");
    tcp_metrics_opened(m, &open, 1);
    tcp_metrics_opened(m, &closed, 1);
    tcp_metrics_closed(m, &closed, 10, 20, 1, 1);
    struct textbuf r = {0};
    tcp_metrics_render(m, &r);
    textbuf_printf(&r, "%s", "");
    char want[2048];
    snprintf(want, sizeof(want),
             "istio_tcp_sent_bytes_total{reporter=\"source\",source_workload=\"productpage-v1\","
             "source_workload_namespace=\"default\",source_principal=\"%s\",source_app="
             "\"productpage\",source_version=\"v1\",source_canonical_service=\"productpage\","
             "source_canonical_revision=\"v1\",source_cluster=\"Kubernetes\",destination_workload="
             "\"reviews-v2\",destination_workload_namespace=\"default\",destination_principal="
             "\"%s\",destination_app=\"reviews\",destination_version=\"v3\",destination_service="
             "\"reviews.default.svc.cluster.local\",destination_service_name=\"reviews\","
             "destination_service_namespace=\"default\",destination_canonical_service=\"reviews\","
             "destination_canonical_revision=\"v2\",destination_cluster=\"Kubernetes\","
             "request_protocol=\"http\",response_flags=\"UF\",connection_security_policy="
             "\"mutual_tls\"} 10",
             open.v[TL_SOURCE_PRINCIPAL], open.v[TL_DESTINATION_PRINCIPAL]);
    assert_true(has_line(r.data, want));
    assert_non_null(strstr(r.data, "# TYPE istio_tcp_connections_failed_total counter"));
    free(r.data);
    tcp_metrics_expire(m, 2 + EXPIRY_NS);
    assert_int_equal(tcp_metrics_series(m), 1); /* the open one stays */
    tcp_metrics_closed(m, &open, 0, 0, 0, 3 + EXPIRY_NS);
    tcp_metrics_expire(m, 4 + 2 * EXPIRY_NS);
    assert_int_equal(tcp_metrics_series(m), 0);
    for (int i = 0; i < TCP_METRICS_MAX_SERIES + 1; i++) {
        snprintf(open.v[TL_SOURCE_WORKLOAD], TCP_LABEL_MAX, "w%d", i);
        tcp_metrics_opened(m, &open, 5);
    }
    assert_int_equal(tcp_metrics_series(m), TCP_METRICS_MAX_SERIES);
    assert_int_equal(tcp_metrics_dropped(m), 1);
    tcp_metrics_free(m);
}

/* promtool's verdict on `text`: parse errors fail; of the lint
 * complaints, only the one Istio's own name draws is allowed
 * (istio_request_duration_milliseconds is not in base units, and Istio
 * exports it so: dashboards query that name). */
static void expect_promtool_accepts(const char *text)
{
    char out[] = "/tmp/test_http_metrics.promtool.XXXXXX";
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "promtool check metrics >%s 2>&1", out);
    FILE *p = popen(cmd, "w");
    assert_non_null(p);
    fputs(text, p);
    int rc = pclose(p);
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    char line[512], bad[512] = "";
    size_t complaints = 0;
    static const char allowed[] =
        "istio_request_duration_milliseconds use base unit \"seconds\" instead of "
        "\"milliseconds\"";
    while (fgets(line, sizeof(line), f)) {
        complaints++;
        if (!bad[0] && strncmp(line, allowed, sizeof(allowed) - 1) != 0)
            snprintf(bad, sizeof(bad), "%s", line);
    }
    fclose(f);
    unlink(out);
    if (bad[0])
        fail_msg("promtool: %s", bad);
    /* 0: clean; 3: lint complaints only (all of them the allowed one). */
    assert_true(rc == 0 || (WIFEXITED(rc) && WEXITSTATUS(rc) == 3 && complaints == 1));
}

static void the_page_passes_promtool(void **state)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0)
        skip();
    struct http_metrics *m;
    struct tcp_metrics *t;
    assert_int_equal(http_metrics_new(EXPIRY_NS, &m), 0);
    assert_int_equal(tcp_metrics_new(EXPIRY_NS, &t), 0);
    /* No request yet: the families alone are clean. */
    char *empty = render(m);
    expect_promtool_accepts(empty);
    free(empty);
    struct http_request_record r = request(12, 300, 4000);
    http_metrics_observe(m, &r, 1);
    r.grpc_status = 2;
    set(&r.labels, TL_REQUEST_PROTOCOL, "grpc");
    set(&r.labels, TL_SOURCE_PRINCIPAL, "hostile\"\n\x7f\xff");
    http_metrics_observe(m, &r, 1);
    tcp_metrics_opened(t, &r.labels, 1);
    struct textbuf page = {0};
    tcp_metrics_render(t, &page);
    http_metrics_render(m, &page);
    textbuf_printf(&page, "%s", "");
    expect_promtool_accepts(page.data);
    free(page.data);
    http_metrics_free(m);
    tcp_metrics_free(t);
}

/* The configuration of the carrier test: a client and payments v1/v2. */
static const char *const mesh_yaml =
    "apiVersion: v1\nkind: Service\nmetadata: {name: payments, namespace: default}\n"
    "spec: {selector: {app: payments}, ports: [{port: 80, targetPort: 8080}]}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: client, namespace: default, labels: "
    "{app: client}}\nspec: {serviceAccountName: shopper}\nstatus: {podIP: 10.1.0.9}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: pay-v1, namespace: default, labels: "
    "{app: payments, version: v1}}\nspec: {serviceAccountName: pay}\n"
    "status: {podIP: 10.1.0.1}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: pay-v2, namespace: default, labels: "
    "{app: payments, version: v2}}\nspec: {serviceAccountName: pay}\n"
    "status: {podIP: 10.1.0.2}\n";

struct carrier {
    struct cfg_fixture files; /* the YAML in a directory the store watches */
    struct loop *loop;
    struct cfg_store *store;
    struct conn_telemetry *t;
    struct conn_record conn;
};

static void carrier_up(struct carrier *c, bool access_log)
{
    memset(c, 0, sizeof(*c));
    cfg_fixture_load(&c->files, mesh_yaml);
    assert_int_equal(c->files.diags.n, 0);
    assert_int_equal(loop_new(&c->loop), 0);
    struct cfg_store_opts so = {.dir = c->files.dir};
    assert_int_equal(cfg_store_new(c->loop, &so, &c->store), 0);
    struct conn_telemetry_opts o = {
        .config = c->store, .trust_domain = "cluster.local", .access_log_all = access_log};
    assert_int_equal(conn_telemetry_new(&o, &c->t), 0);
    /* The client's connection to the payments VIP, over HBONE to pay-v1. */
    strcpy(c->conn.direction, "outbound");
    strcpy(c->conn.pod, "default/client");
    addr_parse("10.1.0.9:40000", &c->conn.src);
    addr_parse("10.96.0.10:80", &c->conn.orig_dst);
    addr_parse("10.1.0.1:8080", &c->conn.upstream);
    addr_parse("10.1.0.1:15008", &c->conn.hbone);
    strcpy(c->conn.dst_service, "payments.default.svc.cluster.local");
    strcpy(c->conn.peer_identity, "spiffe://cluster.local/ns/default/sa/pay");
}

static void carrier_down(struct carrier *c)
{
    conn_telemetry_free(c->t);
    cfg_store_free(c->store);
    loop_free(c->loop);
    cfg_fixture_free(&c->files);
}

static void per_request_destinations_label_each_request(void **state)
{
    struct carrier c;
    carrier_up(&c, false);
    struct meshd_addr v2;
    addr_parse("10.1.0.2:8080", &v2);
    static const struct {
        const char *behaviour;
        bool use_dst, v2, plaintext, grpc;
        const char *version, *workload, *principal, *policy, *protocol;
    } rows[] = {
        {"the connection's own destination", false, false, false, false, "v1", "pay-v1",
         "spiffe://cluster.local/ns/default/sa/pay", "mutual_tls", "http"},
        {"another subset on the same connection", true, true, false, true, "v2", "pay-v2",
         "spiffe://cluster.local/ns/default/sa/pay", "mutual_tls", "grpc"},
        {"a plaintext upstream has no principal", true, true, true, false, "v2", "pay-v2", "",
         "unknown", "http"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct http_request_dest d = {.service = "payments.default.svc.cluster.local",
                                      .endpoint = rows[i].v2 ? &v2 : NULL,
                                      .peer_identity = rows[i].plaintext ? "" : NULL};
        struct tcp_labels l;
        memset(&l, 0x55, sizeof(l)); /* written whole */
        conn_telemetry_request_labels(c.t, &c.conn, rows[i].use_dst ? &d : NULL, rows[i].grpc, &l);
        const struct {
            enum tcp_label k;
            const char *v;
        } want[] = {
            {TL_REPORTER, "source"},
            {TL_SOURCE_WORKLOAD, "client"},
            {TL_SOURCE_PRINCIPAL, "spiffe://cluster.local/ns/default/sa/shopper"},
            {TL_DESTINATION_WORKLOAD, rows[i].workload},
            {TL_DESTINATION_VERSION, rows[i].version},
            {TL_DESTINATION_PRINCIPAL, rows[i].principal},
            {TL_DESTINATION_SERVICE, "payments.default.svc.cluster.local"},
            {TL_DESTINATION_SERVICE_NAME, "payments"},
            {TL_CONNECTION_SECURITY_POLICY, rows[i].policy},
            {TL_REQUEST_PROTOCOL, rows[i].protocol},
        };
        for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++)
            if (strcmp(l.v[want[k].k], want[k].v) != 0)
                fail_msg("%s: %s is \"%s\", not \"%s\"", rows[i].behaviour,
                         tcp_label_name(want[k].k), l.v[want[k].k], want[k].v);
    }
    carrier_down(&c);
}

/* A kept label set's id: the same for the same request labels, another
 * for gRPC (request_protocol) and for another destination; 0 the first
 * time (computed, then kept), and the labels are those computed. */
static void request_label_sets_have_ids(void **state)
{
    struct carrier c;
    carrier_up(&c, false);
    struct meshd_addr v2;
    addr_parse("10.1.0.2:8080", &v2);
    struct http_request_dest d = {.service = "payments.default.svc.cluster.local", .endpoint = &v2};
    struct tcp_labels first, again, plain;
    uint64_t id0, id1, id2, grpc, other;
    conn_telemetry_request_labels_id(c.t, &c.conn, &d, false, &first, &id0);
    conn_telemetry_request_labels_id(c.t, &c.conn, &d, false, &again, &id1);
    conn_telemetry_request_labels_id(c.t, &c.conn, &d, false, &again, &id2);
    conn_telemetry_request_labels(c.t, &c.conn, &d, false, &plain);
    assert_int_equal(id0, 0);
    assert_true(id1 != 0 && id1 == id2);
    for (int k = 0; k < TL__COUNT; k++) {
        assert_string_equal(first.v[k], again.v[k]);
        assert_string_equal(plain.v[k], again.v[k]);
    }
    conn_telemetry_request_labels_id(c.t, &c.conn, &d, true, &again, &grpc);
    assert_string_equal(again.v[TL_REQUEST_PROTOCOL], "grpc");
    assert_true(grpc != 0 && grpc != id1);
    conn_telemetry_request_labels_id(c.t, &c.conn, NULL, false, &again, &other);
    conn_telemetry_request_labels_id(c.t, &c.conn, NULL, false, &again, &other);
    assert_true(other != 0 && other != id1 && other != grpc);
    carrier_down(&c);
}

/* stdout is a pipe for the call: the line must come out whole, once. */
static void a_reported_request_is_counted_and_logged(void **state)
{
    struct carrier c;
    carrier_up(&c, true);
    int p[2], saved = dup(STDOUT_FILENO);
    assert_int_equal(pipe(p), 0);
    assert_int_equal(dup2(p[1], STDOUT_FILENO), STDOUT_FILENO);
    struct http_request_record r = {.response_code = 201,
                                    .grpc_status = -1,
                                    .method = "POST",
                                    .path = "/pay",
                                    .protocol = "HTTP/1.1",
                                    .duration_ns = 3 * MS};
    conn_telemetry_request_labels(c.t, &c.conn, NULL, false, &r.labels);
    conn_telemetry_request(c.t, &c.conn, &r);
    conn_telemetry_request(c.t, NULL, &r); /* --access-log logs even without a connection */
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(p[1]);
    char buf[2 * HTTP_ACCESSLOG_LINE_MAX] = "";
    ssize_t n = read(p[0], buf, sizeof(buf) - 1);
    close(p[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    const char *first = strstr(buf, "\"POST /pay HTTP/1.1\" 201 - ");
    assert_non_null(first);
    assert_non_null(strstr(first + 1, "\"POST /pay HTTP/1.1\" 201 - "));
    struct conn_telemetry_stats st;
    conn_telemetry_get_stats(c.t, &st);
    assert_int_equal(st.access_log_written, 2);
    assert_int_equal(http_metrics_series(conn_telemetry_http(c.t)), 1);
    char *text = render(conn_telemetry_http(c.t));
    assert_non_null(strstr(text, "destination_workload=\"pay-v1\""));
    assert_non_null(strstr(text, "response_code=\"201\""));
    free(text);
    conn_telemetry_tick(c.t, loop_now_ns() + 2 * EXPIRY_NS);
    assert_int_equal(http_metrics_series(conn_telemetry_http(c.t)), 0);
    carrier_down(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(requests_are_counted_in_istio_label_order),
        cmocka_unit_test(buckets_sums_and_counts_are_envoys),
        cmocka_unit_test(wire_bytes_size_the_histograms_when_known),
        cmocka_unit_test(codes_grpc_and_flags_are_labels),
        cmocka_unit_test(a_replaced_label_is_the_series_of_the_edited_copy),
        cmocka_unit_test(missing_labels_are_unknown_and_hostile_ones_escaped),
        cmocka_unit_test(new_label_sets_past_the_cap_are_dropped),
        cmocka_unit_test(idle_series_expire_and_updates_keep_them),
        cmocka_unit_test(tcp_metrics_keep_their_behaviour),
        cmocka_unit_test(the_page_passes_promtool),
        cmocka_unit_test(per_request_destinations_label_each_request),
        cmocka_unit_test(request_label_sets_have_ids),
        cmocka_unit_test(kept_label_sets_find_their_series_by_id),
        cmocka_unit_test(a_reported_request_is_counted_and_logged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
