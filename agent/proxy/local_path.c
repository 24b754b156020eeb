/* The same-node fast path carrier (see local_path.h). */
#include "proxy/local_path.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>

#include "core/addr.h"
#include "core/log.h"
#include "enroll/pods.h"
#include "proxy/conns.h"
#include "proxy/listener.h"

void local_path_init(struct local_path *lp, struct conns *conns, local_path_authorize_fn authorize,
                     void *authorize_ctx)
{
    /* splice: half the agent's CPU per byte of copying (PERFORMANCE.md). */
    *lp = (struct local_path){
        .conns = conns, .authorize = authorize, .authorize_ctx = authorize_ctx, .splice = true};
}

/* conns' conn_attempt_fn: the connect to the destination app ended. A
 * failure ends the destination's record here (the flow may retry with a
 * new one); once connected, the relay carries both records to their end. */
static bool local_attempt_done(void *ctx, struct conn *c, int err)
{
    if (err && err != -ECANCELED) {
        struct conn *in = conn_untwin(c);
        if (in)
            conn_end(in, err, 0, 0, err == -ETIMEDOUT ? RESP_FLAG_UT : RESP_FLAG_UF);
    }
    struct flow_outcome o = {.err = err,
                             .established = err == 0,
                             .carried = err == 0,
                             .cancelled = err == -ECANCELED,
                             .app_fd = -1};
    flow_carrier_done(ctx, &o);
    return true;
}

/* The attempt ends before any byte moved: refused by the destination
 * (`denied`: no retry, flag DENY) or failed (the flow may retry). */
static void local_fail(struct flow *f, int err, bool denied)
{
    struct flow_outcome o = {.err = err, .denied = denied, .app_fd = -1};
    flow_carrier_done(f, &o);
}

static void local_start(struct carrier *cr, struct flow *f, const struct pod *src_pod)
{
    (void)src_pod;
    struct local_path *lp = cr->ctx;
    const struct outbound_route *route = flow_route(f);
    const struct pod *dst = route->local_pod;
    struct conn *c = flow_conn(f);
    conn_record(c)->local = true;
    /* A retry after an HBONE attempt that gave the app socket back: the
     * relay takes it from the table. */
    int app_fd = flow_take_app_fd(f);
    if (app_fd >= 0)
        conn_return_fd(c, app_fd);
    if (!dst) {
        local_fail(f, -ENOENT, false);
        return;
    }
    /* The client as the HBONE server would see it: its pod's address, the
     * port its app used (what the tunnel's Forwarded header says). */
    struct meshd_addr from = route->source;
    from.port = flow_app_addr(f)->port;
    char ref[RECORD_POD_LEN];
    snprintf(ref, sizeof(ref), "%s/%s", dst->ns, dst->name);
    struct conn *in = conn_begin(lp->conns, -1, "inbound", ref, &from);
    if (!in) {
        local_fail(f, -ENOBUFS, false);
        return;
    }
    struct conn_record *ir = conn_record(in);
    ir->orig_dst = route->target;
    ir->upstream = route->target;
    ir->local = true;
    snprintf(ir->peer_identity, sizeof(ir->peer_identity), "%s", route->key.src_id);
    /* As the HBONE server refuses a CONNECT to one of meshd's ports. */
    if (meshd_port_in_pod(ntohs(route->target.port))) {
        lp->stats.self_calls++;
        log_ratelimited(LOG_WARN,
                        "local: %s: connect to meshd port %u from %s refused: a self-call", ref,
                        ntohs(route->target.port), route->key.src_id);
        conn_refuse_self_call(in);
        local_fail(f, -ECONNREFUSED, true);
        return;
    }
    /* The destination's decision, by the code the HBONE server runs. */
    if (!lp->authorize ||
        lp->authorize(lp->authorize_ctx, dst, route->key.src_id, &from, &route->target) != 0) {
        lp->stats.denied++;
        conn_refuse(in, -EACCES, RESP_FLAG_DENY);
        local_fail(f, -EACCES, true);
        return;
    }
    lp->stats.connections++;
    struct upstream_source bind = listener_app_source(dst, &from, &route->target);
    conn_twin(c, in);
    if (lp->splice)
        conn_set_splice(c);
    conn_forward_attempt(c, dst->netns_fd, &route->target, &bind, &route->tuning,
                         local_attempt_done, f);
}

static int local_abort(struct carrier *cr, struct flow *f, int err)
{
    (void)cr;
    return conn_abort_connect(flow_conn(f), err);
}

void carrier_local_init(struct carrier *cr, struct local_path *lp)
{
    *cr = (struct carrier){
        .name = "local", .start = local_start, .abort = local_abort, .ctx = lp, .mesh = true};
}
