/* Routing per request at an ingress gateway (see mesh.h and
 * route/gateway_route.h): the VirtualService bound to the server's Gateway
 * decides (redirect, direct response, no route: 404 NR), and a forwarded
 * request goes to the destination's endpoint exactly as a request of an
 * enrolled pod does (mesh_route_service: the cluster's load balancer and
 * outlier state, HBONE with the gateway pod's own SPIFFE identity).
 * AUTO_PASSTHROUGH: the service port an SNI names, without any
 * VirtualService; ISTIO_MUTUAL: the gateway pod's workload certificate in
 * an edge context, and the HBONE server's verification of its clients. */
#include <string.h>
#include <strings.h>

#include "config/model.h"
#include "config/protocol.h"
#include "core/log.h"
#include "enroll/pods.h"
#include "http/proxy.h"
#include "mesh/internal.h"
#include "route/auto_sni.h"
#include "route/gateway_route.h"

/* A destination without a port names the service's only one, as Istio
 * reads it; with several the route leads nowhere. */
static const char *pick(const struct cfg_snapshot *snap, struct route_cluster *c,
                        const struct cfg_route *r, struct lb_state *rng, size_t *index)
{
    const char *why = route_pick(snap, c, r, rng, index);
    if (!why || !c->svc || r->dest[*index].dest.port)
        return why;
    const struct cfg_service *svc = c->svc->service;
    const struct cfg_service_entry *se = c->svc->entry;
    if (svc && svc->nports == 1)
        c->port = svc->ports[0].port;
    else if (se && se->nports == 1)
        c->port = se->ports[0].number;
    else
        return "the route's destination has no port and its service several";
    return NULL;
}

/* Points m->scratch at one of `r`'s destinations and chooses its
 * endpoint, from the gateway `gw`. */
static void forward(struct mesh *m, const struct cfg_snapshot *snap, const struct pod *gw,
                    const struct cfg_virtual_service *vs, const struct cfg_route *r,
                    const struct meshd_addr *local, size_t *index, struct outbound_route *out)
{
    struct route_cluster *c = &m->scratch;
    c->svc = NULL;
    c->subset = NULL;
    c->port = 0;
    c->vs = vs;
    c->route = r;
    c->dr = NULL;
    c->nendpoints = 0;
    const char *why = pick(snap, c, r, &m->rng, index);
    if (why) {
        m->no_route++;
        log_ratelimited(LOG_INFO, "gateway: %s/%s: %s", vs->meta.ns, vs->meta.name, why);
        mesh_refuse(out, RESP_FLAG_NR);
        return;
    }
    route_fill_endpoints(snap, c, gw->ns);
    out->per_request = true;
    mesh_route_service(m, snap, gw, local, c, out);
}

/* Istio's gateway speaks to a backend as its port declares: HTTP/2 to an
 * http2 or grpc port (by name or appProtocol), HTTP/1.1 otherwise. */
static bool port_speaks_h2(const struct route_cluster *c)
{
    const struct cfg_service *svc = c->svc ? c->svc->service : NULL;
    const struct cfg_service_entry *se = c->svc ? c->svc->entry : NULL;
    enum http_proto p = PROTO_AUTO;
    for (size_t i = 0; svc && i < svc->nports; i++)
        if (svc->ports[i].port == c->port)
            p = http_port_protocol(&svc->ports[i]);
    for (size_t i = 0; !svc && se && i < se->nports; i++)
        if (se->ports[i].number == c->port)
            p = http_entry_port_protocol(&se->ports[i]);
    return p == PROTO_HTTP2 || p == PROTO_GRPC;
}

void mesh_gateway_http_route(void *ctx, const struct pod *gw, const struct cfg_snapshot *snap,
                             const struct gw_server *gs, const struct meshd_addr *local,
                             const struct http_request_view *req, struct http_decision *d)
{
    struct mesh *m = ctx;
    d->verdict = HTTP_FORWARD;
    d->route.action = OUTBOUND_PASSTHROUGH;
    if (!gw->identity) {
        log_ratelimited(LOG_INFO, "gateway: %s/%s has no identity (%s); request refused", gw->ns,
                        gw->name, gw->binding_why);
        mesh_refuse(&d->route, RESP_FLAG_DENY);
        return;
    }
    d->snap = cfg_snapshot_ref((struct cfg_snapshot *)snap);
    struct route_source rs = mesh_source_of(snap, gw);
    struct gw_http_result gr;
    gw_route_http(snap, gs, &rs, req, &gr);
    if (!gr.route) {
        m->no_route++;
        log_ratelimited(LOG_INFO, "gateway: %s/%s: no route for %s%s (%s)", gs->gw->meta.ns,
                        gs->gw->meta.name, req->authority, req->path,
                        gr.vs ? "no http route matched" : "no VirtualService binds the host");
        mesh_respond(d, 404, NULL, 0, RESP_FLAG_NR);
        return;
    }
    const struct cfg_route *r = gr.route;
    d->vs_route = r;
    d->actions = r->http_ext;
    if (d->actions && d->actions->redirect.set) {
        mesh_redirect_location(&d->actions->redirect, req, d->location, sizeof(d->location));
        mesh_respond(d, d->actions->redirect.code ? (int)d->actions->redirect.code : 301, NULL, 0,
                     RESP_FLAG_NONE);
        return;
    }
    if (d->actions && d->actions->direct.set) {
        mesh_respond(d, (int)d->actions->direct.status, d->actions->direct.body,
                     d->actions->direct.body_len, RESP_FLAG_NONE);
        return;
    }
    if (!r->ndest) {
        mesh_respond(d, 503, NULL, 0, RESP_FLAG_NR);
        return;
    }
    forward(m, snap, gw, gr.vs, r, local, &d->dest_index, &d->route);
    if (d->route.action != OUTBOUND_REFUSE)
        mesh_cluster_name(&m->scratch, d->cluster, sizeof(d->cluster));
    d->upstream_http1 = !port_speaks_h2(&m->scratch);
}

void mesh_gateway_tls_route(void *ctx, const struct pod *gw, const struct cfg_snapshot *snap,
                            const struct gw_server *gs, const struct meshd_addr *local,
                            const char *sni, struct outbound_route *out)
{
    struct mesh *m = ctx;
    out->action = OUTBOUND_PASSTHROUGH;
    if (!gw->identity) {
        mesh_refuse(out, RESP_FLAG_DENY);
        return;
    }
    const struct cfg_virtual_service *vs;
    const struct cfg_tls_route *tr = gw_route_sni(snap, gs, sni, &vs);
    if (!tr) {
        m->no_route++;
        log_ratelimited(LOG_INFO, "gateway: %s/%s: no tls route for SNI \"%.128s\"",
                        gs->gw->meta.ns, gs->gw->meta.name, sni);
        mesh_refuse(out, RESP_FLAG_NR);
        return;
    }
    /* The tls[] route as a TCP route: its destinations, no retries. */
    struct cfg_route as_tcp = {.dest = tr->dest, .ndest = tr->ndest, .pos = tr->pos};
    size_t index;
    out->avoid_endpoint = -1;
    forward(m, snap, gw, vs, &as_tcp, local, &index, out);
    out->per_request = false;
    m->scratch.route = NULL; /* as_tcp ends here */
}

void mesh_gateway_tcp_route(void *ctx, const struct pod *gw, const struct cfg_snapshot *snap,
                            const struct gw_server *gs, const struct meshd_addr *local,
                            struct outbound_route *out)
{
    struct mesh *m = ctx;
    out->action = OUTBOUND_PASSTHROUGH;
    if (!gw->identity) {
        mesh_refuse(out, RESP_FLAG_DENY);
        return;
    }
    struct route_source rs = mesh_source_of(snap, gw);
    const struct cfg_virtual_service *vs;
    const struct cfg_route *r = gw_route_tcp(snap, gs, &rs, &vs);
    if (!r) {
        m->no_route++;
        log_ratelimited(LOG_INFO, "gateway: %s/%s port %u: no tcp route", gs->gw->meta.ns,
                        gs->gw->meta.name, gs->srv->port);
        mesh_refuse(out, RESP_FLAG_NR);
        return;
    }
    size_t index;
    out->avoid_endpoint = -1;
    forward(m, snap, gw, vs, r, local, &index, out);
    out->per_request = false;
}

/* The port of `svc` an AUTO_PASSTHROUGH SNI names, as Istio generates its
 * filter chains: a port of the service, not UDP. NULL, or why not. */
static const char *auto_port(const struct cfg_svc *svc, uint16_t port)
{
    const char *proto = NULL;
    bool found = false;
    for (size_t i = 0; svc->service && !found && i < svc->service->nports; i++)
        if ((found = svc->service->ports[i].port == port))
            proto = svc->service->ports[i].protocol;
    for (size_t i = 0; svc->entry && !found && i < svc->entry->nports; i++)
        if ((found = svc->entry->ports[i].number == port))
            proto = svc->entry->ports[i].protocol;
    if (!found)
        return "the service has no such port";
    return proto && !strcasecmp(proto, "UDP") ? "a UDP port" : NULL;
}

void mesh_gateway_auto_route(void *ctx, const struct pod *gw, const struct cfg_snapshot *snap,
                             const struct gw_server *gs, const struct meshd_addr *local,
                             const struct gw_auto_sni *sni, struct outbound_route *out)
{
    struct mesh *m = ctx;
    out->action = OUTBOUND_PASSTHROUGH;
    out->avoid_endpoint = -1;
    if (!gw->identity) {
        mesh_refuse(out, RESP_FLAG_DENY);
        return;
    }
    /* Istio's builtAutoPassthroughFilterChains: every service the gateway
     * sees that is not MESH_EXTERNAL, whose host a server host admits
     * (gs was chosen by the host), each port but UDP, the whole service
     * and each subset of its DestinationRule. */
    const struct cfg_svc *svc = cfg_svc_by_fqdn(snap, sni->host);
    const char *why = NULL;
    if (!svc || !cfg_svc_visible(svc, gw->ns))
        why = "no such service";
    else if (svc->entry &&
             (!svc->entry->location || strcmp(svc->entry->location, "MESH_INTERNAL") != 0))
        why = "a MESH_EXTERNAL ServiceEntry";
    else
        why = auto_port(svc, sni->port);
    struct route_cluster *c = &m->scratch;
    *c = (struct route_cluster){.svc = svc, .port = sni->port};
    c->subset = sni->subset[0] ? sni->subset : NULL;
    if (!why) {
        route_fill_endpoints(snap, c, gw->ns);
        bool known = !c->subset;
        for (size_t i = 0; !known && c->dr && i < c->dr->nsubsets; i++)
            known = strcmp(c->dr->subsets[i].name, c->subset) == 0;
        if (!known)
            why = "no DestinationRule subset of that name";
    }
    if (why) {
        m->no_route++;
        log_ratelimited(LOG_INFO,
                        "gateway: %s/%s: AUTO_PASSTHROUGH to %s port %u subset \"%s\": %s",
                        gs->gw->meta.ns, gs->gw->meta.name, sni->host, sni->port, sni->subset, why);
        mesh_refuse(out, RESP_FLAG_NR);
        return;
    }
    mesh_route_service(m, snap, gw, local, c, out);
    out->per_request = false;
}

SSL_CTX *mesh_gateway_server_ctx(void *ctx, const struct pod *gw)
{
    struct mesh *m = ctx;
    const struct pod_identity *id = gw->identity;
    return id ? pki_tls_ctx(m->ca, id->cert, true) : NULL;
}

X509 *mesh_gateway_workload_leaf(void *ctx, const struct pod *gw)
{
    const struct pod_identity *id = gw->identity;
    return id ? id->cert->leaf : NULL;
}

int mesh_gateway_verify_client(void *ctx, SSL *ssl, char *id, size_t idlen, char *why,
                               size_t whylen)
{
    return mesh_verify_client(ctx, ssl, id, idlen, why, whylen);
}
