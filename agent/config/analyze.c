/* The analyzers (see analyze.h). Messages follow istioctl's wording where
 * Istio has the same check, so what a user has learned still reads right. */
#include "config/analyze.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/internal.h"
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

static const struct cfg_strs *export_of(const struct cfg_svc *svc)
{
    static const struct cfg_strs none = {0};
    return svc->service ? &svc->service->export_to : svc->entry ? &svc->entry->export_to : &none;
}

static bool exported_everywhere(const struct cfg_strs *e)
{
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->v[i], "*") == 0)
            return true;
    return e->n == 0;
}

/* istioctl's GetDestinationHost (analyzers/util/service_lookup.go), for a
 * reference from namespace `ns` by a resource exported to `scopes`: a
 * Service or ServiceEntry host of the resolved name exported everywhere,
 * or to `ns` (no scopes) or one of `scopes` ("." is `ns`); else a wildcard
 * ServiceEntry host visible in `ns` whose suffix the host (without its own
 * leading '*') ends with. */
static bool host_known_from(const struct cfg_snapshot *s, const char *host, const char *ns,
                            const struct cfg_strs *scopes)
{
    char fqdn[512];
    struct cfg_iter it = {0};
    const struct cfg_svc *v;
    while (cfg_fqdn(s, host, ns, fqdn, sizeof(fqdn)) && (v = cfg_next_svc_for_fqdn(s, fqdn, &it))) {
        if (exported_everywhere(export_of(v)))
            return true;
        if (!scopes->n && cfg_svc_visible(v, ns))
            return true;
        for (size_t i = 0; i < scopes->n; i++) {
            const char *scope = strcmp(scopes->v[i], ".") == 0 ? ns : scopes->v[i];
            if (strcmp(scope, "*") != 0 && cfg_svc_visible(v, scope))
                return true;
        }
    }
    const char *h = is_wildcard(host) ? host + 1 : host;
    size_t hl = strlen(h);
    FOR_EACH(s, CFG_SERVICE_ENTRY, struct cfg_service_entry, se)
    {
        if (!cfg_exported_to(&se->export_to, se->meta.ns, ns))
            continue;
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

/* istioctl's checkServiceEntryPorts: a destination port the service (or
 * entry) named by host does not have. Unknown hosts are not asked. */
static bool port_known(const struct cfg_snapshot *s, const char *host, const char *ns,
                       uint16_t port)
{
    const struct cfg_svc *v = cfg_svc_by_host(s, host, ns);
    if (!v)
        return true;
    if (v->service)
        for (size_t i = 0; i < v->service->nports; i++)
            if (v->service->ports[i].port == port)
                return true;
    if (v->entry)
        for (size_t i = 0; i < v->entry->nports; i++)
            if (v->entry->ports[i].number == port)
                return true;
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
    /* A Gateway API Gateway counts too; istiod's generated names
     * ("ns/gw~istio-autogenerated-k8s-gateway~...") are istioctl's IST0165. */
    if (!cfg_find(s, CFG_GATEWAY, ns, name) &&
        !cfg_find_other(s, "Gateway", "gateway.networking.k8s.io", ns, name) &&
        !strstr(gw, "~istio-autogenerated-"))
        cfg_diag_add(diags, CFG_ERROR, IST_NOT_FOUND, &vs->meta, pos,
                     "Referenced gateway not found: \"%s\"", gw);
}

static void analyze_route(const struct cfg_snapshot *s, const struct cfg_virtual_service *vs,
                          const struct cfg_route *r, size_t idx, struct cfg_diags *diags)
{
    const char *section = r->http ? "http" : "tcp";
    uint64_t sum = 0;
    bool all_weighted = true;
    /* The host and the subset are istioctl's two analyzers: both checked. */
    for (size_t d = 0; d < r->ndest; d++) {
        const struct cfg_destination *dst = &r->dest[d].dest;
        if (!host_known_from(s, dst->host, vs->meta.ns, &vs->export_to))
            cfg_diag_add(diags, CFG_ERROR, IST_NOT_FOUND, &vs->meta, &dst->pos,
                         "Referenced host not found: \"%s\"", dst->host);
        else if (dst->port && !port_known(s, dst->host, vs->meta.ns, dst->port))
            cfg_diag_add(diags, CFG_ERROR, IST_NOT_FOUND, &vs->meta, &dst->pos,
                         "Referenced host:port not found: \"%s:%u\"", dst->host, dst->port);
        if (dst->subset && !subset_known(s, dst->host, vs->meta.ns, dst->subset))
            cfg_diag_add(diags, CFG_ERROR, IST_NOT_FOUND, &vs->meta, &dst->pos,
                         "Referenced host+subset in destinationrule not found: \"%s+%s\"",
                         dst->host, dst->subset);
        sum += r->dest[d].weight;
        all_weighted &= r->dest[d].has_weight;
    }
    for (size_t d = 0; d < r->nmirrors; d++) {
        const struct cfg_destination *dst = &r->mirrors[d];
        if (!dst->host)
            continue;
        if (!host_known_from(s, dst->host, vs->meta.ns, &vs->export_to))
            cfg_diag_add(diags, CFG_ERROR, IST_NOT_FOUND, &vs->meta, &dst->pos,
                         "Referenced mirror host not found: \"%s\"", dst->host);
        if (dst->subset && !subset_known(s, dst->host, vs->meta.ns, dst->subset))
            cfg_diag_add(diags, CFG_ERROR, IST_NOT_FOUND, &vs->meta, &dst->pos,
                         "Referenced mirror+subset in destinationrule not found: \"%s+%s\"",
                         dst->host, dst->subset);
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

/* IST0109 as istioctl's ConflictingMeshGatewayHostsAnalyzer: each
 * mesh-bound VirtualService host is keyed by its scope (exportTo: "*" when
 * empty or listing "*", else each namespace, "." its own) and FQDN; a key
 * with more than one VirtualService conflicts, and a namespace-scoped key
 * also conflicts with "*"-scoped hosts it overlaps (wildcards included). */
struct scoped_host {
    const char *scope;
    char fqdn[256];
    const struct cfg_virtual_service *vs;
};

/* Istio's host.Name.Matches: overlap of two hosts, either a wildcard. */
static bool hosts_overlap(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    bool wa = is_wildcard(a), wb = is_wildcard(b);
    if (wa && wb)
        return la < lb ? strcmp(b + lb - (la - 1), a + 1) == 0
                       : strcmp(a + la - (lb - 1), b + 1) == 0;
    if (wa)
        return lb >= la - 1 && strcmp(b + lb - (la - 1), a + 1) == 0;
    if (wb)
        return la >= lb - 1 && strcmp(a + la - (lb - 1), b + 1) == 0;
    return strcmp(a, b) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void report_vs_conflict(const struct scoped_host *key, const struct scoped_host **list,
                               size_t n, bool *reported, struct cfg_diags *diags)
{
    const char *names[64];
    char buf[64][256];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 64; i++) {
        snprintf(buf[k], sizeof(buf[k]), "%s/%s", list[i]->vs->meta.ns, list[i]->vs->meta.name);
        bool dup = false;
        for (size_t j = 0; j < k && !dup; j++)
            dup = strcmp(names[j], buf[k]) == 0;
        if (!dup) {
            names[k] = buf[k];
            k++;
        }
    }
    if (k < 2)
        return;
    qsort(names, k, sizeof(*names), cmp_str);
    char joined[1024] = "";
    for (size_t i = 0; i < k; i++) {
        size_t l = strlen(joined);
        snprintf(joined + l, sizeof(joined) - l, "%s%s", i ? "," : "", names[i]);
    }
    for (size_t i = 0; i < n; i++) {
        if (reported[list[i]->vs->meta.ord])
            continue;
        reported[list[i]->vs->meta.ord] = true;
        cfg_diag_add(diags, CFG_ERROR, IST_VS_CONFLICT, &list[i]->vs->meta, NULL,
                     "The VirtualServices %s associated with mesh gateway define the same host "
                     "%s/%s which can lead to undefined behavior. This can be fixed by merging the "
                     "conflicting VirtualServices into a single resource.",
                     joined, key->scope, key->fqdn);
    }
}

static int cmp_scoped(const void *x, const void *y)
{
    const struct scoped_host *a = x, *b = y;
    int c = strcmp(a->scope, b->scope);
    if (c)
        return c;
    c = strcmp(a->fqdn, b->fqdn);
    return c ? c : (a->vs->meta.ord > b->vs->meta.ord) - (a->vs->meta.ord < b->vs->meta.ord);
}

static void analyze_vs_conflicts(const struct cfg_snapshot *s, struct cfg_diags *diags)
{
    size_t cap = 0, n = 0, nvs = cfg_count(s, CFG_VIRTUAL_SERVICE), nwild = 0;
    FOR_EACH(s, CFG_VIRTUAL_SERVICE, struct cfg_virtual_service, vs)
    cap += binds_mesh(vs) ? vs->hosts.n * (vs->export_to.n ? vs->export_to.n : 1) : 0;
    struct scoped_host *e = calloc(cap ? cap : 1, sizeof(*e));
    const struct scoped_host **list = calloc(cap ? cap : 1, sizeof(*list));
    const struct scoped_host **wild = calloc(cap ? cap : 1, sizeof(*wild));
    bool *reported = calloc(nvs ? nvs : 1, sizeof(*reported));
    if (!e || !list || !wild || !reported)
        goto out;
    FOR_EACH(s, CFG_VIRTUAL_SERVICE, struct cfg_virtual_service, vs)
    {
        if (!binds_mesh(vs))
            continue;
        bool all = !vs->export_to.n;
        for (size_t x = 0; x < vs->export_to.n; x++)
            all |= strcmp(vs->export_to.v[x], "*") == 0;
        for (size_t x = 0; x < (all ? 1 : vs->export_to.n); x++) {
            const char *scope = all ? "*" : vs->export_to.v[x];
            if (strcmp(scope, ".") == 0)
                scope = vs->meta.ns;
            for (size_t h = 0; h < vs->hosts.n && n < cap; h++) {
                e[n] = (struct scoped_host){.scope = scope, .vs = vs};
                if (cfg_fqdn(s, vs->hosts.v[h], vs->meta.ns, e[n].fqdn, sizeof(e[n].fqdn)))
                    n++;
            }
        }
    }
    /* Sorted, a key's entries are adjacent; the "*" scope's wildcards are
     * the only ones a scoped key can overlap other than its own FQDN. */
    qsort(e, n, sizeof(*e), cmp_scoped);
    size_t nstar = 0;
    while (nstar < n && strcmp(e[nstar].scope, "*") == 0)
        nstar++;
    for (size_t i = 0; i < nstar; i++)
        if (is_wildcard(e[i].fqdn))
            wild[nwild++] = &e[i];
    for (size_t i = 0; i < n;) {
        size_t j = i, k = 0;
        while (j < n && strcmp(e[j].scope, e[i].scope) == 0 && strcmp(e[j].fqdn, e[i].fqdn) == 0)
            list[k++] = &e[j++];
        if (strcmp(e[i].scope, "*") != 0) {
            for (size_t w = 0; w < nwild; w++)
                if (hosts_overlap(e[i].fqdn, wild[w]->fqdn) && k < cap)
                    list[k++] = wild[w];
            /* Exported entries of the same FQDN: the "*" block sorts
             * first ('*' < any namespace), so a binary search finds them. */
            size_t lo = 0, hi = nstar;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (strcmp(e[mid].fqdn, e[i].fqdn) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            for (size_t x = lo; !is_wildcard(e[i].fqdn) && x < nstar &&
                                strcmp(e[x].fqdn, e[i].fqdn) == 0 && k < cap;
                 x++)
                list[k++] = &e[x];
            if (is_wildcard(e[i].fqdn))
                for (size_t x = 0; x < n; x++)
                    if (strcmp(e[x].scope, "*") == 0 && !is_wildcard(e[x].fqdn) &&
                        hosts_overlap(e[i].fqdn, e[x].fqdn) && k < cap)
                        list[k++] = &e[x];
        }
        if (k > 1)
            report_vs_conflict(&e[i], list, k, reported, diags);
        i = j;
    }
out:
    free(e);
    free(list);
    free(wild);
    free(reported);
}

static void analyze_virtual_services(const struct cfg_snapshot *s, struct cfg_diags *diags)
{
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
    }
    analyze_vs_conflicts(s, diags);
}

/* A pod's labels as pilot's AugmentLabels completes them: its Node's
 * region, zone and subzone, and its node name as the hostname. */
static bool pod_has_labels(const struct cfg_snapshot *s, const struct cfg_pod *p,
                           const struct cfg_labels *want)
{
    static const char *const topo[] = {"topology.kubernetes.io/region",
                                       "topology.kubernetes.io/zone", "topology.istio.io/subzone",
                                       NULL};
    const struct cfg_other *node = p->node ? cfg_find_other(s, "Node", "", NULL, p->node) : NULL;
    for (size_t i = 0; i < want->n; i++) {
        const char *k = want->v[i].key, *v = cfg_label(&p->meta.labels, k);
        for (size_t t = 0; !v && node && topo[t]; t++)
            if (strcmp(k, topo[t]) == 0 && (v = cfg_label(&node->labels, k)) && !*v)
                v = NULL; /* an empty locality adds no label */
        if (!v && p->node && strcmp(k, "kubernetes.io/hostname") == 0)
            v = p->node;
        if (!v || strcmp(v, want->v[i].value) != 0)
            return false;
    }
    return true;
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
            if (pod_has_labels(s, p, &sub->labels) && (!extra || pod_has_labels(s, p, extra)))
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
        if (!host_known_from(s, dr->host, dr->meta.ns, &dr->export_to)) {
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

/* Workloads of `ns` (NULL: any namespace) a selector matches: Pods,
 * WorkloadEntries and, offline, Deployments' pod templates. By the
 * namespace index: a reload analyzes thousands of policies. */
static size_t count_selected(const struct cfg_snapshot *s, const char *ns,
                             const struct cfg_labels *sel)
{
    size_t n = 0;
    if (!ns) {
        FOR_EACH(s, CFG_POD, struct cfg_pod, p)
        n += cfg_labels_match(sel, &p->meta.labels);
        FOR_EACH(s, CFG_WORKLOAD_ENTRY, struct cfg_workload_entry, we)
        n += cfg_labels_match(sel, &we->spec.labels);
        FOR_EACH(s, CFG_DEPLOYMENT, struct cfg_deployment, d)
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

static void format_labels(const struct cfg_labels *l, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < l->n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s=%s", i ? "," : "", l->v[i].key,
                                l->v[i].value);
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
        format_labels(&sel->match, labels, sizeof(labels));
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
        format_labels(&sel->match, labels, sizeof(labels));
    cfg_diag_add(diags, CFG_WARNING, IST_NO_WORKLOADS, m, NULL,
                 "No matching workloads for this resource with the following labels: %s", labels);
}

/* istioctl: namespaces an AuthorizationPolicy names must exist (Istio's
 * patterns). Only when the input has Namespace objects at all: manifests
 * without them say nothing about which namespaces exist. */
static bool namespace_pattern_known(const struct cfg_snapshot *s, const char *pattern)
{
    FOR_EACH(s, CFG_NAMESPACE, struct cfg_namespace, ns)
    {
        if (authz_match_string(pattern, ns->meta.name))
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
        /* istioctl analyze adds a dummy istio=ingressgateway pod in the
         * root namespace to offline input (AddDefaultResources). */
        static const struct cfg_kv dflt[] = {{"istio", "ingressgateway"}};
        static const struct cfg_labels dflt_labels = {dflt, 1};
        if (!wl_ns && cfg_labels_match(&gw->selector.match, &dflt_labels))
            wl_ns = cfg_snapshot_root_namespace(s);
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
    FOR_EACH(s, CFG_NAMESPACE, struct cfg_namespace, ns)
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
