/* The Gateway API's analyzers (part of cfg_analyze): each route's Service
 * backends exist with the port named (IST0101, on the route and the
 * backendRef, once each: the VirtualServices generated from them are not
 * analyzed again), and a served Gateway has a pod Istio would have
 * deployed for it (gateway.networking.k8s.io/gateway-name, in its
 * namespace), else nothing serves it yet (Info). */
#include <string.h>

#include "config/internal.h"

#define NAME_LABEL "gateway.networking.k8s.io/gateway-name"

static void check_backend(const struct cfg_snapshot *s, const struct cfg_gwapi_route *r,
                          const struct cfg_gwapi_ref *b, const char *what, struct cfg_diags *diags)
{
    if ((b->group && *b->group) || (b->kind && strcmp(b->kind, "Service") != 0))
        return; /* said at load (InvalidKind) */
    const char *ns = b->ns ? b->ns : r->meta.ns;
    const struct cfg_service *svc = cfg_find(s, CFG_SERVICE, ns, b->name);
    if (!svc) {
        cfg_diag_add(diags, CFG_ERROR, IST_NOT_FOUND, &r->meta, &b->pos,
                     "Referenced %s not found: \"%s.%s.svc.%s\"", what, b->name, ns,
                     cfg_snapshot_domain(s));
        return;
    }
    for (size_t i = 0; i < svc->nports; i++)
        if (svc->ports[i].port == b->port)
            return;
    if (b->port)
        cfg_diag_add(diags, CFG_ERROR, IST_NOT_FOUND, &r->meta, &b->pos,
                     "Referenced %s:port not found: \"%s.%s.svc.%s:%u\"", what, b->name, ns,
                     cfg_snapshot_domain(s), b->port);
}

static void analyze_routes(const struct cfg_snapshot *s, enum cfg_kind kind,
                           struct cfg_diags *diags)
{
    CFG_FOR_EACH(s, kind, struct cfg_gwapi_route, r)
    {
        for (size_t i = 0; i < r->nrules; i++) {
            for (size_t b = 0; b < r->rules[i].nbackends; b++)
                check_backend(s, r, &r->rules[i].backends[b], "host", diags);
            for (size_t m = 0; m < r->rules[i].nmirrors; m++)
                check_backend(s, r, &r->rules[i].mirrors[m], "mirror host", diags);
        }
    }
}

void cfg_analyze_gateway_api(const struct cfg_snapshot *s, struct cfg_diags *diags)
{
    analyze_routes(s, CFG_HTTP_ROUTE, diags);
    analyze_routes(s, CFG_TLS_ROUTE, diags);
    analyze_routes(s, CFG_TCP_ROUTE, diags);
    CFG_FOR_EACH(s, CFG_K8S_GATEWAY, struct cfg_k8s_gateway, g)
    {
        if (strcmp(g->class_name, "istio") != 0)
            continue;
        bool served = false;
        struct cfg_iter it = {0};
        const struct cfg_pod *p;
        while (!served && (p = cfg_next_in_ns(s, CFG_POD, g->meta.ns, &it))) {
            const char *v = cfg_label(&p->meta.labels, NAME_LABEL);
            served = v && !strcmp(v, g->meta.name);
        }
        if (!served)
            cfg_diag_add(diags, CFG_INFO, MSH_GWAPI, &g->meta, NULL,
                         "no pod labelled %s: %s in %s (Istio deploys %s-istio): nothing serves "
                         "this Gateway yet",
                         NAME_LABEL, g->meta.name, g->meta.ns, g->meta.name);
    }
}
