/* Route resolution (see resolve.h). */
#include "route/resolve.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static bool gateways_admit_mesh(const struct cfg_strs *gateways)
{
    if (!gateways->n)
        return true;
    for (size_t i = 0; i < gateways->n; i++)
        if (strcmp(gateways->v[i], "mesh") == 0)
            return true;
    return false;
}

bool route_match_l4(const struct cfg_match *m, const struct route_source *src, uint16_t port)
{
    if ((m->port && m->port != port) || !gateways_admit_mesh(&m->gateways))
        return false;
    if (m->source_namespace && (!src->ns || strcmp(m->source_namespace, src->ns) != 0))
        return false;
    return !m->source_labels.n || cfg_labels_match(&m->source_labels, &src->labels);
}

bool route_matches(const struct cfg_route *r, const struct route_source *src, uint16_t port)
{
    if (!r->nmatch)
        return true;
    for (size_t i = 0; i < r->nmatch; i++)
        if (!r->match[i].l7 && route_match_l4(&r->match[i], src, port))
            return true;
    return false;
}

/* Each section of `more` that is set replaces the one in `into`. */
static void overlay(struct cfg_policy_level *into, const struct cfg_policy_level *more)
{
    if (more->lb != CFG_LB_UNSET)
        into->lb = more->lb;
    if (more->pool.set)
        into->pool = more->pool;
    if (more->outlier.set)
        into->outlier = more->outlier;
    if (more->tls_mode)
        into->tls_mode = more->tls_mode;
}

static void overlay_policy(struct cfg_policy_level *into, const struct cfg_traffic_policy *tp,
                           uint16_t port)
{
    overlay(into, &tp->top);
    for (size_t i = 0; i < tp->nports; i++)
        if (tp->ports[i].port == port)
            overlay(into, &tp->ports[i].level);
}

void route_policy(const struct cfg_destination_rule *dr, const char *subset, uint16_t port,
                  struct cfg_policy_level *out)
{
    memset(out, 0, sizeof(*out));
    if (!dr)
        return;
    overlay_policy(out, &dr->policy, port);
    for (size_t i = 0; subset && i < dr->nsubsets; i++)
        if (strcmp(dr->subsets[i].name, subset) == 0)
            overlay_policy(out, &dr->subsets[i].policy, port);
}

enum lb_policy route_lb_policy(enum cfg_lb lb)
{
    switch (lb) {
    case CFG_LB_LEAST_REQUEST:
        return LB_LEAST_REQUEST;
    case CFG_LB_RANDOM:
        return LB_RANDOM;
    case CFG_LB_PASSTHROUGH:
        return LB_PASSTHROUGH;
    case CFG_LB_CONSISTENT_SOURCE_IP:
        return LB_CONSISTENT_HASH_SOURCE_IP;
    default:
        return LB_ROUND_ROBIN; /* Istio's default; also for L7-only hashes */
    }
}

bool route_in_mesh(const struct cfg_snapshot *s, const struct cfg_workload *w)
{
    /* A ServiceEntry's own endpoints are outside the mesh unless the entry
     * says MESH_INTERNAL (the default is MESH_EXTERNAL): plain TCP. */
    if (w->meta && w->meta->kind == CFG_SERVICE_ENTRY) {
        const struct cfg_service_entry *se = (const struct cfg_service_entry *)w->meta;
        if (!se->location || strcmp(se->location, "MESH_INTERNAL") != 0)
            return false;
    }
    const char *mode = cfg_label(&w->labels, "istio.io/dataplane-mode");
    if (mode && strcmp(mode, "none") == 0)
        return false;
    return cfg_namespace_in_mesh(s, w->ns);
}

/* How Istio ranks the DestinationRules a client can see for a host: its
 * own namespace's first, then the service's, then the root namespace's;
 * within a rank, the exact host before wildcards, the closest wildcard
 * first, then load order. -1: not visible from the client. */
static int dr_rank(const struct cfg_snapshot *s, const struct cfg_destination_rule *dr,
                   const char *client_ns, const char *svc_ns)
{
    if (dr->workload_selector.set) /* for sidecars' own traffic: not applied */
        return -1;
    if (client_ns && !cfg_exported_to(&dr->export_to, dr->meta.ns, client_ns))
        return -1;
    if (client_ns && strcmp(dr->meta.ns, client_ns) == 0)
        return 3;
    if (strcmp(dr->meta.ns, svc_ns) == 0)
        return 2;
    return strcmp(dr->meta.ns, cfg_snapshot_root_namespace(s)) == 0 ? 1 : 0;
}

static const struct cfg_destination_rule *find_dr(const struct cfg_snapshot *s, const char *fqdn,
                                                  const char *client_ns, const char *svc_ns)
{
    const struct cfg_destination_rule *best = NULL, *dr;
    int best_rank = -1;
    struct cfg_iter it = {0};
    while ((dr = cfg_next_dr_for_host(s, fqdn, &it))) {
        int r = dr_rank(s, dr, client_ns, svc_ns);
        if (r > best_rank)
            best = dr, best_rank = r;
    }
    size_t wit = 0;
    while (best_rank < 3 && (dr = cfg_next_dr_wildcard(s, fqdn, &wit))) {
        int r = dr_rank(s, dr, client_ns, svc_ns);
        if (r > best_rank)
            best = dr, best_rank = r;
    }
    return best;
}

/* The VirtualService for a host: bound to the mesh, visible from the
 * client's namespace; the exact host first, then the closest wildcard. */
static bool vs_applies(const struct cfg_virtual_service *vs, const char *client_ns)
{
    return gateways_admit_mesh(&vs->gateways) &&
           (!client_ns || cfg_exported_to(&vs->export_to, vs->meta.ns, client_ns));
}

static const struct cfg_virtual_service *find_vs(const struct cfg_snapshot *s, const char *fqdn,
                                                 const char *client_ns)
{
    const struct cfg_virtual_service *vs;
    struct cfg_iter it = {0};
    while ((vs = cfg_next_vs_for_host(s, fqdn, &it)))
        if (vs_applies(vs, client_ns))
            return vs;
    size_t wit = 0;
    while ((vs = cfg_next_vs_wildcard(s, fqdn, &wit)))
        if (vs_applies(vs, client_ns))
            return vs;
    return NULL;
}

uint16_t route_target_port(const struct cfg_svc *svc, uint16_t port, const struct cfg_workload *w)
{
    const char *name = NULL;
    uint16_t number = port;
    if (svc->service) {
        for (size_t i = 0; i < svc->service->nports; i++) {
            const struct cfg_service_port *sp = &svc->service->ports[i];
            if (sp->port != port)
                continue;
            number = sp->target.number ? sp->target.number : sp->target.name ? 0 : port;
            name = sp->target.name;
            break;
        }
    } else if (svc->entry) {
        for (size_t i = 0; i < svc->entry->nports; i++) {
            const struct cfg_named_port *ep = &svc->entry->ports[i];
            if (ep->number != port)
                continue;
            number = ep->target_port ? ep->target_port : port;
            name = ep->name; /* an endpoint's `ports` may remap it */
            break;
        }
    }
    if (name && w->pod) {
        for (size_t i = 0; i < w->pod->nports; i++)
            if (w->pod->ports[i].name && strcmp(w->pod->ports[i].name, name) == 0)
                return w->pod->ports[i].port;
        return number; /* 0 for a Service's named targetPort the pod lacks */
    }
    if (name && w->entry) {
        const char *v = cfg_label(&w->entry->ports, name);
        long p = v ? strtol(v, NULL, 10) : 0;
        if (p > 0 && p < 65536)
            return (uint16_t)p;
    }
    return number;
}

static bool has_port(const struct cfg_svc *svc, uint16_t port)
{
    if (svc->service) {
        for (size_t i = 0; i < svc->service->nports; i++)
            if (svc->service->ports[i].port == port)
                return true;
    } else if (svc->entry) {
        for (size_t i = 0; i < svc->entry->nports; i++)
            if (svc->entry->ports[i].number == port)
                return true;
    }
    return false;
}

void route_fill_endpoints(const struct cfg_snapshot *s, struct route_cluster *c,
                          const char *client_ns)
{
    const struct cfg_subset *sub = NULL;
    c->dr = find_dr(s, c->svc->fqdn, client_ns, c->svc->ns);
    for (size_t i = 0; c->subset && c->dr && i < c->dr->nsubsets; i++)
        if (strcmp(c->dr->subsets[i].name, c->subset) == 0)
            sub = &c->dr->subsets[i];
    route_policy(c->dr, c->subset, c->port, &c->policy);
    c->nendpoints = 0;
    if (c->subset && !sub)
        return; /* an unknown subset selects nothing (analyze reports it) */
    for (size_t i = 0; i < c->svc->nendpoints && c->nendpoints < ROUTE_MAX_ENDPOINTS; i++) {
        const struct cfg_workload *w = c->svc->endpoints[i];
        if (!w->ready || !w->ips.n || (sub && !cfg_labels_match(&sub->labels, &w->labels)))
            continue;
        uint16_t tp = route_target_port(c->svc, c->port, w);
        if (!tp)
            continue;
        c->endpoints[c->nendpoints] = w;
        c->target_ports[c->nendpoints++] = tp;
    }
}

void route_begin(const struct cfg_snapshot *s, const struct route_source *src,
                 const struct cfg_svc *svc, uint16_t port, struct route_cluster *c)
{
    c->svc = svc;
    c->port = port;
    c->subset = NULL;
    c->vs = find_vs(s, svc->fqdn, src->ns);
    c->route = NULL;
}

/* The VirtualService and first matching route for a service port, before
 * any choice. */
static void route_lookup(const struct cfg_snapshot *s, const struct route_source *src,
                         const struct cfg_svc *svc, uint16_t port, struct route_cluster *c)
{
    route_begin(s, src, svc, port, c);
    for (size_t i = 0; c->vs && i < c->vs->nroutes; i++) {
        if (!route_matches(&c->vs->routes[i], src, c->port) || !c->vs->routes[i].ndest)
            continue;
        c->route = &c->vs->routes[i];
        break;
    }
}

/* Points the cluster at one route destination; NULL, or why not. */
static const char *route_to(const struct cfg_snapshot *s, struct route_cluster *c,
                            const struct cfg_destination *d)
{
    const struct cfg_svc *to = cfg_svc_by_host(s, d->host, c->vs->meta.ns);
    if (!to)
        return "the route's destination host is not a known service";
    c->svc = to;
    c->subset = d->subset;
    if (d->port)
        c->port = d->port;
    if (!has_port(to, c->port))
        return "the destination service has no such port";
    return NULL;
}

bool route_endpointless_entry(const struct route_cluster *c)
{
    return c->svc->entry && !c->svc->nendpoints;
}

/* A route destination's share: integer weights, a lone destination 100. */
static uint32_t dest_weight(const struct cfg_route *r, size_t i)
{
    if (r->ndest == 1)
        return 100;
    return r->dest[i].has_weight ? r->dest[i].weight : 0;
}

const char *route_pick(const struct cfg_snapshot *s, struct route_cluster *c,
                       const struct cfg_route *r, struct lb_state *rng, size_t *index)
{
    uint32_t weights[64];
    size_t n = r->ndest < 64 ? r->ndest : 64;
    for (size_t i = 0; i < n; i++)
        weights[i] = dest_weight(r, i);
    int pick = lb_weighted_pick(weights, n, rng);
    if (pick < 0)
        return "every route destination has weight 0";
    *index = (size_t)pick;
    return route_to(s, c, &r->dest[pick].dest);
}

const struct cfg_vip *route_vip(const struct cfg_snapshot *s, const struct route_source *src,
                                const struct meshd_addr *orig_dst)
{
    const struct cfg_vip *vip = cfg_vip_lookup(s, orig_dst);
    /* A service not exported to the client's namespace is not a service
     * for it: Istio routes the address as it would any other. */
    return vip && cfg_svc_visible(vip->svc, src->ns) ? vip : NULL;
}

void route_resolve(const struct cfg_snapshot *s, const struct route_source *src,
                   const struct meshd_addr *orig_dst, struct lb_state *rng, struct route_cluster *c,
                   struct route_result *out)
{
    memset(out, 0, sizeof(*out));
    const struct cfg_vip *vip = route_vip(s, src, orig_dst);
    if (!vip) {
        out->workload = cfg_workload_by_ip(s, orig_dst);
        out->kind = out->workload ? ROUTE_WORKLOAD : ROUTE_PASSTHROUGH;
        return;
    }
    route_lookup(s, src, vip->svc, ntohs(orig_dst->port), c);
    /* A route may send an endpointless entry's traffic elsewhere (Istio's
     * egress gateway task): passthrough only where it is the destination. */
    if (!c->route && route_endpointless_entry(c)) {
        out->kind = ROUTE_PASSTHROUGH;
        return;
    }
    if (c->route) {
        size_t pick;
        out->why = route_pick(s, c, c->route, rng, &pick);
        if (out->why) {
            out->kind = ROUTE_NO_ROUTE;
            return;
        }
        if (route_endpointless_entry(c)) {
            out->kind = ROUTE_PASSTHROUGH;
            return;
        }
    }
    route_fill_endpoints(s, c, src->ns);
    out->kind = ROUTE_SERVICE;
}

void route_describe(const struct cfg_snapshot *s, const struct route_source *src,
                    const struct cfg_svc *svc, uint16_t port, struct route_cluster *c,
                    struct route_view *out)
{
    memset(out, 0, sizeof(*out));
    route_lookup(s, src, svc, port, c);
    out->svc = c->svc;
    out->port = c->port;
    out->vs = c->vs;
    out->route = c->route;
    out->passthrough = !c->route && route_endpointless_entry(c);
    if (out->passthrough)
        return;
    size_t n = c->route ? c->route->ndest : 1;
    for (size_t i = 0; i < n && out->ndest < ROUTE_VIEW_MAX_DEST; i++) {
        struct route_view_dest *d = &out->dest[out->ndest++];
        c->svc = svc;
        c->port = port;
        c->subset = NULL;
        d->weight = 100;
        if (c->route) {
            d->host = c->route->dest[i].dest.host;
            d->weight = dest_weight(c->route, i);
            d->why = route_to(s, c, &c->route->dest[i].dest);
        } else {
            d->host = svc->fqdn;
        }
        d->subset = c->subset;
        d->port = c->port;
        if (d->why)
            continue;
        route_fill_endpoints(s, c, src->ns);
        d->svc = c->svc;
        d->dr = c->dr;
        d->policy = c->policy;
        d->ready = c->nendpoints;
    }
}
