/* Tracing for the HTTP carriers: a span per request at each agent the
 * request crosses, CLIENT at the source, SERVER at the destination, with
 * Istio's (Envoy's) span attributes, exported in OTLP (telemetry/otlp.h).
 *
 * A carrier calls tracer_begin when a request's head arrived (the trace
 * context it brought, the sampling decision from the pod's Telemetry
 * resources: policy/telemetry.h telemetry_tracing, customTags resolved),
 * sends trace_fields() upstream, and hands the span back with the request's
 * record when it is reported (tracer_end): a sampled span, unless
 * disableSpanReporting, is queued for export then, to the provider the
 * Telemetry resources name (the first of theirs the agent has), else the
 * default one. A span whose Telemetry names only providers the agent does
 * not have is propagated, never exported.
 *
 * Span name as Istio's route decorator: "<service FQDN>:<port>/\*", the
 * request's authority when no service is known. Resource service.name:
 * "<canonical service>.<namespace>" of the agent's workload in the request
 * (the source pod for CLIENT, the destination pod for SERVER). */
#ifndef MESHD_TELEMETRY_TRACER_H
#define MESHD_TELEMETRY_TRACER_H

#include <stdbool.h>
#include <stdint.h>

#include "http/message.h"
#include "telemetry/otlp.h"
#include "trace/trace.h"

struct cfg_store;
struct conn_record;
struct http_request_record;
struct loop;

#define TRACER_MAX_EXPORTERS 4

struct tracer_opts {
    const struct cfg_store *config; /* borrowed */
    const char *node;               /* node_id */
    const char *mesh_id;            /* istio.mesh_id; NULL: "cluster.local" */
    /* One exporter per provider, named by export[i].collector.name. */
    struct otlp_opts exporters[TRACER_MAX_EXPORTERS];
    size_t nexporters;
    const char *default_provider; /* MeshConfig defaultProviders.tracing; NULL: the first */
};

struct tracer_stats {
    uint64_t sampled, not_sampled; /* spans begun, by decision */
    struct otlp_stats otlp;
};

struct tracer;

int tracer_new(struct loop *loop, const struct tracer_opts *opts, struct tracer **out);
void tracer_free(struct tracer *t); /* accepts NULL */

/* `out` for a request of pod ns/name (server: the destination side).
 * t NULL: out is an inactive span (the request's fields pass as sent). */
void tracer_begin(struct tracer *t, const char *ns, const char *name, bool server,
                  const struct http_request_view *req, struct trace_span *out);
/* The request's record, labels filled (conn: its connection, NULL if
 * none): the span's end. Does nothing for t or s NULL, or s not reported. */
void tracer_end(struct tracer *t, const struct trace_span *s, const struct http_request_record *r,
                const struct conn_record *conn);
void tracer_get_stats(const struct tracer *t, struct tracer_stats *out);

/* A connection carried as bytes closed (`labels`: its Istio labels): a
 * span of its own (tracer_tcp.c) when a Telemetry resource's tracing
 * applies to its pod and samples it. Requests' connections are skipped. */
struct tcp_labels;
void tracer_connection(struct tracer *t, const struct conn_record *rec,
                       const struct tcp_labels *labels);

/* customTags `environment` reads the agent's environment, which is not a
 * pod's and may hold what no Telemetry author should read: only names
 * starting ISTIO_META_ (Istio's metadata variables) or MESHD_TAG_ are
 * read; any other gets its defaultValue. */
bool tracer_env_allowed(const char *name);

/* The span of `s` and `r` as OTLP describes it (attrs: room for
 * TRACER_MAX_ATTRS, strings borrowed from the inputs and `scratch`), and
 * its resource's service.name into `service`. Exposed for tests. */
#define TRACER_MAX_ATTRS 48
struct tracer_scratch {
    char name[320], url[1024], peer[64], cluster[320], service[160], mesh_id[128];
};
void tracer_span_of(const struct trace_span *s, const struct http_request_record *r,
                    const struct conn_record *conn, const char *node, const char *mesh_id,
                    struct otlp_span *out, struct otlp_attr *attrs, struct tracer_scratch *scratch);
/* The same for a connection's span (a new trace: `s` from trace_span_begin). */
void tracer_conn_span_of(const struct trace_span *s, const struct conn_record *rec,
                         const struct tcp_labels *labels, const char *node, const char *mesh_id,
                         struct otlp_span *out, struct otlp_attr *attrs,
                         struct tracer_scratch *scratch);

#endif
