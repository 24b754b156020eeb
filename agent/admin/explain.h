/* What the configuration means for one workload, as an operator asks it
 * (meshctl over the control socket, or offline on YAML):
 *
 *   explain_routes  every service VIP:port as this workload's connections
 *                   to it would be routed: VirtualService and route,
 *                   destinations with weights, DestinationRule, load
 *                   balancer, ready endpoints (istioctl proxy-config routes)
 *   explain_tls     the mTLS mode each of the workload's ports accepts and
 *                   the PeerAuthentication that decided it, its identity,
 *                   and how mesh clients reach it (istioctl authn tls-check)
 *
 * Pure functions of a snapshot, built on the same code the data path runs
 * (route/resolve, policy/peerauth), so what they show is what happens.
 * Workloads are named "ns/name", "name.ns" (istioctl's form) or "name" (in
 * "default"). NULL with `err` set when the snapshot has no such Pod or
 * WorkloadEntry. */
#ifndef MESHD_ADMIN_EXPLAIN_H
#define MESHD_ADMIN_EXPLAIN_H

#include <stddef.h>

#include <jansson.h>

#include "config/config.h"

/* `service` (optional) narrows to one host, resolved in the workload's
 * namespace. */
json_t *explain_routes(const struct cfg_snapshot *s, const char *workload, const char *service,
                       char *err, size_t errlen);
json_t *explain_tls(const struct cfg_snapshot *s, const char *trust_domain, const char *workload,
                    char *err, size_t errlen);

#endif
