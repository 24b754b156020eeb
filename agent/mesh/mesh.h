/* The mesh glue: workload identities for enrolled pods and HBONE between
 * them. Each pod gets a SPIFFE certificate for its service account from
 * this node's CA (or the mesh CA, legacy; renewed at half-life), a 15008
 * HBONE server, and outbound connections to a pod this agent knows (an
 * enrolled pod, today; the configuration model widens this to every mesh
 * workload) go over an HBONE tunnel from the pool, with both identities
 * verified exactly and authorized by node. Everything else passes through
 * as before. */
#ifndef MESHD_MESH_MESH_H
#define MESHD_MESH_MESH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "core/upstream.h"

struct conn;
struct conn_record;
struct hbone_stream;
struct conns;
struct loop;
struct pods;
struct pod;
struct mesh;
struct outbound_route;
struct meshd_addr;

struct mesh_opts {
    const char *ca_dir; /* the mesh CA (legacy) or this node's CA */
    const char *trust_domain;
    const char *node;            /* this agent's node: its CA must be this node's */
    struct upstream_owner owner; /* of the pool's and the HBONE server's sockets */
    long cert_ttl_s;             /* workload certificate lifetime; 0: 24h */
    /* Destination policy for HBONE streams (0 allows, -EACCES: 401). */
    int (*authorize)(void *ctx, const struct pod *pod, const char *peer_id,
                     const struct meshd_addr *src, const struct meshd_addr *dst);
    void *authorize_ctx;
    /* HTTP at the destination (http/inbound.h), for the HBONE
     * server: NULL serves every stream as bytes. */
    bool (*wants_http)(void *http_ctx, const struct pod *pod, const struct meshd_addr *dst,
                       bool said_http);
    int (*authorize_http)(void *ctx, const struct pod *pod, const char *peer_id,
                          const struct meshd_addr *src, const struct meshd_addr *dst);
    int (*serve_http)(void *http_ctx, const struct pod *pod, const struct conn_record *rec,
                      struct hbone_stream *st, int app_fd);
    void *http_ctx;
    /* Connections between two pods enrolled here skip TLS (route action
     * LOCAL, proxy/local_path.h); false (--no-local-fast-path): HBONE. */
    bool local_fast_path;
};

/* Loads the CA. `loop` and `conns` are borrowed. */
int mesh_new(struct loop *loop, struct conns *conns, const struct mesh_opts *opts,
             struct mesh **out);
/* Closes every HBONE session. Accepts NULL. */
void mesh_free(struct mesh *m);
/* The pod registry, once it exists (it takes mesh's hooks). Borrowed. */
void mesh_set_pods(struct mesh *m, struct pods *pods);
/* The live configuration routes connections (Services, VirtualServices,
 * DestinationRules, workloads of other nodes). Borrowed. */
struct cfg_store;
void mesh_set_config(struct mesh *m, struct cfg_store *config);

/* pod hooks, in this order: identity, then the HBONE server. */
int mesh_identity_attach(void *m, struct pod *pod);
void mesh_identity_detach(void *m, struct pod *pod);
/* A pod's binding changed (pods_rebind): drop its certificate and issue
 * one for its service account now, or none while it is not bound. */
void mesh_identity_rebind(void *ctx, struct pod *pod);
int mesh_hbone_attach(void *m, struct pod *pod);
void mesh_hbone_detach(void *m, struct pod *pod);
void mesh_hbone_quiesce(void *m, struct pod *pod); /* drain: no new tunnels */

/* The outbound proxy's route hook and stream-done callback target. */
void mesh_route(void *m, const struct pod *src, const struct meshd_addr *orig_dst,
                struct outbound_route *out);
void mesh_set_outbound(struct mesh *m, void *outbound);
struct hbone_pool *mesh_pool(const struct mesh *m);

/* The HTTP carrier's side (mesh/http_router.c): its HBONE pool, the
 * protocol a destination speaks, and the route of each request. */
struct hbone_pool *mesh_http_pool(const struct mesh *m);
struct http_proxy;
/* The carrier its pool reports stream ends to (NULL: none any more). */
void mesh_set_http(struct mesh *m, struct http_proxy *hp);
struct http_decision;
struct http_request_view;
/* enum http_proto (route/http_route.h) of a captured connection to
 * `orig_dst`; PROTO_TCP without a configuration. */
int mesh_protocol(void *m, const struct pod *src, const struct meshd_addr *orig_dst);
void mesh_http_route(void *m, const struct pod *src, const struct meshd_addr *orig_dst,
                     const struct http_request_view *req, struct http_decision *d);
/* Where a request's mirrored copy to `dest` goes (REFUSE: nowhere). */
struct cfg_destination;
void mesh_http_mirror(void *m, const struct pod *src, const struct meshd_addr *orig_dst,
                      const struct cfg_destination *dest, struct outbound_route *out);

/* The ingress gateway's side (mesh/gateway_router.c): a request gateway
 * pod `gw` received on server `gs` (route/gateway_route.h) of snapshot
 * `snap`, at its address `local`, routed by the VirtualServices bound to
 * the server's Gateway (no route: 404 NR) and sent with the gateway's own
 * identity; a PASSTHROUGH connection's tls[] route by its SNI. */
struct cfg_snapshot;
struct gw_server;
void mesh_gateway_http_route(void *m, const struct pod *gw, const struct cfg_snapshot *snap,
                             const struct gw_server *gs, const struct meshd_addr *local,
                             const struct http_request_view *req, struct http_decision *d);
void mesh_gateway_tls_route(void *m, const struct pod *gw, const struct cfg_snapshot *snap,
                            const struct gw_server *gs, const struct meshd_addr *local,
                            const char *sni, struct outbound_route *out);
/* A TCP server's connection (or a terminating TLS server's bytes): its
 * tcp[] route (route/gateway_route.h gw_route_tcp). */
void mesh_gateway_tcp_route(void *m, const struct pod *gw, const struct cfg_snapshot *snap,
                            const struct gw_server *gs, const struct meshd_addr *local,
                            struct outbound_route *out);
/* An AUTO_PASSTHROUGH connection whose SNI named `sni` (route/auto_sni.h):
 * that service port's endpoints (the DestinationRule's subset), as
 * Istio's generated filter chains; a service not visible, MESH_EXTERNAL,
 * no such port (or UDP), an unknown subset: refused (NR). */
struct gw_auto_sni;
void mesh_gateway_auto_route(void *m, const struct pod *gw, const struct cfg_snapshot *snap,
                             const struct gw_server *gs, const struct meshd_addr *local,
                             const struct gw_auto_sni *sni, struct outbound_route *out);
/* ISTIO_MUTUAL gateway servers: a new server context with `gw`'s current
 * workload certificate, trusting only the mesh CA (NULL: no certificate);
 * that certificate's leaf now (borrowed); the HBONE server's verification
 * of a client (chain, trust domain, node authorizer), its id written. */
SSL_CTX *mesh_gateway_server_ctx(void *m, const struct pod *gw);
X509 *mesh_gateway_workload_leaf(void *m, const struct pod *gw);
int mesh_gateway_verify_client(void *m, SSL *ssl, char *id, size_t idlen, char *why, size_t whylen);

struct mesh_stats {
    uint64_t renewals, sessions_opened, sessions_reused, sessions;
    uint64_t no_route, no_endpoint; /* refused: NR, UH */
    uint64_t overflows, ejections;  /* refused: UO; endpoints ejected */
    uint64_t clusters;
    /* The HBONE server: CONNECTs to meshd's own ports and loopback
     * clients refused; handshakes pending now; refused past a cap. */
    uint64_t server_self_calls, handshakes_pending, handshakes_refused;
};
void mesh_get_stats(const struct mesh *m, struct mesh_stats *st);

/* A connection's record is final: release what routing counted for it
 * (cluster and endpoint load) and feed outlier detection. */
struct conn_record;
void mesh_conn_closed(struct mesh *m, const struct conn_record *rec);

/* The pod's workload certificate: its SPIFFE id and expiry (unix time).
 * false when the pod has none. */
bool mesh_pod_certificate(const struct pod *pod, const char **spiffe_id, long *not_after);

/* The outbound proxy's route_released hook. */
void mesh_route_released(void *m, const struct outbound_route *r, bool failed);

/* Re-authorizes the HBONE streams being served (after a configuration
 * change); returns how many were closed. */
size_t mesh_revalidate(struct mesh *m);

/* Housekeeping: session expiry, certificate renewal. */
void mesh_tick(struct mesh *m, uint64_t now_ns);

#endif
