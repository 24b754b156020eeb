/* Istio's request metrics: one counter and three histograms per label
 * set, in the shared series table (telemetry/series.h), and their
 * exposition (see http_metrics.h). The access-log line is
 * http_accesslog.c. */
#include "telemetry/http_metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "core/textbuf.h"
#include "telemetry/histogram.h"
#include "telemetry/series.h"

/* Envoy's default histogram buckets (Istio sets no others by default). */
static const double envoy_buckets[] = {0.5,   1,      5,      10,      25,     50,    100,
                                       250,   500,    1000,   2500,    5000,   10000, 30000,
                                       60000, 300000, 600000, 1800000, 3600000};
#define NBUCKETS (sizeof(envoy_buckets) / sizeof(envoy_buckets[0]))
_Static_assert(NBUCKETS <= HIST_MAX_BUCKETS, "histogram too small for Envoy's buckets");

enum { X_RESPONSE_CODE, X_GRPC_STATUS, X__COUNT };
static const char *const extra_names[X__COUNT] = {"response_code", "grpc_response_status"};

/* The order Istio's stats filter pushes its tags (istio_stats.cc). */
static const int istio_order[] = {
    TL_REPORTER,
    TL_SOURCE_WORKLOAD,
    TL_SOURCE_CANONICAL_SERVICE,
    TL_SOURCE_CANONICAL_REVISION,
    TL_SOURCE_WORKLOAD_NAMESPACE,
    TL_SOURCE_PRINCIPAL,
    TL_SOURCE_APP,
    TL_SOURCE_VERSION,
    TL_SOURCE_CLUSTER,
    TL_DESTINATION_WORKLOAD,
    TL_DESTINATION_WORKLOAD_NAMESPACE,
    TL_DESTINATION_PRINCIPAL,
    TL_DESTINATION_APP,
    TL_DESTINATION_VERSION,
    TL_DESTINATION_SERVICE,
    TL_DESTINATION_CANONICAL_SERVICE,
    TL_DESTINATION_CANONICAL_REVISION,
    TL_DESTINATION_SERVICE_NAME,
    TL_DESTINATION_SERVICE_NAMESPACE,
    TL_DESTINATION_CLUSTER,
    TL_REQUEST_PROTOCOL,
    TL__COUNT + X_RESPONSE_CODE,
    TL__COUNT + X_GRPC_STATUS,
    TL_RESPONSE_FLAGS,
    TL_CONNECTION_SECURITY_POLICY,
};
_Static_assert(sizeof(istio_order) / sizeof(istio_order[0]) == TL__COUNT + X__COUNT,
               "every label rendered once");

struct http_series {
    uint64_t requests;
    struct histogram duration, request_bytes, response_bytes;
};

static void http_series_init(void *payload)
{
    struct http_series *s = payload;
    histogram_init(&s->duration, envoy_buckets, NBUCKETS);
    histogram_init(&s->request_bytes, envoy_buckets, NBUCKETS);
    histogram_init(&s->response_bytes, envoy_buckets, NBUCKETS);
}

static const struct series_schema http_schema = {
    .nextra = X__COUNT,
    .extra_names = extra_names,
    .order = istio_order,
    .norder = sizeof(istio_order) / sizeof(istio_order[0]),
    .payload = sizeof(struct http_series),
    .init = http_series_init,
};

/* The series of the last request with a kept label set (labels_id), by
 * that id and the request's own labels: on a keep-alive connection the
 * next request is nearly always in it. Forgotten when series expire. */
struct last_series {
    struct http_series *s; /* NULL: none */
    uint64_t labels_id;
    int code, grpc;
    char flags[16];
};

struct http_metrics {
    struct series_table *table;
    struct last_series last;
};

int http_metrics_new(uint64_t expiry_ns, struct http_metrics **out)
{
    struct http_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    int err = series_table_new(&http_schema, HTTP_METRICS_MAX_SERIES, expiry_ns, &m->table);
    if (err) {
        free(m);
        return err;
    }
    *out = m;
    return 0;
}

void http_metrics_free(struct http_metrics *m)
{
    if (!m)
        return;
    series_table_free(m->table);
    free(m);
}

void http_metrics_observe(struct http_metrics *m, const struct http_request_record *r,
                          uint64_t now_ns)
{
    /* The request's own flags label it, not the connection's (read in
     * place: no copy of the label set per request). */
    const char *flags = r->response_flags && r->response_flags[0] ? r->response_flags : "-";
    int code_n = r->response_code < 0 ? 0 : r->response_code;
    int grpc_n = r->grpc_status < 0 ? -1 : r->grpc_status;
    struct last_series *last = &m->last;
    struct http_series *s;
    if (r->labels_id && last->s && last->labels_id == r->labels_id && last->code == code_n &&
        last->grpc == grpc_n && strcmp(last->flags, flags) == 0) {
        s = last->s;
        series_table_touch(s, now_ns);
    } else {
        char code[24], grpc[24] = "";
        str_u64(code, (unsigned)code_n);
        if (grpc_n >= 0)
            str_u64(grpc, (unsigned)grpc_n);
        const char *extra[X__COUNT] = {code, grpc};
        s = series_table_get_with(m->table, &r->labels, TL_RESPONSE_FLAGS, flags, extra, now_ns);
        if (!s)
            return;
        last->s = NULL;
        if (r->labels_id && strlen(flags) < sizeof(last->flags)) {
            *last = (struct last_series){
                .s = s, .labels_id = r->labels_id, .code = code_n, .grpc = grpc_n};
            memcpy(last->flags, flags, strlen(flags) + 1);
        }
    }
    s->requests++;
    /* Envoy records whole milliseconds (requestComplete() / 1ms). */
    uint64_t ms = r->duration_ns / 1000000u;
    histogram_observe(&s->duration, (double)ms);
    histogram_observe(&s->request_bytes,
                      (double)(r->request_wire_bytes ? r->request_wire_bytes : r->request_bytes));
    histogram_observe(&s->response_bytes, (double)(r->response_wire_bytes ? r->response_wire_bytes
                                                                          : r->response_bytes));
}

void http_metrics_expire(struct http_metrics *m, uint64_t now_ns)
{
    m->last.s = NULL; /* it may be the one removed */
    series_table_expire(m->table, now_ns);
}

struct render_ctx {
    struct textbuf *r;
    int family;
};

static const struct {
    const char *name, *type, *help;
    size_t off; /* of the histogram in struct http_series */
} families[] = {
    {"istio_requests_total", "counter", "Requests handled, by Istio's labels.", 0},
    {"istio_request_duration_milliseconds", "histogram", "Request duration in milliseconds.",
     offsetof(struct http_series, duration)},
    {"istio_request_bytes", "histogram", "Request sizes in bytes (on the wire, headers included).",
     offsetof(struct http_series, request_bytes)},
    {"istio_response_bytes", "histogram",
     "Response sizes in bytes (on the wire, headers included).",
     offsetof(struct http_series, response_bytes)},
};

static void render_one(void *ctx, const char *labels, const void *payload)
{
    const struct render_ctx *c = ctx;
    const struct http_series *s = payload;
    if (c->family == 0) {
        textbuf_printf(c->r, "%s{%s} %llu\n", families[0].name, labels,
                       (unsigned long long)s->requests);
        return;
    }
    const struct histogram *h =
        (const struct histogram *)((const char *)s + families[c->family].off);
    histogram_render(h, families[c->family].name, labels, c->r);
}

void http_metrics_render(const struct http_metrics *m, struct textbuf *out)
{
    for (int f = 0; f < (int)(sizeof(families) / sizeof(families[0])); f++) {
        textbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", families[f].name, families[f].help,
                       families[f].name, families[f].type);
        struct render_ctx c = {out, f};
        series_table_each(m->table, render_one, &c);
    }
}

size_t http_metrics_series(const struct http_metrics *m)
{
    return series_table_count(m->table);
}

uint64_t http_metrics_dropped(const struct http_metrics *m)
{
    return series_table_dropped(m->table);
}
