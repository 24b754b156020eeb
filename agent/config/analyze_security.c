/* The analyzers of security and mesh membership (part of config/analyze,
 * see analyze.h): selectors that match no workload, PeerAuthentication
 * conflicts, what of an AuthorizationPolicy or Telemetry meshd's L4 data
 * path does not apply, namespaces outside the mesh. */
#include <stdio.h>
#include <string.h>

#include "config/internal.h"
#include "config/pattern.h"

/* Workloads of `ns` (NULL: any namespace) a selector matches: Pods,
 * WorkloadEntries and, offline, Deployments' pod templates. By the
 * namespace index: a reload analyzes thousands of policies. */
static size_t count_selected(const struct cfg_snapshot *s, const char *ns,
                             const struct cfg_labels *sel)
{
    size_t n = 0;
    if (!ns) {
        CFG_FOR_EACH(s, CFG_POD, struct cfg_pod, p)
        n += cfg_labels_match(sel, &p->meta.labels);
        CFG_FOR_EACH(s, CFG_WORKLOAD_ENTRY, struct cfg_workload_entry, we)
        n += cfg_labels_match(sel, &we->spec.labels);
        CFG_FOR_EACH(s, CFG_DEPLOYMENT, struct cfg_deployment, d)
        n += d->replicas && cfg_labels_match(sel, &d->template_labels);
        return n;
    }
    struct cfg_iter it = {0};
    const struct cfg_pod *p;
    while (!n && (p = cfg_next_in_ns(s, CFG_POD, ns, &it)))
        n += cfg_labels_match(sel, &p->meta.labels);
    it = (struct cfg_iter){0};
    const struct cfg_workload_entry *we;
    while (!n && (we = cfg_next_in_ns(s, CFG_WORKLOAD_ENTRY, ns, &it)))
        n += cfg_labels_match(sel, &we->spec.labels);
    it = (struct cfg_iter){0};
    const struct cfg_deployment *d;
    while (!n && (d = cfg_next_in_ns(s, CFG_DEPLOYMENT, ns, &it)))
        n += d->replicas && cfg_labels_match(sel, &d->template_labels);
    return n;
}

/* A selector that matches no workload: istioctl's IST0127 for
 * AuthorizationPolicies (a root-namespace one looks in every namespace; a
 * namespace-wide one needs a workload in its namespace), IST0101 "selector"
 * for Telemetry (its own namespace); meshd checks PeerAuthentications the
 * way it checks AuthorizationPolicies. */
static void check_selector(const struct cfg_snapshot *s, const struct cfg_meta *m,
                           const struct cfg_selector *sel, struct cfg_diags *diags)
{
    bool root = strcmp(m->ns, cfg_snapshot_root_namespace(s)) == 0;
    bool has = sel->set && sel->match.n;
    if (m->kind == CFG_TELEMETRY) {
        if (!has || count_selected(s, m->ns, &sel->match))
            return;
        char labels[300];
        cfg_labels_format(&sel->match, labels, sizeof(labels));
        cfg_diag_add(diags, CFG_ERROR, IST_NOT_FOUND, m, NULL,
                     "Referenced selector not found: \"%s\"", labels);
        return;
    }
    if (!has) {
        static const struct cfg_labels none = {0};
        if (root || m->kind != CFG_AUTHORIZATION_POLICY || count_selected(s, m->ns, &none))
            return;
    } else if (count_selected(s, root ? NULL : m->ns, &sel->match)) {
        return;
    }
    char labels[300] = "";
    if (has)
        cfg_labels_format(&sel->match, labels, sizeof(labels));
    cfg_diag_add(diags, CFG_WARNING, IST_NO_WORKLOADS, m, NULL,
                 "No matching workloads for this resource with the following labels: %s", labels);
}

/* istioctl: namespaces an AuthorizationPolicy names must exist (Istio's
 * patterns). Only when the input has Namespace objects at all: manifests
 * without them say nothing about which namespaces exist. */
static bool namespace_pattern_known(const struct cfg_snapshot *s, const char *pattern)
{
    CFG_FOR_EACH(s, CFG_NAMESPACE, struct cfg_namespace, ns)
    {
        if (pattern_match(pattern, ns->meta.name))
            return true;
    }
    return false;
}

static void check_policy_namespaces(const struct cfg_snapshot *s,
                                    const struct cfg_authorization_policy *ap,
                                    struct cfg_diags *diags)
{
    if (!cfg_count(s, CFG_NAMESPACE))
        return;
    for (size_t r = 0; r < ap->nrules; r++) {
        for (size_t f = 0; f < ap->rules[r].nfrom; f++) {
            const struct cfg_authz_source *src = &ap->rules[r].from[f];
            const struct cfg_strs *lists[] = {&src->namespaces, &src->not_namespaces};
            for (size_t l = 0; l < 2; l++)
                for (size_t i = 0; i < lists[l]->n; i++)
                    if (!namespace_pattern_known(s, lists[l]->v[i]))
                        cfg_diag_add(diags, CFG_ERROR, IST_NOT_FOUND, &ap->meta, &ap->rules[r].pos,
                                     "Referenced namespace not found: \"%s\"", lists[l]->v[i]);
        }
    }
}

static void analyze_peer_authentications(const struct cfg_snapshot *s, struct cfg_diags *diags)
{
    CFG_FOR_EACH(s, CFG_PEER_AUTHENTICATION, struct cfg_peer_authentication, pa)
    {
        check_selector(s, &pa->meta, &pa->selector, diags);
        if (pa->mode == CFG_MTLS_DISABLE)
            cfg_diag_add(diags, CFG_WARNING, MSH_NOT_APPLIED, &pa->meta, NULL,
                         "mtls.mode DISABLE: as in Istio ambient, meshd still uses mTLS between "
                         "mesh workloads and accepts plaintext (PERMISSIVE)");
        if (pa->selector.set)
            continue;
        /* Namespace-wide (or mesh-wide) policies: one per namespace. */
        struct cfg_iter it = {0};
        const struct cfg_peer_authentication *o;
        while ((o = cfg_next_in_ns(s, CFG_PEER_AUTHENTICATION, pa->meta.ns, &it))) {
            if (o == pa)
                break;
            if (o->selector.set)
                continue;
            bool mesh = strcmp(pa->meta.ns, cfg_snapshot_root_namespace(s)) == 0;
            cfg_diag_add(diags, o->mode != pa->mode ? CFG_ERROR : CFG_WARNING, MSH_PA_CONFLICT,
                         &pa->meta, NULL,
                         "%s PeerAuthentication %s/%s (%s) is already defined at %s:%u with "
                         "mode %s; meshd applies that one",
                         mesh ? "a mesh-wide" : "a namespace-wide", o->meta.ns, o->meta.name,
                         cfg_mtls_name(pa->mode), o->meta.pos.file, o->meta.pos.line,
                         cfg_mtls_name(o->mode));
            break;
        }
    }
}

/* HTTP-only fields are decided per request on the ports meshd serves as
 * HTTP; on a TCP port (and for what no request decides) they keep
 * ztunnel's L4 treatment, `effect`. */
static void analyze_authz_rule(const struct cfg_authorization_policy *ap, size_t r,
                               const char *effect, struct cfg_diags *diags)
{
    static const char *const l4_keys[] = {"source.ip",      "source.namespace", "source.principal",
                                          "destination.ip", "destination.port", NULL};
    const struct cfg_authz_rule *rule = &ap->rules[r];
    for (size_t f = 0; f < rule->nfrom; f++) {
        const struct cfg_authz_source *src = &rule->from[f];
        if (src->trust_domains.n || src->not_trust_domains.n)
            cfg_diag_add(diags, CFG_INFO, MSH_NOT_APPLIED, &ap->meta, &rule->pos,
                         "rules[%zu].from[%zu]: trustDomains are matched on the peer's "
                         "SPIFFE trust domain, as Istio's sidecars do; istiod does not "
                         "send them to ztunnel",
                         r, f);
        if (src->undecidable)
            cfg_diag_add(diags, CFG_WARNING, MSH_L7_IGNORED, &ap->meta, &rule->pos,
                         "rules[%zu].from[%zu]: %s is an L7 field meshd does not decide, on "
                         "TCP or HTTP ports; %s",
                         r, f, src->undecidable, effect);
        else if (src->l7)
            cfg_diag_add(diags, CFG_WARNING, MSH_L7_IGNORED, &ap->meta, &rule->pos,
                         "rules[%zu].from[%zu]: %s is HTTP only; meshd validates no JWT "
                         "(RequestAuthentication is not applied), so on HTTP ports no request "
                         "has a request principal (requestPrincipals never match, "
                         "notRequestPrincipals always do); on TCP ports %s",
                         r, f, src->l7, effect);
    }
    for (size_t t = 0; t < rule->nto; t++) {
        const struct cfg_authz_operation *o = &rule->to[t];
        if (o->l7)
            cfg_diag_add(diags, CFG_WARNING, MSH_L7_IGNORED, &ap->meta, &rule->pos,
                         "rules[%zu].to[%zu]: %s is HTTP only: decided per request on ports "
                         "meshd serves as HTTP; on TCP ports %s",
                         r, t, o->l7, effect);
        const struct cfg_strs *lists[] = {&o->paths, &o->not_paths};
        for (size_t l = 0; l < 2; l++)
            for (size_t i = 0; i < lists[l]->n; i++)
                if (lists[l]->v[i][0] != '/' && lists[l]->v[i][0] != '*')
                    cfg_diag_add(diags, CFG_WARNING, MSH_L7_IGNORED, &ap->meta, &rule->pos,
                                 "rules[%zu].to[%zu]: %s[%zu] \"%.64s\" never matches: "
                                 "request paths start with '/'",
                                 r, t, l ? "notPaths" : "paths", i, lists[l]->v[i]);
    }
    for (size_t w = 0; w < rule->nwhen; w++) {
        const char *key = rule->when[w].key;
        bool l4 = false;
        for (size_t k = 0; l4_keys[k]; k++)
            l4 |= strcmp(key, l4_keys[k]) == 0;
        if (l4)
            continue;
        if (strncmp(key, "request.headers[", 16) == 0)
            cfg_diag_add(diags, CFG_WARNING, MSH_L7_IGNORED, &ap->meta, &rule->when[w].pos,
                         "rules[%zu].when[%zu]: key %s is HTTP only: decided per request on "
                         "ports meshd serves as HTTP; on TCP ports %s",
                         r, w, key, effect);
        else
            cfg_diag_add(diags, CFG_WARNING, MSH_L7_IGNORED, &ap->meta, &rule->when[w].pos,
                         "rules[%zu].when[%zu]: key %s is not an attribute meshd decides, on "
                         "TCP or HTTP ports; %s",
                         r, w, key, effect);
    }
}

static void analyze_authorization_policies(const struct cfg_snapshot *s, struct cfg_diags *diags)
{
    CFG_FOR_EACH(s, CFG_AUTHORIZATION_POLICY, struct cfg_authorization_policy, ap)
    {
        check_selector(s, &ap->meta, &ap->selector, diags);
        check_policy_namespaces(s, ap, diags);
        if (ap->action == CFG_AUTHZ_CUSTOM)
            cfg_diag_add(diags, CFG_ERROR, MSH_NOT_APPLIED, &ap->meta, NULL,
                         "action CUSTOM (external authorization) is not supported by meshd; "
                         "its rules are enforced as DENY (fail closed)");
        if (ap->has_target_ref)
            cfg_diag_add(diags, CFG_WARNING, MSH_NOT_APPLIED, &ap->meta, NULL,
                         "targetRef policies are enforced by waypoints, which meshd does not "
                         "run; the policy is not applied");
        bool allow = ap->action == CFG_AUTHZ_ALLOW;
        const char *effect = allow ? "this rule never matches (Istio ambient's behaviour)"
                                   : "that part is dropped and the rule matches more broadly";
        for (size_t r = 0; r < ap->nrules; r++)
            analyze_authz_rule(ap, r, effect, diags);
    }
}

static void analyze_telemetry(const struct cfg_snapshot *s, struct cfg_diags *diags)
{
    CFG_FOR_EACH(s, CFG_TELEMETRY, struct cfg_telemetry, t)
    {
        check_selector(s, &t->meta, &t->selector, diags);
        for (size_t i = 0; i < t->naccess_logging; i++) {
            const struct cfg_access_logging *al = &t->access_logging[i];
            for (size_t p = 0; p < al->providers.n; p++)
                if (strcmp(al->providers.v[p], "envoy") != 0)
                    cfg_diag_add(diags, CFG_WARNING, MSH_NOT_APPLIED, &t->meta, NULL,
                                 "accessLogging provider \"%s\": meshd writes the envoy "
                                 "provider's log only; this provider is ignored",
                                 al->providers.v[p]);
            if (al->filter)
                cfg_diag_add(diags, CFG_WARNING, MSH_NOT_APPLIED, &t->meta, NULL,
                             "accessLogging filter (CEL) is not evaluated; every connection is "
                             "logged");
        }
    }
}

/* IST0102: workloads in a namespace that is not enrolled in the mesh. */
static void analyze_namespaces(const struct cfg_snapshot *s, struct cfg_diags *diags)
{
    const char *seen[64] = {0};
    size_t nseen = 0;
    static const enum cfg_kind kinds[] = {CFG_POD, CFG_DEPLOYMENT};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < cfg_count(s, kinds[k]); i++) {
            const struct cfg_meta *m = cfg_at(s, kinds[k], i);
            bool dup = false;
            for (size_t j = 0; j < nseen && !dup; j++)
                dup = strcmp(seen[j], m->ns) == 0;
            if (dup || cfg_namespace_in_mesh(s, m->ns) ||
                strcmp(m->ns, cfg_snapshot_root_namespace(s)) == 0)
                continue;
            if (nseen < sizeof(seen) / sizeof(seen[0]))
                seen[nseen++] = m->ns;
            const struct cfg_namespace *ns = cfg_find(s, CFG_NAMESPACE, NULL, m->ns);
            char msg[300];
            snprintf(msg, sizeof(msg),
                     "The namespace is not enabled for the mesh. Run 'kubectl label namespace "
                     "%s istio.io/dataplane-mode=ambient' to enroll it.",
                     m->ns);
            /* Without a Namespace object, the first workload is the place. */
            cfg_diag_push(diags, CFG_INFO, IST_NOT_IN_MESH, "Namespace", NULL, m->ns,
                          ns ? &ns->meta.pos : &m->pos, msg);
        }
    }
    /* Namespaces with no mesh label at all (istioctl's injection analyzer;
     * the root namespace and any explicit choice are left alone). */
    CFG_FOR_EACH(s, CFG_NAMESPACE, struct cfg_namespace, ns)
    {
        const struct cfg_labels *l = &ns->meta.labels;
        bool dup = false;
        for (size_t j = 0; j < nseen && !dup; j++)
            dup = strcmp(seen[j], ns->meta.name) == 0;
        if (dup || strcmp(ns->meta.name, cfg_snapshot_root_namespace(s)) == 0 ||
            cfg_label(l, "istio-injection") || cfg_label(l, "istio.io/dataplane-mode") ||
            cfg_label(l, "istio.io/rev"))
            continue;
        char msg[300];
        snprintf(msg, sizeof(msg),
                 "The namespace is not enabled for the mesh. Run 'kubectl label namespace %s "
                 "istio.io/dataplane-mode=ambient' to enroll it.",
                 ns->meta.name);
        cfg_diag_push(diags, CFG_INFO, IST_NOT_IN_MESH, "Namespace", NULL, ns->meta.name,
                      &ns->meta.pos, msg);
    }
    CFG_FOR_EACH(s, CFG_NAMESPACE, struct cfg_namespace, ns)
    {
        const char *inject = cfg_label(&ns->meta.labels, "istio-injection");
        if (inject && strcmp(inject, "enabled") == 0 &&
            !cfg_label(&ns->meta.labels, "istio.io/dataplane-mode"))
            cfg_diag_add(diags, CFG_INFO, MSH_INJECTION_LABEL, &ns->meta, NULL,
                         "istio-injection=enabled enrolls the namespace in the mesh (meshd runs "
                         "no sidecars); istio.io/dataplane-mode=ambient is the native label");
    }
}

void cfg_analyze_security(const struct cfg_snapshot *s, struct cfg_diags *diags)
{
    analyze_peer_authentications(s, diags);
    analyze_authorization_policies(s, diags);
    analyze_telemetry(s, diags);
    analyze_namespaces(s, diags);
}
