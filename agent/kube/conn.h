/* The API server's connection material for the watchers (kube.c): its
 * address, the TLS client context (its CA or the system's, an optional
 * client certificate; TLS 1.2 at least), and the bearer token header,
 * read again from the token file at each request. Internal to kube/. */
#ifndef MESHD_KUBE_CONN_H
#define MESHD_KUBE_CONN_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <sys/socket.h>

#include "kube/target.h"

/* At start-up only (a name is resolved once, before the loop runs). */
int kube_resolve(const struct kube_target *t, struct sockaddr_storage *addr, socklen_t *len);
/* *out NULL for plain http. 0, -ENOMEM, or -EINVAL for bad TLS material. */
int kube_tls_ctx(const struct kube_target *t, SSL_CTX **out);
/* "Authorization: Bearer T\r\n" or "" without a token; -EINVAL for a
 * token that could split the head, -E2BIG, or the token file's error. */
int kube_auth_header(const struct kube_target *t, char *out, size_t len);

#endif
