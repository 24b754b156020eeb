/* Test support: throwaway TLS contexts and TCP pairs (see tls_fixture.h). */
#include "support/tls_fixture.h"

#include "pki/pki.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <openssl/x509.h>

SSL_CTX *tls_fixture_ctx(bool server)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *cert = X509_new();
    if (!ctx || !key || !cert)
        goto fail;
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                               (const unsigned char *)"fixture", -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    X509_set_pubkey(cert, key);
    if (!X509_sign(cert, key, EVP_sha256()))
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1)
        goto fail;
    if (server)
        SSL_CTX_set_alpn_select_cb(ctx, pki_alpn_select_h2, NULL);
    else
        SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x02h2", 3);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ctx;
fail:
    X509_free(cert);
    EVP_PKEY_free(key);
    SSL_CTX_free(ctx);
    return NULL;
}

int tcp_fixture_pair(int *client, int *server)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l == -1 || bind(l, (struct sockaddr *)&a, sizeof(a)) == -1 || listen(l, 1) == -1 ||
        getsockname(l, (struct sockaddr *)&a, &len) == -1)
        goto fail;
    *client = socket(AF_INET, SOCK_STREAM, 0);
    if (*client == -1 || connect(*client, (struct sockaddr *)&a, sizeof(a)) == -1)
        goto fail;
    *server = accept(l, NULL, NULL);
    if (*server == -1)
        goto fail;
    close(l);
    fcntl(*client, F_SETFL, O_NONBLOCK);
    fcntl(*server, F_SETFL, O_NONBLOCK);
    return 0;
fail:
    if (l != -1)
        close(l);
    return -errno;
}

int tls_fixture_write_pem(SSL_CTX *ctx, const char *dir)
{
    char path[512];
    int ok = 1;
    snprintf(path, sizeof(path), "%s/key.pem", dir);
    FILE *f = fopen(path, "w");
    ok &= f && PEM_write_PrivateKey(f, SSL_CTX_get0_privatekey(ctx), NULL, NULL, 0, NULL, NULL);
    if (f)
        fclose(f);
    snprintf(path, sizeof(path), "%s/cert.pem", dir);
    f = fopen(path, "w");
    ok &= f && PEM_write_X509(f, SSL_CTX_get0_certificate(ctx));
    if (f)
        fclose(f);
    return ok ? 0 : -EIO;
}
