/* Outbound proxy: in-pod 15001 listeners and the original destination. */
#include "proxy/outbound.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "capture/capture.h"
#include "core/addr.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/upstream.h"
#include "enroll/pods.h"
#include "http/proxy.h"
#include "route/http_route.h"
#include "proxy/carriers.h"
#include "proxy/conns.h"
#include "proxy/flow.h"
#include "proxy/listener.h"
#include "proxy/local_path.h"

struct outbound {
    struct loop *loop;       /* borrowed */
    struct capture *capture; /* borrowed */
    struct conns *conns;     /* borrowed */
    struct outbound_opts opts;
    struct flows *flows;  /* retries and establishment deadlines */
    struct carrier tcp;   /* plain TCP */
    struct carrier hbone; /* CONNECT through opts.pool */
    struct carrier local; /* the same-node fast path */
    struct local_path local_path;
};

/* Per pod: IPv4 and IPv6 loopback listeners. Refcounted: flows hold it
 * until they end, and see pod NULL once the pod was unenrolled. */
struct outbound_pod {
    struct listener l[2];
    struct outbound *ob;
    struct pod *pod; /* borrowed: the registry frees it after detach */
    unsigned refs;
};

static void op_unref(struct outbound_pod *op)
{
    if (--op->refs == 0)
        free(op);
}

/* The flows' router (user: the outbound_pod): the route hook, its
 * release, and the carrier for each action. */
static const struct pod *router_pod(void *user)
{
    const struct outbound_pod *op = user;
    return op->pod;
}

static void router_get(void *user, const struct pod *pod, const struct meshd_addr *orig,
                       struct outbound_route *next)
{
    struct outbound *ob = ((struct outbound_pod *)user)->ob;
    if (ob->opts.route)
        ob->opts.route(ob->opts.route_ctx, pod, orig, next);
}

static void router_free(void *user, const struct outbound_route *r, bool failed)
{
    struct outbound *ob = ((struct outbound_pod *)user)->ob;
    if (ob->opts.route_released)
        ob->opts.route_released(ob->opts.route_ctx, r, failed);
}

static struct carrier *router_carrier(void *user, const struct outbound_route *r)
{
    struct outbound *ob = ((struct outbound_pod *)user)->ob;
    switch (r->action) {
    case OUTBOUND_PASSTHROUGH:
        return &ob->tcp;
    case OUTBOUND_HBONE:
        return ob->opts.pool ? &ob->hbone : NULL;
    case OUTBOUND_LOCAL:
        return ob->opts.local_authorize ? &ob->local : NULL;
    case OUTBOUND_REFUSE:
        break;
    }
    return NULL;
}

static void router_release(void *user)
{
    op_unref(user);
}

static const struct flow_router router = {.pod = router_pod,
                                          .get = router_get,
                                          .free = router_free,
                                          .carrier = router_carrier,
                                          .release = router_release};

/* The HTTP carrier's router (user: the outbound_pod, as for flows). */
static void http_router_route(void *user, const struct pod *pod, const struct meshd_addr *orig,
                              const struct http_request_view *req, struct http_decision *d)
{
    struct outbound *ob = ((struct outbound_pod *)user)->ob;
    ob->opts.http_route(ob->opts.route_ctx, pod, orig, req, d);
}

static void http_router_mirror(void *user, const struct pod *pod, const struct meshd_addr *orig,
                               const struct cfg_destination *dest, struct outbound_route *out)
{
    struct outbound *ob = ((struct outbound_pod *)user)->ob;
    if (ob->opts.http_mirror)
        ob->opts.http_mirror(ob->opts.route_ctx, pod, orig, dest, out);
    else
        out->action = OUTBOUND_REFUSE;
}

static void http_router_report(void *user, struct http_request_record *r,
                               const struct conn_record *conn, const struct http_decision *d)
{
    struct outbound *ob = ((struct outbound_pod *)user)->ob;
    if (ob->opts.http_report)
        ob->opts.http_report(ob->opts.http_report_ctx, r, conn, d);
}

static const struct http_router http_router = {.pod = router_pod,
                                               .route = http_router_route,
                                               .free = router_free,
                                               .mirror = http_router_mirror,
                                               .report = http_router_report,
                                               .release = router_release};

int outbound_new(struct loop *loop, struct capture *capture, struct conns *conns,
                 const struct outbound_opts *opts, struct outbound **out)
{
    struct outbound *ob = calloc(1, sizeof(*ob));
    if (!ob)
        return -ENOMEM;
    *ob = (struct outbound){.loop = loop, .capture = capture, .conns = conns, .opts = *opts};
    carrier_tcp_init(&ob->tcp);
    carrier_hbone_init(&ob->hbone, opts->pool);
    local_path_init(&ob->local_path, conns, opts->local_authorize, opts->local_authorize_ctx);
    carrier_local_init(&ob->local, &ob->local_path);
    /* Deadlines are checked every 100 ms. */
    int err = flows_new(loop, opts->pool ? 100 : 0, &ob->flows);
    if (err) {
        free(ob);
        return err;
    }
    *out = ob;
    return 0;
}

void outbound_free(struct outbound *ob)
{
    if (!ob)
        return;
    flows_free(ob->flows);
    free(ob);
}

void outbound_get_stats(const struct outbound *ob, struct outbound_stats *st)
{
    struct flows_stats fs;
    flows_get_stats(ob->flows, &fs);
    *st = (struct outbound_stats){.retries = fs.retries,
                                  .timeouts = fs.timeouts,
                                  .local_connections = ob->local_path.stats.connections,
                                  .local_denied = ob->local_path.stats.denied,
                                  .local_self_calls = ob->local_path.stats.self_calls};
}

void outbound_on_stream_done(void *ctx, struct hbone_stream *st, void *stream_ctx, int err,
                             const struct hbone_stream_stats *stats)
{
    carrier_hbone_stream_done(stream_ctx, err, stats);
}

static void carry_route(struct outbound_pod *op, struct conn *c, const struct meshd_addr *app,
                        const struct meshd_addr *orig, struct outbound_route *rp);

/* Carries a captured connection as bytes: routed once, then a flow over
 * the route's carrier (plain TCP or HBONE). */
static void outbound_carry_bytes(struct outbound_pod *op, struct conn *c,
                                 const struct meshd_addr *app, const struct meshd_addr *orig)
{
    struct pod *pod = op->pod;
    struct outbound_route route = {.action = OUTBOUND_PASSTHROUGH};
    if (op->ob->opts.route)
        op->ob->opts.route(op->ob->opts.route_ctx, pod, orig, &route);
    carry_route(op, c, app, orig, &route);
}

void outbound_carry(struct outbound *ob, struct pod *pod, struct conn *c,
                    const struct outbound_route *route)
{
    struct outbound_pod *op = pod->outbound;
    struct conn_record *rec = conn_record(c);
    if (!op) {
        conn_refuse(c, -ENOENT, RESP_FLAG_NR);
        return;
    }
    struct meshd_addr app = rec->src, orig = rec->orig_dst;
    struct outbound_route r = *route;
    carry_route(op, c, &app, &orig, &r);
}

/* The flow of `c` along a decided route. */
static void carry_route(struct outbound_pod *op, struct conn *c, const struct meshd_addr *app,
                        const struct meshd_addr *orig, struct outbound_route *rp)
{
    struct outbound_route route = *rp;
    struct conn_record *rec = conn_record(c);
    rec->cluster = route.cluster;
    rec->endpoint = route.endpoint;
    rec->outlier = route.outlier;
    if (route.service)
        snprintf(rec->dst_service, sizeof(rec->dst_service), "%s", route.service);
    rec->upstream = route.target.family ? route.target : *orig;
    if (route.action == OUTBOUND_REFUSE) {
        conn_refuse(c, -ECONNREFUSED,
                    route.response_flag != RESP_FLAG_NONE ? route.response_flag : RESP_FLAG_NR);
        return;
    }
    /* Whatever carries it, the flow follows it to its establishment. */
    op->refs++;
    if (flow_start(op->ob->flows, c, app, -1, &route, &router, op) != 0) {
        op->refs--;
        conn_refuse(c, -ENOMEM, RESP_FLAG_UF);
    }
}

/* The client spoke (or kept silent): HTTP/1 and HTTP/2 are carried per
 * request, the rest as bytes. */
static void on_sniffed(void *ctx, struct conn *c, enum http_sniffed what)
{
    struct outbound_pod *op = ctx;
    struct conn_record *rec = conn_record(c);
    if (what == HTTP_SNIFF_GONE || !op->pod) {
        if (what != HTTP_SNIFF_GONE)
            conn_refuse(c, -ENOENT, RESP_FLAG_DC);
        op_unref(op);
        return;
    }
    if (what == HTTP_SNIFF_HTTP1 || what == HTTP_SNIFF_HTTP2) {
        struct outbound *ob = op->ob;
        op->refs++; /* the session's, released through http_router.release */
        if (ob->opts.http_start(ob->opts.http, c, &rec->orig_dst, &http_router, op) == 0) {
            op_unref(op); /* the sniff's */
            return;
        }
        op->refs--;
    }
    struct meshd_addr app = rec->src, orig = rec->orig_dst;
    outbound_carry_bytes(op, c, &app, &orig);
    op_unref(op);
}

static void outbound_on_accept(struct listener *l, int fd, const struct sockaddr *peer,
                               socklen_t peerlen)
{
    struct outbound_pod *op = l->ctx;
    struct pod *pod = op->pod;
    struct meshd_flow_key key = {.netns_cookie = pod->netns_cookie};
    char ref[RECORD_POD_LEN];
    snprintf(ref, sizeof(ref), "%s/%s", pod->ns, pod->name);
    addr_from_sockaddr(peer, peerlen, &key.src);
    struct conn *c = conn_begin(op->ob->conns, fd, "outbound", ref, &key.src);
    if (!c)
        return;
    struct meshd_orig_dst od;
    int rc = capture_orig_dst_take(op->ob->capture, &key, &od);
    if (rc) {
        /* Fail closed: without the original destination there is nowhere
         * safe to send the bytes. */
        char src[ADDR_STRLEN];
        log_ratelimited(LOG_WARN, "outbound: %s: no original destination for %s; refused", ref,
                        addr_format(&key.src, src, sizeof(src)));
        conn_refuse(c, rc, RESP_FLAG_NR);
        return;
    }
    conn_record(c)->orig_dst = od.dst;
    /* The pod's own address on one of meshd's ports: meshd would accept
     * its own connection (ztunnel refuses this self-call too). */
    if (pod->nips && listener_is_pod_addr(pod, &od.dst) && meshd_port_in_pod(ntohs(od.dst.port))) {
        log_ratelimited(LOG_WARN, "outbound: %s: connect to its own meshd port %u refused", ref,
                        ntohs(od.dst.port));
        conn_refuse_self_call(c);
        return;
    }
    struct outbound *ob = op->ob;
    int proto = ob->opts.http && ob->opts.protocol && ob->opts.http_sniff && ob->opts.http_start
                    ? ob->opts.protocol(ob->opts.route_ctx, pod, &od.dst)
                    : PROTO_TCP;
    if (proto == PROTO_HTTP || proto == PROTO_AUTO || proto == PROTO_HTTP2 || proto == PROTO_GRPC) {
        /* An unnamed port waits briefly for the client to speak (a
         * server-first protocol then goes on as bytes); an HTTP one as
         * long as a request head may take. */
        uint64_t wait = proto == PROTO_AUTO
                            ? (ob->opts.sniff_timeout_ns ? ob->opts.sniff_timeout_ns : 100000000)
                            : 60ull * 1000000000;
        op->refs++;
        if (ob->opts.http_sniff(ob->opts.http, c, wait, on_sniffed, op) == 0)
            return;
        op->refs--;
    }
    outbound_carry_bytes(op, c, &key.src, &od.dst);
}

int outbound_attach_pod(void *ctx, struct pod *pod)
{
    struct outbound *ob = ctx;
    struct outbound_pod *op = calloc(1, sizeof(*op));
    if (!op)
        return -ENOMEM;
    op->ob = ob;
    op->pod = pod;
    op->refs = 1;
    int err = listener_open_pod(op->l, ob->loop, pod, ob->opts.port, 1, outbound_on_accept, op,
                                "outbound");
    if (err) {
        free(op);
        return err;
    }
    pod->outbound = op;
    return 0;
}

void outbound_detach_pod(void *ctx, struct pod *pod)
{
    struct outbound_pod *op = pod->outbound;
    if (!op)
        return;
    listener_close_pod(op->l);
    op->pod = NULL; /* flows still retrying see it gone */
    pod->outbound = NULL;
    op_unref(op);
}

void outbound_quiesce_pod(void *ctx, struct pod *pod)
{
    struct outbound_pod *op = pod->outbound;
    if (op) /* new captured connects are refused: nothing listens on 15001 */
        listener_close_pod(op->l);
}
