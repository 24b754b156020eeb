/* Enrollment by label and by the CNI plugin (see autoenroll.h). */
#include "enroll/autoenroll.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"
#include "core/log.h"
#include "core/node_name.h"
#include "enroll/netns_scan.h"
#include "enroll/pod_source.h"

/* A pod the CNI plugin told of: its sandbox's netns, until DEL. */
struct cni_pod {
    char ns[POD_NS_MAX + 1], name[POD_NAME_MAX + 1];
    char uid[64];
    char netns[256];
};

struct autoenroll {
    struct pods *pods; /* borrowed */
    char node[NODE_NAME_MAX + 1];
    char netns_dir[256];
    bool scan_proc;
    struct cni_pod *cni; /* heap, ncni of AUTOENROLL_CNI_MAX */
    size_t ncni;
    struct autoenroll_stats st;
};

int autoenroll_new(struct pods *pods, const struct autoenroll_opts *opts, struct autoenroll **out)
{
    struct autoenroll *a = calloc(1, sizeof(*a));
    if (!a || !(a->cni = calloc(AUTOENROLL_CNI_MAX, sizeof(*a->cni)))) {
        free(a);
        return -ENOMEM;
    }
    a->pods = pods;
    snprintf(a->node, sizeof(a->node), "%s", opts->node);
    snprintf(a->netns_dir, sizeof(a->netns_dir), "%s",
             opts->netns_dir ? opts->netns_dir : "/var/run/netns");
    a->scan_proc = opts->scan_proc;
    *out = a;
    return 0;
}

void autoenroll_free(struct autoenroll *a)
{
    if (!a)
        return;
    free(a->cni);
    free(a);
}

void autoenroll_stats(const struct autoenroll *a, struct autoenroll_stats *out)
{
    *out = a->st;
}

bool autoenroll_wanted(const struct cfg_snapshot *snap, const char *ns,
                       const struct cfg_labels *pod_labels)
{
    const char *mode = pod_labels ? cfg_label(pod_labels, "istio.io/dataplane-mode") : NULL;
    if (mode && strcmp(mode, "none") == 0)
        return false;
    return cfg_namespace_in_mesh(snap, ns);
}

static struct cni_pod *cni_find(struct autoenroll *a, const char *ns, const char *name)
{
    for (size_t i = 0; i < a->ncni; i++)
        if (strcmp(a->cni[i].ns, ns) == 0 && strcmp(a->cni[i].name, name) == 0)
            return &a->cni[i];
    return NULL;
}

/* Remembers a pod's netns (the CNI plugin's word, or found by a scan):
 * the pods this module manages. NULL when the table is full. */
static struct cni_pod *remember(struct autoenroll *a, const char *ns, const char *name,
                                const char *uid, const char *netns)
{
    struct cni_pod *k = cni_find(a, ns, name);
    if (!k && a->ncni >= AUTOENROLL_CNI_MAX)
        return NULL;
    if (!k)
        k = &a->cni[a->ncni++];
    snprintf(k->ns, sizeof(k->ns), "%s", ns);
    snprintf(k->name, sizeof(k->name), "%s", name);
    if (uid)
        snprintf(k->uid, sizeof(k->uid), "%s", uid);
    if (netns != k->netns) /* re-enrolling from the table itself */
        snprintf(k->netns, sizeof(k->netns), "%s", netns);
    return k;
}

static void forget(struct autoenroll *a, const char *ns, const char *name)
{
    struct cni_pod *k = cni_find(a, ns, name);
    if (k)
        *k = a->cni[--a->ncni];
}

static const struct pod *enrolled(const struct autoenroll *a, const char *ns, const char *name)
{
    for (const struct pod *p = pods_first(a->pods); p; p = p->next)
        if (strcmp(p->ns, ns) == 0 && strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

static int enroll(struct autoenroll *a, const char *ns, const char *name, const char *netns,
                  const struct cfg_ips *ips, const char *why, char *err, size_t errlen)
{
    char ref[POD_NS_MAX + POD_NAME_MAX + 2];
    snprintf(ref, sizeof(ref), "%s/%s", ns, name);
    struct pod_spec spec = {.ref = ref, .netns_path = netns};
    for (size_t i = 0; ips && i < ips->n && spec.nips < POD_MAX_IPS; i++)
        spec.ips[spec.nips++] = ips->v[i];
    int rc = pods_enroll(a->pods, &spec, err, errlen);
    if (rc == 0 || rc == -EEXIST)
        remember(a, ns, name, NULL, netns);
    if (rc == 0) {
        a->st.enrolled++;
        log_info("enroll: %s enrolled (%s), netns %s", ref, why, netns);
    } else {
        a->st.failed++;
        log_ratelimited(LOG_WARN, "enroll: %s: %s", ref, err);
    }
    return rc;
}

static void release(struct autoenroll *a, const char *ns, const char *name, const char *why)
{
    char ref[POD_NS_MAX + POD_NAME_MAX + 2], err[256];
    snprintf(ref, sizeof(ref), "%s/%s", ns, name);
    if (pods_unenroll(a->pods, ref, err, sizeof(err)) == 0) {
        a->st.released++;
        log_info("enroll: %s released (%s)", ref, why);
    }
}

/* The netns of the scan holding every one of the pod's IPs; NULL when
 * none, or when more than one does (ambiguous: nothing is enrolled). */
static const char *match_netns(struct autoenroll *a, const struct netns_found *found, size_t n,
                               const struct cfg_workload *w)
{
    const char *hit = NULL;
    int hits = 0;
    for (size_t i = 0; i < n; i++) {
        bool all = w->ips.n > 0;
        for (size_t k = 0; all && k < w->ips.n; k++) {
            bool has = false;
            for (size_t j = 0; j < found[i].nips && !has; j++)
                has = addr_equal(&found[i].ips[j], &w->ips.v[k]);
            all = has;
        }
        if (all) {
            hit = found[i].path;
            hits++;
        }
    }
    if (hits > 1) {
        a->st.ambiguous++;
        log_ratelimited(LOG_WARN, "enroll: %s/%s: its addresses are in %d namespaces: not enrolled",
                        w->ns, w->name, hits);
        return NULL;
    }
    return hit;
}

void autoenroll_reconcile(struct autoenroll *a, const struct cfg_snapshot *snap)
{
    struct netns_found *found = NULL;
    int nfound = -1; /* scanned lazily, once */
    struct cfg_iter it = {0};
    const struct cfg_workload *w;
    char err[512];
    while ((w = cfg_next_on_node(snap, a->node, &it))) {
        if (!w->pod)
            continue;
        bool want = autoenroll_wanted(snap, w->ns, &w->labels);
        const struct pod *p = enrolled(a, w->ns, w->name);
        if (!want && p) {
            release(a, w->ns, w->name,
                    cfg_namespace_in_mesh(snap, w->ns) ? "the pod opted out"
                                                       : "its namespace left the mesh");
            continue;
        }
        if (want && p)
            remember(a, w->ns, w->name, NULL, p->netns_path); /* restored: ours */
        if (!want || p)
            continue;
        const struct cni_pod *c = cni_find(a, w->ns, w->name);
        const char *netns = c ? c->netns : NULL;
        if (!netns && w->ips.n) {
            if (nfound < 0) {
                const char *dirs[] = {a->netns_dir, NULL};
                found = calloc(NETNS_SCAN_MAX, sizeof(*found));
                nfound = found ? netns_scan(dirs, a->scan_proc, found, NETNS_SCAN_MAX) : -ENOMEM;
                if (nfound < 0)
                    log_warn("enroll: scanning the node's namespaces: %s", strerror(-nfound));
            }
            netns = nfound > 0 ? match_netns(a, found, (size_t)nfound, w) : NULL;
        }
        if (netns)
            enroll(a, w->ns, w->name, netns, &w->ips, c ? "CNI" : "running, found by its IPs", err,
                   sizeof(err));
    }
    free(found);
    /* Enrolled pods whose Pod object is gone from a configuration that
     * knows their namespace: the cluster deleted them. */
    for (const struct pod *p = pods_first(a->pods), *next; p; p = next) {
        next = p->next;
        if (!pod_source_object(snap, p) && cfg_find(snap, CFG_NAMESPACE, NULL, p->ns) &&
            cni_find(a, p->ns, p->name)) {
            char ns[POD_NS_MAX + 1], name[POD_NAME_MAX + 1];
            snprintf(ns, sizeof(ns), "%s", p->ns);
            snprintf(name, sizeof(name), "%s", p->name);
            release(a, ns, name, "its Pod object is gone");
            forget(a, ns, name);
        }
    }
}

int autoenroll_cni_add(struct autoenroll *a, const struct cfg_snapshot *snap,
                       const struct autoenroll_cni *c, char *err, size_t errlen)
{
    char ref[POD_NS_MAX + POD_NAME_MAX + 2], ns[POD_NS_MAX + 1], name[POD_NAME_MAX + 1];
    snprintf(ref, sizeof(ref), "%.63s/%.253s", c->ns ? c->ns : "", c->name ? c->name : "");
    if (!c->ns || !c->name || pods_parse_ref(ref, ns, name) != 0) {
        snprintf(err, errlen, "invalid pod \"%.300s\"", ref);
        return -EINVAL;
    }
    if (!c->netns || c->netns[0] != '/' || strlen(c->netns) >= sizeof(a->cni[0].netns)) {
        snprintf(err, errlen, "netns must be an absolute path");
        return -EINVAL;
    }
    if (c->uid && strlen(c->uid) >= sizeof(a->cni[0].uid)) {
        snprintf(err, errlen, "pod UID too long");
        return -EINVAL;
    }
    a->st.cni_adds++;
    const struct pod *p = enrolled(a, ns, name);
    if (!remember(a, ns, name, c->uid ? c->uid : "", c->netns)) {
        snprintf(err, errlen, "too many pods (%d) on this node", AUTOENROLL_CNI_MAX);
        return -ENOSPC;
    }
    if (p && strcmp(p->netns_path, c->netns) == 0)
        return 1; /* a retried ADD */
    if (p)        /* a new sandbox for the same pod: the old one is gone */
        release(a, ns, name, "a new sandbox");
    if (!cfg_find(snap, CFG_NAMESPACE, NULL, ns)) {
        /* Not knowing whether the pod belongs to the mesh, never start it
         * uncaptured: the runtime retries the ADD. */
        snprintf(err, errlen, "namespace %s is not known yet", ns);
        return -EAGAIN;
    }
    const struct cfg_workload *w = NULL;
    struct cfg_iter it = {0};
    while ((w = cfg_next_on_node(snap, a->node, &it)))
        if (w->pod && strcmp(w->ns, ns) == 0 && strcmp(w->name, name) == 0)
            break;
    if (!autoenroll_wanted(snap, ns, w ? &w->labels : NULL))
        return 0;
    int rc = enroll(a, ns, name, c->netns, w ? &w->ips : NULL, "CNI", err, errlen);
    return rc == 0 || rc == -EEXIST ? 1 : rc;
}

int autoenroll_cni_del(struct autoenroll *a, const char *ns, const char *name)
{
    a->st.cni_dels++;
    if (ns && name)
        forget(a, ns, name);
    if (!ns || !name || !enrolled(a, ns, name))
        return 0;
    release(a, ns, name, "CNI DEL");
    return 1;
}
