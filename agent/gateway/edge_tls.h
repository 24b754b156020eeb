/* TLS at the edge: the certificates a gateway pod presents, one OpenSSL
 * context per terminating server (SIMPLE, MUTUAL, OPTIONAL_MUTUAL), built
 * from the server's credentialName Secret in the gateway pod's namespace
 * (kubernetes.io/tls or generic: tls.crt, tls.key, ca.crt; for MUTUAL the
 * CA from the Secret's ca.crt, else from the Secret "<name>-cacert").
 * ISTIO_MUTUAL servers present the gateway pod's own workload (SPIFFE)
 * certificate and trust only the mesh CA (the context the mesh makes,
 * edge_tls_mesh); the client's certificate is then verified exactly as
 * the HBONE server verifies a peer (its `verify`), and its SPIFFE id kept
 * for the connection (edge_tls_peer_id).
 *
 * The SNI of each ClientHello chooses the server (the first of the
 * listener's port whose hosts match it; none: the handshake fails with
 * unrecognized_name, as Envoy finds no filter chain), and its context is
 * swapped in with everything that belongs to it: certificate, client
 * verification and CA names, protocol versions, cipher suites. A set is
 * immutable and refcounted: a configuration change builds a new one for
 * new handshakes, while an open connection keeps the context it chose.
 * ALPN: h2 then http/1.1, in that order of preference (Envoy's). */
#ifndef MESHD_GATEWAY_EDGE_TLS_H
#define MESHD_GATEWAY_EDGE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct cfg_snapshot;
struct gw_server;
struct pod;

#define EDGE_TLS_MAX_SERVERS 32
#define EDGE_TLS_MAX_HOSTS   16 /* per server */

struct edge_tls_server {
    uint16_t port;  /* the pod's listening port */
    char name[128]; /* ns/gateway:port-name, for logs */
    char hosts[EDGE_TLS_MAX_HOSTS][256];
    size_t nhosts;
    SSL_CTX *ctx;
    int verify_mode; /* SSL_VERIFY_* of a MUTUAL server */
    int min_version, max_version;
    char ciphers[512]; /* "" : OpenSSL's defaults */
    char sans[8][256]; /* subjectAltNames a client certificate must have one of */
    size_t nsans;
    bool istio_mutual; /* the workload certificate; clients verified by the mesh */
};

/* What ISTIO_MUTUAL servers need of the mesh (mesh/gateway_router.c). */
struct edge_tls_mesh {
    /* A new server context presenting `pod`'s current workload certificate
     * and trusting only the mesh CA (the caller frees it); NULL: none. */
    SSL_CTX *(*server_ctx)(void *ctx, const struct pod *pod);
    /* After the handshake, the HBONE server's verification of a client:
     * chain, SPIFFE id in the trust domain, node authorizer. Writes the
     * id; 0 or -EPERM with a reason. */
    int (*verify)(void *ctx, SSL *ssl, char *id, size_t idlen, char *why, size_t whylen);
    void *ctx;
    const struct pod *pod; /* borrowed: the gateway pod */
};

struct edge_tls;

/* The set for the terminating servers among `servers` (route/gateway_route.h)
 * of a pod in namespace `ns`; a server whose Secret is missing or unusable
 * is left out, with a log line naming it. -ENOMEM, or 0 (an empty set is a
 * set). */
int edge_tls_build(const struct cfg_snapshot *snap, const char *ns, const struct gw_server *servers,
                   size_t n, struct edge_tls **out);
/* The same, ISTIO_MUTUAL servers too (`mesh` NULL: left out, logged). */
int edge_tls_build_mesh(const struct cfg_snapshot *snap, const char *ns,
                        const struct gw_server *servers, size_t n, const struct edge_tls_mesh *mesh,
                        struct edge_tls **out);
/* True when the set has ISTIO_MUTUAL servers built with another workload
 * certificate than `current` (the pod's now): it is to be rebuilt, so
 * that new handshakes present the renewed one. */
bool edge_tls_mesh_stale(const struct edge_tls *t, const X509 *current);
struct edge_tls *edge_tls_ref(struct edge_tls *t);
void edge_tls_unref(struct edge_tls *t); /* accepts NULL */

/* The context a new connection on `port` starts with (its SNI may
 * choose another): NULL when no terminating server listens there. */
SSL_CTX *edge_tls_first_ctx(const struct edge_tls *t, uint16_t port);
/* SNI selection: the first server on `port` whose hosts match `sni`
 * (NULL or "": only a server with a "*" host). */
const struct edge_tls_server *edge_tls_select(const struct edge_tls *t, uint16_t port,
                                              const char *sni);
size_t edge_tls_count(const struct edge_tls *t);

/* Ties `ssl` to the set (which it then holds a reference on until freed)
 * and its listener port, for the SNI callback. 0 or -ENOMEM. */
int edge_tls_attach(struct edge_tls *t, SSL *ssl, uint16_t port);
/* After the handshake: the server it chose, or NULL. */
const struct edge_tls_server *edge_tls_chosen(SSL *ssl);
/* After the handshake: an ISTIO_MUTUAL server's verification of the
 * client by the mesh, a MUTUAL server's subjectAltNames check. 0 or
 * -EPERM with a reason. */
int edge_tls_check_peer(SSL *ssl, char *why, size_t len);
/* After edge_tls_check_peer: the client's verified SPIFFE id (an
 * ISTIO_MUTUAL server's), "" for none. Borrowed from `ssl`. */
const char *edge_tls_peer_id(SSL *ssl);
/* ALPN as Envoy's gateway listener offers it: of the client's list `in`
 * (wire format), h2, else http/1.1, in the server's order of preference;
 * `out` points into `in`. -ENOENT: neither (no ALPN: the client speaks
 * HTTP/1.1, or the HTTP/2 preface the carrier also recognizes). */
int edge_tls_alpn_select(const unsigned char *in, unsigned inlen, const unsigned char **out,
                         unsigned char *outlen);

#endif
