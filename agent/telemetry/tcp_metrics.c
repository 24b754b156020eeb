/* Istio's TCP metrics: their counters in the shared series table
 * (telemetry/series.h) and their exposition (see header). */
#include "telemetry/tcp_metrics.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "core/textbuf.h"
#include "proxy/records.h"
#include "telemetry/series.h"

struct tcp_series {
    uint64_t opened, closed, sent, received, failed;
    int64_t open_now;
};

/* A series with an open connection stays, however old its last update. */
static bool tcp_series_busy(const void *payload)
{
    return ((const struct tcp_series *)payload)->open_now > 0;
}

static const struct series_schema tcp_schema = {
    .payload = sizeof(struct tcp_series),
    .busy = tcp_series_busy,
};

struct tcp_metrics {
    struct series_table *table;
};

int tcp_metrics_new(uint64_t expiry_ns, struct tcp_metrics **out)
{
    struct tcp_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    int err = series_table_new(&tcp_schema, TCP_METRICS_MAX_SERIES, expiry_ns, &m->table);
    if (err) {
        free(m);
        return err;
    }
    *out = m;
    return 0;
}

void tcp_metrics_free(struct tcp_metrics *m)
{
    if (!m)
        return;
    series_table_free(m->table);
    free(m);
}

void tcp_metrics_opened(struct tcp_metrics *m, const struct tcp_labels *l, uint64_t now_ns)
{
    struct tcp_series *s = series_table_get(m->table, l, NULL, now_ns);
    if (!s)
        return;
    s->opened++;
    s->open_now++;
}

void tcp_metrics_closed(struct tcp_metrics *m, const struct tcp_labels *l, uint64_t sent,
                        uint64_t received, int failed, uint64_t now_ns)
{
    struct tcp_series *s = series_table_get(m->table, l, NULL, now_ns);
    if (!s)
        return;
    s->closed++;
    s->open_now--;
    s->sent += sent;
    s->received += received;
    s->failed += failed ? 1 : 0;
}

void tcp_metrics_expire(struct tcp_metrics *m, uint64_t now_ns)
{
    series_table_expire(m->table, now_ns);
}

struct render_ctx {
    struct textbuf *r;
    const char *name;
    size_t off; /* of the counter in struct tcp_series */
};

static void render_one(void *ctx, const char *labels, const void *payload)
{
    const struct render_ctx *c = ctx;
    const uint64_t *v = (const uint64_t *)((const char *)payload + c->off);
    textbuf_printf(c->r, "%s{%s} %llu\n", c->name, labels, (unsigned long long)*v);
}

void tcp_metrics_render(const struct tcp_metrics *m, struct textbuf *r)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } families[] = {
        {"istio_tcp_connections_opened_total", "Counter of TCP connections opened.",
         offsetof(struct tcp_series, opened)},
        {"istio_tcp_connections_closed_total", "Counter of TCP connections closed.",
         offsetof(struct tcp_series, closed)},
        {"istio_tcp_sent_bytes_total", "Bytes sent during a TCP connection.",
         offsetof(struct tcp_series, sent)},
        {"istio_tcp_received_bytes_total", "Bytes received during a TCP connection.",
         offsetof(struct tcp_series, received)},
        {"istio_tcp_connections_failed_total", "Counter of TCP connections that failed.",
         offsetof(struct tcp_series, failed)},
    };
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
        textbuf_printf(r, "# HELP %s %s\n# TYPE %s counter\n", families[f].name, families[f].help,
                       families[f].name);
        struct render_ctx c = {r, families[f].name, families[f].off};
        series_table_each(m->table, render_one, &c);
    }
}

size_t tcp_metrics_series(const struct tcp_metrics *m)
{
    return series_table_count(m->table);
}

uint64_t tcp_metrics_dropped(const struct tcp_metrics *m)
{
    return series_table_dropped(m->table);
}

#define SET_STR(l, i, s) str_copy((l)->v[i], sizeof((l)->v[i]), (s))

void tcp_labels_from_record(const struct conn_record *rec, struct tcp_labels *out)
{
    memset(out, 0, sizeof(*out));
    bool outbound = strcmp(rec->direction, "outbound") == 0;
    char ns[TCP_LABEL_MAX] = "", name[TCP_LABEL_MAX] = "";
    const char *slash = strchr(rec->pod, '/');
    if (slash && (size_t)(slash - rec->pod) < sizeof(ns)) {
        memcpy(ns, rec->pod, (size_t)(slash - rec->pod));
        ns[slash - rec->pod] = '\0';
        str_copy(name, sizeof(name), slash + 1);
    }
    SET_STR(out, TL_REPORTER, outbound ? "source" : "destination");
    SET_STR(out, outbound ? TL_SOURCE_WORKLOAD : TL_DESTINATION_WORKLOAD, name);
    SET_STR(out, outbound ? TL_SOURCE_WORKLOAD_NAMESPACE : TL_DESTINATION_WORKLOAD_NAMESPACE, ns);
    if (rec->peer_identity[0])
        SET_STR(out, outbound ? TL_DESTINATION_PRINCIPAL : TL_SOURCE_PRINCIPAL, rec->peer_identity);
    SET_STR(out, TL_SOURCE_CLUSTER, "Kubernetes");
    SET_STR(out, TL_DESTINATION_CLUSTER, "Kubernetes");
    SET_STR(out, TL_REQUEST_PROTOCOL, "tcp");
    SET_STR(out, TL_RESPONSE_FLAGS, resp_flag_name(rec->response_flag));
    /* The same-node fast path had no TLS (docs/SECURITY.md): "none", said
     * by both reporters, with both principals (the enrolled identities). */
    SET_STR(out, TL_CONNECTION_SECURITY_POLICY,
            rec->hbone.family ? "mutual_tls"
            : rec->local      ? "none"
            : outbound        ? "unknown"
                              : "none");
}
