/* Enrollment by label, as Istio ambient: the cluster's labels decide which
 * pods of this node are captured, not a caller.
 *
 * A Pod of this node (spec.nodeName) is wanted when its namespace is in
 * the mesh (istio.io/dataplane-mode=ambient, or istio-injection=enabled
 * without a dataplane mode: cfg_namespace_in_mesh) and the pod does not
 * opt out (istio.io/dataplane-mode=none). Each applied configuration is
 * reconciled: a wanted pod that is not enrolled is enrolled (its netns as
 * the CNI plugin reported it, else found among the node's namespaces by
 * the Pod object's IPs: netns_scan.h), and an enrolled pod that is no
 * longer wanted (namespace relabelled, pod opted out, Pod object gone) is
 * released; running pods are never restarted. A pod enrolled by a caller
 * (meshctl enroll) without a Pod object is left alone.
 *
 * The CNI plugin's ADD (meshd-cni, over the admin socket) enrolls at once
 * when the pod is wanted (or its Pod object is not known yet but its
 * namespace is in the mesh: pending, fail closed, until the object comes);
 * its DEL releases. Both are idempotent. An address found in two
 * namespaces is ambiguous and enrolls nothing (logged). */
#ifndef MESHD_ENROLL_AUTOENROLL_H
#define MESHD_ENROLL_AUTOENROLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "enroll/pods.h"

#define AUTOENROLL_CNI_MAX 4096 /* pods the CNI plugin told of, remembered */

struct autoenroll;

struct autoenroll_opts {
    const char *node;
    const char *netns_dir; /* NULL: /var/run/netns */
    bool scan_proc;        /* also /proc/PID/ns/net */
};

struct autoenroll_stats {
    uint64_t enrolled, released, failed, ambiguous, cni_adds, cni_dels;
};

int autoenroll_new(struct pods *pods, const struct autoenroll_opts *opts, struct autoenroll **out);
void autoenroll_free(struct autoenroll *a);

/* Enrolls what is wanted and releases what is not, against `snap`. */
void autoenroll_reconcile(struct autoenroll *a, const struct cfg_snapshot *snap);

struct autoenroll_cni {
    const char *ns, *name, *uid, *netns;
};

/* ADD: 1 enrolled (or already), 0 not in the mesh, -errno with err set
 * (the plugin fails the ADD, the runtime retries). */
int autoenroll_cni_add(struct autoenroll *a, const struct cfg_snapshot *snap,
                       const struct autoenroll_cni *c, char *err, size_t errlen);
/* DEL: released if enrolled; always succeeds. Returns 1 if released. */
int autoenroll_cni_del(struct autoenroll *a, const char *ns, const char *name);
void autoenroll_stats(const struct autoenroll *a, struct autoenroll_stats *out);

/* Whether a pod is wanted by the labels (exposed for tests). */
bool autoenroll_wanted(const struct cfg_snapshot *snap, const char *ns,
                       const struct cfg_labels *pod_labels);

#endif
