/* Routing per request for the HTTP carrier (see mesh.h): the
 * configuration's answer for one request (route/http_route), turned into
 * what the carrier does with it: a local reply (redirect, direct
 * response, no route), or an endpoint and its carrier chosen exactly as
 * for an L4 connection (mesh_route_service: the cluster's load balancer,
 * its load and outlier state, HBONE into the mesh or plain TCP out of
 * it), now once per request. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "config/model.h"
#include "core/log.h"
#include "core/str.h"
#include "enroll/pods.h"
#include "http/proxy.h"
#include "mesh/internal.h"
#include "route/http_route.h"

int mesh_protocol(void *ctx, const struct pod *src, const struct meshd_addr *orig_dst)
{
    struct mesh *m = ctx;
    /* A pod without an identity is refused whole (DENY), and meshd's own
     * ports are never an app's: both stay on the L4 path, which refuses
     * them as it always did. */
    if (!src->identity || meshd_port_in_pod(ntohs(orig_dst->port)))
        return PROTO_TCP;
    const struct cfg_snapshot *snap = m->config ? cfg_store_current(m->config) : NULL;
    return snap ? (int)http_dest_protocol(snap, orig_dst) : PROTO_TCP;
}

/* Envoy's name of a cluster: outbound|port|subset|host. */
void mesh_cluster_name(const struct route_cluster *c, char *buf, size_t len)
{
    char port[24];
    size_t n = 0;
    str_u64(port, c->port);
    buf[0] = '\0'; /* a name past the buffer is left empty, never cut */
    if (!str_append(buf, len, &n, "outbound|") || !str_append(buf, len, &n, port) ||
        !str_append(buf, len, &n, "|") || !str_append(buf, len, &n, c->subset ? c->subset : "") ||
        !str_append(buf, len, &n, "|") || !str_append(buf, len, &n, c->svc->fqdn))
        buf[0] = '\0';
}

/* A redirect's Location: the request's URL with what the route replaces. */
void mesh_redirect_location(const struct cfg_http_redirect *rd, const struct http_request_view *req,
                            char *buf, size_t len)
{
    const char *scheme = rd->scheme ? rd->scheme : req->scheme;
    char host[256];
    snprintf(host, sizeof(host), "%s", rd->authority ? rd->authority : req->authority);
    if (rd->port) { /* a new port replaces the one in the authority */
        char *colon = strrchr(host, ':');
        if (colon && !strchr(colon, ']'))
            *colon = '\0';
        size_t n = strlen(host);
        snprintf(host + n, sizeof(host) - n, ":%u", rd->port);
    }
    const char *path = rd->uri ? rd->uri : req->path;
    bool keep_query = *req->query && !strchr(path, '?');
    snprintf(buf, len, "%s://%s%s%s%s", scheme, host, path, keep_query ? "?" : "",
             keep_query ? req->query : "");
}

void mesh_respond(struct http_decision *d, int status, const char *body, size_t len,
                  enum resp_flag flag)
{
    d->verdict = HTTP_RESPOND;
    d->status = status;
    d->body = body;
    d->body_len = len;
    d->flag = flag;
}

void mesh_http_route(void *ctx, const struct pod *src, const struct meshd_addr *orig_dst,
                     const struct http_request_view *req, struct http_decision *d)
{
    struct mesh *m = ctx;
    d->verdict = HTTP_FORWARD;
    d->route.action = OUTBOUND_PASSTHROUGH;
    if (!src->identity) {
        log_ratelimited(LOG_INFO, "mesh: %s/%s has no identity (%s); request refused", src->ns,
                        src->name, src->binding_why);
        mesh_refuse(&d->route, RESP_FLAG_DENY);
        return;
    }
    const struct cfg_snapshot *snap = m->config ? cfg_store_current(m->config) : NULL;
    if (!snap) {
        mesh_route_to_workload(m, NULL, src, NULL, orig_dst, &d->route);
        return;
    }
    /* The request's strings (route names, direct bodies) live in `snap`:
     * the carrier keeps it until the request is over. */
    d->snap = cfg_snapshot_ref((struct cfg_snapshot *)snap);
    const char *name;
    struct route_cluster *kept = http_route_memo_get(m, snap, src, orig_dst, &name);
    if (kept) { /* the service itself, as the last request's (http_route_memo.c) */
        d->vs_route = NULL;
        d->actions = NULL;
        d->dest_index = 0;
        str_copy(d->cluster, sizeof(d->cluster), name);
        d->route.per_request = true;
        mesh_route_service(m, snap, src, orig_dst, kept, &d->route);
        return;
    }
    struct route_source rs = mesh_source_of(snap, src);
    struct http_route_result hr;
    http_route_resolve(snap, &rs, orig_dst, req, &m->rng, &m->scratch, &hr);
    d->vs_route = hr.route;
    d->actions = hr.route ? hr.route->http_ext : NULL;
    if ((hr.kind == HTTP_ROUTE_REDIRECT || hr.kind == HTTP_ROUTE_DIRECT) && !d->actions)
        hr.kind = HTTP_ROUTE_NO_ROUTE; /* cannot happen: both come from a route's actions */
    switch (hr.kind) {
    case HTTP_ROUTE_FORWARD:
        d->dest_index = hr.dest_index;
        mesh_cluster_name(&m->scratch, d->cluster, sizeof(d->cluster));
        /* No http[] route: nothing of the request chose this cluster. */
        if (!hr.route)
            http_route_memo_put(m, snap, src, orig_dst, &m->scratch, d->cluster);
        d->route.per_request = true;
        mesh_route_service(m, snap, src, orig_dst, &m->scratch, &d->route);
        return;
    case HTTP_ROUTE_REDIRECT:
        mesh_redirect_location(&d->actions->redirect, req, d->location, sizeof(d->location));
        mesh_respond(d, d->actions->redirect.code ? (int)d->actions->redirect.code : 301, NULL, 0,
                     RESP_FLAG_NONE);
        return;
    case HTTP_ROUTE_DIRECT:
        mesh_respond(d, (int)d->actions->direct.status, d->actions->direct.body,
                     d->actions->direct.body_len, RESP_FLAG_NONE);
        return;
    case HTTP_ROUTE_NO_ROUTE:
        m->no_route++;
        log_ratelimited(LOG_INFO, "mesh: no HTTP route for %s%s: %s", req->authority, req->path,
                        hr.why ? hr.why : "");
        mesh_respond(d, hr.status ? hr.status : 404, NULL, 0, RESP_FLAG_NR);
        return;
    case HTTP_ROUTE_WORKLOAD:
        mesh_route_to_workload(m, snap, src, hr.workload, orig_dst, &d->route);
        return;
    case HTTP_ROUTE_PASSTHROUGH:
        break;
    }
    mesh_route_to_workload(m, snap, src, NULL, orig_dst, &d->route);
    if (d->route.action == OUTBOUND_PASSTHROUGH)
        d->route.target = *orig_dst;
}

void mesh_http_mirror(void *ctx, const struct pod *src, const struct meshd_addr *orig_dst,
                      const struct cfg_destination *dest, struct outbound_route *out)
{
    struct mesh *m = ctx;
    mesh_refuse(out, RESP_FLAG_NR);
    const struct cfg_snapshot *snap = m->config ? cfg_store_current(m->config) : NULL;
    if (!src->identity || !snap)
        return;
    struct route_source rs = mesh_source_of(snap, src);
    const struct cfg_vip *vip = route_vip(snap, &rs, orig_dst);
    if (!vip)
        return; /* mirrors are a service's: the request was for one */
    /* The mirror's host and subset as a route with it as its only
     * destination: the same lookup a routed request gets. */
    struct route_cluster *c = &m->scratch;
    route_begin(snap, &rs, vip->svc, ntohs(orig_dst->port), c);
    struct cfg_route_destination one = {.dest = *dest, .weight = 100, .has_weight = true};
    struct cfg_route only = {.http = true, .dest = &one, .ndest = 1};
    size_t index;
    if (route_pick(snap, c, &only, &m->rng, &index) != NULL)
        return;
    route_fill_endpoints(snap, c, rs.ns);
    c->route = NULL;
    out->action = OUTBOUND_PASSTHROUGH;
    out->avoid_endpoint = -1;
    out->per_request = true;
    mesh_route_service(m, snap, src, orig_dst, c, out);
}
