/* Binding enrolled pods to their Pod objects (see pod_source.h). */
#include "enroll/pod_source.h"

#include <stdio.h>
#include <string.h>

#include "config/model.h"
#include "core/addr.h"

const struct cfg_pod *pod_source_object(const struct cfg_snapshot *snap, const struct pod *pod)
{
    return snap ? cfg_find(snap, CFG_POD, pod->ns, pod->name) : NULL;
}

const struct cfg_labels *pod_source_labels(const struct cfg_snapshot *snap, const struct pod *pod)
{
    const struct cfg_pod *obj = pod_source_object(snap, pod);
    return obj ? &obj->meta.labels : NULL;
}

static bool ips_contain(const struct cfg_ips *ips, const struct meshd_addr *a)
{
    for (size_t i = 0; i < ips->n; i++) {
        struct meshd_addr b = ips->v[i];
        b.port = 0;
        if (addr_equal(&b, a))
            return true;
    }
    return false;
}

static enum pod_binding bind_as(struct pod *pod, enum pod_binding b, const char *why)
{
    pod->binding = b;
    snprintf(pod->binding_why, sizeof(pod->binding_why), "%s", why);
    return b;
}

enum pod_binding pod_source_bind(const struct cfg_snapshot *snap, const char *node, struct pod *pod)
{
    char why[sizeof(pod->binding_why)];
    const struct cfg_pod *obj = pod_source_object(snap, pod);
    if (!obj) {
        pod_take_claims(pod);
        if (pod->claimed_sa[0])
            return bind_as(pod, POD_BY_CALLER,
                           "no Pod object in the configuration; service account as enrolled");
        return bind_as(pod, POD_PENDING,
                       "no Pod object in the configuration and no service account given: "
                       "traffic refused until the Pod is known");
    }
    const char *sa = obj->service_account ? obj->service_account : "default";
    if (node && obj->node && obj->node[0] && strcmp(obj->node, node) != 0) {
        snprintf(why, sizeof(why), "the Pod object is scheduled on node %.64s, not on %.64s",
                 obj->node, node);
        pod_take_claims(pod);
        return bind_as(pod, POD_CONFLICT, why);
    }
    if (pod->claimed_sa[0] && strcmp(pod->claimed_sa, sa) != 0) {
        snprintf(why, sizeof(why),
                 "service account \"%.64s\" was given, the Pod object says \"%.64s\"",
                 pod->claimed_sa, sa);
        pod_take_claims(pod);
        return bind_as(pod, POD_CONFLICT, why);
    }
    for (size_t i = 0; i < pod->nclaimed_ips; i++) {
        if (obj->ips.n && !ips_contain(&obj->ips, &pod->claimed_ips[i])) {
            char a[ADDR_STRLEN];
            addr_format_ip(&pod->claimed_ips[i], a, sizeof(a));
            snprintf(why, sizeof(why), "address %s was given, the Pod object does not have it", a);
            pod_take_claims(pod);
            return bind_as(pod, POD_CONFLICT, why);
        }
    }
    snprintf(pod->sa, sizeof(pod->sa), "%s", sa);
    if (pod->nclaimed_ips || obj->ips.n == 0) {
        memcpy(pod->ips, pod->claimed_ips, sizeof(pod->ips));
        pod->nips = pod->nclaimed_ips;
    } else {
        pod->nips = 0;
        for (size_t i = 0; i < obj->ips.n && pod->nips < POD_MAX_IPS; i++) {
            pod->ips[pod->nips] = obj->ips.v[i];
            pod->ips[pod->nips++].port = 0;
        }
    }
    return bind_as(pod, POD_BY_CLUSTER,
                   "service account, addresses and labels from the Pod object");
}
