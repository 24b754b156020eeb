/* Telemetry resources deciding access logging, with Istio's precedence:
 * a workload's Telemetry (its namespace, selector matching) overrides its
 * namespace's (no selector), which overrides the mesh's (root namespace,
 * no selector). Within the deciding resource, the accessLogging entries
 * whose match mode covers this side (CLIENT: the source's report,
 * SERVER: the destination's; default both) decide: logging is on when
 * one names the envoy provider (or none, the default provider) and is not
 * `disabled: true`. A level without an applicable entry defers upward. */
#ifndef MESHD_POLICY_TELEMETRY_H
#define MESHD_POLICY_TELEMETRY_H

#include <stdbool.h>

#include "config/config.h"

struct access_log_decision {
    bool enabled;
    const struct cfg_telemetry *by; /* NULL: no Telemetry applies (off) */
};

void telemetry_access_log(const struct cfg_snapshot *s, const char *ns,
                          const struct cfg_labels *labels, bool server_side,
                          struct access_log_decision *out);

/* Tracing, with Istio's merge: the mesh's (root namespace) tracing
 * entries, then the namespace's, then the workload's, each applicable
 * entry (match mode covering this side) overriding what it sets:
 * providers, randomSamplingPercentage, disableSpanReporting; customTags
 * merged by name, the nearer level's winning. Without any, the mesh
 * defaults: the default provider, Istio's 1% sampling. */
#define TELEMETRY_DEFAULT_SAMPLING_PPM 10000 /* meshConfig defaultConfig.tracing.sampling 1.0 */
#define TELEMETRY_MAX_TAGS             16

struct tracing_decision {
    uint32_t sampling_ppm;
    bool disable_span_reporting;
    const struct cfg_strs *providers;                      /* NULL or empty: the default provider */
    const struct cfg_custom_tag *tags[TELEMETRY_MAX_TAGS]; /* borrowed from the snapshot */
    size_t ntags;
    const struct cfg_telemetry *by; /* the nearest resource that set anything; NULL: defaults */
};

void telemetry_tracing(const struct cfg_snapshot *s, const char *ns,
                       const struct cfg_labels *labels, bool server_side,
                       struct tracing_decision *out);

#endif
