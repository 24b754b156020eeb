/* Private to agent/mesh: the mesh's state, shared by the router
 * (mesh.c: routes, clusters, the HBONE pools and server), the routing of
 * each HTTP request (http_router.c) and the identities (identity.c:
 * certificates, peer verification, the node authorizer).
 * identity.c reads these fields and calls nothing in mesh.c; mesh.c calls
 * the functions below. The public API is mesh/mesh.h. */
#ifndef MESHD_MESH_INTERNAL_H
#define MESHD_MESH_INTERNAL_H

#include <stdint.h>
#include <time.h>

#include "config/store.h"
#include "hbone/pool.h"
#include "mesh/mesh.h"
#include "pki/pki.h"
#include "proxy/outbound_route.h"
#include "route/clusters.h"
#include "route/resolve.h"

struct mesh {
    struct loop *loop; /* borrowed */
    struct pods *pods; /* borrowed */
    void *outbound;    /* borrowed */
    struct pki_ca *ca;
    char trust_domain[128];
    char node[PKI_NODE_MAX + 1]; /* this agent's node: the only one it signs for */
    long cert_ttl_s;
    struct hbone_pool *pool;
    struct hbone_pool *http_pool; /* the HTTP carrier's upstream tunnels */
    struct http_proxy *http;      /* borrowed: the HTTP carrier its pool reports to */
    struct hbone_inbound *server;
    struct cfg_store *config; /* borrowed; NULL: route to enrolled pods only */
    struct clusters *clusters;
    struct lb_state rng;          /* weighted route choice */
    struct route_cluster scratch; /* route_resolve's output, reused */
    struct lb_endpoint eps[ROUTE_MAX_ENDPOINTS];
    uint64_t renewals;
    uint64_t no_route, no_endpoint, overflows, ejections;
    int (*authorize)(void *ctx, const struct pod *pod, const char *peer_id,
                     const struct meshd_addr *src, const struct meshd_addr *dst);
    void *authorize_ctx;
    int (*authorize_http)(void *ctx, const struct pod *pod, const char *peer_id,
                          const struct meshd_addr *src, const struct meshd_addr *dst);
    /* The same-node fast path, and the destination's L7 that keeps HBONE. */
    bool local_fast_path;
    bool (*wants_http)(void *http_ctx, const struct pod *pod, const struct meshd_addr *dst,
                       bool said_http);
    void *http_ctx;
    struct http_route_memo *route_memo; /* http_route_memo.c; NULL until first used */
};

/* A pod's workload identity: its certificate and the two TLS contexts
 * made from it. Replaced whole at renewal; SSL objects of open connections
 * hold their own references to the old ones. */
struct pod_identity {
    struct pki_cert *cert;
    SSL_CTX *server, *client;
};

/* Loads opts->ca_dir and checks it is this node's CA (or warns that it is
 * the mesh CA); sets the trust domain, node and certificate lifetime.
 * 0 or -errno, logged. */
int mesh_identity_init(struct mesh *m, const struct mesh_opts *opts);
void mesh_identity_deinit(struct mesh *m);
/* Renews every enrolled pod's certificate past half its life. */
void mesh_identity_renew(struct mesh *m, time_t now);

/* The HBONE server's and the pool's view of identities: ctx is the mesh. */
SSL_CTX *mesh_server_ctx(void *ctx, const struct pod *pod);
int mesh_verify_client(void *ctx, SSL *ssl, char *id, size_t idlen, char *why, size_t whylen);
int mesh_verify_server(void *ctx, SSL *ssl, const char *expected, char *why, size_t len);

/* mesh.c, for http_router.c */
void mesh_refuse(struct outbound_route *out, enum resp_flag flag);
void mesh_route_service(struct mesh *m, const struct cfg_snapshot *snap, const struct pod *src,
                        const struct meshd_addr *orig_dst, struct route_cluster *c,
                        struct outbound_route *out);
void mesh_route_to_workload(struct mesh *m, const struct cfg_snapshot *snap, const struct pod *src,
                            const struct cfg_workload *w, const struct meshd_addr *target,
                            struct outbound_route *out);
struct route_source mesh_source_of(const struct cfg_snapshot *snap, const struct pod *src);

/* http_router.c, for gateway_router.c: Envoy's cluster name, a
 * redirect's Location, a local reply. */
struct cfg_http_redirect;
struct http_decision;
struct http_request_view;
void mesh_cluster_name(const struct route_cluster *c, char *buf, size_t len);
void mesh_redirect_location(const struct cfg_http_redirect *rd, const struct http_request_view *req,
                            char *buf, size_t len);
void mesh_respond(struct http_decision *d, int status, const char *body, size_t len,
                  enum resp_flag flag);

/* http_route_memo.c, for http_router.c: the filled cluster of a request
 * routed to the service itself (no http[] route applied), kept for the
 * next request of the same client pod to the same address under the same
 * snapshot. get: the kept cluster and its Envoy name, or NULL. */
struct http_route_memo;
struct route_cluster *http_route_memo_get(struct mesh *m, const struct cfg_snapshot *snap,
                                          const struct pod *src, const struct meshd_addr *dst,
                                          const char **cluster_name);
void http_route_memo_put(struct mesh *m, const struct cfg_snapshot *snap, const struct pod *src,
                         const struct meshd_addr *dst, const struct route_cluster *c,
                         const char *cluster_name);
void http_route_memo_counts(const struct mesh *m, uint64_t *hits, uint64_t *misses);
void http_route_memo_free(struct http_route_memo *memo); /* accepts NULL */

#endif
