/* Where an enrolled pod's identity comes from: the cluster, not the caller.
 *
 * A CNI runtime knows a pod's namespace, name and netns, nothing else worth
 * trusting. When the configuration holds the pod's Pod object, its
 * serviceAccountName, IPs, node and labels are authoritative; what the
 * enrolling caller claimed (--sa, --ip) must agree with them. Without a Pod
 * object a caller's explicit service account stands (a laptop, a test);
 * with neither the pod is pending and fails closed: no certificate, inbound
 * refused, outbound refused, until its Pod object arrives. Never a default
 * identity.
 *
 * Policies select the pod by its enrolled namespace and its Pod object's
 * labels, never by whichever resource first names its IP (a ServiceEntry or
 * WorkloadEntry elsewhere claiming the address changes nothing). */
#ifndef MESHD_ENROLL_POD_SOURCE_H
#define MESHD_ENROLL_POD_SOURCE_H

#include "config/config.h"
#include "enroll/pods.h"

/* Sets pod->binding, ->binding_why, ->sa and ->ips from `snap` (may be NULL:
 * no configuration yet) and the pod's claims, for an agent on `node`.
 * Returns the new binding. */
enum pod_binding pod_source_bind(const struct cfg_snapshot *snap, const char *node,
                                 struct pod *pod);

/* The pod's Pod object in `snap`, by its enrolled namespace and name, or
 * NULL. */
const struct cfg_pod *pod_source_object(const struct cfg_snapshot *snap, const struct pod *pod);

/* The labels policies select the pod by: its Pod object's, or NULL (only
 * selector-less policies apply). */
const struct cfg_labels *pod_source_labels(const struct cfg_snapshot *snap, const struct pod *pod);

/* Whether the pod may carry traffic (its identity is known). */
static inline bool pod_source_bound(const struct pod *pod)
{
    return pod->binding == POD_BY_CLUSTER || pod->binding == POD_BY_CALLER;
}

#endif
