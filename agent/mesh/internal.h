/* The mesh's state, shared by its files (mesh.c: identities, the HBONE
 * server and pools, L4 routing; http_router.c: routing per request). Not
 * for other modules. */
#ifndef MESHD_MESH_INTERNAL_H
#define MESHD_MESH_INTERNAL_H

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
};

/* mesh.c, for http_router.c */
void mesh_refuse(struct outbound_route *out, enum resp_flag flag);
void mesh_route_service(struct mesh *m, const struct cfg_snapshot *snap, const struct pod *src,
                        const struct meshd_addr *orig_dst, struct route_cluster *c,
                        struct outbound_route *out);
void mesh_route_to_workload(struct mesh *m, const struct cfg_snapshot *snap, const struct pod *src,
                            const struct cfg_workload *w, const struct meshd_addr *target,
                            struct outbound_route *out);
struct route_source mesh_source_of(const struct cfg_snapshot *snap, const struct pod *src);

#endif
