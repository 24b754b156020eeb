/* The analyzers of the gateway's mesh modes (part of cfg_analyze):
 *  - an AUTO_PASSTHROUGH server whose hosts admit no service of the mesh
 *    (a Service, or a MESH_INTERNAL ServiceEntry host): Istio generates no
 *    filter chain for it, and meshd refuses every connection (Warning);
 *  - a VirtualService whose tls[] routes bind a Gateway whose servers are
 *    all AUTO_PASSTHROUGH: such servers route by the SNI alone, the routes
 *    are not used (Info).
 * (ISTIO_MUTUAL with a credentialName or certificate files is the
 * decoder's error, as Istio's validation.) */
#include <string.h>

#include "config/internal.h"
#include "config/pattern.h"

static bool auto_passthrough(const struct cfg_gateway_server *srv)
{
    return srv->has_tls && srv->tls_mode && strcmp(srv->tls_mode, "AUTO_PASSTHROUGH") == 0;
}

/* A server host ("h", "ns/h", "*") admits the FQDN of a service in `ns`. */
static bool admits(const struct cfg_gateway_server *srv, const char *fqdn, const char *ns)
{
    for (size_t i = 0; i < srv->hosts.n; i++) {
        const char *h = srv->hosts.v[i], *slash = strchr(h, '/');
        if (slash) {
            size_t nl = (size_t)(slash - h);
            bool any = nl == 1 && (h[0] == '*' || h[0] == '.');
            if (!any && (strlen(ns) != nl || strncmp(h, ns, nl) != 0))
                continue;
            h = slash + 1;
        }
        if (strcmp(h, "*") == 0 || pattern_match(h, fqdn))
            return true;
    }
    return false;
}

static bool admits_any_service(const struct cfg_snapshot *s, const struct cfg_gateway_server *srv)
{
    CFG_FOR_EACH(s, CFG_SERVICE, struct cfg_service, svc)
    {
        const struct cfg_svc *v = cfg_svc_by_host(s, svc->meta.name, svc->meta.ns);
        if (v && admits(srv, v->fqdn, svc->meta.ns))
            return true;
    }
    CFG_FOR_EACH(s, CFG_SERVICE_ENTRY, struct cfg_service_entry, se)
    {
        if (!se->location || strcmp(se->location, "MESH_INTERNAL") != 0)
            continue; /* MESH_EXTERNAL: Istio leaves it out */
        for (size_t i = 0; i < se->hosts.n; i++)
            if (admits(srv, se->hosts.v[i], se->meta.ns))
                return true;
    }
    return false;
}

static bool only_auto(const struct cfg_gateway *gw)
{
    for (size_t i = 0; i < gw->nservers; i++)
        if (!auto_passthrough(&gw->servers[i]))
            return false;
    return gw->nservers > 0;
}

static void check_tls_routes(const struct cfg_snapshot *s, const struct cfg_gateway *gw,
                             struct cfg_diags *diags)
{
    char full[320];
    snprintf(full, sizeof(full), "%s/%s", gw->meta.ns, gw->meta.name);
    CFG_FOR_EACH(s, CFG_VIRTUAL_SERVICE, struct cfg_virtual_service, vs)
    {
        if (!vs->ntls)
            continue;
        for (size_t i = 0; i < vs->gateways.n; i++) {
            const char *g = vs->gateways.v[i];
            bool same = strcmp(g, full) == 0 ||
                        (strcmp(vs->meta.ns, gw->meta.ns) == 0 && strcmp(g, gw->meta.name) == 0);
            if (same)
                cfg_diag_add(diags, CFG_INFO, MSH_NOT_APPLIED, &vs->meta, NULL,
                             "tls routes bound to Gateway %s are not used: its AUTO_PASSTHROUGH "
                             "servers route by the SNI (outbound_.<port>_.<subset>_.<host>) alone",
                             full);
        }
    }
}

void cfg_analyze_gateway_modes(const struct cfg_snapshot *s, struct cfg_diags *diags)
{
    CFG_FOR_EACH(s, CFG_GATEWAY, struct cfg_gateway, gw)
    {
        for (size_t i = 0; i < gw->nservers; i++) {
            const struct cfg_gateway_server *srv = &gw->servers[i];
            if (auto_passthrough(srv) && !admits_any_service(s, srv))
                cfg_diag_add(diags, CFG_WARNING, MSH_NOT_APPLIED, &gw->meta, &srv->pos,
                             "AUTO_PASSTHROUGH server port %u: its hosts admit no service of the "
                             "mesh (a Service or a MESH_INTERNAL ServiceEntry): every connection "
                             "to it is refused",
                             srv->port);
        }
        if (only_auto(gw))
            check_tls_routes(s, gw, diags);
    }
}
