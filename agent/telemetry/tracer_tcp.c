/* Spans of connections carried as bytes (see tracer.h tracer_connection):
 * Envoy's TCP proxy traces nothing, so this is meshd's own, opt-in: only
 * where a Telemetry resource's tracing applies to the workload (not the
 * mesh defaults alone), sampled at its percentage. A byte stream has no
 * context to carry or take: each sampled connection is a new trace of
 * one span, CLIENT at the source, SERVER at the destination. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/store.h"
#include "enroll/pods.h"
#include "policy/telemetry.h"
#include "proxy/records.h"
#include "proxy/resp_flag.h"
#include "telemetry/tcp_metrics.h"
#include "telemetry/tracer.h"
#include "telemetry/tracer_internal.h"

static const char *lab(const struct tcp_labels *l, int i)
{
    return l->v[i][0] ? l->v[i] : "unknown";
}

void tracer_conn_span_of(const struct trace_span *s, const struct conn_record *rec,
                         const struct tcp_labels *l, const char *node, const char *mesh_id,
                         struct otlp_span *o, struct otlp_attr *a, struct tracer_scratch *x)
{
    bool server = s->server;
    unsigned port = ntohs(rec->orig_dst.port);
    const char *svc = l->v[TL_DESTINATION_SERVICE];
    char dst[ADDR_STRLEN];
    addr_format(&rec->orig_dst, dst, sizeof(dst));
    if (*svc && strcmp(svc, "unknown") != 0)
        snprintf(x->name, sizeof(x->name), "tcp %s:%u", svc, port);
    else
        snprintf(x->name, sizeof(x->name), "tcp %s", dst);
    addr_format_ip(&rec->src, x->peer, sizeof(x->peer));
    addr_format(rec->upstream.family ? &rec->upstream : &rec->orig_dst, x->url, sizeof(x->url));
    snprintf(x->cluster, sizeof(x->cluster), "%s|%u||%s", server ? "inbound" : "outbound", port,
             server ? "" : (*rec->dst_service ? rec->dst_service : "PassthroughCluster"));
    struct tracer_workload w;
    tracer_workload_of(l, server, mesh_id, &w, x);
    uint64_t start = rec->start_unix_ms * 1000000ull;
    *o = (struct otlp_span){.trace_id = s->trace_id,
                            .span_id = s->span_id,
                            .name = x->name,
                            .kind = server ? OTLP_KIND_SERVER : OTLP_KIND_CLIENT,
                            .start_unix_ns = start,
                            .end_unix_ns = start + rec->duration_ms * 1000000ull,
                            .error = rec->error != 0,
                            .attrs = a};
    struct {
        const char *k, *v;
    } strs[] = {{"net.transport", "ip_tcp"},
                {"peer.address", x->peer},
                {"upstream.address", x->url},
                {"upstream_cluster", x->cluster},
                {"upstream_cluster.name", x->cluster},
                {"istio.canonical_service", w.service},
                {"istio.canonical_revision", w.revision},
                {"istio.namespace", w.ns},
                {"istio.mesh_id", x->mesh_id},
                {"node_id", node},
                {"response_flags", resp_flag_name(rec->response_flag)},
                {"connection_security_policy", lab(l, TL_CONNECTION_SECURITY_POLICY)},
                {"component", "proxy"}};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]) && o->nattrs < TRACER_MAX_ATTRS; i++)
        a[o->nattrs++] = (struct otlp_attr){.key = strs[i].k, .str = strs[i].v ? strs[i].v : "-"};
    a[o->nattrs++] = (struct otlp_attr){.key = "request_size", .i = (int64_t)rec->bytes_sent};
    a[o->nattrs++] = (struct otlp_attr){.key = "response_size", .i = (int64_t)rec->bytes_received};
}

void tracer_connection(struct tracer *t, const struct conn_record *rec, const struct tcp_labels *l)
{
    if (!t || !rec || rec->per_request) /* carried per request: its requests have spans */
        return;
    const struct cfg_snapshot *snap = t->o.config ? cfg_store_current(t->o.config) : NULL;
    char ns[POD_NS_MAX + 1], name[POD_NAME_MAX + 1];
    if (!snap || pods_parse_ref(rec->pod, ns, name) != 0)
        return;
    const struct cfg_pod *p = cfg_find(snap, CFG_POD, ns, name);
    bool server = strcmp(rec->direction, "inbound") == 0;
    struct tracing_decision d;
    telemetry_tracing(snap, ns, p ? &p->meta.labels : NULL, server, &d);
    int exporter = tracer_exporter_for(t, d.providers);
    if (!d.by || d.disable_span_reporting || exporter < 0 || !trace_decide(NULL, d.sampling_ppm))
        return;
    struct trace_span s;
    trace_span_begin(&s, NULL, true, server, rec->start_unix_ms * 1000000ull);
    struct otlp_span o;
    struct otlp_attr attrs[TRACER_MAX_ATTRS];
    struct tracer_scratch x;
    tracer_conn_span_of(&s, rec, l, t->o.node, t->o.mesh_id, &o, attrs, &x);
    char *json = otlp_span_encode(&o);
    otlp_enqueue(t->otlp[exporter], x.service, json); /* NULL: counted as dropped */
    free(json);
}
