/* Workload identity: the mesh CA in Istio's plug-in CA layout, one
 * intermediate CA per node, short-lived SPIFFE leaf certificates for the
 * service accounts of pods on this node, and the verification HBONE uses
 * on both ends.
 *
 *   CA dir: ca-cert.pem, ca-key.pem (0600), root-cert.pem, cert-chain.pem;
 *           either the mesh root itself (legacy: this node can sign any
 *           identity) or a node CA: CA:TRUE pathlen:0, URI SAN
 *           spiffe://<td>/meshd/node/<node>, signed by the mesh CA
 *   leaf:   ECDSA P-256, 24h (backdated 5 min for clock skew), one URI SAN
 *           spiffe://<trust-domain>/ns/<ns>/sa/<sa>, digitalSignature,
 *           serverAuth + clientAuth, random 128-bit serial
 *   TLS:    1.3 only, AES-GCM suites, ALPN h2, each side sends its leaf
 *           and the CAs below the root; the peer must present a chain to
 *           the mesh root, whose leaf is no CA; identities are then
 *           checked exactly, and a node CA's leaf only for that node's
 *           pods (pki_authorize_node);
 *           no session tickets or cache: every handshake verifies anew. */
#ifndef MESHD_PKI_PKI_H
#define MESHD_PKI_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#define PKI_ID_MAX      256
#define PKI_DEFAULT_TTL (24 * 3600)
#define PKI_NODE_MAX    253               /* a Kubernetes node name (DNS-1123 subdomain) */
#define PKI_NODE_TTL    (30L * 24 * 3600) /* node CAs: a month, then reissued */

struct pki_ca;

/* A workload certificate. Refcounted: a connection keeps the one it
 * started with while a renewal swaps in a new one. */
struct pki_cert {
    X509 *leaf;
    EVP_PKEY *key;
    char spiffe_id[PKI_ID_MAX];
    time_t not_before, not_after; /* validity (not_before backdated for skew) */
    time_t issued_at;             /* renewal counts from here */
    int refs;
};

/* Creates a self-signed P-256 root in dir; refuses to overwrite an
 * existing CA unless `force`. Errors are -errno with a message. */
int pki_ca_init_dir(const char *dir, const char *trust_domain, bool force, char *err,
                    size_t errlen);
/* Loads and checks a CA dir (key matches, a CA cert, within validity). */
int pki_ca_load(const char *dir, struct pki_ca **out, char *err, size_t errlen);
void pki_ca_free(struct pki_ca *ca);
/* The trust anchor (root-cert.pem). Borrowed. */
X509 *pki_ca_root(const struct pki_ca *ca);
/* The node this CA is the intermediate of (and its trust domain), or NULL
 * when the dir holds the mesh CA key itself. */
const char *pki_ca_node(const struct pki_ca *ca, const char **trust_domain);
/* The CAs sent after each leaf: cert-chain.pem without the root. Borrowed. */
STACK_OF(X509) * pki_ca_path(const struct pki_ca *ca);

/* Issues node `node`'s intermediate from the mesh CA in mesh_dir into
 * out_dir (same layout; ttl_s from now); refuses to overwrite an existing
 * CA unless `force`, and to chain a node CA under another node CA. */
int pki_ca_init_node(const char *mesh_dir, const char *node, const char *trust_domain, long ttl_s,
                     const char *out_dir, bool force, char *err, size_t errlen);
/* spiffe://<td>/meshd/node/<node>, strictly. */
int pki_node_id_parse(const char *id, char *td, size_t tdlen, char *node, size_t nodelen);
bool pki_node_name_valid(const char *node);

/* Issues a leaf for ns/sa. not_before_s/ttl_s relative to now (tests use
 * them for expired and not-yet-valid certificates). */
int pki_issue(const struct pki_ca *ca, const char *trust_domain, const char *ns, const char *sa,
              long not_before_s, long ttl_s, struct pki_cert **out);
struct pki_cert *pki_cert_ref(struct pki_cert *c);
void pki_cert_unref(struct pki_cert *c);
/* Past half of its lifetime, counted from issuance (not the backdated
 * notBefore, which would make short-lived certificates renew constantly). */
bool pki_cert_needs_renewal(const struct pki_cert *c, time_t now);

/* Strict: exactly spiffe://<td>/ns/<ns>/sa/<sa> with Kubernetes names. */
int pki_spiffe_parse(const char *id, char *td, size_t tdlen, char *ns, size_t nslen, char *sa,
                     size_t salen);
/* The certificate's single URI SAN; -EINVAL for none or several. */
int pki_cert_spiffe_id(X509 *cert, char *out, size_t len);

/* The server-side ALPN choice: h2 or fail (SSL_CTX_set_alpn_select_cb). */
int pki_alpn_select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg);

/* A TLS 1.3 context presenting `cert` and trusting only the mesh root. */
SSL_CTX *pki_tls_ctx(const struct pki_ca *ca, const struct pki_cert *cert, bool server);
/* After the handshake: the peer's chain verified to the root, its SPIFFE
 * id in `trust_domain`, and equal to `expected` when not NULL. Writes the
 * id. 0 or -EPERM with a reason. */
int pki_verify_peer(SSL *ssl, const char *trust_domain, const char *expected, char *id,
                    size_t idlen, char *why, size_t whylen);

/* Node authorization (Istio's node authorizer, enforced by the peer): a
 * leaf signed by a node CA is accepted only for identities that node
 * runs, as `on_node` tells (a Pod with spec.nodeName == node, that
 * namespace and service account). A leaf the mesh CA signed directly (the
 * legacy layout) passes. Call after pki_verify_peer() accepted `id`.
 * Writes the node ("" for legacy) and returns 0, or -EPERM with a reason. */
typedef bool (*pki_node_runs_fn)(void *ctx, const char *node, const char *ns, const char *sa);
int pki_authorize_node(SSL *ssl, const char *trust_domain, const char *id, pki_node_runs_fn on_node,
                       void *ctx, char *node, size_t nodelen, char *why, size_t whylen);

#endif
