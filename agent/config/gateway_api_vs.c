/* The VirtualService generated for one listener and host from the Gateway
 * API routes attached there (see gateway_api.c): every rule's routes with
 * their destinations resolved (backendRefs -> Service FQDNs of the
 * cluster domain, weights as given; another namespace's Service only with
 * a ReferenceGrant), in the Gateway API's precedence; TLSRoute rules as
 * tls[] routes by SNI, TCPRoute rules as tcp[] routes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/decode.h"
#include "config/internal.h"

#define GWAPI_GROUP "gateway.networking.k8s.io"

/* A backendRef as a destination; false (said) when it cannot be one. */
static bool resolve(struct cfg_snapshot *s, struct cfg_gwapi_ix *ix, struct cfg_diags *diags,
                    const struct cfg_gwapi_route *r, const struct cfg_gwapi_ref *b,
                    struct cfg_destination *out)
{
    if ((b->group && *b->group) || (b->kind && strcmp(b->kind, "Service") != 0)) {
        cfg_diag_add(diags, CFG_WARNING, MSH_GWAPI, &r->meta, &b->pos,
                     "backendRef %s %s is not a Service (InvalidKind): its share answers 500",
                     b->kind ? b->kind : "?", b->name);
        return false;
    }
    const char *ns = b->ns ? b->ns : r->meta.ns;
    if (strcmp(ns, r->meta.ns) != 0 &&
        !cfg_gwapi_granted(ix, cfg_kind_name(r->meta.kind), r->meta.ns, "Service", ns, b->name)) {
        cfg_diag_add(diags, CFG_WARNING, MSH_GWAPI, &r->meta, &b->pos,
                     "backendRef Service %s/%s is in another namespace and no ReferenceGrant in "
                     "%s allows it (RefNotPermitted): its share answers 500",
                     ns, b->name, ns);
        return false;
    }
    *out = (struct cfg_destination){
        .host = arena_printf(&s->arena, "%s.%s.svc.%s", b->name, ns, s->domain),
        .port = b->port,
        .pos = b->pos,
    };
    return out->host != NULL;
}

/* The rule's destinations and mirrors, resolved (and refusals said) once
 * for every listener and host the rule serves; *usable false when no
 * destination can carry a request. */
static int rule_dests(struct cfg_snapshot *s, struct cfg_gwapi_ix *ix, struct cfg_diags *diags,
                      const struct cfg_gwapi_route *r, struct cfg_gwapi_rule *rule,
                      struct cfg_route_destination **out, size_t *n, bool *usable)
{
    if (!rule->resolved) {
        struct cfg_route_destination *d =
            arena_array(&s->arena, rule->nbackends ? rule->nbackends : 1, sizeof(*d));
        struct cfg_http_mirror *m =
            arena_array(&s->arena, rule->nmirrors ? rule->nmirrors : 1, sizeof(*m));
        if (!d || !m)
            return -ENOMEM;
        uint64_t total = 0;
        for (size_t i = 0; i < rule->nbackends; i++) {
            const struct cfg_gwapi_ref *b = &rule->backends[i];
            if (!resolve(s, ix, diags, r, b, &d[rule->ndests].dest))
                continue;
            d[rule->ndests].weight = b->weight;
            d[rule->ndests].has_weight = true;
            total += b->weight;
            rule->ndests++;
        }
        for (size_t i = 0; i < rule->nmirrors; i++)
            if (resolve(s, ix, diags, r, &rule->mirrors[i], &m[rule->nmirror_dests].dest))
                m[rule->nmirror_dests++].ppm = rule->mirrors[i].mirror_ppm;
        rule->dests = d;
        rule->mirror_dests = m;
        rule->usable = total > 0;
        rule->resolved = true;
    }
    *out = rule->dests;
    *n = rule->ndests;
    *usable = rule->usable;
    return 0;
}

static int cmp_rank(const struct cfg_gwapi_rank *a, const struct cfg_gwapi_rank *b)
{
    if (a->path_kind != b->path_kind)
        return b->path_kind - a->path_kind;
    if (a->path_len != b->path_len)
        return a->path_len > b->path_len ? -1 : 1;
    if (a->method != b->method)
        return a->method ? -1 : 1;
    if (a->nheaders != b->nheaders)
        return a->nheaders > b->nheaders ? -1 : 1;
    if (a->nquery != b->nquery)
        return a->nquery > b->nquery ? -1 : 1;
    return 0;
}

struct ranked {
    struct cfg_route route;
    const struct cfg_gwapi_rank *rank;
    size_t seq; /* stable order among equals */
};

static int cmp_ranked(const void *x, const void *y)
{
    const struct ranked *a = x, *b = y;
    int c = cmp_rank(a->rank, b->rank);
    return c ? c : (a->seq < b->seq ? -1 : a->seq > b->seq);
}

static size_t count_routes(const struct cfg_gwapi_route *const *routes, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < routes[i]->nrules; j++)
            total += routes[i]->rules[j].nroutes;
    return total;
}

/* http[] routes of every rule, in the Gateway API's precedence. */
static int http_routes(struct cfg_snapshot *s, struct cfg_gwapi_ix *ix, struct cfg_diags *diags,
                       const struct cfg_gwapi_route *const *routes, size_t n,
                       struct cfg_virtual_service *vs)
{
    size_t total = count_routes(routes, n), k = 0;
    struct ranked *rk = calloc(total ? total : 1, sizeof(*rk));
    struct cfg_route *out = arena_array(&s->arena, total ? total : 1, sizeof(*out));
    if (!rk || !out) {
        free(rk);
        return -ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        for (size_t j = 0; !rc && j < routes[i]->nrules; j++) {
            struct cfg_gwapi_rule *rule = &routes[i]->rules[j];
            struct cfg_route_destination *d;
            size_t nd;
            bool usable;
            rc = rule_dests(s, ix, diags, routes[i], rule, &d, &nd, &usable);
            for (size_t m = 0; !rc && m < rule->nroutes; m++) {
                struct cfg_http_route *h = arena_alloc(&s->arena, sizeof(*h));
                if (!h) {
                    rc = -ENOMEM;
                    break;
                }
                *h = *rule->routes[m].http_ext;
                h->mirrors = rule->mirror_dests;
                h->nmirrors = rule->nmirror_dests;
                struct cfg_route r = rule->routes[m];
                r.http_ext = h;
                r.name = routes[i]->meta.name;
                if (usable) {
                    r.dest = d;
                    r.ndest = nd;
                } else if (!h->redirect.set) {
                    /* No backend that can serve: the API's 500. */
                    h->direct = (struct cfg_http_direct){.set = true, .status = 500};
                    r.l7_action = "direct_response";
                }
                rk[k] = (struct ranked){.route = r, .rank = &rule->ranks[m], .seq = k};
                k++;
            }
        }
    }
    if (!rc) {
        qsort(rk, k, sizeof(*rk), cmp_ranked);
        for (size_t i = 0; i < k; i++)
            out[i] = rk[i].route;
        vs->routes = out;
        vs->nroutes = k;
    }
    free(rk);
    return rc;
}

/* TLSRoute rules as tls[] routes matching the host as SNI (tls), TCPRoute
 * rules as tcp[] routes: a rule with a usable backend each. */
static int l4_routes(struct cfg_snapshot *s, struct cfg_gwapi_ix *ix, struct cfg_diags *diags,
                     const struct cfg_gwapi_route *const *routes, size_t n, const char *host,
                     bool tls, struct cfg_virtual_service *vs)
{
    size_t total = count_routes(routes, n), k = 0;
    struct cfg_tls_route *tout = arena_array(&s->arena, total ? total : 1, sizeof(*tout));
    struct cfg_route *out = arena_array(&s->arena, total ? total : 1, sizeof(*out));
    struct cfg_tls_match *m = arena_alloc(&s->arena, sizeof(*m));
    const char **sni = arena_alloc(&s->arena, sizeof(*sni));
    if (!tout || !out || !m || !sni)
        return -ENOMEM;
    *sni = host;
    *m = (struct cfg_tls_match){.sni_hosts = {sni, 1}};
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < routes[i]->nrules; j++) {
            struct cfg_gwapi_rule *rule = &routes[i]->rules[j];
            struct cfg_route_destination *d;
            size_t nd;
            bool usable;
            if (rule_dests(s, ix, diags, routes[i], rule, &d, &nd, &usable))
                return -ENOMEM;
            if (!usable)
                continue;
            tout[k] = (struct cfg_tls_route){
                .match = m, .nmatch = 1, .dest = d, .ndest = nd, .pos = rule->pos};
            out[k++] = (struct cfg_route){
                .name = routes[i]->meta.name, .dest = d, .ndest = nd, .pos = rule->pos};
        }
    }
    if (tls) {
        vs->tls_routes = tout;
        vs->ntls = k;
    } else {
        vs->routes = out;
        vs->nroutes = k;
    }
    return 0;
}

int cfg_gwapi_build_vs(struct cfg_snapshot *s, struct cfg_gwapi_ix *ix, struct cfg_diags *diags,
                       struct cfg_gateway *gw, const char *host, enum cfg_kind kind,
                       const struct cfg_gwapi_route *const *routes, size_t n)
{
    struct arena *a = &s->arena;
    size_t total = count_routes(routes, n);
    if (total > ix->routes_left) {
        if (!ix->routes_full)
            cfg_diag_add(diags, CFG_WARNING, MSH_GWAPI, &routes[0]->meta, NULL,
                         "more than %zu generated routes: listener %s host %s and the rest "
                         "are not served",
                         (size_t)CFG_GWAPI_MAX_ROUTES, gw->meta.name, host);
        ix->routes_full = true;
        return 0;
    }
    ix->routes_left -= total;
    struct cfg_virtual_service *vs = arena_alloc(a, sizeof(*vs));
    const char **hosts = arena_alloc(a, sizeof(*hosts));
    const char **gws = arena_alloc(a, sizeof(*gws));
    if (!vs || !hosts || !gws)
        return -ENOMEM;
    *hosts = host;
    *gws = arena_printf(a, "%s/%s", gw->meta.ns, gw->meta.name);
    *vs = (struct cfg_virtual_service){
        .meta = {.kind = CFG_VIRTUAL_SERVICE,
                 .api_version = "networking.istio.io/v1",
                 .ns = gw->meta.ns,
                 .name = arena_printf(a, "%s~%s", gw->meta.name, host),
                 .pos = routes[0]->meta.pos},
        .hosts = {hosts, 1},
        .gateways = {gws, 1},
        .generated_from = &routes[0]->meta,
    };
    if (!*gws || !vs->meta.name)
        return -ENOMEM;
    int rc = kind == CFG_HTTP_ROUTE
                 ? http_routes(s, ix, diags, routes, n, vs)
                 : l4_routes(s, ix, diags, routes, n, host, kind == CFG_TLS_ROUTE, vs);
    if (rc)
        return rc;
    return cfg_list_push(&s->kinds[CFG_VIRTUAL_SERVICE], vs) ? -ENOMEM : 0;
}
