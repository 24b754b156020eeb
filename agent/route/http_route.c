/* Per-request HTTP routing and Istio's protocol selection (see
 * http_route.h). The service and VirtualService lookup, the weighted
 * choice and the cluster are route/resolve's own steps, so a request and
 * a connection to the same service port see the same VirtualService,
 * DestinationRule and endpoints; only the route choice differs (http[]
 * routes with their L7 matches, per request). */
#include "route/http_route.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

/* ---- protocol selection ---- */

enum http_proto http_workload_port_protocol(const struct cfg_snapshot *s,
                                            const struct cfg_workload *w, uint16_t port)
{
    const struct cfg_service *svc;
    struct cfg_iter it = {0};
    char buf[300];
    while ((svc = cfg_next_in_ns(s, CFG_SERVICE, w->ns, &it))) {
        if (!svc->selector.set || !svc->selector.match.n ||
            !cfg_labels_match(&svc->selector.match, &w->labels))
            continue;
        const char *fqdn = cfg_fqdn(s, svc->meta.name, svc->meta.ns, buf, sizeof(buf));
        const struct cfg_svc *cs = fqdn ? cfg_svc_by_fqdn(s, fqdn) : NULL;
        for (size_t i = 0; cs && i < svc->nports; i++)
            if (route_target_port(cs, svc->ports[i].port, w) == port)
                return http_port_protocol(&svc->ports[i]);
    }
    return PROTO_AUTO;
}

enum http_proto http_dest_protocol(const struct cfg_snapshot *s, const struct meshd_addr *orig_dst)
{
    const struct cfg_vip *vip = cfg_vip_lookup(s, orig_dst);
    if (vip && vip->port)
        return http_port_protocol(vip->port);
    if (vip && vip->entry_port)
        return http_entry_port_protocol(vip->entry_port);
    if (vip)
        return PROTO_AUTO;
    const struct cfg_workload *w = cfg_workload_by_ip(s, orig_dst);
    if (w)
        return http_workload_port_protocol(s, w, ntohs(orig_dst->port));
    return PROTO_TCP; /* passthrough is never parsed */
}

/* ---- routing ---- */

static void no_route(struct http_route_result *out, int status, const char *why)
{
    out->kind = HTTP_ROUTE_NO_ROUTE;
    out->status = status;
    out->why = why;
}

/* The first http[] route admitting the request; *any: the VirtualService
 * has http[] routes at all (one with only tcp[] routes does not apply to
 * HTTP: the service's default route does). */
static const struct cfg_route *first_http_route(const struct cfg_virtual_service *vs,
                                                const struct route_source *src, uint16_t port,
                                                const struct http_request_view *req, bool *any)
{
    *any = false;
    for (size_t i = 0; vs && i < vs->nroutes; i++) {
        const struct cfg_route *r = &vs->routes[i];
        if (!r->http)
            continue;
        *any = true;
        if (http_route_matches(r, src, port, req))
            return r;
    }
    return NULL;
}

void http_route_resolve(const struct cfg_snapshot *s, const struct route_source *src,
                        const struct meshd_addr *orig_dst, const struct http_request_view *req,
                        struct lb_state *rng, struct route_cluster *c,
                        struct http_route_result *out)
{
    memset(out, 0, sizeof(*out));
    const struct cfg_vip *vip = route_vip(s, src, orig_dst);
    if (!vip) {
        out->workload = cfg_workload_by_ip(s, orig_dst);
        out->kind = out->workload ? HTTP_ROUTE_WORKLOAD : HTTP_ROUTE_PASSTHROUGH;
        return;
    }
    uint16_t port = ntohs(orig_dst->port);
    route_begin(s, src, vip->svc, port, c);
    bool any;
    const struct cfg_route *r = first_http_route(c->vs, src, port, req, &any);
    if (!any)
        c->vs = NULL;
    out->vs = c->vs;
    if (any && !r) {
        no_route(out, 404, "no http route of the VirtualService matches the request");
        return;
    }
    if (r) {
        c->route = out->route = r;
        if (r->http_ext && r->http_ext->redirect.set) {
            out->kind = HTTP_ROUTE_REDIRECT;
            return;
        }
        if (r->http_ext && r->http_ext->direct.set) {
            out->kind = HTTP_ROUTE_DIRECT;
            return;
        }
        if (!r->ndest) {
            no_route(out, 503, "the http route has no destination (delegate is not applied)");
            return;
        }
        const char *why = route_pick(s, c, r, rng, &out->dest_index);
        if (why) {
            no_route(out, 503, why);
            return;
        }
    }
    /* An endpointless ServiceEntry: the original destination is the
     * endpoint, unless a route sent the request elsewhere. */
    if (route_endpointless_entry(c)) {
        out->kind = HTTP_ROUTE_PASSTHROUGH;
        return;
    }
    route_fill_endpoints(s, c, src->ns);
    out->kind = HTTP_ROUTE_FORWARD;
}
