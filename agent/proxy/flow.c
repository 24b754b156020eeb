/* A flow across its attempts and carriers (see flow.h). */
#include "proxy/flow.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/loop.h"
#include "core/ticker.h"
#include "core/upstream.h"
#include "proxy/conns.h"

struct flows {
    struct loop *loop;    /* borrowed */
    struct flow *pending; /* flows with an establishment deadline */
    struct ticker ticker; /* checks those deadlines */
    struct flows_stats stats;
};

struct flow {
    struct flows *fl;
    struct conn *c; /* borrowed: the record, ended by us or the carrier */
    struct carrier *carrier;
    const struct flow_router *router;
    void *user;                  /* the router's */
    struct meshd_addr app;       /* the app's address on 15001 */
    struct meshd_addr orig;      /* where it meant to go */
    struct outbound_route route; /* the current attempt */
    int app_fd;                  /* the app socket between attempts, or -1 */
    uint32_t retries_left;
    /* VirtualService perTryTimeout and timeout, for establishment: the
     * current attempt's deadline and the whole connect's (0: none). */
    uint64_t try_deadline_ns, deadline_ns;
    bool aborting; /* inside carrier->abort: what ends now timed out */
    bool pending;  /* linked in fl->pending */
    struct flow *prev, *next;
};

static void pending_del(struct flow *f)
{
    struct flows *fl = f->fl;
    if (!f->pending)
        return;
    if (f->prev)
        f->prev->next = f->next;
    else
        fl->pending = f->next;
    if (f->next)
        f->next->prev = f->prev;
    f->pending = false;
    f->prev = f->next = NULL;
}

static void pending_add(struct flow *f)
{
    struct flows *fl = f->fl;
    if (f->pending)
        return;
    f->prev = NULL;
    f->next = fl->pending;
    if (fl->pending)
        fl->pending->prev = f;
    fl->pending = f;
    f->pending = true;
}

void flows_tick(struct flows *fl, uint64_t now_ns)
{
    struct flow *next;
    for (struct flow *f = fl->pending; f; f = next) {
        next = f->next; /* an abort ends (or re-queues at the head) f only */
        bool expired = (f->try_deadline_ns && now_ns >= f->try_deadline_ns) ||
                       (f->deadline_ns && now_ns >= f->deadline_ns);
        if (!expired)
            continue;
        /* f may be freed inside abort: nothing of it is read after. */
        f->aborting = true;
        int rc = f->carrier->abort(f->carrier, f, -ETIMEDOUT);
        if (rc == 0) {
            fl->stats.timeouts++;
            continue;
        }
        f->aborting = false; /* established (or gone): no deadline applies */
        pending_del(f);
    }
}

static void on_tick(struct ticker *t, uint64_t now_ns)
{
    flows_tick(t->ctx, now_ns);
}

int flows_new(struct loop *loop, unsigned tick_ms, struct flows **out)
{
    struct flows *fl = calloc(1, sizeof(*fl));
    if (!fl)
        return -ENOMEM;
    fl->loop = loop;
    fl->ticker.io.fd = -1;
    int err = tick_ms ? ticker_start(&fl->ticker, loop, tick_ms, on_tick, fl) : 0;
    if (err) {
        free(fl);
        return err;
    }
    *out = fl;
    return 0;
}

void flows_free(struct flows *fl)
{
    if (!fl)
        return;
    ticker_stop(&fl->ticker);
    free(fl);
}

void flows_get_stats(const struct flows *fl, struct flows_stats *st)
{
    *st = fl->stats;
}

struct conn *flow_conn(const struct flow *f)
{
    return f->c;
}

const struct outbound_route *flow_route(const struct flow *f)
{
    return &f->route;
}

const struct meshd_addr *flow_app_addr(const struct flow *f)
{
    return &f->app;
}

int flow_take_app_fd(struct flow *f)
{
    int fd = f->app_fd;
    f->app_fd = -1;
    return fd;
}

static void flow_free(struct flow *f)
{
    pending_del(f);
    if (f->router->release)
        f->router->release(f->user);
    free(f);
}

/* The record says where the current attempt goes (before the connection
 * is reported open: its labels come from these fields). */
static void flow_record(struct flow *f)
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

/* One attempt: its perTryTimeout is tracked before the carrier starts,
 * since the attempt may end inside the call. */
static void flow_attempt(struct flow *f, const struct pod *pod)
{
    flow_record(f);
    uint64_t per_try = f->route.per_try_timeout_ns;
    f->try_deadline_ns = per_try ? loop_now_ns() + per_try : 0;
    if (f->try_deadline_ns || f->deadline_ns)
        pending_add(f);
    f->carrier->start(f->carrier, f, pod);
}

int flow_start(struct flows *fl, struct conn *c, const struct meshd_addr *app, int app_fd,
               const struct outbound_route *route, const struct flow_router *router, void *user)
{
    struct carrier *carrier = router->carrier(user, route);
    const struct pod *pod = router->pod(user);
    struct flow *f = carrier && pod ? calloc(1, sizeof(*f)) : NULL;
    if (!f)
        return -ENOMEM;
    *f = (struct flow){.fl = fl,
                       .c = c,
                       .carrier = carrier,
                       .router = router,
                       .user = user,
                       .app = *app,
                       .orig = conn_record(c)->orig_dst,
                       .route = *route,
                       .app_fd = app_fd,
                       .retries_left = route->retries,
                       .deadline_ns = route->timeout_ns ? loop_now_ns() + route->timeout_ns : 0};
    flow_attempt(f, pod);
    return 0;
}

/* After a failed attempt (released as failed already): the next one, if
 * the budget and the deadline allow and the router has another endpoint of
 * a cluster, reached by the same carrier or, from a mesh carrier, another
 * mesh carrier (HBONE to another node after the fast path to this one, or
 * back). A retry neither leaves the mesh nor turns to the app's original
 * destination. */
static bool flow_retry_route(struct flow *f, const struct pod *pod, struct outbound_route *next)
{
    bool in_time = !f->deadline_ns || loop_now_ns() < f->deadline_ns;
    if (f->retries_left == 0 || !in_time || !pod)
        return false;
    *next = (struct outbound_route){.action = OUTBOUND_PASSTHROUGH,
                                    .avoid_cluster = f->route.cluster,
                                    .avoid_endpoint = f->route.endpoint};
    f->router->get(f->user, pod, &f->orig, next);
    struct carrier *cr = next->cluster ? f->router->carrier(f->user, next) : NULL;
    if (cr && (cr == f->carrier || (cr->mesh && f->carrier->mesh))) {
        f->carrier = cr;
        f->retries_left--;
        f->fl->stats.retries++;
        return true;
    }
    f->router->free(f->user, next, false);
    return false;
}

/* Envoy's flags for a connection that never carried a byte: refused by
 * the peer's policy, cut at a deadline, or failed to connect. */
static enum resp_flag failure_flag(const struct flow_outcome *o, bool timed_out)
{
    return o->denied ? RESP_FLAG_DENY : timed_out ? RESP_FLAG_UT : RESP_FLAG_UF;
}

static void flow_failed(struct flow *f, const struct flow_outcome *o)
{
    /* A carrier that cannot tell a deadline's abort from a failure (TCP)
     * is answered by the flow, which asked for the abort. */
    bool timed_out = o->timed_out || f->aborting;
    f->aborting = false;
    f->router->free(f->user, &f->route, true);
    conn_record(f->c)->cluster = NULL; /* released attempt by attempt */
    if (o->app_fd >= 0)
        f->app_fd = o->app_fd;
    const struct pod *pod = f->router->pod(f->user);
    struct outbound_route next;
    if (!o->denied && !o->app_lost && flow_retry_route(f, pod, &next)) {
        f->route = next;
        flow_attempt(f, pod);
        return;
    }
    close_with_reset(flow_take_app_fd(f));
    conn_end(f->c, o->err ? o->err : -ECONNREFUSED, 0, 0, failure_flag(o, timed_out));
    flow_free(f);
}

void flow_carrier_done(struct flow *f, const struct flow_outcome *o)
{
    pending_del(f);
    if (o->cancelled) {
        flow_free(f);
        return;
    }
    if (!o->established && !o->app_lost) {
        flow_failed(f, o);
        return;
    }
    /* Envoy's flags: refused by policy, terminated by the upstream once
     * established (UC), or failed to establish (UF). */
    if (!o->carried)
        conn_end(f->c, o->err, o->bytes_sent, o->bytes_received,
                 o->denied        ? RESP_FLAG_DENY
                 : !o->err        ? RESP_FLAG_NONE
                 : o->established ? RESP_FLAG_UC
                                  : RESP_FLAG_UF);
    flow_free(f);
}
