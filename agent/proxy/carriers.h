/* The carriers of outbound flows (see flow.h): plain TCP, the upstream
 * connect and relay of proxy/conns.c; and an HBONE stream, the client side
 * through hbone/pool.c. Each is an instance of struct carrier; the outbound
 * proxy owns one of each and picks by the route's action. */
#ifndef MESHD_PROXY_CARRIERS_H
#define MESHD_PROXY_CARRIERS_H

#include "proxy/flow.h"

struct hbone_pool;
struct hbone_stream_stats;

/* Plain TCP from the source pod's netns to the route's target (unset: the
 * app's original destination), tuned by the route. Once connected the
 * relay carries the connection and its record's end (UC, DC). */
void carrier_tcp_init(struct carrier *cr);

/* A CONNECT stream through `pool` (borrowed), opened with give_back: a
 * failure before the peer's 200 hands the app socket back to the flow. */
void carrier_hbone_init(struct carrier *cr, struct hbone_pool *pool);
/* The pool's stream end for a flow this carrier started (stream_ctx). */
void carrier_hbone_stream_done(void *stream_ctx, int err, const struct hbone_stream_stats *stats);

#endif
