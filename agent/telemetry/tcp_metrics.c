/* Istio's TCP metrics: bounded series table and exposition (see header). */
#include "telemetry/tcp_metrics.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "admin/http.h"
#include "proxy/records.h"

#define BUCKETS 4096

static const char *const label_names[TL__COUNT] = {
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_canonical_service",
    "source_canonical_revision",
    "source_cluster",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_cluster",
    "request_protocol",
    "response_flags",
    "connection_security_policy",
};

struct series {
    struct tcp_labels labels;
    uint64_t opened, closed, sent, received, failed;
    int64_t open_now;
    uint64_t updated_ns;
    struct series *next;
};

struct tcp_metrics {
    struct series *bucket[BUCKETS];
    size_t count;
    uint64_t dropped, expiry_ns;
};

const char *tcp_label_name(enum tcp_label l)
{
    return (unsigned)l < TL__COUNT ? label_names[l] : "?";
}

int tcp_metrics_new(uint64_t expiry_ns, struct tcp_metrics **out)
{
    struct tcp_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->expiry_ns = expiry_ns;
    *out = m;
    return 0;
}

void tcp_metrics_free(struct tcp_metrics *m)
{
    if (!m)
        return;
    for (size_t b = 0; b < BUCKETS; b++)
        for (struct series *s = m->bucket[b], *n; s; s = n) {
            n = s->next;
            free(s);
        }
    free(m);
}

static uint32_t labels_hash(const struct tcp_labels *l)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < TL__COUNT; i++) {
        for (const char *c = l->v[i]; *c; c++)
            h = (h ^ (uint8_t)*c) * 16777619u;
        h = (h ^ 0xff) * 16777619u; /* separator: ("ab","c") != ("a","bc") */
    }
    return h;
}

static bool labels_equal(const struct tcp_labels *a, const struct tcp_labels *b)
{
    for (int i = 0; i < TL__COUNT; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            return false;
    return true;
}

/* The series for these labels, created if there is room; NULL otherwise. */
static struct series *series_get(struct tcp_metrics *m, const struct tcp_labels *l)
{
    uint32_t b = labels_hash(l) % BUCKETS;
    for (struct series *s = m->bucket[b]; s; s = s->next)
        if (labels_equal(&s->labels, l))
            return s;
    if (m->count >= TCP_METRICS_MAX_SERIES) {
        m->dropped++;
        return NULL;
    }
    struct series *s = calloc(1, sizeof(*s));
    if (!s) {
        m->dropped++;
        return NULL;
    }
    s->labels = *l;
    s->next = m->bucket[b];
    m->bucket[b] = s;
    m->count++;
    return s;
}

void tcp_metrics_opened(struct tcp_metrics *m, const struct tcp_labels *l, uint64_t now_ns)
{
    struct series *s = series_get(m, l);
    if (!s)
        return;
    s->opened++;
    s->open_now++;
    s->updated_ns = now_ns;
}

void tcp_metrics_closed(struct tcp_metrics *m, const struct tcp_labels *l, uint64_t sent,
                        uint64_t received, int failed, uint64_t now_ns)
{
    struct series *s = series_get(m, l);
    if (!s)
        return;
    s->closed++;
    s->open_now--;
    s->sent += sent;
    s->received += received;
    s->failed += failed ? 1 : 0;
    s->updated_ns = now_ns;
}

void tcp_metrics_expire(struct tcp_metrics *m, uint64_t now_ns)
{
    for (size_t b = 0; b < BUCKETS; b++) {
        for (struct series **pp = &m->bucket[b]; *pp;) {
            struct series *s = *pp;
            if (s->open_now <= 0 && now_ns - s->updated_ns > m->expiry_ns) {
                *pp = s->next;
                free(s);
                m->count--;
            } else {
                pp = &s->next;
            }
        }
    }
}

/* Label values escaped per the exposition format: \ " and newline. */
static void render_labels(struct http_response *r, const struct tcp_labels *l)
{
    http_printf(r, "{");
    for (int i = 0; i < TL__COUNT; i++) {
        const char *v = l->v[i][0] ? l->v[i] : "unknown";
        http_printf(r, "%s%s=\"", i ? "," : "", label_names[i]);
        for (const char *c = v; *c; c++) {
            if (*c == '\\' || *c == '"')
                http_printf(r, "\\%c", *c);
            else if (*c == '\n')
                http_printf(r, "\\n");
            else
                http_printf(r, "%c", *c);
        }
        http_printf(r, "\"");
    }
    http_printf(r, "}");
}

void tcp_metrics_render(const struct tcp_metrics *m, struct http_response *r)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } families[] = {
        {"istio_tcp_connections_opened_total", "Counter of TCP connections opened.",
         offsetof(struct series, opened)},
        {"istio_tcp_connections_closed_total", "Counter of TCP connections closed.",
         offsetof(struct series, closed)},
        {"istio_tcp_sent_bytes_total", "Bytes sent during a TCP connection.",
         offsetof(struct series, sent)},
        {"istio_tcp_received_bytes_total", "Bytes received during a TCP connection.",
         offsetof(struct series, received)},
        {"istio_tcp_connections_failed_total", "Counter of TCP connections that failed.",
         offsetof(struct series, failed)},
    };
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
        http_printf(r, "# HELP %s %s\n# TYPE %s counter\n", families[f].name, families[f].help,
                    families[f].name);
        for (size_t b = 0; b < BUCKETS; b++) {
            for (const struct series *s = m->bucket[b]; s; s = s->next) {
                http_printf(r, "%s", families[f].name);
                render_labels(r, &s->labels);
                http_printf(
                    r, " %llu\n",
                    (unsigned long long)*(const uint64_t *)((const char *)s + families[f].off));
            }
        }
    }
}

size_t tcp_metrics_series(const struct tcp_metrics *m)
{
    return m->count;
}

uint64_t tcp_metrics_dropped(const struct tcp_metrics *m)
{
    return m->dropped;
}

#define SET(l, i, ...) snprintf((l)->v[i], sizeof((l)->v[i]), __VA_ARGS__)

void tcp_labels_from_record(const struct conn_record *rec, struct tcp_labels *out)
{
    memset(out, 0, sizeof(*out));
    bool outbound = strcmp(rec->direction, "outbound") == 0;
    char ns[TCP_LABEL_MAX] = "", name[TCP_LABEL_MAX] = "";
    const char *slash = strchr(rec->pod, '/');
    if (slash && (size_t)(slash - rec->pod) < sizeof(ns)) {
        memcpy(ns, rec->pod, (size_t)(slash - rec->pod));
        ns[slash - rec->pod] = '\0';
        snprintf(name, sizeof(name), "%s", slash + 1);
    }
    SET(out, TL_REPORTER, "%s", outbound ? "source" : "destination");
    SET(out, outbound ? TL_SOURCE_WORKLOAD : TL_DESTINATION_WORKLOAD, "%s", name);
    SET(out, outbound ? TL_SOURCE_WORKLOAD_NAMESPACE : TL_DESTINATION_WORKLOAD_NAMESPACE, "%s", ns);
    if (rec->peer_identity[0])
        SET(out, outbound ? TL_DESTINATION_PRINCIPAL : TL_SOURCE_PRINCIPAL, "%.*s",
            TCP_LABEL_MAX - 1, rec->peer_identity);
    SET(out, TL_SOURCE_CLUSTER, "Kubernetes");
    SET(out, TL_DESTINATION_CLUSTER, "Kubernetes");
    SET(out, TL_REQUEST_PROTOCOL, "tcp");
    SET(out, TL_RESPONSE_FLAGS, "%s", resp_flag_name(rec->response_flag));
    SET(out, TL_CONNECTION_SECURITY_POLICY, "%s",
        rec->hbone.family ? "mutual_tls"
        : outbound        ? "unknown"
                          : "none");
}
