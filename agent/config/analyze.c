/* The analyzers (see analyze.h). Messages follow istioctl's wording where
 * Istio has the same check, so what a user has learned still reads right. */
#include "config/analyze.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/authz.h"

#define FOR_EACH(s, kind, type, var)                                                               \
    for (size_t i_##var = 0; i_##var < cfg_count((s), (kind)); i_##var++)                          \
        for (const type *var = cfg_at((s), (kind), i_##var); var; var = NULL)

static bool is_wildcard(const char *host)
{
    return host[0] == '*';
}

static bool binds_mesh(const struct cfg_virtual_service *vs)
{
    if (!vs->gateways.n)
        return true;
    for (size_t i = 0; i < vs->gateways.n; i++)
        if (strcmp(vs->gateways.v[i], "mesh") == 0)
            return true;
    return false;
}

/* istioctl's GetDestinationHost (analyzers/util/service_lookup.go): a
 * Service or ServiceEntry host by its resolved name, else a wildcard
 * ServiceEntry host ("*.example.com") whose suffix the host (without its
 * own leading '*') ends with. */
static bool host_known(const struct cfg_snapshot *s, const char *host, const char *ns)
{
    if (cfg_svc_by_host(s, host, ns))
        return true;
    const char *h = is_wildcard(host) ? host + 1 : host;
    size_t hl = strlen(h);
    FOR_EACH(s, CFG_SERVICE_ENTRY, struct cfg_service_entry, se)
    {
        for (size_t i = 0; i < se->hosts.n; i++) {
            if (!is_wildcard(se->hosts.v[i]))
                continue;
            const char *suffix = se->hosts.v[i] + 1;
            size_t sl = strlen(suffix);
            if (sl <= hl && strcmp(h + hl - sl, suffix) == 0)
                return true;
        }
    }
    return false;
}

/* Whether some DestinationRule for host defines subset. */
static bool subset_known(const struct cfg_snapshot *s, const char *host, const char *ns,
                         const char *subset)
{
    char fqdn[512];
    if (!cfg_fqdn(s, host, ns, fqdn, sizeof(fqdn)))
        return false;
    struct cfg_iter it = {0};
    const struct cfg_destination_rule *dr;
    while ((dr = cfg_next_dr_for_host(s, fqdn, &it)))
        for (size_t i = 0; i < dr->nsubsets; i++)
            if (strcmp(dr->subsets[i].name, subset) == 0)
                return true;
    return false;
}

static void check_gateway_ref(const struct cfg_snapshot *s, const struct cfg_virtual_service *vs,
                              const char *gw, const struct cfg_pos *pos, struct cfg_diags *diags)
{
    if (strcmp(gw, "mesh") == 0)
        return;
    char ns[64], name[256];
    const char *slash = strchr(gw, '/');
    if (slash) {
        snprintf(ns, sizeof(ns), "%.*s", (int)(slash - gw), gw);
        snprintf(name, sizeof(name), "%s", slash + 1);
    } else {
        snprintf(ns, sizeof(ns), "%s", vs->meta.ns);
        /* "name.ns.svc.cluster.local" style: the first label is the name. */
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(gw, "."), gw);
        const char *dot = strchr(gw, '.');
        if (dot)
            snprintf(ns, sizeof(ns), "%.*s", (int)strcspn(dot + 1, "."), dot + 1);
    }
    if (!cfg_find(s, CFG_GATEWAY, ns, name))
        cfg_diag_add(diags, CFG_ERROR, IST_NOT_FOUND, &vs->meta, pos,
                     "Referenced gateway not found: \"%s\"", gw);
}

static void analyze_route(const struct cfg_snapshot *s, const struct cfg_virtual_service *vs,
                          const struct cfg_route *r, size_t idx, struct cfg_diags *diags)
{
    const char *section = r->http ? "http" : "tcp";
    uint64_t sum = 0;
    bool all_weighted = true;
    for (size_t d = 0; d < r->ndest; d++) {
        const struct cfg_destination *dst = &r->dest[d].dest;
        if (!host_known(s, dst->host, vs->meta.ns))
            cfg_diag_add(diags, CFG_ERROR, IST_NOT_FOUND, &vs->meta, &dst->pos,
                         "Referenced host not found: \"%s\"", dst->host);
        else if (dst->subset && !subset_known(s, dst->host, vs->meta.ns, dst->subset))
            cfg_diag_add(diags, CFG_ERROR, IST_NOT_FOUND, &vs->meta, &dst->pos,
                         "Referenced host+subset in destinationrule not found: \"%s+%s\"",
                         dst->host, dst->subset);
        sum += r->dest[d].weight;
        all_weighted &= r->dest[d].has_weight;
    }
    if (r->ndest > 1 && sum != 100)
        cfg_diag_add(diags, CFG_WARNING, MSH_WEIGHTS, &vs->meta, &r->pos,
                     "%s[%zu]: route weights sum to %llu, not 100%s; meshd splits connections in "
                     "proportion to the weights",
                     section, idx, (unsigned long long)sum,
                     all_weighted ? "" : " (a destination without a weight counts as 0)");
    for (size_t m = 0; m < r->nmatch; m++)
        if (r->match[m].l7)
            cfg_diag_add(diags, CFG_WARNING, MSH_L7_IGNORED, &vs->meta, &r->pos,
                         "%s[%zu].match[%zu]: %s is an HTTP attribute meshd cannot see at L4; "
                         "this match never matches, so connections fall through to the next "
                         "route",
                         section, idx, m, r->match[m].l7);
    if (r->http && r->timeout_ns)
        cfg_diag_add(diags, CFG_WARNING, MSH_L7_IGNORED, &vs->meta, &r->pos,
                     "%s[%zu]: timeout is an HTTP request timeout; on meshd's L4 path it is "
                     "taken as a connect timeout (establishing the connection, retries "
                     "included), not a bound on requests, until HTTP routing lands",
                     section, idx);
    if (r->l7_action)
        cfg_diag_add(diags, CFG_WARNING, MSH_L7_IGNORED, &vs->meta, &r->pos,
                     "%s[%zu]: %s is not applied at L4; %s", section, idx, r->l7_action,
                     r->ndest ? "connections go to the route's destinations"
                              : "the route has no destination, so it is skipped");
}

static void analyze_virtual_services(const struct cfg_snapshot *s, struct cfg_diags *diags)
{
    char fqdn[512];
    FOR_EACH(s, CFG_VIRTUAL_SERVICE, struct cfg_virtual_service, vs)
    {
        for (size_t g = 0; g < vs->gateways.n; g++)
            check_gateway_ref(s, vs, vs->gateways.v[g], &vs->meta.pos, diags);
        for (size_t r = 0; r < vs->nroutes; r++) {
            size_t idx = r;
            if (!vs->routes[r].http)
                for (size_t q = 0; q < r; q++)
                    idx -= vs->routes[q].http; /* index within tcp[] */
            analyze_route(s, vs, &vs->routes[r], idx, diags);
            for (size_t m = 0; m < vs->routes[r].nmatch; m++)
                for (size_t g = 0; g < vs->routes[r].match[m].gateways.n; g++)
                    check_gateway_ref(s, vs, vs->routes[r].match[m].gateways.v[g],
                                      &vs->routes[r].pos, diags);
        }
        if (vs->ntls)
            cfg_diag_add(diags, CFG_WARNING, MSH_L7_IGNORED, &vs->meta, NULL,
                         "tls routes match on SNI, which meshd does not read; they are not "
                         "applied");
        if (!binds_mesh(vs))
            continue;
        /* IST0109: another mesh-bound VirtualService for the same host. */
        for (size_t h = 0; h < vs->hosts.n; h++) {
            const char *f = cfg_fqdn(s, vs->hosts.v[h], vs->meta.ns, fqdn, sizeof(fqdn));
            struct cfg_iter it = {0};
            const struct cfg_virtual_service *other, *first = NULL;
            char names[400] = "";
            size_t nconf = 0;
            while (f && (other = cfg_next_vs_for_host(s, f, &it))) {
                if (!binds_mesh(other))
                    continue;
                if (!first)
                    first = other;
                size_t l = strlen(names);
                snprintf(names + l, sizeof(names) - l, "%s%s/%s", nconf ? "," : "", other->meta.ns,
                         other->meta.name);
                nconf++;
            }
            if (nconf > 1)
                cfg_diag_add(diags, CFG_ERROR, IST_VS_CONFLICT, &vs->meta, NULL,
                             "The VirtualServices %s associated with mesh gateway define the same "
                             "host %s which can lead to undefined behavior. This can be fixed by "
                             "merging the conflicting VirtualServices into a single resource.",
                             names, vs->hosts.v[h]);
        }
    }
}

/* IST0173 as istioctl's SubsetSelectPodAnalyzer decides it: no Pod (in
 * any namespace) carries the subset's labels (and a ServiceEntry's
 * workloadSelector labels), nor a Deployment's pod template (offline input
 * often has no Pods); a matching endpoint of the host's own (WorkloadEntry,
 * inline endpoints) counts too. */
static void check_subset(const struct cfg_snapshot *s, const struct cfg_destination_rule *dr,
                         const struct cfg_svc *svc, const struct cfg_subset *sub,
                         struct cfg_diags *diags)
{
    for (size_t e = 0; e < svc->nendpoints; e++)
        if (cfg_labels_match(&sub->labels, &svc->endpoints[e]->labels))
            return;
    const struct cfg_labels *extra = svc->entry && svc->entry->workload_selector.set
                                         ? &svc->entry->workload_selector.match
                                         : NULL;
    if (!svc->entry || extra) {
        FOR_EACH(s, CFG_POD, struct cfg_pod, p)
        {
            if (cfg_labels_match(&sub->labels, &p->meta.labels) &&
                (!extra || cfg_labels_match(extra, &p->meta.labels)))
                return;
        }
        /* Offline, a Deployment's template stands for its pods. */
        FOR_EACH(s, CFG_DEPLOYMENT, struct cfg_deployment, d)
        {
            if (d->replicas && cfg_labels_match(&sub->labels, &d->template_labels) &&
                (!extra || cfg_labels_match(extra, &d->template_labels)))
                return;
        }
    }
    cfg_diag_add(diags, CFG_ERROR, IST_SUBSET_NO_PODS, &dr->meta, &sub->pos,
                 "The Subset %s defined in the DestinationRule does not select any pods. Which "
                 "may lead to 503 UH (NoHealthyUpstream). (meshd refuses connections routed to "
                 "it; %s has %zu endpoint%s)",
                 sub->name, svc->fqdn, svc->nendpoints, svc->nendpoints == 1 ? "" : "s");
}

static void analyze_destination_rules(const struct cfg_snapshot *s, struct cfg_diags *diags)
{
    char fqdn[512];
    FOR_EACH(s, CFG_DESTINATION_RULE, struct cfg_destination_rule, dr)
    {
        if (!host_known(s, dr->host, dr->meta.ns)) {
            cfg_diag_add(diags, CFG_WARNING, IST_DR_UNKNOWN_HOST, &dr->meta, NULL,
                         "The host %s defined in the DestinationRule does not match any services "
                         "in the mesh.",
                         dr->host);
            continue;
        }
        const struct cfg_svc *svc = cfg_svc_by_host(s, dr->host, dr->meta.ns);
        for (size_t i = 0; svc && i < dr->nsubsets; i++)
            check_subset(s, dr, svc, &dr->subsets[i], diags);
        if (dr->workload_selector.set)
            continue;
        const char *f = cfg_fqdn(s, dr->host, dr->meta.ns, fqdn, sizeof(fqdn));
        struct cfg_iter it = {0};
        /* Rules in other namespaces are Istio's layering (the client's
         * namespace, then the service's, then the root), not a conflict. */
        const struct cfg_destination_rule *first = f ? cfg_next_dr_for_host(s, f, &it) : NULL;
        while (first && (first->workload_selector.set || strcmp(first->meta.ns, dr->meta.ns) != 0))
            first = cfg_next_dr_for_host(s, f, &it);
        if (first && first != dr)
            cfg_diag_add(diags, CFG_WARNING, MSH_DR_CONFLICT, &dr->meta, NULL,
                         "host %s already has DestinationRule %s/%s (%s:%u); meshd applies that "
                         "one and ignores this one",
                         dr->host, first->meta.ns, first->meta.name, first->meta.pos.file,
                         first->meta.pos.line);
    }
}

static size_t count_selected(const struct cfg_snapshot *s, const char *ns,
                             const struct cfg_labels *sel)
{
    size_t n = 0;
    struct cfg_iter it = {0};
    const struct cfg_pod *p;
    while ((p = cfg_next_in_ns(s, CFG_POD, ns, &it)))
        n += cfg_labels_match(sel, &p->meta.labels);
    it = (struct cfg_iter){0};
    const struct cfg_workload_entry *we;
    while ((we = cfg_next_in_ns(s, CFG_WORKLOAD_ENTRY, ns, &it)))
        n += cfg_labels_match(sel, &we->spec.labels);
    return n;
}

static void format_labels(const struct cfg_labels *l, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < l->n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s=%s", i ? "," : "", l->v[i].key,
                                l->v[i].value);
}

static void check_selector(const struct cfg_snapshot *s, const struct cfg_meta *m,
                           const struct cfg_selector *sel, struct cfg_diags *diags)
{
    if (!sel->set || !sel->match.n)
        return;
    /* In the root namespace a selector applies to workloads in every namespace. */
    if (strcmp(m->ns, cfg_snapshot_root_namespace(s)) == 0)
        return;
    if (count_selected(s, m->ns, &sel->match))
        return;
    char labels[300];
    format_labels(&sel->match, labels, sizeof(labels));
    cfg_diag_add(diags, CFG_WARNING, IST_NO_WORKLOADS, m, NULL,
                 "No matching workloads for this resource with the following labels: %s", labels);
}

static void analyze_gateways(const struct cfg_snapshot *s, struct cfg_diags *diags)
{
    FOR_EACH(s, CFG_GATEWAY, struct cfg_gateway, gw)
    {
        /* The gateway's workload (a Pod, else a Deployment's template):
         * its namespace is where istioctl looks for credentialName. */
        const char *wl_ns = NULL;
        FOR_EACH(s, CFG_POD, struct cfg_pod, p)
        if (!wl_ns && cfg_labels_match(&gw->selector.match, &p->meta.labels))
            wl_ns = p->meta.ns;
        FOR_EACH(s, CFG_DEPLOYMENT, struct cfg_deployment, d)
        if (!wl_ns && cfg_labels_match(&gw->selector.match, &d->template_labels))
            wl_ns = d->meta.ns;
        if (!wl_ns && gw->selector.set && gw->selector.match.n) {
            char labels[300];
            format_labels(&gw->selector.match, labels, sizeof(labels));
            cfg_diag_add(diags, CFG_ERROR, IST_NOT_FOUND, &gw->meta, NULL,
                         "Referenced selector not found: \"%s\"", labels);
        }
        /* No workload in the input: the secrets' namespace is unknown, so
         * istioctl skips the check; so does meshd. */
        for (size_t i = 0; wl_ns && i < gw->nservers; i++) {
            const char *cred = gw->servers[i].credential_name;
            if (cred && !cfg_find(s, CFG_SECRET, wl_ns, cred))
                cfg_diag_add(diags, CFG_ERROR, IST_NOT_FOUND, &gw->meta, &gw->servers[i].pos,
                             "Referenced credentialName not found: \"%s\"", cred);
        }
    }
}

static void analyze_peer_authentications(const struct cfg_snapshot *s, struct cfg_diags *diags)
{
    FOR_EACH(s, CFG_PEER_AUTHENTICATION, struct cfg_peer_authentication, pa)
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

static void analyze_authorization_policies(const struct cfg_snapshot *s, struct cfg_diags *diags)
{
    static const char *const l4_keys[] = {"source.ip",      "source.namespace", "source.principal",
                                          "destination.ip", "destination.port", NULL};
    FOR_EACH(s, CFG_AUTHORIZATION_POLICY, struct cfg_authorization_policy, ap)
    {
        check_selector(s, &ap->meta, &ap->selector, diags);
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
        for (size_t r = 0; r < ap->nrules; r++) {
            const struct cfg_authz_rule *rule = &ap->rules[r];
            for (size_t f = 0; f < rule->nfrom; f++) {
                const struct cfg_authz_source *src = &rule->from[f];
                if (src->trust_domains.n || src->not_trust_domains.n)
                    cfg_diag_add(diags, CFG_INFO, MSH_NOT_APPLIED, &ap->meta, &rule->pos,
                                 "rules[%zu].from[%zu]: trustDomains are matched on the peer's "
                                 "SPIFFE trust domain, as Istio's sidecars do; istiod does not "
                                 "send them to ztunnel",
                                 r, f);
                if (src->l7)
                    cfg_diag_add(diags, CFG_WARNING, MSH_L7_IGNORED, &ap->meta, &rule->pos,
                                 "rules[%zu].from[%zu]: %s is an L7 field; %s", r, f, src->l7,
                                 effect);
            }
            for (size_t t = 0; t < rule->nto; t++)
                if (rule->to[t].l7)
                    cfg_diag_add(diags, CFG_WARNING, MSH_L7_IGNORED, &ap->meta, &rule->pos,
                                 "rules[%zu].to[%zu]: %s is an L7 field; %s", r, t, rule->to[t].l7,
                                 effect);
            for (size_t w = 0; w < rule->nwhen; w++) {
                bool l4 = false;
                for (size_t k = 0; l4_keys[k]; k++)
                    l4 |= strcmp(rule->when[w].key, l4_keys[k]) == 0;
                if (!l4)
                    cfg_diag_add(diags, CFG_WARNING, MSH_L7_IGNORED, &ap->meta, &rule->when[w].pos,
                                 "rules[%zu].when[%zu]: key %s is not an L4 "
                                 "attribute; %s",
                                 r, w, rule->when[w].key, effect);
            }
        }
    }
}

static void analyze_telemetry(const struct cfg_snapshot *s, struct cfg_diags *diags)
{
    FOR_EACH(s, CFG_TELEMETRY, struct cfg_telemetry, t)
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
    const char *seen[64];
    size_t nseen = 0;
    static const enum cfg_kind kinds[] = {CFG_POD, CFG_DEPLOYMENT};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < cfg_count(s, kinds[k]); i++) {
            const struct cfg_meta *m = cfg_at(s, kinds[k], i);
            bool dup = false;
            for (size_t j = 0; j < nseen && !dup; j++)
                dup = strcmp(seen[j], m->ns) == 0;
            if (dup || cfg_namespace_in_mesh(s, m->ns))
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
    FOR_EACH(s, CFG_NAMESPACE, struct cfg_namespace, ns)
    {
        const char *inject = cfg_label(&ns->meta.labels, "istio-injection");
        if (inject && strcmp(inject, "enabled") == 0 &&
            !cfg_label(&ns->meta.labels, "istio.io/dataplane-mode"))
            cfg_diag_add(diags, CFG_INFO, MSH_INJECTION_LABEL, &ns->meta, NULL,
                         "istio-injection=enabled enrolls the namespace in the mesh (meshd runs "
                         "no sidecars); istio.io/dataplane-mode=ambient is the native label");
    }
}

void cfg_analyze(const struct cfg_snapshot *s, struct cfg_diags *diags)
{
    analyze_virtual_services(s, diags);
    analyze_destination_rules(s, diags);
    analyze_gateways(s, diags);
    analyze_peer_authentications(s, diags);
    analyze_authorization_policies(s, diags);
    analyze_telemetry(s, diags);
    analyze_namespaces(s, diags);
}
