/* A client's TLS connection at the edge: the handshake (bounded in time
 * and in number), then its bytes carried between the TLS socket and a
 * plain socket the HTTP carrier serves (a socketpair: the carrier's
 * sessions read a file descriptor, so whatever speaks HTTP after TLS
 * plugs in at `ready`, by the ALPN agreed: the HTTP carrier, whose
 * HTTP/1 session hands an h2 preface to its HTTP/2 session).
 *
 * Slowloris and floods: a handshake not done in `handshake_timeout_ns` is
 * reset; past `max_pending` handshakes in progress the oldest is reset to
 * make room, so idle connections cannot keep a legitimate client out.
 * An unauthenticated connection holds only its SSL object (no buffers);
 * an established one a 16 KiB buffer each way only while a full socket
 * leaves it bytes to hold. */
#ifndef MESHD_GATEWAY_EDGE_CONN_H
#define MESHD_GATEWAY_EDGE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct loop;
struct edge_tls;
struct edge_conn;

/* The handshake is done: serve `plain_fd` (the carrier's end, taken
 * over) for `user`; `alpn` is the protocol agreed ("" : none). 0, or
 * -errno with plain_fd closed and `user` released. */
typedef int (*edge_ready_fn)(void *ctx, void *user, int plain_fd, const char *alpn);
typedef void (*edge_user_free_fn)(void *user);

struct edge_conn_stats {
    uint64_t handshakes, handshake_failures, handshake_timeouts, evicted, active, pending;
};

struct edge_conns {
    struct loop *loop; /* borrowed */
    uint64_t handshake_timeout_ns;
    size_t max_pending;
    edge_ready_fn ready;
    edge_user_free_fn user_free;
    void *ctx;
    /* Optional: the client passed edge_tls_check_peer; what it proved
     * (edge_tls_peer_id) is read here, just before `ready`. */
    void (*verified)(void *ctx, void *user, SSL *ssl);
    /* private */
    struct edge_conn *pending_head, *pending_tail; /* oldest first */
    struct edge_conn *live;
    struct edge_conn_stats stats;
};

/* Starts the server handshake of accepted socket `fd` (taken over) with
 * `ctx` (the SNI may choose another of `set`'s) on listener `port`.
 * -errno: fd closed, `user` released. */
int edge_conn_start(struct edge_conns *ec, int fd, SSL_CTX *ctx, struct edge_tls *set,
                    uint16_t port, void *user);
/* Handshakes past their time are reset. */
void edge_conns_tick(struct edge_conns *ec, uint64_t now_ns);
/* Resets every connection. */
void edge_conns_close_all(struct edge_conns *ec);

#endif
