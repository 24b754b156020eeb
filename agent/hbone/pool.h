/* The outbound HBONE pool: TLS+HTTP/2 sessions to peer agents, keyed by
 * (source identity, destination identity, destination address) as ztunnel
 * keys them, so a new app connection to a warm destination is one new
 * stream and no handshake. A session takes up to max_streams streams before
 * another is opened; idle sessions are closed after idle_timeout. */
#ifndef MESHD_HBONE_POOL_H
#define MESHD_HBONE_POOL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "core/upstream.h"
#include "hbone/session.h"
#include "meshd/capture.h"

#define HBONE_ID_MAX 256

struct loop;
struct hbone_pool;

struct hbone_pool_key {
    char src_id[HBONE_ID_MAX]; /* SPIFFE id presented by our side */
    char dst_id[HBONE_ID_MAX]; /* SPIFFE id the server must present, exactly */
    struct meshd_addr dst;     /* the peer's HBONE address, podIP:15008 */
};

struct hbone_pool_opts {
    struct upstream_owner owner; /* the pool's sockets are meshd's own */
    unsigned max_streams;
    uint64_t idle_timeout_ns;
    uint64_t handshake_timeout_ns;
    /* Checks the server's verified chain presents `expected_id`. 0 or
     * -EPERM with a reason in why. */
    int (*verify_server)(void *ctx, SSL *ssl, const char *expected_id, char *why, size_t len);
    void *verify_ctx;
    /* Streams' end, for whoever opened them (the outbound proxy). */
    void (*on_stream_done)(void *ctx, struct hbone_stream *st, void *stream_ctx, int err,
                           const struct hbone_stream_stats *stats);
    void *stream_ctx;
    /* Failures before the peer's 200 hand the app socket back to
     * on_stream_done (stats->app_fd) instead of resetting it, and a
     * synchronous failure of hbone_pool_connect leaves it with the caller:
     * the outbound proxy retries elsewhere. */
    bool give_back;
};

struct hbone_pool_stats {
    uint64_t sessions_opened, sessions_reused, handshake_failures, identity_mismatches;
    uint64_t sessions, streams; /* current */
};

int hbone_pool_new(struct loop *loop, const struct hbone_pool_opts *opts, struct hbone_pool **out);
/* Closes every session (their streams are reset). Accepts NULL. */
void hbone_pool_free(struct hbone_pool *p);

/* Opens a CONNECT stream to `authority` over a pooled session for `key`,
 * opening a session from a socket in netns_fd with client_ctx if needed.
 * app_fd is taken over. 0, or -errno with app_fd closed (still the
 * caller's with opts.give_back). */
int hbone_pool_connect(struct hbone_pool *p, const struct hbone_pool_key *key, int netns_fd,
                       SSL_CTX *client_ctx, const char *authority,
                       const struct hbone_connect_headers *hdrs, int app_fd, void *stream_ctx);

/* hbone_pool_connect() with an in-process end (hbone/session.h) instead
 * of an app socket; the stream is *out until on_stream_done reports it. */
int hbone_pool_connect_pipe(struct hbone_pool *p, const struct hbone_pool_key *key, int netns_fd,
                            SSL_CTX *client_ctx, const char *authority,
                            const struct hbone_connect_headers *hdrs, const struct hbone_pipe *pipe,
                            void *stream_ctx, struct hbone_stream **out);

/* Bounds a stream's establishment: the stream opened for `key` with
 * `stream_ctx` is aborted with err if the peer has not answered yet (0),
 * or left alone if established (1); -ENOENT when there is none. */
int hbone_pool_abort_pending(struct hbone_pool *p, const struct hbone_pool_key *key,
                             const void *stream_ctx, int err);

/* Stops new streams on every session presenting `src_id` (GOAWAY; open
 * streams finish): after a certificate renewal, the next connection
 * handshakes with the new certificate. */
void hbone_pool_drain_src(struct hbone_pool *p, const char *src_id);

/* Closes sessions idle past the timeout or stuck in the handshake. */
void hbone_pool_expire(struct hbone_pool *p, uint64_t now_ns);
void hbone_pool_get_stats(const struct hbone_pool *p, struct hbone_pool_stats *st);

#endif
