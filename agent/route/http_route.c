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

/* Ports Istio never sniffs when their name says nothing (server-first
 * protocols): SMTP, DNS, MySQL, MongoDB. */
static bool well_known_port(uint16_t port)
{
    return port == 25 || port == 53 || port == 3306 || port == 27017;
}

/* Istio's protocol.Parse over name[0..len), case-insensitive; -1 for a
 * name it does not know. */
static int parse_protocol(const char *name, size_t len)
{
    static const struct {
        const char *name;
        enum http_proto proto;
    } names[] = {
        {"http", PROTO_HTTP},
        {"http_proxy", PROTO_HTTP},
        {"http2", PROTO_HTTP2},
        {"h2c", PROTO_HTTP2},
        {"kubernetes.io/h2c", PROTO_HTTP2},
        {"grpc", PROTO_GRPC},
        {"grpc-web", PROTO_GRPC},
        {"kubernetes.io/ws", PROTO_HTTP},
        {"tcp", PROTO_TCP},
        {"udp", PROTO_TCP},
        {"https", PROTO_TCP},
        {"tls", PROTO_TCP},
        {"kubernetes.io/wss", PROTO_TCP},
        {"mongo", PROTO_TCP},
        {"redis", PROTO_TCP},
        {"mysql", PROTO_TCP},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i].name) == len && strncasecmp(names[i].name, name, len) == 0)
            return (int)names[i].proto;
    return -1;
}

enum http_proto http_port_protocol(const struct cfg_service_port *p)
{
    if (p->protocol &&
        (strcasecmp(p->protocol, "UDP") == 0 || strcasecmp(p->protocol, "SCTP") == 0))
        return PROTO_TCP;
    /* appProtocol, when set, is read instead of the name (Istio's
     * ConvertProtocol), with the same prefix rule. */
    const char *name = p->app_protocol ? p->app_protocol : p->name;
    int proto = -1;
    if (name && strncasecmp(name, "grpc-web", 8) == 0) {
        proto = PROTO_GRPC;
    } else if (name) {
        const char *dash = strchr(name, '-');
        proto = parse_protocol(name, dash ? (size_t)(dash - name) : strlen(name));
    }
    if (proto >= 0)
        return (enum http_proto)proto;
    return well_known_port(p->port) ? PROTO_TCP : PROTO_AUTO;
}

/* A ServiceEntry port: its protocol field (HTTP, HTTP2, GRPC, TCP, ...). */
static enum http_proto entry_port_protocol(const struct cfg_named_port *p)
{
    int proto = p->protocol ? parse_protocol(p->protocol, strlen(p->protocol)) : -1;
    if (proto >= 0)
        return (enum http_proto)proto;
    return well_known_port(p->number) ? PROTO_TCP : PROTO_AUTO;
}

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
        return entry_port_protocol(vip->entry_port);
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
