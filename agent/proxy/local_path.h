/* The same-node fast path: a carrier of outbound flows (see flow.h) for a
 * connection whose destination is a pod enrolled on this node.
 *
 * No TLS to itself: both identities are meshd's own (it enrolled both pods
 * and issued both certificates), so the destination's decisions are made
 * here, by the same callback the HBONE server asks for each CONNECT (the
 * admission gate with the source's SPIFFE id: PeerAuthentication STRICT is
 * satisfied as on 15008, AuthorizationPolicy evaluated with the source
 * principal). Allowed, the app is reached exactly as the HBONE server
 * reaches it (from inside its pod netns, from the client pod's address,
 * transparent) and the two plaintext sockets are relayed with splice(2)
 * (proxy/relay.h: no copy through meshd's memory). Refused, the app
 * socket is reset and nothing reaches the destination app.
 *
 * Each connection leaves two records, as on the HBONE path: the source's
 * ("outbound", the flow's) and the destination's ("inbound", a twin that
 * opens and ends with it), both marked `local` so that telemetry reports
 * connection_security_policy="none" (no TLS happened) with both principals.
 * The mesh routes HTTP/L7 destinations over HBONE instead (mesh/mesh.c). */
#ifndef MESHD_PROXY_LOCAL_PATH_H
#define MESHD_PROXY_LOCAL_PATH_H

#include <stdint.h>

#include "proxy/flow.h"

struct conns;
struct meshd_addr;
struct pod;

/* The destination's admission of a connection from `peer_id` (0 allows,
 * -errno refuses): the HBONE server's authorize callback. */
typedef int (*local_path_authorize_fn)(void *ctx, const struct pod *dst, const char *peer_id,
                                       const struct meshd_addr *src,
                                       const struct meshd_addr *dst_addr);

struct local_path_stats {
    uint64_t connections; /* carried on the fast path (allowed) */
    uint64_t denied;      /* refused by the destination's policy */
    uint64_t self_calls;  /* aimed at one of meshd's in-pod ports */
};

struct local_path {
    struct conns *conns; /* borrowed: where the destination's record lives */
    local_path_authorize_fn authorize;
    void *authorize_ctx;
    struct local_path_stats stats;
    bool splice; /* relay with splice(2) rather than by copying (the default) */
};

/* `lp` (owned by the caller, outliving the carrier) decides with
 * `authorize`; `conns` borrowed. */
void local_path_init(struct local_path *lp, struct conns *conns, local_path_authorize_fn authorize,
                     void *authorize_ctx);
void carrier_local_init(struct carrier *cr, struct local_path *lp);

#endif
