/* Outbound proxy: in-pod 15001 listeners and the original destination. */
#include "proxy/outbound.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/rand.h>

#include "capture/capture.h"
#include "core/addr.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/ticker.h"
#include "core/upstream.h"
#include "enroll/pods.h"
#include "proxy/conns.h"
#include "proxy/listener.h"

struct ob_flow;

struct outbound {
    struct loop *loop;       /* borrowed */
    struct capture *capture; /* borrowed */
    struct conns *conns;     /* borrowed */
    struct outbound_opts opts;
    struct outbound_stats stats;
    struct ob_flow *pending; /* flows with an establishment deadline */
    struct ticker ticker;    /* checks those deadlines every 100 ms */
};

/* Per pod: IPv4 and IPv6 loopback listeners. Refcounted: connections in
 * their retries hold it, and see pod NULL once the pod was unenrolled. */
struct outbound_pod {
    struct listener l[2];
    struct outbound *ob;
    struct pod *pod; /* borrowed: the registry frees it after detach */
    unsigned refs;
};

/* One captured connection on its way to a service endpoint, across
 * retries and establishment deadlines. Through HBONE a failed attempt
 * hands the app socket back (the pool's give_back); in plain TCP the app
 * socket was never touched. Either way the route is asked again, avoiding
 * the endpoint that failed. */
struct ob_flow {
    struct outbound_pod *op; /* a reference */
    struct conn *c;
    struct meshd_addr src;       /* the app's address on 15001 */
    struct meshd_addr orig;      /* where it meant to go */
    struct outbound_route route; /* the current attempt */
    uint32_t retries_left;
    /* VirtualService perTryTimeout and timeout, for establishment: the
     * current attempt's deadline and the whole connect's (0: none). */
    uint64_t try_deadline_ns, deadline_ns;
    bool pending; /* linked in ob->pending */
    struct ob_flow *prev, *next;
};

static void pending_del(struct outbound *ob, struct ob_flow *f)
{
    if (!f->pending)
        return;
    if (f->prev)
        f->prev->next = f->next;
    else
        ob->pending = f->next;
    if (f->next)
        f->next->prev = f->prev;
    f->pending = false;
    f->prev = f->next = NULL;
}

static void pending_add(struct outbound *ob, struct ob_flow *f)
{
    if (f->pending)
        return;
    f->prev = NULL;
    f->next = ob->pending;
    if (ob->pending)
        ob->pending->prev = f;
    ob->pending = f;
    f->pending = true;
}

static void op_unref(struct outbound_pod *op)
{
    if (--op->refs == 0)
        free(op);
}

/* Attempts past their deadline are aborted: the flow retries (or fails
 * with UT). */
static void on_deadline_tick(struct ticker *t, uint64_t now_ns)
{
    struct outbound *ob = t->ctx;
    struct ob_flow *next;
    for (struct ob_flow *f = ob->pending; f; f = next) {
        next = f->next; /* an abort ends (or re-queues at the head) f only */
        bool expired = (f->try_deadline_ns && now_ns >= f->try_deadline_ns) ||
                       (f->deadline_ns && now_ns >= f->deadline_ns);
        if (!expired)
            continue;
        int rc = f->route.action == OUTBOUND_HBONE
                     ? hbone_pool_abort_pending(ob->opts.pool, &f->route.key, f, -ETIMEDOUT)
                     : conn_abort_connect(f->c, -ETIMEDOUT);
        if (rc != 0) /* established (or gone): no deadline applies any more */
            pending_del(ob, f);
        else
            ob->stats.timeouts++;
    }
}

int outbound_new(struct loop *loop, struct capture *capture, struct conns *conns,
                 const struct outbound_opts *opts, struct outbound **out)
{
    struct outbound *ob = calloc(1, sizeof(*ob));
    if (!ob)
        return -ENOMEM;
    *ob = (struct outbound){.loop = loop, .capture = capture, .conns = conns, .opts = *opts};
    ob->ticker.io.fd = -1;
    int err = opts->pool ? ticker_start(&ob->ticker, loop, 100, on_deadline_tick, ob) : 0;
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
    ticker_stop(&ob->ticker);
    free(ob);
}

void outbound_get_stats(const struct outbound *ob, struct outbound_stats *st)
{
    *st = ob->stats;
}

/* ztunnel's CONNECT headers: who is really connecting, and trace context. */
static void connect_headers(const struct pod *pod, const struct meshd_addr *src, char *forwarded,
                            size_t flen, char *baggage, size_t blen, char *traceparent, size_t tlen)
{
    char s[ADDR_STRLEN];
    if (src->family)
        snprintf(forwarded, flen, "for=\"%s\"", addr_format(src, s, sizeof(s)));
    else
        forwarded[0] = '\0';
    snprintf(baggage, blen, "k8s.namespace.name=%s,k8s.pod.name=%s", pod->ns, pod->name);
    unsigned char id[24];
    if (RAND_bytes(id, sizeof(id)) != 1)
        memset(id, 0x5a, sizeof(id));
    int n = snprintf(traceparent, tlen, "00-");
    for (int i = 0; i < 24 && n + 3 < (int)tlen; i++)
        n += snprintf(traceparent + n, tlen - (size_t)n, "%02x%s", id[i], i == 15 ? "-" : "");
    snprintf(traceparent + n, tlen - (size_t)n, "-01");
}

static void flow_attempt_hbone(struct ob_flow *f, int fd);
static void flow_attempt_plain(struct ob_flow *f);

static void flow_free(struct ob_flow *f)
{
    pending_del(f->op->ob, f);
    op_unref(f->op);
    free(f);
}

/* After a failed attempt (released as failed already): the next one, if
 * the budget and the deadline allow and the router has another endpoint
 * reached the same way. A retry never changes carrier: it neither leaves
 * the mesh nor turns to the app's original destination. */
static bool flow_retry_route(struct ob_flow *f, struct outbound_route *next)
{
    struct outbound *ob = f->op->ob;
    struct pod *pod = f->op->pod;
    bool in_time = !f->deadline_ns || loop_now_ns() < f->deadline_ns;
    if (f->retries_left == 0 || !in_time || !pod || !ob->opts.route)
        return false;
    *next = (struct outbound_route){.action = OUTBOUND_PASSTHROUGH,
                                    .avoid_cluster = f->route.cluster,
                                    .avoid_endpoint = f->route.endpoint};
    ob->opts.route(ob->opts.route_ctx, pod, &f->orig, next);
    if (next->action == f->route.action && (next->action == OUTBOUND_HBONE || next->cluster)) {
        f->retries_left--;
        ob->stats.retries++;
        return true;
    }
    if (ob->opts.route_released)
        ob->opts.route_released(ob->opts.route_ctx, next, false);
    return false;
}

static void flow_release_failed(struct ob_flow *f)
{
    struct outbound *ob = f->op->ob;
    if (ob->opts.route_released)
        ob->opts.route_released(ob->opts.route_ctx, &f->route, true);
    conn_record(f->c)->cluster = NULL; /* released attempt by attempt */
}

/* An HBONE attempt failed before the peer answered 200: `fd`, the app
 * socket, is ours again. Retry while the budget lasts, else reset the app
 * and end the record. A policy denial (401) is final. */
static void flow_failed(struct ob_flow *f, int fd, int err, int status)
{
    flow_release_failed(f);
    struct outbound_route next;
    if (status != 401 && flow_retry_route(f, &next)) {
        f->route = next;
        flow_attempt_hbone(f, fd);
        return;
    }
    close_with_reset(fd);
    /* Envoy's flags: policy denial, upstream timeout, connect failure. */
    conn_end(f->c, err ? err : -ECONNREFUSED, 0, 0,
             status == 401       ? RESP_FLAG_DENY
             : err == -ETIMEDOUT ? RESP_FLAG_UT
                                 : RESP_FLAG_UF);
    flow_free(f);
}

void outbound_on_stream_done(void *ctx, struct hbone_stream *st, void *stream_ctx, int err,
                             const struct hbone_stream_stats *stats)
{
    struct ob_flow *f = stream_ctx;
    pending_del(f->op->ob, f);
    if (stats->app_fd >= 0) {
        flow_failed(f, stats->app_fd, err, stats->status);
        return;
    }
    /* Envoy's flags: refused by policy, failed to establish (UF), or
     * terminated by the upstream once established (UC). */
    enum resp_flag flag = stats->status == 401   ? RESP_FLAG_DENY
                          : !err                 ? RESP_FLAG_NONE
                          : stats->status == 200 ? RESP_FLAG_UC
                                                 : RESP_FLAG_UF;
    conn_end(f->c, err, stats->bytes_sent, stats->bytes_received, flag);
    flow_free(f);
}

/* A plain-TCP attempt ended (conns' conn_attempt_fn): connected, the flow
 * is done; failed, retry or let conns fail the connection (UF/UT). */
static bool flow_plain_done(void *ctx, struct conn *c, int err)
{
    struct ob_flow *f = ctx;
    (void)c;
    pending_del(f->op->ob, f);
    if (err == 0 || err == -ECANCELED) { /* connected, or the agent stops */
        flow_free(f);
        return true;
    }
    flow_release_failed(f);
    struct outbound_route next;
    if (flow_retry_route(f, &next)) {
        f->route = next;
        flow_attempt_plain(f);
        return true;
    }
    flow_free(f);
    return false;
}

/* The record says where the current attempt goes (before the connection
 * is reported open: its labels come from these fields). */
static void flow_record(struct ob_flow *f)
{
    const struct outbound_route *route = &f->route;
    struct conn_record *rec = conn_record(f->c);
    rec->hbone = route->key.dst;
    rec->upstream = route->target;
    rec->cluster = route->cluster;
    rec->endpoint = route->endpoint;
    rec->outlier = route->outlier;
    snprintf(rec->peer_identity, sizeof(rec->peer_identity), "%s", route->key.dst_id);
}

/* Starts the attempt's perTryTimeout; tracked before the attempt is made,
 * which may end inside the call. */
static void flow_arm_deadline(struct ob_flow *f)
{
    uint64_t per_try = f->route.per_try_timeout_ns;
    f->try_deadline_ns = per_try ? loop_now_ns() + per_try : 0;
    if (f->try_deadline_ns || f->deadline_ns)
        pending_add(f->op->ob, f);
}

/* One HBONE attempt: the pool tunnels `fd` where the route says. */
static void flow_attempt_hbone(struct ob_flow *f, int fd)
{
    const struct outbound_route *route = &f->route;
    struct pod *pod = f->op->pod;
    char authority[ADDR_STRLEN], forwarded[80], baggage[400], traceparent[64];
    flow_record(f);
    addr_format(&route->target, authority, sizeof(authority));
    /* The app's real source: its pod address with the port it used. */
    struct meshd_addr from = route->source;
    from.port = f->src.port;
    connect_headers(pod, &from, forwarded, sizeof(forwarded), baggage, sizeof(baggage), traceparent,
                    sizeof(traceparent));
    struct hbone_connect_headers hdrs = {.forwarded = forwarded[0] ? forwarded : NULL,
                                         .baggage = baggage,
                                         .traceparent = traceparent};
    flow_arm_deadline(f);
    int rc = hbone_pool_connect(f->op->ob->opts.pool, &route->key, pod->netns_fd, route->client_ctx,
                                authority, &hdrs, fd, f);
    if (rc) {
        pending_del(f->op->ob, f);
        flow_failed(f, fd, rc, 0); /* the pool gave fd back (give_back) */
    }
}

/* One plain-TCP attempt, from the pod's netns to the chosen endpoint. */
static void flow_attempt_plain(struct ob_flow *f)
{
    const struct outbound_route *route = &f->route;
    flow_record(f);
    flow_arm_deadline(f);
    conn_forward_attempt(f->c, f->op->pod->netns_fd, &route->target, NULL, &route->tuning,
                         flow_plain_done, f);
}

static void flow_start(struct outbound_pod *op, struct conn *c, const struct meshd_addr *src,
                       const struct outbound_route *route)
{
    struct ob_flow *f = calloc(1, sizeof(*f));
    if (!f) {
        conn_refuse(c, -ENOMEM, RESP_FLAG_UF);
        return;
    }
    op->refs++;
    *f = (struct ob_flow){.op = op,
                          .c = c,
                          .src = *src,
                          .orig = conn_record(c)->orig_dst,
                          .route = *route,
                          .retries_left = route->retries,
                          .deadline_ns = route->timeout_ns ? loop_now_ns() + route->timeout_ns : 0};
    /* The record first: taking the fd reports the connection open, and
     * its labels come from the record. */
    flow_record(f);
    if (route->action == OUTBOUND_HBONE)
        flow_attempt_hbone(f, conn_take_fd(c));
    else
        flow_attempt_plain(f);
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
    if (pod->nips && listener_is_pod_addr(pod, &od.dst) &&
        listener_is_meshd_port(ntohs(od.dst.port))) {
        log_ratelimited(LOG_WARN, "outbound: %s: connect to its own meshd port %u refused", ref,
                        ntohs(od.dst.port));
        conn_refuse_self_call(c);
        return;
    }
    struct outbound_route route = {.action = OUTBOUND_PASSTHROUGH};
    if (op->ob->opts.route)
        op->ob->opts.route(op->ob->opts.route_ctx, pod, &od.dst, &route);
    struct conn_record *rec = conn_record(c);
    rec->cluster = route.cluster;
    rec->endpoint = route.endpoint;
    rec->outlier = route.outlier;
    if (route.service)
        snprintf(rec->dst_service, sizeof(rec->dst_service), "%s", route.service);
    rec->upstream = route.action == OUTBOUND_HBONE ? route.target
                    : route.target.family          ? route.target
                                                   : od.dst;
    switch (route.action) {
    case OUTBOUND_PASSTHROUGH:
        /* A service endpoint with retries or deadlines to keep. */
        if (route.cluster && route.target.family &&
            (route.retries || route.per_try_timeout_ns || route.timeout_ns)) {
            flow_start(op, c, &key.src, &route);
            return;
        }
        /* To the chosen endpoint of a service, or where the app meant. */
        conn_forward(c, pod->netns_fd, route.target.family ? &route.target : NULL, NULL,
                     &route.tuning);
        return;
    case OUTBOUND_REFUSE:
        conn_refuse(c, -ECONNREFUSED,
                    route.response_flag != RESP_FLAG_NONE ? route.response_flag : RESP_FLAG_NR);
        return;
    case OUTBOUND_HBONE:
        flow_start(op, c, &key.src, &route);
        return;
    }
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
