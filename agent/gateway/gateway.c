/* The ingress gateway module (see gateway.h): which enrolled pods serve
 * which Gateway servers, the hand-over of their connections, and the HTTP
 * router of their sessions. */
#include "gateway/gateway.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/gateway.h"
#include "config/store.h"
#include "core/addr.h"
#include "core/log.h"
#include "core/upstream.h"
#include "enroll/pods.h"
#include "gateway/edge_conn.h"
#include "gateway/edge_tls.h"
#include "gateway/sni_peek.h"
#include "http/proxy.h"
#include "proxy/conns.h"
#include "route/auto_sni.h"
#include "route/gateway_route.h"
#include "telemetry/http_metrics.h"

#define GW_MAX_PORTS 32

/* TCP: a TCP server's bytes along a tcp[] route; TLS_TCP: a TLS server
 * that terminates, its bytes after the handshake the same way; AUTO:
 * AUTO_PASSTHROUGH, the bytes to the service port its SNI names. */
enum gw_port_kind {
    GW_PORT_HTTP,
    GW_PORT_TLS,
    GW_PORT_PASSTHROUGH,
    GW_PORT_TCP,
    GW_PORT_TLS_TCP,
    GW_PORT_AUTO
};

struct gw_pod {
    struct gateway *g;
    struct pod *pod; /* borrowed; NULL once detached */
    int refs;        /* the registry's, and one per session */
    struct edge_tls *tls;
    uint16_t ports[GW_MAX_PORTS];
    enum gw_port_kind kind[GW_MAX_PORTS];
    size_t nports;
    struct gw_pod *next;
};

struct gateway {
    struct loop *loop;
    struct gateway_opts opts;
    struct edge_conns ec;
    struct sni_peeks peeks;
    struct gw_pod *pods;
    struct gateway_stats stats;
};

/* One downstream connection's routing context (the router's `user`). */
struct gw_sess {
    struct gw_pod *gp; /* a reference */
    struct meshd_addr client, local;
    bool tls;
    enum gw_port_kind kind;
    char peer_id[256]; /* ISTIO_MUTUAL: the client's verified SPIFFE id, else "" */
};

static void gp_unref(struct gw_pod *gp)
{
    if (--gp->refs > 0)
        return;
    edge_tls_unref(gp->tls);
    free(gp);
}

static void sess_free(void *user)
{
    struct gw_sess *s = user;
    gp_unref(s->gp);
    free(s);
}

/* --- which servers a pod serves ------------------------------------------ */

static bool terminates(const struct cfg_gateway_server *srv)
{
    return srv->has_tls && cfg_gateway_protocol_is_tls(srv->protocol) &&
           (!strcmp(srv->tls_mode, "SIMPLE") || !strcmp(srv->tls_mode, "MUTUAL") ||
            !strcmp(srv->tls_mode, "OPTIONAL_MUTUAL") || !strcmp(srv->tls_mode, "ISTIO_MUTUAL"));
}

static bool plain_http(const struct cfg_gateway_server *srv)
{
    return cfg_gateway_protocol_is_http(srv->protocol);
}

static bool passthrough(const struct cfg_gateway_server *srv)
{
    return srv->has_tls && cfg_gateway_protocol_is_tls(srv->protocol) &&
           !strcmp(srv->tls_mode, "PASSTHROUGH");
}

static bool auto_passthrough(const struct cfg_gateway_server *srv)
{
    return srv->has_tls && cfg_gateway_protocol_is_tls(srv->protocol) &&
           !strcmp(srv->tls_mode, "AUTO_PASSTHROUGH");
}

static bool plain_tcp(const struct cfg_gateway_server *srv)
{
    return srv->protocol && !strcasecmp(srv->protocol, "TCP") && !srv->has_tls;
}

/* How a server's port is served; false: not at all (PASSTHROUGH,
 * AUTO_PASSTHROUGH or TCP without a carrier). */
static bool port_kind(const struct gateway *g, const struct cfg_gateway_server *srv,
                      enum gw_port_kind *kind)
{
    bool l4 = g->opts.tcp_route && g->opts.carry;
    if (terminates(srv) && !strcasecmp(srv->protocol, "TLS") && l4)
        *kind = GW_PORT_TLS_TCP; /* Istio: TLS terminated, then tcp[] routes */
    else if (terminates(srv) && strcasecmp(srv->protocol, "TLS") != 0)
        *kind = GW_PORT_TLS;
    else if (plain_tcp(srv) && l4)
        *kind = GW_PORT_TCP;
    else if (plain_http(srv) && !srv->has_tls)
        *kind = GW_PORT_HTTP;
    else if (plain_http(srv) && srv->https_redirect)
        *kind = GW_PORT_HTTP;
    else if (passthrough(srv) && g->opts.tls_route && g->opts.carry)
        *kind = GW_PORT_PASSTHROUGH;
    else if (auto_passthrough(srv) && g->opts.auto_route && g->opts.carry)
        *kind = GW_PORT_AUTO;
    else
        return false;
    return true;
}

/* The Gateway servers of `snap` this pod serves, through its Pod object. */
static size_t pod_servers(const struct cfg_snapshot *snap, const struct pod *pod,
                          struct gw_server *out)
{
    const struct cfg_pod *p = snap ? cfg_find(snap, CFG_POD, pod->ns, pod->name) : NULL;
    return p ? gw_pod_servers(snap, p, out, GW_MAX_SERVERS) : 0;
}

static void reconcile(struct gateway *g, struct gw_pod *gp)
{
    const struct cfg_snapshot *snap = cfg_store_current(g->opts.config);
    struct gw_server servers[GW_MAX_SERVERS];
    size_t n = pod_servers(snap, gp->pod, servers);
    struct edge_tls *tls = NULL;
    struct edge_tls_mesh mesh = {.server_ctx = g->opts.workload_ctx,
                                 .verify = g->opts.verify_client,
                                 .ctx = g->opts.route_ctx,
                                 .pod = gp->pod};
    if (n && edge_tls_build_mesh(snap, gp->pod->ns, servers, n, &mesh, &tls) != 0)
        log_warn("gateway: %s/%s: out of memory building its TLS contexts", gp->pod->ns,
                 gp->pod->name);
    size_t before = gp->nports;
    gp->nports = 0;
    for (size_t i = 0; i < n; i++) {
        enum gw_port_kind kind;
        if (!port_kind(g, servers[i].srv, &kind)) {
            log_ratelimited(LOG_WARN, "gateway: %s/%s port %u (%s %s) is not served by meshd",
                            servers[i].gw->meta.ns, servers[i].gw->meta.name, servers[i].srv->port,
                            servers[i].srv->protocol,
                            servers[i].srv->tls_mode ? servers[i].srv->tls_mode : "");
            continue;
        }
        size_t k = 0;
        while (k < gp->nports && gp->ports[k] != servers[i].listen_port)
            k++;
        if (k == gp->nports && gp->nports < GW_MAX_PORTS) {
            gp->ports[gp->nports] = servers[i].listen_port;
            gp->kind[gp->nports++] = kind;
        }
        if (k == gp->nports || k >= GW_MAX_PORTS)
            continue;
        log_ratelimited(LOG_INFO, "gateway: %s/%s serves %s/%s port %u (%s) on %u", gp->pod->ns,
                        gp->pod->name, servers[i].gw->meta.ns, servers[i].gw->meta.name,
                        servers[i].srv->port, servers[i].srv->protocol, servers[i].listen_port);
    }
    edge_tls_unref(gp->tls); /* handshakes in progress hold their own */
    gp->tls = tls;
    if (before != gp->nports)
        log_info("gateway: %s/%s: %zu gateway port%s, %zu TLS server%s", gp->pod->ns, gp->pod->name,
                 gp->nports, gp->nports == 1 ? "" : "s", edge_tls_count(tls),
                 edge_tls_count(tls) == 1 ? "" : "s");
}

int gateway_attach_pod(void *ctx, struct pod *pod)
{
    struct gateway *g = ctx;
    struct gw_pod *gp = calloc(1, sizeof(*gp));
    if (!gp)
        return -ENOMEM;
    *gp = (struct gw_pod){.g = g, .pod = pod, .refs = 1, .next = g->pods};
    g->pods = gp;
    reconcile(g, gp);
    return 0;
}

void gateway_detach_pod(void *ctx, struct pod *pod)
{
    struct gateway *g = ctx;
    for (struct gw_pod **pp = &g->pods; *pp; pp = &(*pp)->next) {
        struct gw_pod *gp = *pp;
        if (gp->pod != pod)
            continue;
        *pp = gp->next;
        gp->pod = NULL; /* sessions end after the response in flight */
        gp->nports = 0;
        gp_unref(gp);
        return;
    }
}

void gateway_reconfigure(struct gateway *g)
{
    for (struct gw_pod *gp = g->pods; gp; gp = gp->next)
        reconcile(g, gp);
}

/* --- the router of a gateway session ------------------------------------- */

static const struct pod *r_pod(void *user)
{
    struct gw_sess *s = user;
    return s->gp->pod;
}

/* Envoy's headers of an edge request: the client appended to
 * x-forwarded-for (use_remote_address), the scheme, its address. */
static void edge_headers(const struct gw_sess *s, const struct http_request_view *req,
                         struct http_decision *d)
{
    char ip[64];
    addr_format_ip(&s->client, ip, sizeof(ip));
    const char *xff = http_field_get(req->headers, req->nheaders, "x-forwarded-for");
    d->edge = true;
    /* A client's list too long to extend is replaced by its address. */
    size_t xl = xff ? strlen(xff) : 0, il = strlen(ip);
    if (xl && xl + il + 3 <= sizeof(d->edge_xff)) {
        memcpy(d->edge_xff, xff, xl);
        memcpy(d->edge_xff + xl, ", ", 2);
        memcpy(d->edge_xff + xl + 2, ip, il + 1);
    } else {
        memcpy(d->edge_xff, ip, il + 1);
    }
    snprintf(d->edge_proto, sizeof(d->edge_proto), "%s", s->tls ? "https" : "http");
    snprintf(d->edge_client, sizeof(d->edge_client), "%s", ip);
}

static void respond(struct http_decision *d, int status, enum resp_flag flag)
{
    d->verdict = HTTP_RESPOND;
    d->status = status;
    d->flag = flag;
}

static void r_route(void *user, const struct pod *pod, const struct meshd_addr *orig_dst,
                    const struct http_request_view *req, struct http_decision *d)
{
    struct gw_sess *s = user;
    struct gateway *g = s->gp->g;
    const struct cfg_snapshot *snap = cfg_store_current(g->opts.config);
    struct gw_server servers[GW_MAX_SERVERS];
    size_t n = pod_servers(snap, pod, servers);
    /* A TLS connection is served by the terminating servers of its port,
     * a plaintext one by the HTTP servers. */
    size_t k = 0;
    enum gw_port_kind kind;
    for (size_t i = 0; i < n; i++)
        if (port_kind(g, servers[i].srv, &kind) && kind == (s->tls ? GW_PORT_TLS : GW_PORT_HTTP))
            servers[k++] = servers[i];
    const struct gw_server *gs = gw_server_for(servers, k, ntohs(s->local.port), req->authority);
    if (!gs) {
        log_ratelimited(LOG_INFO, "gateway: %s/%s: no server for host \"%.128s\" on %u", pod->ns,
                        pod->name, req->authority, ntohs(s->local.port));
        respond(d, 404, RESP_FLAG_NR);
        return;
    }
    if (!s->tls && gs->srv->https_redirect) {
        /* Envoy's require_tls: the same URL, https. */
        g->stats.redirects++;
        size_t hl = strcspn(req->authority, ":");
        snprintf(d->location, sizeof(d->location), "https://%.*s%s%s%s", (int)hl, req->authority,
                 req->path, *req->query ? "?" : "", req->query);
        respond(d, 301, RESP_FLAG_NONE);
        return;
    }
    struct http_request_view view = *req;
    view.scheme = s->tls ? "https" : "http";
    edge_headers(s, req, d);
    g->opts.http_route(g->opts.route_ctx, pod, snap, gs, &s->local, &view, d);
}

static void r_free(void *user, const struct outbound_route *r, bool failed)
{
    struct gw_sess *s = user;
    struct gateway *g = s->gp->g;
    if (g->opts.route_released)
        g->opts.route_released(g->opts.route_ctx, r, failed);
}

static void r_report(void *user, struct http_request_record *r, const struct conn_record *conn,
                     const struct http_decision *d)
{
    struct gw_sess *s = user;
    struct gateway *g = s->gp->g;
    r->source_principal = s->peer_id[0] ? s->peer_id : NULL;
    if (g->opts.report)
        g->opts.report(g->opts.report_ctx, r, conn, d);
}

static const struct http_router gw_router = {
    .pod = r_pod, .route = r_route, .free = r_free, .report = r_report, .release = sess_free};

/* --- connections ---------------------------------------------------------- */

static void carry_tcp(struct gateway *g, struct gw_sess *s, int fd);

/* Serves `fd` (plaintext: the client's socket, or the carrier's end of a
 * TLS connection, or of one HTTP/2 stream's exchange) as HTTP/1.x, or as
 * bytes of a terminating TLS server's tcp[] route. 0 or -errno (fd closed,
 * `user` released). */
static int serve_http1(struct gateway *g, struct gw_sess *s, int fd)
{
    const struct pod *pod = s->gp->pod;
    if (pod && s->kind == GW_PORT_TLS_TCP) {
        carry_tcp(g, s, fd);
        return 0;
    }
    if (!pod) {
        close_with_reset(fd);
        sess_free(s);
        return -ENOENT;
    }
    char ref[RECORD_POD_LEN];
    snprintf(ref, sizeof(ref), "%s/%s", pod->ns, pod->name);
    /* Recorded as the gateway's outbound: it is the requests' source. */
    struct conn *c = conn_begin(g->opts.conns, fd, "outbound", ref, &s->client);
    if (!c) {
        sess_free(s);
        return -ENOMEM;
    }
    conn_record(c)->orig_dst = s->local;
    int rc = http_session_start(g->opts.http, c, &s->local, &gw_router, s);
    if (rc) {
        conn_end(c, rc, 0, 0, RESP_FLAG_NONE);
        sess_free(s);
    }
    return rc;
}

/* The TLS handshake is done (edge_conn's ready). Whatever ALPN chose,
 * the carrier's session serves the plaintext: ALPN h2's preface hands it
 * to the carrier's HTTP/2 session (http/h2_session.h), the one the mesh
 * serves a pod's h2c with, each stream routed on its own and sent on as
 * its backend's port declares (HTTP/2 to http2 and grpc ports, HTTP/1.1
 * otherwise: the decision's upstream_http1). */
static int serve(void *ctx, void *user, int fd, const char *alpn)
{
    (void)alpn;
    return serve_http1(ctx, user, fd);
}

/* Carries the client's connection `fd` (recorded as the gateway's
 * outbound) along `route` as bytes, counted in `carried`; `s` released. */
static void carry_route(struct gateway *g, struct gw_sess *s, int fd, struct pod *pod,
                        struct outbound_route *route, uint64_t *carried)
{
    char ref[RECORD_POD_LEN];
    snprintf(ref, sizeof(ref), "%s/%s", pod->ns, pod->name);
    struct conn *c = conn_begin(g->opts.conns, fd, "outbound", ref, &s->client);
    if (c) {
        (*carried)++;
        conn_record(c)->orig_dst = s->local;
        g->opts.carry(g->opts.carry_ctx, pod, c, route);
    } else if (g->opts.route_released) {
        g->opts.route_released(g->opts.route_ctx, route, false);
    }
    sess_free(s);
}

/* Resets an SNI-routed connection no route takes; `s` released. */
static void sni_refuse(struct gateway *g, struct gw_sess *s, int fd, uint64_t *counter,
                       const char *mode, const char *sni, const char *why)
{
    (*counter)++;
    log_ratelimited(LOG_INFO, "gateway: %s port %u: SNI \"%.128s\": %s; connection reset", mode,
                    ntohs(s->local.port), sni, why);
    close_with_reset(fd);
    sess_free(s);
}

/* AUTO_PASSTHROUGH: the SNI is Istio's cluster name of a service port;
 * the server whose hosts admit that service's host carries the bytes to
 * its endpoints (mesh_gateway_auto_route decides which exist). Anything
 * else fails closed. */
static void on_auto_sni(struct gateway *g, struct gw_sess *s, int fd, const char *sni)
{
    struct pod *pod = s->gp->pod;
    struct gw_auto_sni a;
    if (!pod) { /* detached meanwhile */
        close_with_reset(fd);
        sess_free(s);
        return;
    }
    if (gw_auto_sni_parse(sni, &a) != 0) {
        sni_refuse(g, s, fd, &g->stats.auto_refused, "AUTO_PASSTHROUGH", sni,
                   "not of the form outbound_.<port>_.<subset>_.<host>");
        return;
    }
    const struct cfg_snapshot *snap = cfg_store_current(g->opts.config);
    struct gw_server servers[GW_MAX_SERVERS];
    size_t n = pod_servers(snap, pod, servers), k = 0;
    enum gw_port_kind kind;
    for (size_t i = 0; i < n; i++)
        if (port_kind(g, servers[i].srv, &kind) && kind == GW_PORT_AUTO)
            servers[k++] = servers[i];
    const struct gw_server *gs = gw_server_for(servers, k, ntohs(s->local.port), a.host);
    struct outbound_route route = {.action = OUTBOUND_REFUSE, .avoid_endpoint = -1};
    if (gs)
        g->opts.auto_route(g->opts.route_ctx, pod, snap, gs, &s->local, &a, &route);
    if (route.action == OUTBOUND_REFUSE) {
        sni_refuse(g, s, fd, &g->stats.auto_refused, "AUTO_PASSTHROUGH", sni,
                   gs ? "no such service port, subset or endpoint"
                      : "no server of the port admits its host");
        return;
    }
    carry_route(g, s, fd, pod, &route, &g->stats.auto_carried);
}

/* PASSTHROUGH: the ClientHello named `sni`; its bytes go on along the
 * tls[] route for it. */
static void on_sni(void *ctx, void *user, int fd, const char *sni)
{
    struct gateway *g = ctx;
    struct gw_sess *s = user;
    if (s->kind == GW_PORT_AUTO) {
        on_auto_sni(g, s, fd, sni);
        return;
    }
    struct pod *pod = s->gp->pod;
    const struct cfg_snapshot *snap = cfg_store_current(g->opts.config);
    struct gw_server servers[GW_MAX_SERVERS];
    size_t n = pod ? pod_servers(snap, pod, servers) : 0, k = 0;
    enum gw_port_kind kind;
    for (size_t i = 0; i < n; i++)
        if (port_kind(g, servers[i].srv, &kind) && kind == GW_PORT_PASSTHROUGH)
            servers[k++] = servers[i];
    const struct gw_server *gs = gw_server_for(servers, k, ntohs(s->local.port), sni);
    struct outbound_route route = {.action = OUTBOUND_REFUSE, .avoid_endpoint = -1};
    if (gs)
        g->opts.tls_route(g->opts.route_ctx, pod, snap, gs, &s->local, sni, &route);
    if (route.action == OUTBOUND_REFUSE) {
        g->stats.sni_refused++;
        log_ratelimited(LOG_INFO, "gateway: PASSTHROUGH port %u: no route for SNI \"%.128s\"",
                        ntohs(s->local.port), sni);
        close_with_reset(fd);
        sess_free(s);
        return;
    }
    carry_route(g, s, fd, pod, &route, &g->stats.passthrough);
}

/* A TCP server's connection (or a terminating TLS server's plaintext end):
 * its bytes along the tcp[] route of the port's first server of that
 * kind; none: reset. */
static void carry_tcp(struct gateway *g, struct gw_sess *s, int fd)
{
    struct pod *pod = s->gp->pod;
    const struct cfg_snapshot *snap = cfg_store_current(g->opts.config);
    struct gw_server servers[GW_MAX_SERVERS];
    size_t n = pod ? pod_servers(snap, pod, servers) : 0, k = 0;
    enum gw_port_kind kind;
    for (size_t i = 0; i < n; i++)
        if (port_kind(g, servers[i].srv, &kind) && kind == s->kind)
            servers[k++] = servers[i];
    const struct gw_server *gs = gw_server_for(servers, k, ntohs(s->local.port), NULL);
    struct outbound_route route = {.action = OUTBOUND_REFUSE, .avoid_endpoint = -1};
    if (gs)
        g->opts.tcp_route(g->opts.route_ctx, pod, snap, gs, &s->local, &route);
    if (route.action == OUTBOUND_REFUSE) {
        g->stats.tcp_refused++;
        log_ratelimited(LOG_INFO, "gateway: TCP port %u: no tcp route; connection reset",
                        ntohs(s->local.port));
        close_with_reset(fd);
        sess_free(s);
        return;
    }
    carry_route(g, s, fd, pod, &route, &g->stats.tcp_carried);
}

static struct gw_pod *find(struct gateway *g, const struct pod *pod)
{
    for (struct gw_pod *gp = g->pods; gp; gp = gp->next)
        if (gp->pod == pod)
            return gp;
    return NULL;
}

bool gateway_accept(void *ctx, struct pod *pod, int fd, const struct meshd_addr *client,
                    const struct meshd_addr *local)
{
    struct gateway *g = ctx;
    struct gw_pod *gp = find(g, pod);
    uint16_t port = ntohs(local->port);
    size_t k = 0;
    while (gp && k < gp->nports && gp->ports[k] != port)
        k++;
    if (!gp || k == gp->nports)
        return false;
    g->stats.accepted++;
    /* A renewed workload certificate: ISTIO_MUTUAL's new handshakes
     * present it (the old set stays with the handshakes that hold it). */
    if (g->opts.workload_leaf &&
        edge_tls_mesh_stale(gp->tls, g->opts.workload_leaf(g->opts.route_ctx, pod))) {
        g->stats.mesh_rebuilds++;
        reconcile(g, gp);
        k = 0;
        while (k < gp->nports && gp->ports[k] != port)
            k++;
        if (k == gp->nports) {
            close_with_reset(fd);
            return true;
        }
    }
    struct gw_sess *s = calloc(1, sizeof(*s));
    bool tls = gp->kind[k] == GW_PORT_TLS || gp->kind[k] == GW_PORT_TLS_TCP;
    SSL_CTX *ctx0 = tls ? edge_tls_first_ctx(gp->tls, port) : NULL;
    if (!s || (tls && !ctx0)) {
        /* A TLS port without a usable certificate: fail closed. */
        g->stats.refused++;
        log_ratelimited(LOG_INFO, "gateway: %s/%s port %u: %s; connection reset", pod->ns,
                        pod->name, port, s ? "no usable certificate" : "out of memory");
        free(s);
        close_with_reset(fd);
        return true;
    }
    *s = (struct gw_sess){
        .gp = gp, .client = *client, .local = *local, .tls = tls, .kind = gp->kind[k]};
    gp->refs++;
    if (tls)
        edge_conn_start(&g->ec, fd, ctx0, gp->tls, port, s);
    else if (gp->kind[k] == GW_PORT_PASSTHROUGH || gp->kind[k] == GW_PORT_AUTO)
        sni_peek_start(&g->peeks, fd, s);
    else if (gp->kind[k] == GW_PORT_TCP)
        carry_tcp(g, s, fd);
    else
        serve_http1(g, s, fd);
    return true;
}

/* The handshake's verified client identity (ISTIO_MUTUAL), kept for the
 * requests' source principal. */
static void on_verified(void *ctx, void *user, SSL *ssl)
{
    struct gw_sess *s = user;
    snprintf(s->peer_id, sizeof(s->peer_id), "%s", edge_tls_peer_id(ssl));
}

/* --- the module ----------------------------------------------------------- */

int gateway_new(struct loop *loop, const struct gateway_opts *opts, struct gateway **out)
{
    struct gateway *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->loop = loop;
    g->opts = *opts;
    g->ec = (struct edge_conns){.loop = loop,
                                .handshake_timeout_ns = opts->handshake_timeout_ns,
                                .max_pending = opts->max_pending,
                                .ready = serve,
                                .user_free = sess_free,
                                .ctx = g,
                                .verified = on_verified};
    g->peeks = (struct sni_peeks){.loop = loop,
                                  .timeout_ns = opts->handshake_timeout_ns,
                                  .max_pending = opts->max_pending,
                                  .done = on_sni,
                                  .user_free = sess_free,
                                  .ctx = g};
    *out = g;
    return 0;
}

void gateway_free(struct gateway *g)
{
    if (!g)
        return;
    edge_conns_close_all(&g->ec);
    sni_peeks_close_all(&g->peeks);
    while (g->pods) {
        struct gw_pod *gp = g->pods;
        g->pods = gp->next;
        gp->pod = NULL;
        gp_unref(gp);
    }
    free(g);
}

void gateway_tick(struct gateway *g, uint64_t now_ns)
{
    edge_conns_tick(&g->ec, now_ns);
    sni_peeks_tick(&g->peeks, now_ns);
}

void gateway_get_stats(const struct gateway *g, struct gateway_stats *st)
{
    *st = g->stats;
    st->pods = 0;
    for (const struct gw_pod *gp = g->pods; gp; gp = gp->next)
        st->pods += gp->nports > 0;
    st->handshakes = g->ec.stats.handshakes;
    st->handshake_failures = g->ec.stats.handshake_failures;
    st->handshake_timeouts = g->ec.stats.handshake_timeouts;
    st->evicted = g->ec.stats.evicted;
    st->tls_active = g->ec.stats.active;
    st->tls_pending = g->ec.stats.pending;
    st->sni_refused += g->peeks.refused;
    st->sni_timeouts = g->peeks.timeouts;
    st->sni_evicted = g->peeks.evicted;
    st->sni_pending = g->peeks.n;
}
