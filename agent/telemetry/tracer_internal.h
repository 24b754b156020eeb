/* The tracer's state, shared by its files (tracer.c: requests,
 * tracer_tcp.c: connections carried as bytes). */
#ifndef MESHD_TELEMETRY_TRACER_INTERNAL_H
#define MESHD_TELEMETRY_TRACER_INTERNAL_H

#include "config/config.h"
#include "telemetry/otlp.h"
#include "telemetry/tracer.h"

struct tracer {
    struct tracer_opts o;
    struct otlp *otlp[TRACER_MAX_EXPORTERS];
    size_t n;
    size_t default_index;
    uint64_t sampled, not_sampled;
};

/* The exporter of the first provider named that the agent has; the
 * default one when none is named; -1 when only others are. */
int tracer_exporter_for(const struct tracer *t, const struct cfg_strs *providers);

/* The agent's own workload in a span (the source's for CLIENT, the
 * destination's for SERVER): canonical service, revision, namespace
 * ("unknown" when unlabelled), and into x the resource's service.name
 * ("<service>.<namespace>") and the mesh id. */
struct tracer_workload {
    const char *service, *revision, *ns;
};
struct tcp_labels;
void tracer_workload_of(const struct tcp_labels *l, bool server, const char *mesh_id,
                        struct tracer_workload *w, struct tracer_scratch *x);

#endif
