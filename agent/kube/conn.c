/* The API server's address, TLS context and token (see conn.h). */
#include "kube/conn.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "core/log.h"

/* The bearer token, read again each request (the kubelet rotates it). */
int kube_auth_header(const struct kube_target *t, char *out, size_t len)
{
    out[0] = '\0';
    char *tok = NULL;
    int err = 0;
    if (t->token_file[0]) {
        tok = kube_read_file(t->token_file, NULL, &err);
        if (!tok)
            return err;
        tok[strcspn(tok, "\r\n")] = '\0';
    }
    const char *bearer = tok ? tok : t->token;
    if (bearer && *bearer) {
        /* A token is a header value: refuse one that could split the head. */
        for (const char *p = bearer; *p; p++)
            if ((unsigned char)*p < 0x21 || *p == 0x7f)
                err = -EINVAL;
        if (!err && (size_t)snprintf(out, len, "Authorization: Bearer %s\r\n", bearer) >= len)
            err = -E2BIG;
    }
    if (tok) {
        memset(tok, 0, strlen(tok));
        free(tok);
    }
    if (err)
        out[0] = '\0';
    return err;
}

int kube_resolve(const struct kube_target *t, struct sockaddr_storage *addr, socklen_t *len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%u", t->port);
    /* At start-up only: a name is resolved once, before the loop runs. */
    int rc = getaddrinfo(t->host, port, &hints, &res);
    if (rc != 0 || !res)
        return -EHOSTUNREACH;
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int pem_into(SSL_CTX *ctx, const char *pem, bool ca)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    int ok = 0;
    if (!b)
        return -ENOMEM;
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        ok = ca ? X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), x)
                : SSL_CTX_use_certificate(ctx, x);
        X509_free(x);
        if (!ok || !ca)
            break;
    }
    ERR_clear_error();
    BIO_free(b);
    return ok ? 0 : -EINVAL;
}

int kube_tls_ctx(const struct kube_target *t, SSL_CTX **out)
{
    *out = NULL;
    if (!t->tls)
        return 0;
    SSL_CTX *ctx = *out = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return -ENOMEM;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (t->insecure) {
        log_warn("kube: insecure-skip-tls-verify: the API server is not authenticated");
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (t->ca_pem ? pem_into(ctx, t->ca_pem, true) != 0
                      : SSL_CTX_set_default_verify_paths(ctx) != 1)
            return -EINVAL;
    }
    if (t->cert_pem) {
        BIO *b = BIO_new_mem_buf(t->key_pem, -1);
        EVP_PKEY *key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        int ok =
            key && pem_into(ctx, t->cert_pem, false) == 0 && SSL_CTX_use_PrivateKey(ctx, key) == 1;
        EVP_PKEY_free(key);
        if (!ok)
            return -EINVAL;
    }
    return 0;
}
