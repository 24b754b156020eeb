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

#endif
