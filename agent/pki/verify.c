/* TLS contexts, peer verification and node authorization (see pki.h);
 * the identities they check are parsed by spiffe.c. */
#include "pki/pki.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

int pki_alpn_select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char h2[] = {2, 'h', '2'};
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, h2, sizeof(h2), in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

SSL_CTX *pki_tls_ctx(const struct pki_ca *ca, const struct pki_cert *cert, bool server)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx)
        return NULL;
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384") ||
        SSL_CTX_use_certificate(ctx, cert->leaf) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, cert->key) != 1 || !X509_STORE_add_cert(store, pki_ca_root(ca)))
        goto fail;
    /* The node CA (and any CA between it and the root) after the leaf:
     * peers hold only the root. */
    STACK_OF(X509) *path = pki_ca_path(ca);
    for (int i = 0; i < sk_X509_num(path); i++)
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(path, i)) != 1)
            goto fail;
    /* No session resumption, on either side: a resumed session carries the
     * first handshake's verdict on the peer forward, so the chain, the
     * identity and an expiry since would go unchecked. The server issues
     * no TLS 1.3 ticket (not even a stateful one) and keeps no cache; the
     * client stores no session to offer. HBONE sessions are long-lived
     * and pooled, so a full handshake each time costs little. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (!SSL_CTX_set_num_tickets(ctx, 0))
        goto fail;
    /* Only the mesh root is trusted: no system CAs are loaded. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
    SSL_CTX_set_verify_depth(ctx, 4);
    if (server)
        SSL_CTX_set_alpn_select_cb(ctx, pki_alpn_select_h2, NULL);
    else if (SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x02h2", 3) != 0)
        goto fail;
    return ctx;
fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

int pki_verify_peer(SSL *ssl, const char *trust_domain, const char *expected, char *id,
                    size_t idlen, char *why, size_t whylen)
{
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (!peer) {
        snprintf(why, whylen, "no peer certificate");
        return -EPERM;
    }
    long vr = SSL_get_verify_result(ssl);
    if (vr != X509_V_OK) {
        snprintf(why, whylen, "certificate: %s", X509_verify_cert_error_string(vr));
        return -EPERM;
    }
    if (X509_check_ca(peer) != 0) {
        /* A node CA presented as if it were a workload. */
        snprintf(why, whylen, "peer certificate is a CA");
        return -EPERM;
    }
    char td[256], ns[64], sa[254];
    if (pki_cert_spiffe_id(peer, id, idlen) != 0 ||
        pki_spiffe_parse(id, td, sizeof(td), ns, sizeof(ns), sa, sizeof(sa)) != 0) {
        snprintf(why, whylen, "no single valid SPIFFE URI SAN");
        return -EPERM;
    }
    if (strcmp(td, trust_domain) != 0) {
        snprintf(why, whylen, "trust domain \"%s\" is not \"%s\"", td, trust_domain);
        return -EPERM;
    }
    if (expected && strcmp(id, expected) != 0) {
        snprintf(why, whylen, "peer is %s, expected %s", id, expected);
        return -EPERM;
    }
    return 0;
}

int pki_authorize_node(SSL *ssl, const char *trust_domain, const char *id, pki_node_runs_fn on_node,
                       void *ctx, char *node, size_t nodelen, char *why, size_t whylen)
{
    node[0] = '\0';
    /* The chain OpenSSL built and verified, leaf first, root last: not
     * what the peer sent, which may hold anything. A resumed session has
     * none, so it is refused rather than trusted on old evidence. */
    STACK_OF(X509) *chain = SSL_get0_verified_chain(ssl);
    if (!chain || sk_X509_num(chain) < 2) {
        snprintf(why, whylen, "no verified certificate chain");
        return -EPERM;
    }
    X509 *issuer = sk_X509_value(chain, 1);
    char iid[PKI_ID_MAX], td[256], n[PKI_NODE_MAX + 1];
    if (pki_cert_spiffe_id(issuer, iid, sizeof(iid)) != 0 ||
        pki_node_id_parse(iid, td, sizeof(td), n, sizeof(n)) != 0)
        return 0; /* the mesh CA signed it: the legacy, weaker layout */
    if (strcmp(td, trust_domain) != 0) {
        snprintf(why, whylen, "signed by node %s of trust domain \"%s\"", n, td);
        return -EPERM;
    }
    char ptd[256], ns[64], sa[254];
    if (pki_spiffe_parse(id, ptd, sizeof(ptd), ns, sizeof(ns), sa, sizeof(sa)) != 0) {
        snprintf(why, whylen, "no valid SPIFFE id");
        return -EPERM;
    }
    snprintf(node, nodelen, "%s", n);
    if (!on_node || !on_node(ctx, n, ns, sa)) {
        /* Most telling first: reasons land in 160-byte buffers. */
        snprintf(why, whylen,
                 "node authorizer: no pod on node %s runs as %s/%s, yet that node's CA signed it",
                 n, ns, sa);
        return -EPERM;
    }
    return 0;
}
