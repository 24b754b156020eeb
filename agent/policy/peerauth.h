/* PeerAuthentication with Istio's semantics: which mTLS mode applies to a
 * workload's port.
 *
 *   workload policy (same namespace, selector matching its labels)
 *     > namespace policy (its namespace, no selector)
 *       > mesh policy (root namespace, no selector) > PERMISSIVE.
 * Several policies at one level: the first in load order wins (Istio:
 * the oldest). UNSET inherits from the level above; a portLevelMtls entry
 * for the port (the workload's own port) overrides the workload policy's
 * mode, and its UNSET inherits too. */
#ifndef MESHD_POLICY_PEERAUTH_H
#define MESHD_POLICY_PEERAUTH_H

#include <stdint.h>

#include "config/config.h"

struct peerauth_result {
    enum cfg_mtls mode;                       /* never UNSET */
    const struct cfg_peer_authentication *by; /* the deciding policy, or NULL */
};

void peerauth_mode(const struct cfg_snapshot *s, const char *ns, const struct cfg_labels *labels,
                   uint16_t port, struct peerauth_result *out);

#endif
