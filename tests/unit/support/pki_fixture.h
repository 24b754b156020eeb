/* Test support for the pki tests: see pki_fixture.c. */
#ifndef MESHD_TEST_PKI_FIXTURE_H
#define MESHD_TEST_PKI_FIXTURE_H

#include <stdbool.h>

#include <openssl/ssl.h>

#include "pki/pki.h"

struct pki_fixture {
    char dir_a[64], dir_b[64]; /* the two mesh CAs' directories */
    struct pki_ca *ca_a, *ca_b;
    struct pki_ca *node_a, *node_b; /* node CAs "node-a", "node-b" under ca_a */
};
extern struct pki_fixture pkif;

/* cmocka group setup and teardown: pkif made, then freed and removed. */
int pkif_setup(void **state);
int pkif_teardown(void **state);
/* A node CA for `node` in trust domain td under ca_a (asserts). */
struct pki_ca *pkif_node_ca(const char *node, const char *td);

/* A client and a server SSL on the two ends of a TCP pair, not started. */
void pkif_tls_pair(SSL_CTX *cctx, SSL_CTX *sctx, SSL **cs, SSL **ss);
/* Drives both ends until both handshakes finish or one fails. 0 when both
 * completed and the server accepted the client's chain. */
int pkif_drive_handshake(SSL **cs, SSL **ss);
int pkif_handshake(SSL_CTX *cctx, SSL_CTX *sctx, SSL **cs, SSL **ss);
void pkif_close_pair(SSL *a, SSL *b);

/* A leaf for default/<sa> in td from `issuer`, in a TLS context trusting
 * `trust`'s root; nb/ttl in seconds from now (asserts). */
struct pkif_peer {
    struct pki_cert *cert;
    SSL_CTX *ctx;
};
struct pkif_peer pkif_peer(struct pki_ca *issuer, struct pki_ca *trust, const char *td,
                           const char *sa, long nb, long ttl, bool server);
void pkif_peer_free(struct pkif_peer *p);

#endif
