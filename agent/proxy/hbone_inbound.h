/* The HBONE server: each enrolled pod's 15008 listeners, terminating mutual
 * TLS with the pod's workload certificate and answering CONNECT as ztunnel
 * does: 200 once the app accepted, 400 for a bad request or an authority
 * that is not this pod, 401 when policy denies, 503 when the app refused.
 * The app is reached from 127.0.0.6 (IPv6: the pod's own address), which
 * sk_lookup lets through. */
#ifndef MESHD_PROXY_HBONE_INBOUND_H
#define MESHD_PROXY_HBONE_INBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "core/upstream.h"
#include "meshd/capture.h"

struct conn;
struct conn_record;
struct hbone_stream;
struct conns;
struct loop;
struct pod;
struct hbone_inbound;

#define HBONE_INBOUND_MAX_PENDING_SOURCE 64
#define HBONE_INBOUND_MAX_PENDING        512

struct hbone_inbound_opts {
    uint16_t port; /* 15008 */
    /* Until the client is authenticated (TLS done and its certificate
     * verified): the deadline, and the caps on such connections from one
     * client address and in all (0: the defaults below); past a cap, new
     * connections are reset at accept. */
    uint64_t handshake_timeout_ns, idle_timeout_ns;
    size_t max_pending_source, max_pending;
    /* Serve clients on loopback. Never in meshd (a loopback peer is meshd's
     * own app-facing side: a self-call); for tests on one host's lo. */
    bool loopback_clients;
    /* The pod's TLS server context (its workload certificate); NULL while it
     * has none, and connections are then refused. */
    SSL_CTX *(*server_ctx)(void *ctx, const struct pod *pod);
    /* Verifies the client's certificate chain and trust domain; writes its
     * SPIFFE id. 0 or -EPERM with a reason. */
    int (*verify_client)(void *ctx, SSL *ssl, char *id, size_t idlen, char *why, size_t whylen);
    /* Destination policy: 0 allows, -EACCES denies (answered 401). NULL
     * allows everything. */
    int (*authorize)(void *ctx, const struct pod *pod, const char *peer_id,
                     const struct meshd_addr *src, const struct meshd_addr *dst);
    void *ctx;
    /* HTTP at the destination (http/inbound.h; NULL: bytes only):
     * whether a stream to `dst` is served per request; then it is
     * admitted by `authorize_http` (the connection's part of the policy)
     * and the stream and its app connection handed to `serve_http`
     * (http_inbound_serve_stream), which answers the stream itself;
     * non-zero: it did not (the stream is rejected, 503). */
    bool (*wants_http)(void *http_ctx, const struct pod *pod, const struct meshd_addr *dst,
                       bool said_http);
    int (*authorize_http)(void *ctx, const struct pod *pod, const char *peer_id,
                          const struct meshd_addr *src, const struct meshd_addr *dst);
    int (*serve_http)(void *http_ctx, const struct pod *pod, const struct conn_record *rec,
                      struct hbone_stream *st, int app_fd);
    void *http_ctx;
};

struct hbone_inbound_stats {
    uint64_t sessions, sessions_total, handshake_failures, bad_requests, denied, upstream_failures;
    uint64_t self_calls;         /* CONNECTs to meshd's own ports, loopback clients */
    uint64_t pending;            /* connections not yet authenticated, now */
    uint64_t handshakes_refused; /* reset at accept: a pending cap was full */
};

int hbone_inbound_new(struct loop *loop, struct conns *conns, const struct hbone_inbound_opts *opts,
                      struct hbone_inbound **out);
/* Re-asks `authorize` about every stream being served and resets those it
 * now denies (flag DENY): a policy change applies to open connections.
 * Returns how many were closed. */
size_t hbone_inbound_revalidate(struct hbone_inbound *hi);
/* Closes every session. Accepts NULL. */
void hbone_inbound_free(struct hbone_inbound *hi);

int hbone_inbound_attach_pod(void *hi, struct pod *pod);
void hbone_inbound_detach_pod(void *hi, struct pod *pod);
/* Closes the pod's 15008 listeners and sends GOAWAY on its sessions: no new
 * tunnels, open streams go on (the drain before a stop). */
void hbone_inbound_quiesce_pod(void *hi, struct pod *pod);

/* Closes sessions stuck in the handshake or idle past the timeouts. */
void hbone_inbound_expire(struct hbone_inbound *hi, uint64_t now_ns);
void hbone_inbound_get_stats(const struct hbone_inbound *hi, struct hbone_inbound_stats *st);

#endif
