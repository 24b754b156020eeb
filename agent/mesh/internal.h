/* Private to agent/mesh: the mesh's state, shared by the router
 * (mesh.c: routes, clusters, the HBONE pool and server) and the identities
 * (identity.c: certificates, peer verification, the node authorizer).
 * identity.c reads these fields and calls nothing in mesh.c; mesh.c calls
 * the functions below. The public API is mesh/mesh.h. */
#ifndef MESHD_MESH_INTERNAL_H
#define MESHD_MESH_INTERNAL_H

#include <stdint.h>
#include <time.h>

#include "mesh/mesh.h"
#include "pki/pki.h"
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

#endif
