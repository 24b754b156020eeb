/* Test support: TLS contexts with a throwaway self-signed P-256 certificate,
 * for tests of transports that do not verify identities themselves. */
#ifndef MESHD_TEST_TLS_FIXTURE_H
#define MESHD_TEST_TLS_FIXTURE_H

#include <stdbool.h>

#include <openssl/ssl.h>

/* TLS 1.3 only, ALPN h2, no peer verification. NULL on failure. */
SSL_CTX *tls_fixture_ctx(bool server);

/* Writes the context's key and certificate as PEM (key.pem, cert.pem)
 * into dir; the self-signed certificate doubles as the peer's CA. */
int tls_fixture_write_pem(SSL_CTX *ctx, const char *dir);

/* A connected TCP pair on 127.0.0.1, both non-blocking. 0 or -errno. */
int tcp_fixture_pair(int *client, int *server);

#endif
