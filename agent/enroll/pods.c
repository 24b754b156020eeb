/* Pod enrollment registry (see pods.h); its file, pods.json, is
 * pods_state.c. */
#include "enroll/pods.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture/capture.h"
#include "core/addr.h"
#include "core/k8sname.h"
#include "core/log.h"
#include "core/netns.h"
#include "enroll/pods_state.h"

struct pods {
    struct capture *capture; /* borrowed */
    char *state_file;
    struct pod_hooks hooks[PODS_MAX_HOOKS];
    size_t nhooks;
    struct pod *head;
    size_t count;
    uint32_t next_id;
    pod_bind_fn bind;
    void *bind_ctx;
};

const char *pod_binding_name(enum pod_binding b)
{
    switch (b) {
    case POD_BY_CLUSTER:
        return "cluster";
    case POD_BY_CALLER:
        return "enrolled";
    case POD_CONFLICT:
        return "conflict";
    case POD_PENDING:
        break;
    }
    return "pending";
}

void pods_set_binder(struct pods *p, pod_bind_fn bind, void *ctx)
{
    p->bind = bind;
    p->bind_ctx = ctx;
}

void pod_take_claims(struct pod *pod)
{
    snprintf(pod->sa, sizeof(pod->sa), "%s", pod->claimed_sa);
    memcpy(pod->ips, pod->claimed_ips, sizeof(pod->ips));
    pod->nips = pod->nclaimed_ips;
}

static enum pod_binding pod_bind(struct pods *p, struct pod *pod)
{
    if (p->bind)
        return p->bind(p->bind_ctx, pod);
    pod_take_claims(pod);
    pod->binding = pod->claimed_sa[0] ? POD_BY_CALLER : POD_PENDING;
    snprintf(pod->binding_why, sizeof(pod->binding_why), "%s",
             pod->claimed_sa[0] ? "service account as enrolled" : "no service account");
    return pod->binding;
}

void pods_rebind(struct pods *p, pod_rebound_fn rebound, void *ctx)
{
    for (struct pod *pod = p->head; pod; pod = pod->next) {
        enum pod_binding was = pod->binding;
        char sa[sizeof(pod->sa)];
        memcpy(sa, pod->sa, sizeof(sa));
        enum pod_binding now = pod_bind(p, pod);
        if (now == was && strcmp(sa, pod->sa) == 0)
            continue;
        if (now == POD_CONFLICT || now == POD_PENDING)
            log_warn("pods: %s/%s is now %s: %s; its traffic is refused", pod->ns, pod->name,
                     pod_binding_name(now), pod->binding_why);
        else
            log_info("pods: %s/%s is now bound by %s as service account %s", pod->ns, pod->name,
                     pod_binding_name(now), pod->sa);
        if (rebound)
            rebound(ctx, pod);
    }
}

int pods_new(struct capture *capture, const char *state_file, const struct pod_hooks *hooks,
             size_t nhooks, struct pods **out)
{
    if (nhooks > PODS_MAX_HOOKS)
        return -EINVAL;
    struct pods *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    if (state_file && !(p->state_file = strdup(state_file))) {
        free(p);
        return -ENOMEM;
    }
    p->capture = capture;
    memcpy(p->hooks, hooks, nhooks * sizeof(*hooks));
    p->nhooks = nhooks;
    p->next_id = 1;
    *out = p;
    return 0;
}

static void pod_detach(struct pods *p, struct pod *pod, size_t n)
{
    while (n-- > 0)
        p->hooks[n].detach(p->hooks[n].ctx, pod);
}

static int pod_attach(struct pods *p, struct pod *pod)
{
    for (size_t i = 0; i < p->nhooks; i++) {
        int rc = p->hooks[i].attach(p->hooks[i].ctx, pod);
        if (rc < 0) {
            pod_detach(p, pod, i);
            return rc;
        }
    }
    return 0;
}

static void pod_release(struct pods *p, struct pod *pod)
{
    /* Map entry first: from here on the pod's connects go direct, never to
     * a listener that is closing. A handover keeps it: the pod's connects
     * are refused until the next agent listens again (fail closed). */
    if (!pod->handover)
        capture_unenroll(p->capture, pod->netns_cookie);
    pod_detach(p, pod, p->nhooks);
    close(pod->netns_fd);
    free(pod);
}

void pods_quiesce(struct pods *p)
{
    for (struct pod *pod = p ? p->head : NULL; pod; pod = pod->next)
        for (size_t n = p->nhooks; n-- > 0;)
            if (p->hooks[n].quiesce)
                p->hooks[n].quiesce(p->hooks[n].ctx, pod);
}

void pods_free(struct pods *p, bool handover)
{
    if (!p)
        return;
    while (p->head) {
        struct pod *pod = p->head;
        p->head = pod->next;
        pod->handover = handover;
        if (!handover)
            log_info("pods: unenrolled %s/%s", pod->ns, pod->name);
        pod_release(p, pod);
    }
    if (!handover && p->state_file && unlink(p->state_file) == -1 && errno != ENOENT)
        log_warn("pods: cannot remove %s: %s", p->state_file, strerror(errno));
    free(p->state_file);
    free(p);
}

int pods_parse_ref(const char *ref, char *ns, char *name)
{
    const char *slash = strchr(ref, '/');
    if (!slash || (size_t)(slash - ref) > POD_NS_MAX || strlen(slash + 1) > POD_NAME_MAX)
        return -EINVAL;
    memcpy(ns, ref, (size_t)(slash - ref));
    ns[slash - ref] = '\0';
    strcpy(name, slash + 1);
    if (!k8s_name_valid(ns, strlen(ns), POD_NS_MAX, false) ||
        !k8s_name_valid(name, strlen(name), POD_NAME_MAX, true))
        return -EINVAL;
    return 0;
}

static struct pod *pods_find(struct pods *p, const char *ns, const char *name)
{
    for (struct pod *pod = p->head; pod; pod = pod->next)
        if (strcmp(pod->ns, ns) == 0 && strcmp(pod->name, name) == 0)
            return pod;
    return NULL;
}

static int pods_save(struct pods *p)
{
    return p->state_file ? pods_state_save(p->state_file, p->head) : 0;
}

static int pods_add(struct pods *p, const char *ns, const char *name, const struct pod_spec *spec,
                    char *err, size_t errlen)
{
    const char *netns_path = spec->netns_path;
    char ns2[POD_NS_MAX + 1], sa_check[POD_NAME_MAX + 1] = "", ref[POD_NAME_MAX + 4];
    if (spec->sa) {
        snprintf(ref, sizeof(ref), "x/%.*s", POD_NAME_MAX, spec->sa);
        if (pods_parse_ref(ref, ns2, sa_check) != 0) {
            snprintf(err, errlen, "invalid service account \"%.100s\"", spec->sa);
            return -EINVAL;
        }
    }
    if (spec->nips > POD_MAX_IPS) {
        snprintf(err, errlen, "at most %d pod IPs", POD_MAX_IPS);
        return -EINVAL;
    }
    if (pods_find(p, ns, name)) {
        snprintf(err, errlen, "pod %s/%s is already enrolled", ns, name);
        return -EEXIST;
    }
    if (strlen(netns_path) >= sizeof(((struct pod *)0)->netns_path)) {
        snprintf(err, errlen, "netns path too long");
        return -ENAMETOOLONG;
    }
    struct pod *pod = calloc(1, sizeof(*pod));
    if (!pod)
        return -ENOMEM;
    strcpy(pod->ns, ns);
    strcpy(pod->name, name);
    strcpy(pod->netns_path, netns_path);
    strcpy(pod->claimed_sa, sa_check);
    for (size_t i = 0; i < spec->nips; i++) {
        pod->claimed_ips[i] = spec->ips[i];
        pod->claimed_ips[i].port = 0;
    }
    pod->nclaimed_ips = spec->nips;
    /* What the cluster says decides; a contradiction is refused now. */
    if (pod_bind(p, pod) == POD_CONFLICT) {
        snprintf(err, errlen, "%s/%s: %s", ns, name, pod->binding_why);
        free(pod);
        return -EPERM;
    }
    int rc = pod->netns_fd = netns_open(netns_path);
    if (rc < 0) {
        snprintf(err, errlen, "%s is not a network namespace: %s", netns_path, strerror(-rc));
        goto err_free;
    }
    rc = netns_cookie(pod->netns_fd, &pod->netns_cookie);
    if (rc < 0) {
        snprintf(err, errlen, "cannot read the netns cookie of %s: %s", netns_path, strerror(-rc));
        goto err_close;
    }
    for (struct pod *o = p->head; o; o = o->next) {
        if (o->netns_cookie == pod->netns_cookie) {
            snprintf(err, errlen, "netns %s is already enrolled as %s/%s", netns_path, o->ns,
                     o->name);
            rc = -EEXIST;
            goto err_close;
        }
    }
    pod->id = p->next_id++;
    /* Listeners before the map entry: a captured connect never finds the
     * listener missing. */
    rc = pod_attach(p, pod);
    if (rc < 0) {
        snprintf(err, errlen, "cannot open listeners in %s: %s", netns_path, strerror(-rc));
        goto err_close;
    }
    rc = capture_enroll(p->capture, pod->netns_cookie, pod->id);
    if (rc < 0) {
        snprintf(err, errlen, "cannot add %s to the BPF enrollment map: %s", netns_path,
                 strerror(-rc));
        pod_detach(p, pod, p->nhooks);
        goto err_close;
    }
    pod->next = p->head;
    p->head = pod;
    p->count++;
    log_info("pods: enrolled %s/%s (netns %s, cookie %llu, id %u, %s%s%s)", ns, name, netns_path,
             (unsigned long long)pod->netns_cookie, pod->id,
             pod->binding == POD_PENDING ? "pending: " : "service account ",
             pod->binding == POD_PENDING ? pod->binding_why : pod->sa,
             pod->binding == POD_BY_CLUSTER ? " from the Pod object" : "");
    return 0;
err_close:
    close(pod->netns_fd);
err_free:
    free(pod);
    return rc;
}

int pods_enroll(struct pods *p, const struct pod_spec *spec, char *err, size_t errlen)
{
    char ns[POD_NS_MAX + 1], name[POD_NAME_MAX + 1];
    if (pods_parse_ref(spec->ref, ns, name) != 0) {
        snprintf(err, errlen, "invalid pod reference \"%.300s\": want namespace/name", spec->ref);
        return -EINVAL;
    }
    int rc = pods_add(p, ns, name, spec, err, errlen);
    if (rc == 0)
        pods_save(p);
    return rc;
}

int pods_unenroll(struct pods *p, const char *ref, char *err, size_t errlen)
{
    char ns[POD_NS_MAX + 1], name[POD_NAME_MAX + 1];
    if (pods_parse_ref(ref, ns, name) != 0) {
        snprintf(err, errlen, "invalid pod reference \"%.300s\": want namespace/name", ref);
        return -EINVAL;
    }
    for (struct pod **pp = &p->head; *pp; pp = &(*pp)->next) {
        struct pod *pod = *pp;
        if (strcmp(pod->ns, ns) != 0 || strcmp(pod->name, name) != 0)
            continue;
        *pp = pod->next;
        p->count--;
        pod_release(p, pod);
        log_info("pods: unenrolled %s/%s", ns, name);
        pods_save(p);
        return 0;
    }
    snprintf(err, errlen, "pod %s/%s is not enrolled", ns, name);
    return -ENOENT;
}

static void restore_entry(void *ctx, size_t index, const char *ns, const char *name,
                          const struct pod_spec *spec)
{
    struct pods *p = ctx;
    char ref[POD_NS_MAX + POD_NAME_MAX + 2], err[512] = "invalid pod name";
    char vns[POD_NS_MAX + 1], vname[POD_NAME_MAX + 1];
    snprintf(ref, sizeof(ref), "%s/%s", ns, name);
    if (pods_parse_ref(ref, vns, vname) != 0 ||
        pods_add(p, vns, vname, spec, err, sizeof(err)) != 0)
        log_warn("pods: not restoring %s: %s", ref, err);
}

int pods_restore(struct pods *p)
{
    if (p->state_file)
        pods_state_load(p->state_file, restore_entry, p); /* a bad file restores nothing */
    uint64_t *keep = calloc(p->count + 1, sizeof(*keep));
    if (!keep)
        return -ENOMEM;
    size_t n = 0;
    for (struct pod *pod = p->head; pod; pod = pod->next)
        keep[n++] = pod->netns_cookie;
    int rc = capture_prune(p->capture, keep, n);
    free(keep);
    pods_save(p);
    if (n)
        log_info("pods: restored %zu pod(s) from %s", n, p->state_file);
    return rc;
}

const struct pod *pods_find_ip(const struct pods *p, const struct meshd_addr *ip)
{
    struct meshd_addr a = *ip;
    a.port = 0;
    for (const struct pod *pod = p->head; pod; pod = pod->next)
        for (size_t i = 0; i < pod->nips; i++)
            if (addr_equal(&pod->ips[i], &a))
                return pod;
    return NULL;
}

const struct pod *pods_first(const struct pods *p)
{
    return p->head;
}

size_t pods_count(const struct pods *p)
{
    return p->count;
}
