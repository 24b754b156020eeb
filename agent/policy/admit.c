/* Admission to an enrolled pod: one decision for plaintext inbound, HBONE
 * inbound, the revalidation of open connections and each HTTP request (see
 * admit.h), and the gate the agent hands the proxies as their callbacks. */
#include "policy/admit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/store.h"
#include "core/addr.h"
#include "core/log.h"
#include "enroll/pod_source.h"
#include "pki/pki.h"
#include "policy/authz.h"
#include "policy/authz_http.h"
#include "policy/peerauth.h"
#include "proxy/conns.h"

/* Enough for the policies selecting one pod in any sane mesh; more are
 * gathered on the heap. */
#define ADMIT_STACK_POLICIES 32

const char *admit_reason_name(enum admit_reason r)
{
    static const char *const names[] = {
        [ADMIT_NO_POLICY] = "no_policy",     [ADMIT_POLICY_ALLOWED] = "allowed",
        [ADMIT_NO_CONFIG] = "no_config",     [ADMIT_POD_UNBOUND] = "pod_unbound",
        [ADMIT_MTLS_STRICT] = "mtls_strict", [ADMIT_POLICY_DENIED] = "denied",
        [ADMIT_NO_MEMORY] = "no_memory",     [ADMIT_PER_REQUEST] = "per_request",
        [ADMIT_BAD_PATH] = "bad_path",
    };
    return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

enum cfg_mtls policy_mtls_mode(const struct cfg_snapshot *snap, const struct pod *pod,
                               uint16_t port)
{
    if (!snap)
        return CFG_MTLS_STRICT; /* no good configuration yet: no plaintext */
    if (!pod_source_bound(pod))
        return CFG_MTLS_STRICT; /* who it is is unknown: nothing in plaintext */
    struct peerauth_result r;
    peerauth_mode(snap, pod->ns, pod_source_labels(snap, pod), port, &r);
    return r.mode;
}

/* Istio's principal is the SPIFFE id without its scheme,
 * "cluster.local/ns/<ns>/sa/<sa>"; its namespace, that of a workload id. */
static void peer_of(const char *peer_id, struct admit_decision *out)
{
    static const char scheme[] = "spiffe://";
    /* The destination asks for every request of a stream, whose peer is
     * one: the last id and its namespace are kept (compared whole, so a
     * hit is what parsing again gives). The loop thread is the only caller. */
    static struct {
        char id[320];
        char ns[sizeof(out->ns)];
    } last;
    char td[256], sa[64];
    if (!peer_id || strncmp(peer_id, scheme, sizeof(scheme) - 1) != 0)
        return;
    out->principal = peer_id + sizeof(scheme) - 1;
    if (last.id[0] && strcmp(last.id, peer_id) == 0) {
        memcpy(out->ns, last.ns, sizeof(out->ns));
        return;
    }
    if (pki_spiffe_parse(peer_id, td, sizeof(td), out->ns, sizeof(out->ns), sa, sizeof(sa)) != 0)
        out->ns[0] = '\0';
    last.id[0] = '\0';
    if (strlen(peer_id) < sizeof(last.id)) {
        memcpy(last.ns, out->ns, sizeof(out->ns));
        memcpy(last.id, peer_id, strlen(peer_id) + 1);
    }
}

/* The policies selecting one pod depend on the snapshot and the pod's name
 * only (its labels are the snapshot's Pod object), yet the destination
 * asks for every request: the last answer is kept, with a reference on
 * its snapshot (the policies' rules live there), so a pointer is never
 * compared to a freed snapshot's. The loop thread is the only caller.
 * Holds one snapshot past its replacement until the next decision. */
static struct {
    struct cfg_snapshot *snap; /* a reference */
    char ns[POD_NS_MAX + 1], name[POD_NAME_MAX + 1];
    size_t n;
    struct authz_policy v[ADMIT_STACK_POLICIES];
} selected;

static bool selected_for(const struct cfg_snapshot *snap, const struct pod *pod)
{
    return selected.snap == snap && strcmp(selected.ns, pod->ns) == 0 &&
           strcmp(selected.name, pod->name) == 0;
}

static void keep_selected(const struct cfg_snapshot *snap, const struct pod *pod,
                          const struct authz_policy *v, size_t n)
{
    if (n > ADMIT_STACK_POLICIES || strlen(pod->ns) >= sizeof(selected.ns) ||
        strlen(pod->name) >= sizeof(selected.name))
        return;
    if (selected.snap != snap) {
        cfg_snapshot_unref(selected.snap);
        selected.snap = cfg_snapshot_ref((struct cfg_snapshot *)snap);
    }
    strcpy(selected.ns, pod->ns);
    strcpy(selected.name, pod->name);
    memcpy(selected.v, v, n * sizeof(*v));
    selected.n = n;
}

/* `req`'s policies on `http` (a request), or with http NULL on the
 * connection: whole (L4), or its connection part (req->l4_first). */
static void authorize(const struct cfg_snapshot *snap, const struct pod *pod,
                      const struct admit_request *req, const struct http_request_view *http,
                      struct admit_decision *out)
{
    struct authz_policy stack[ADMIT_STACK_POLICIES], *v = stack;
    size_t n;
    if (selected_for(snap, pod)) {
        v = selected.v;
        n = selected.n;
    } else {
        n = cfg_authz_select(snap, pod->ns, pod_source_labels(snap, pod), v, ADMIT_STACK_POLICIES);
        keep_selected(snap, pod, v, n);
    }
    if (n > ADMIT_STACK_POLICIES) {
        const struct cfg_labels *labels = pod_source_labels(snap, pod);
        if (!(v = malloc(n * sizeof(*v)))) {
            out->reason = ADMIT_NO_MEMORY;
            return;
        }
        n = cfg_authz_select(snap, pod->ns, labels, v, n);
    }
    if (n == 0) {
        out->allow = true;
        out->reason = ADMIT_NO_POLICY;
        return;
    }
    struct authz_request ar = {.principal = out->principal,
                               .namespace_ = out->ns[0] ? out->ns : NULL,
                               .source = req->src,
                               .destination = req->dst,
                               .http = http};
    struct authz_decision d;
    if (!http && req->per_request && req->l4_first)
        authz_evaluate_connection(v, n, &ar, &d);
    else
        authz_evaluate(v, n, &ar, &d);
    out->allow = d.allow;
    out->reason = d.allow ? ADMIT_POLICY_ALLOWED : ADMIT_POLICY_DENIED;
    out->by = d.by ? d.by->name : NULL; /* names live in the snapshot */
    out->audit = d.audit ? d.audit->name : NULL;
    if (v != stack && v != selected.v)
        free(v);
}

/* A policy field only a request has: hosts, methods, paths (or their
 * not-forms) in an operation, a request.headers condition. */
static bool rule_needs_http(const struct authz_rule *r)
{
    for (size_t i = 0; i < r->nto; i++) {
        const struct authz_operation *o = &r->to[i];
        if (o->hosts.n || o->not_hosts.n || o->methods.n || o->not_methods.n || o->paths.n ||
            o->not_paths.n)
            return true;
    }
    for (size_t i = 0; i < r->nwhen; i++)
        if (r->when[i].key == AUTHZ_KEY_REQUEST_HEADER)
            return true;
    return false;
}

bool policy_needs_http(const struct cfg_snapshot *snap, const struct pod *pod)
{
    if (!snap)
        return false;
    struct authz_policy v[ADMIT_STACK_POLICIES];
    const struct cfg_labels *labels = pod_source_labels(snap, pod);
    size_t n = cfg_authz_select(snap, pod->ns, labels, v, ADMIT_STACK_POLICIES);
    if (n > ADMIT_STACK_POLICIES)
        return true; /* too many to look at here: decide per request, the stricter way */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < v[i].nrules; j++)
            if (rule_needs_http(&v[i].rules[j]))
                return true;
    return false;
}

void policy_admit(const struct cfg_snapshot *snap, const struct pod *pod,
                  const struct admit_request *req, struct admit_decision *out)
{
    *out = (struct admit_decision){.reason = ADMIT_NO_CONFIG, .mtls = CFG_MTLS_UNSET};
    peer_of(req->peer_id, out);
    if (!snap)
        return; /* never less policy than the last good configuration */
    if (!pod_source_bound(pod)) {
        out->reason = ADMIT_POD_UNBOUND;
        return;
    }
    if (req->entry == ADMIT_PLAINTEXT) {
        out->mtls = policy_mtls_mode(snap, pod, ntohs(req->dst.port));
        if (out->mtls == CFG_MTLS_STRICT) {
            out->reason = ADMIT_MTLS_STRICT;
            return;
        }
    }
    if (req->per_request && !req->l4_first) {
        out->allow = true;
        out->reason = ADMIT_PER_REQUEST;
        return;
    }
    authorize(snap, pod, req, NULL, out);
}

void policy_admit_request(const struct cfg_snapshot *snap, const struct pod *pod,
                          const struct admit_request *req, const struct http_request_view *http,
                          char *path, size_t cap, struct admit_decision *out)
{
    *out = (struct admit_decision){.reason = ADMIT_NO_CONFIG, .mtls = CFG_MTLS_UNSET};
    peer_of(req->peer_id, out);
    if (cap)
        path[0] = '\0'; /* nothing to forward unless allowed */
    if (!snap)
        return;
    if (!pod_source_bound(pod)) {
        out->reason = ADMIT_POD_UNBOUND;
        return;
    }
    /* Policies judge the path the app will get, never the one as sent. */
    if (authz_path_normalize(http->path, path, cap) < 0) {
        if (cap)
            path[0] = '\0'; /* not half a path */
        out->reason = ADMIT_BAD_PATH;
        return;
    }
    struct http_request_view normalized = *http;
    normalized.path = path;
    authorize(snap, pod, req, &normalized, out);
    /* The app gets the query as sent; policies never saw it in the path. */
    size_t len = strlen(path), qlen = http->query ? strlen(http->query) : 0;
    if (!out->allow || !qlen)
        return;
    if (len + 1 + qlen >= cap) {
        path[0] = '\0';
        *out = (struct admit_decision){.reason = ADMIT_BAD_PATH, .mtls = CFG_MTLS_UNSET};
        peer_of(req->peer_id, out); /* refused, not cut */
        return;
    }
    path[len] = '?';
    memcpy(path + len + 1, http->query, qlen + 1);
}

/* ---- the agent's gate ------------------------------------------------- */

static const struct cfg_snapshot *served(const struct admit_gate *g)
{
    return cfg_store_fail_closed(g->config) ? NULL : cfg_store_current(g->config);
}

enum mtls_mode admit_gate_mtls(void *gate, const struct pod *pod, uint16_t port)
{
    switch (policy_mtls_mode(served(gate), pod, port)) {
    case CFG_MTLS_STRICT:
        return MTLS_STRICT;
    case CFG_MTLS_DISABLE:
        return MTLS_DISABLE;
    default:
        return MTLS_PERMISSIVE;
    }
}

/* The log lines the agent has always written for a decision. */
static void log_decision(const struct pod *pod, const struct admit_request *req,
                         const struct admit_decision *d)
{
    char s[ADDR_STRLEN], t[ADDR_STRLEN];
    const char *who = d->principal ? d->principal : addr_format(&req->src, s, sizeof(s));
    if (d->audit)
        log_info("authz: %s -> %s/%s %s matched AUDIT policy %s", who, pod->ns, pod->name,
                 addr_format(&req->dst, t, sizeof(t)), d->audit);
    switch (d->reason) {
    case ADMIT_NO_CONFIG:
        log_ratelimited(LOG_INFO,
                        "authz: %s/%s: denied: no configuration has loaded yet "
                        "(fail closed)",
                        pod->ns, pod->name);
        break;
    case ADMIT_POD_UNBOUND:
        log_ratelimited(LOG_INFO, "authz: %s/%s is %s (%s); denied", pod->ns, pod->name,
                        pod_binding_name(pod->binding), pod->binding_why);
        break;
    case ADMIT_NO_MEMORY:
        log_ratelimited(LOG_ERROR, "authz: out of memory; denying (fail closed)");
        break;
    case ADMIT_MTLS_STRICT: /* the 15006 listener refuses these before asking */
        log_ratelimited(LOG_INFO, "authz: %s -> %s/%s %s: plaintext refused (mTLS STRICT)", who,
                        pod->ns, pod->name, addr_format(&req->dst, t, sizeof(t)));
        break;
    case ADMIT_POLICY_DENIED:
        log_ratelimited(LOG_INFO, "authz: %s -> %s/%s %s denied by %s", who, pod->ns, pod->name,
                        addr_format(&req->dst, t, sizeof(t)),
                        d->by ? d->by : "no ALLOW policy matching");
        break;
    default:
        break;
    }
}

/* A request's own line: the method and the (normalized) path, bounded. */
static void log_request(const struct pod *pod, const struct admit_request *req,
                        const struct http_request_view *http, const char *path,
                        const struct admit_decision *d)
{
    if (!d->audit && d->allow && d->reason != ADMIT_POLICY_DENIED && d->reason != ADMIT_BAD_PATH)
        return; /* the common case: nothing to log, so nothing formatted */
    char s[ADDR_STRLEN], t[ADDR_STRLEN];
    const char *who = d->principal ? d->principal : addr_format(&req->src, s, sizeof(s));
    addr_format(&req->dst, t, sizeof(t));
    if (d->audit)
        log_info("authz: %s -> %s/%s %s %.16s %.128s matched AUDIT policy %s", who, pod->ns,
                 pod->name, t, http->method, path, d->audit);
    if (d->reason == ADMIT_POLICY_DENIED)
        log_ratelimited(LOG_INFO, "authz: %s -> %s/%s %s %.16s %.128s denied by %s", who, pod->ns,
                        pod->name, t, http->method, path,
                        d->by ? d->by : "no ALLOW policy matching");
    else if (d->reason == ADMIT_BAD_PATH)
        log_ratelimited(LOG_INFO, "authz: %s -> %s/%s %s %.16s: request path refused (400)", who,
                        pod->ns, pod->name, t, http->method);
    else if (!d->allow)
        log_decision(pod, req, d);
}

static int gate_count(struct admit_gate *g, const struct admit_decision *d)
{
    if (d->allow)
        return 0;
    /* An allocation failure was never counted as a policy denial. */
    if (d->reason != ADMIT_NO_MEMORY)
        g->denied++;
    return d->reason == ADMIT_BAD_PATH ? -EINVAL : -EACCES;
}

static int gate_decide(struct admit_gate *g, const struct pod *pod, const struct admit_request *req)
{
    struct admit_decision d;
    policy_admit(served(g), pod, req, &d);
    log_decision(pod, req, &d);
    return gate_count(g, &d);
}

int admit_gate_authorize_http_connection(void *gate, const struct pod *pod, const char *peer_id,
                                         const struct meshd_addr *src, const struct meshd_addr *dst)
{
    struct admit_request req = {.entry = peer_id ? ADMIT_HBONE : ADMIT_PLAINTEXT,
                                .peer_id = peer_id,
                                .src = *src,
                                .dst = *dst,
                                .per_request = true};
    return gate_decide(gate, pod, &req);
}

int admit_gate_authorize_sniffed_connection(void *gate, const struct pod *pod, const char *peer_id,
                                            const struct meshd_addr *src,
                                            const struct meshd_addr *dst)
{
    struct admit_request req = {.entry = peer_id ? ADMIT_HBONE : ADMIT_PLAINTEXT,
                                .peer_id = peer_id,
                                .src = *src,
                                .dst = *dst,
                                .per_request = true,
                                .l4_first = true};
    return gate_decide(gate, pod, &req);
}

int admit_gate_authorize_request(void *gate, const struct pod *pod, const char *peer_id,
                                 const struct meshd_addr *src, const struct meshd_addr *dst,
                                 const struct http_request_view *http, char *path, size_t cap)
{
    struct admit_gate *g = gate;
    struct admit_request req = {.peer_id = peer_id, .src = *src, .dst = *dst};
    struct admit_decision d;
    policy_admit_request(served(g), pod, &req, http, path, cap, &d);
    log_request(pod, &req, http, d.reason == ADMIT_BAD_PATH ? "" : path, &d);
    return gate_count(g, &d);
}

int admit_gate_authorize(void *gate, const struct pod *pod, const char *peer_id,
                         const struct meshd_addr *src, const struct meshd_addr *dst)
{
    struct admit_request req = {.entry = peer_id ? ADMIT_HBONE : ADMIT_PLAINTEXT,
                                .peer_id = peer_id,
                                .src = *src,
                                .dst = *dst};
    return gate_decide(gate, pod, &req);
}

bool admit_gate_keep_plaintext(void *gate, const struct conn_record *rec)
{
    struct admit_gate *g = gate;
    const struct pod *pod = g->pods ? pods_find_ip(g->pods, &rec->orig_dst) : NULL;
    if (!pod)
        return true; /* unenrolled since: not ours to judge */
    struct admit_request req = {.entry = ADMIT_REVALIDATE, .src = rec->src, .dst = rec->orig_dst};
    return gate_decide(g, pod, &req) == 0;
}
