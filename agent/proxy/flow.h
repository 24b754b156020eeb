/* A flow: one captured connection on its way to an upstream, and the
 * carriers that move its bytes.
 *
 * The flow owns what does not depend on how bytes travel: the route chosen
 * (and, for a retry, chosen again avoiding the endpoint that failed), the
 * retry budget, the establishment deadlines (perTryTimeout, timeout), the
 * connection record and its response flag. A carrier moves the bytes of one
 * attempt behind struct carrier, as Redis's ConnectionType or HAProxy's
 * xprt_ops: plain TCP (the upstream connect and the relay of proxy/conns.c)
 * or an HBONE stream (the client side through hbone/pool.c), both in
 * proxy/carriers.c. An HTTP codec would be a third carrier: a new struct
 * carrier and a route action choosing it, no branch here.
 *
 * A carrier reports the end of an attempt, or of the whole connection once
 * established, through flow_carrier_done() alone. The router hears about
 * every attempt that will not become the record through its `free` hook,
 * as nginx's peer get/free (ngx_peer_connection_t): that one call is how
 * the load balancer and outlier detection learn of each failure. */
#ifndef MESHD_PROXY_FLOW_H
#define MESHD_PROXY_FLOW_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/outbound_route.h"

struct conn;
struct flow;
struct flows;
struct loop;
struct pod;

/* One carrier: its operations and their context (an instance, as a
 * Redis connection names its ConnectionType). Each call is made with the
 * flow's current route. */
struct carrier {
    const char *name; /* "tcp", "hbone": logs */
    /* Makes one attempt to carry `f` along flow_route(f) from inside the
     * source pod `pod` (borrowed for the call). Its end is reported with
     * flow_carrier_done(), possibly before start returns. */
    void (*start)(struct carrier *cr, struct flow *f, const struct pod *pod);
    /* The attempt passed a deadline: end it with `err` (reported as any
     * end) and return 0; 1 when it is established (no deadline applies
     * any more); -errno when there is none. */
    int (*abort)(struct carrier *cr, struct flow *f, int err);
    void *ctx; /* the carrier's: borrowed */
    /* Carries inside the mesh (HBONE, the same-node fast path): a retry
     * may move between two such carriers (an endpoint on this node, then
     * one on another), never out of the mesh. */
    bool mesh;
};

/* How a carrier's attempt ended.
 * - Not established, app socket intact (`app_fd` given back, or -1 while
 *   the connection's table holds it): the attempt failed before any byte
 *   moved. The router frees it as failed; the flow retries or fails the
 *   connection (DENY, UT, UF).
 * - Established and `carried`: the carrier goes on alone and ends the
 *   record itself (the TCP relay); the flow is done.
 * - Otherwise the connection is over (`app_lost`: it failed and the app
 *   socket went with it) and the flow ends the record (DENY, UC, UF, or
 *   none); the record's close releases its route.
 * - `cancelled`: the carrier's owner is being freed; the flow frees only
 *   its own state. */
struct flow_outcome {
    int err;          /* 0 or -errno */
    bool established; /* bytes could flow (connected, HBONE 200) */
    bool carried;     /* established: the carrier ends the record */
    bool denied;      /* the peer refused by policy (HBONE 401): no retry */
    bool timed_out;   /* a deadline cut it (also when the flow asked to abort) */
    bool app_lost;    /* not established, and the app socket is gone: no retry */
    bool cancelled;
    int app_fd; /* not established: the app socket given back, or -1 */
    uint64_t bytes_sent, bytes_received;
};

/* Where routing is asked and told (the outbound proxy, on the mesh). */
struct flow_router {
    /* The source pod, or NULL once it was unenrolled (no more attempts). */
    const struct pod *(*pod)(void *user);
    /* nginx's peer get for a retry: routes the original destination
     * again into `next`, which carries what to avoid. */
    void (*get)(void *user, const struct pod *pod, const struct meshd_addr *orig,
                struct outbound_route *next);
    /* nginx's peer free: `r` will not become the record; `failed` says
     * its endpoint failed. */
    void (*free)(void *user, const struct outbound_route *r, bool failed);
    /* The carrier for a route's action (NULL: none, the route is not
     * carried). A retry never changes carrier, but between two mesh
     * carriers. */
    struct carrier *(*carrier)(void *user, const struct outbound_route *r);
    /* The flow is over: drop what the router holds for it. */
    void (*release)(void *user);
};

struct flows_stats {
    uint64_t retries;  /* attempts made after a failed one */
    uint64_t timeouts; /* attempts aborted at perTryTimeout or timeout */
};

/* `loop` borrowed. tick_ms 0: no ticker (the caller runs flows_tick). */
int flows_new(struct loop *loop, unsigned tick_ms, struct flows **out);
/* Accepts NULL. Flows still alive belong to their carriers' owners. */
void flows_free(struct flows *fl);
/* Aborts attempts past their deadline (the ticker calls it). */
void flows_tick(struct flows *fl, uint64_t now_ns);
void flows_get_stats(const struct flows *fl, struct flows_stats *st);

/* Starts a flow for `c` (borrowed until the flow ends it or hands it to a
 * carrier) along `route`, whose carrier must exist. `app_fd` is the app's
 * socket when the table no longer holds it (-1 otherwise). `user` is the
 * router's, released through router->release when the flow ends. -ENOMEM:
 * nothing started, the caller still owns everything. */
int flow_start(struct flows *fl, struct conn *c, const struct meshd_addr *app, int app_fd,
               const struct outbound_route *route, const struct flow_router *router, void *user);
/* The one way a carrier reports. */
void flow_carrier_done(struct flow *f, const struct flow_outcome *o);

/* For carriers. */
struct conn *flow_conn(const struct flow *f);
const struct outbound_route *flow_route(const struct flow *f);
const struct meshd_addr *flow_app_addr(const struct flow *f);
/* The app's socket for the attempt (the flow no longer holds it), or -1
 * when the connection's table holds it. */
int flow_take_app_fd(struct flow *f);

#endif
