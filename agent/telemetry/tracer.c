/* Spans of the HTTP carriers (see tracer.h): the decision at a request's
 * start, the attributes at its end. */
#include "telemetry/tracer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/store.h"
#include "core/addr.h"
#include "policy/telemetry.h"
#include "proxy/records.h"
#include "telemetry/http_metrics.h"
#include "telemetry/tracer_internal.h"

void tracer_free(struct tracer *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        otlp_free(t->otlp[i]);
    free(t);
}

int tracer_new(struct loop *loop, const struct tracer_opts *opts, struct tracer **out)
{
    if (!opts->nexporters || opts->nexporters > TRACER_MAX_EXPORTERS)
        return -EINVAL;
    struct tracer *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->o = *opts;
    for (size_t i = 0; i < opts->nexporters; i++) {
        int err = otlp_new(loop, &t->o.exporters[i], &t->otlp[i]);
        if (err) {
            tracer_free(t);
            return err;
        }
        t->n++;
        if (opts->default_provider &&
            strcmp(opts->exporters[i].collector.name, opts->default_provider) == 0)
            t->default_index = i;
    }
    *out = t;
    return 0;
}

static uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int tracer_exporter_for(const struct tracer *t, const struct cfg_strs *providers)
{
    if (!providers || !providers->n)
        return (int)t->default_index;
    for (size_t i = 0; i < providers->n; i++)
        for (size_t e = 0; e < t->n; e++)
            if (strcmp(providers->v[i], t->o.exporters[e].collector.name) == 0)
                return (int)e;
    return -1;
}

bool tracer_env_allowed(const char *name)
{
    return strncmp(name, "ISTIO_META_", 11) == 0 || strncmp(name, "MESHD_TAG_", 10) == 0;
}

static void resolve_tags(struct trace_span *s, const struct tracing_decision *d,
                         const struct http_request_view *req)
{
    for (size_t i = 0; i < d->ntags; i++) {
        const struct cfg_custom_tag *tag = d->tags[i];
        const char *v = tag->kind == CFG_TAG_LITERAL ? tag->value
                        : tag->kind == CFG_TAG_HEADER
                            ? trace_field_get(req->headers, req->nheaders, tag->value)
                        : tracer_env_allowed(tag->value) ? getenv(tag->value)
                                                         : NULL;
        if (!v)
            v = tag->default_value;
        if (v && !trace_span_tag(s, tag->name, v))
            break;
    }
}

void tracer_begin(struct tracer *t, const char *ns, const char *name, bool server,
                  const struct http_request_view *req, struct trace_span *out)
{
    *out = (struct trace_span){0};
    if (!t)
        return;
    const struct cfg_snapshot *snap = t->o.config ? cfg_store_current(t->o.config) : NULL;
    const struct cfg_pod *p = snap && ns && name ? cfg_find(snap, CFG_POD, ns, name) : NULL;
    struct tracing_decision d;
    telemetry_tracing(snap, ns, p ? &p->meta.labels : NULL, server, &d);
    struct trace_incoming in;
    trace_extract(req->headers, req->nheaders, &in);
    bool sampled = trace_decide(&in, d.sampling_ppm);
    trace_span_begin(out, &in, sampled, server, realtime_ns());
    int exporter = tracer_exporter_for(t, d.providers);
    out->report = sampled && !d.disable_span_reporting && exporter >= 0;
    out->exporter = exporter >= 0 ? (uint8_t)exporter : 0;
    if (sampled)
        t->sampled++;
    else
        t->not_sampled++;
    if (out->report)
        resolve_tags(out, &d, req);
}

static const char *label(const struct tcp_labels *l, int i)
{
    return l->v[i][0] ? l->v[i] : "unknown";
}

void tracer_workload_of(const struct tcp_labels *l, bool server, const char *mesh_id,
                        struct tracer_workload *w, struct tracer_scratch *x)
{
    w->service = label(l, server ? TL_DESTINATION_CANONICAL_SERVICE : TL_SOURCE_CANONICAL_SERVICE);
    w->revision =
        label(l, server ? TL_DESTINATION_CANONICAL_REVISION : TL_SOURCE_CANONICAL_REVISION);
    w->ns = label(l, server ? TL_DESTINATION_WORKLOAD_NAMESPACE : TL_SOURCE_WORKLOAD_NAMESPACE);
    snprintf(x->service, sizeof(x->service), "%s.%s", w->service, w->ns);
    snprintf(x->mesh_id, sizeof(x->mesh_id), "%s", mesh_id ? mesh_id : "cluster.local");
}

static void push_str(struct otlp_span *o, struct otlp_attr *a, const char *key, const char *v)
{
    if (v && o->nattrs < TRACER_MAX_ATTRS)
        a[o->nattrs++] = (struct otlp_attr){.key = key, .str = v};
}

static void push_int(struct otlp_span *o, struct otlp_attr *a, const char *key, int64_t v)
{
    if (o->nattrs < TRACER_MAX_ATTRS)
        a[o->nattrs++] = (struct otlp_attr){.key = key, .i = v};
}

void tracer_span_of(const struct trace_span *s, const struct http_request_record *r,
                    const struct conn_record *conn, const char *node, const char *mesh_id,
                    struct otlp_span *o, struct otlp_attr *a, struct tracer_scratch *x)
{
    bool server = s->server;
    unsigned port = conn ? ntohs(conn->orig_dst.port) : 0;
    unsigned cluster_port = 0;
    /* A CLIENT span is named for the port the route sent it to, which
     * the cluster names ("outbound|80||..."): a gateway's connection came
     * to its listener (8443), not to the Service's port. */
    if (!server && r->upstream_cluster &&
        sscanf(r->upstream_cluster, "outbound|%5u|", &cluster_port) == 1 && cluster_port &&
        cluster_port <= 65535)
        port = cluster_port;
    const char *svc = r->labels.v[TL_DESTINATION_SERVICE];
    const char *authority = r->authority && *r->authority ? r->authority : "-";
    if (*svc && strcmp(svc, "unknown") != 0)
        snprintf(x->name, sizeof(x->name), "%s:%u/*", svc, port);
    else if (strchr(authority, ':') || !port)
        snprintf(x->name, sizeof(x->name), "%s/*", authority);
    else
        snprintf(x->name, sizeof(x->name), "%s:%u/*", authority, port);
    /* Envoy's http.url: the scheme x-forwarded-proto says (the edge's own
     * at a gateway), only ever http or https. */
    const char *scheme =
        r->forwarded_proto && strcmp(r->forwarded_proto, "https") == 0 ? "https" : "http";
    snprintf(x->url, sizeof(x->url), "%s://%s%s", scheme, authority, r->path ? r->path : "/");
    x->peer[0] = '\0';
    if (conn)
        addr_format_ip(&conn->src, x->peer, sizeof(x->peer));
    if (r->upstream_cluster)
        snprintf(x->cluster, sizeof(x->cluster), "%s", r->upstream_cluster);
    else /* the destination's cluster as Envoy names an inbound one */
        snprintf(x->cluster, sizeof(x->cluster), "inbound|%u||", port);
    struct tracer_workload w;
    tracer_workload_of(&r->labels, server, mesh_id, &w, x);
    *o = (struct otlp_span){.trace_id = s->trace_id,
                            .span_id = s->span_id,
                            .parent_id = s->has_parent ? s->parent_id : NULL,
                            .name = x->name,
                            .kind = server ? OTLP_KIND_SERVER : OTLP_KIND_CLIENT,
                            .start_unix_ns = s->start_real_ns,
                            .end_unix_ns = s->start_real_ns + r->duration_ns,
                            .error = r->response_code == 0 || r->response_code >= 500,
                            .attrs = a};
    push_str(o, a, "http.method", r->method);
    push_str(o, a, "http.url", x->url);
    push_int(o, a, "http.status_code", r->response_code);
    push_str(o, a, "http.protocol", r->protocol);
    push_str(o, a, "upstream_cluster", x->cluster);
    push_str(o, a, "upstream_cluster.name", x->cluster);
    if (x->peer[0])
        push_str(o, a, "peer.address", x->peer);
    if (r->source_principal) /* an ISTIO_MUTUAL gateway's verified client */
        push_str(o, a, "istio.source_principal", r->source_principal);
    push_str(o, a, "istio.canonical_service", w.service);
    push_str(o, a, "istio.canonical_revision", w.revision);
    push_str(o, a, "istio.namespace", w.ns);
    push_str(o, a, "istio.mesh_id", x->mesh_id);
    push_str(o, a, "node_id", node);
    push_str(o, a, "response_flags", r->response_flags ? r->response_flags : "-");
    push_int(o, a, "request_size", (int64_t)r->request_bytes);
    push_int(o, a, "response_size", (int64_t)r->response_bytes);
    push_str(o, a, "user_agent", r->user_agent ? r->user_agent : "-");
    push_str(o, a, "guid:x-request-id", r->request_id);
    push_str(o, a, "component", "proxy");
    if (r->upstream_host)
        push_str(o, a, "upstream.address", r->upstream_host);
    for (size_t i = 0, off = 0; i < s->ntags; i++) { /* customTags last */
        const char *k = s->tags + off, *v = k + strlen(k) + 1;
        push_str(o, a, k, v);
        off = (size_t)(v - s->tags) + strlen(v) + 1;
    }
}

void tracer_end(struct tracer *t, const struct trace_span *s, const struct http_request_record *r,
                const struct conn_record *conn)
{
    if (!t || !s || !s->active || !s->report)
        return;
    struct otlp_span o;
    struct otlp_attr attrs[TRACER_MAX_ATTRS];
    struct tracer_scratch scratch;
    tracer_span_of(s, r, conn, t->o.node, t->o.mesh_id, &o, attrs, &scratch);
    char *json = otlp_span_encode(&o);
    otlp_enqueue(t->otlp[s->exporter < t->n ? s->exporter : 0], scratch.service,
                 json); /* NULL: counted as dropped */
    free(json);
}

void tracer_get_stats(const struct tracer *t, struct tracer_stats *out)
{
    *out = (struct tracer_stats){0};
    if (!t)
        return;
    out->sampled = t->sampled;
    out->not_sampled = t->not_sampled;
    for (size_t i = 0; i < t->n; i++) { /* all providers together */
        struct otlp_stats st;
        otlp_get_stats(t->otlp[i], &st);
        out->otlp.exported += st.exported;
        out->otlp.dropped += st.dropped;
        out->otlp.export_errors += st.export_errors;
        out->otlp.batches += st.batches;
        out->otlp.queued += st.queued;
    }
}
