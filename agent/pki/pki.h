/* Workload identity: the mesh CA in Istio's plug-in CA layout, short-lived
 * SPIFFE leaf certificates for the service accounts of pods on this node,
 * and the verification HBONE uses on both ends.
 *
 *   CA dir: ca-cert.pem, ca-key.pem (0600), root-cert.pem, cert-chain.pem
 *   leaf:   ECDSA P-256, 24h (backdated 5 min for clock skew), one URI SAN
 *           spiffe://<trust-domain>/ns/<ns>/sa/<sa>, digitalSignature,
 *           serverAuth + clientAuth, random 128-bit serial
 *   TLS:    1.3 only, AES-GCM suites, ALPN h2, the peer must present a
 *           chain to the mesh root; identities are then checked exactly;
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
X509 *pki_ca_root(const struct pki_ca *ca);

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

#endif
