/* HBONE: HTTP/2 CONNECT tunnels over mutual TLS, Istio's wire protocol
 * between ztunnels (and now meshd agents), port 15008.
 *
 * A session is one TLS connection carrying one nghttp2 session; each stream
 * is one CONNECT tunnel bound to a plain TCP socket (the app's connection on
 * the client side, the connection to the app on the server side). Bytes from
 * the socket become DATA frames; DATA frames are written to the socket and
 * only then acknowledged (WINDOW_UPDATE), so a slow reader on either side
 * closes the sender's window instead of growing our buffers.
 *
 * Memory per stream: a 16 KiB up buffer, and a down buffer that holds at
 * most the stream's flow-control window (HBONE_STREAM_WINDOW). */
#ifndef MESHD_HBONE_SESSION_H
#define MESHD_HBONE_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct loop;
struct hbone_session;
struct hbone_stream;

#define HBONE_MAX_STREAMS   100
#define HBONE_STREAM_WINDOW (4u << 20)  /* ztunnel's per-stream window */
#define HBONE_CONN_WINDOW   (16u << 20) /* and per-connection window */
#define HBONE_UP_BUF        (64u * 1024)
#define HBONE_UP_MIN        (4u * 1024) /* a pipe's first up buffer (hbone_stream_send) */

/* A CONNECT request as the server received it. Bounded: overlong or
 * repeated headers mark it bad (answered 400). */
struct hbone_request {
    char method[16];
    char authority[64];
    char forwarded[128];
    char baggage[512];
    char traceparent[64];
    bool bad;
    /* x-meshd-protocol: what the source agent carries in the stream
     * ("http": its HTTP carrier's requests), "" when it did not say. */
    char protocol[16];
};

/* The x-meshd-protocol value of a stream that carries HTTP requests (the
 * source agent's HTTP carrier): the destination then serves a port of
 * unnamed protocol per request too, as Istio's protocol sniffing would,
 * without waiting on bytes. Only a hint of how to parse: a stream that is
 * not HTTP fails the parser (400), authorization is the same or stricter. */
#define HBONE_PROTOCOL_HTTP "http"

/* Extra headers the client sends with CONNECT (NULL to omit). */
struct hbone_connect_headers {
    const char *forwarded;
    const char *baggage;
    const char *traceparent;
    const char *protocol; /* x-meshd-protocol */
};

struct hbone_stream_stats {
    uint64_t bytes_sent;     /* app -> peer */
    uint64_t bytes_received; /* peer -> app */
    int status;              /* HTTP status of the CONNECT, 0 if none */
    /* A client stream opened with give_back that failed before the peer
     * answered 200: its app socket, untouched, now the handler's (to try
     * elsewhere or to reset). -1 otherwise. */
    int app_fd;
};

struct hbone_handler {
    /* TLS is up: check the peer. Non-zero refuses the session. */
    int (*on_established)(void *ctx, struct hbone_session *s);
    /* Server: a complete CONNECT. The handler answers now or later with
     * hbone_stream_accept()/hbone_stream_reject(). */
    void (*on_request)(void *ctx, struct hbone_stream *st, const struct hbone_request *req);
    /* A stream is over (err 0 for a clean end). Its app socket is closed. */
    void (*on_stream_done)(void *ctx, struct hbone_stream *st, void *stream_ctx, int err,
                           const struct hbone_stream_stats *stats);
    /* The session is over; it is freed after this returns. */
    void (*on_session_done)(void *ctx, struct hbone_session *s);
    void *ctx;
};

/* Takes ownership of fd (connected or connecting). `handler` is copied. */
int hbone_session_new(struct loop *loop, SSL_CTX *ctx, int fd, bool server,
                      const struct hbone_handler *handler, struct hbone_session **out);
/* Closes the session at once: streams are reset, sockets closed. */
void hbone_session_close(struct hbone_session *s, const char *why);
/* Stops new streams (GOAWAY); open streams finish. */
void hbone_session_drain(struct hbone_session *s);

SSL *hbone_session_ssl(struct hbone_session *s);
bool hbone_session_usable(const struct hbone_session *s); /* not draining/closing */
unsigned hbone_session_streams(const struct hbone_session *s);
uint64_t hbone_session_idle_since_ns(const struct hbone_session *s); /* 0 if busy */
uint64_t hbone_session_started_ns(const struct hbone_session *s);
bool hbone_session_established(const struct hbone_session *s);
const char *hbone_session_error(const struct hbone_session *s);
void hbone_session_set_user(struct hbone_session *s, void *user);
void *hbone_session_user(const struct hbone_session *s);

/* Client: opens a CONNECT stream to `authority` ("ip:port" or "[ip6]:port")
 * tunnelling app_fd, taken over when this returns 0 (on an error it stays
 * the caller's). Data flows once the peer answers 200; any other answer
 * resets app_fd and reports the status. */
int hbone_stream_open(struct hbone_session *s, const char *authority,
                      const struct hbone_connect_headers *hdrs, int app_fd, void *stream_ctx,
                      struct hbone_stream **out);
/* The client stream whose stream_ctx is `ctx`: if the peer has not
 * answered yet, abort it with err (it reports through on_stream_done) and
 * return 0; 1 if it is established; -ENOENT if there is none. */
int hbone_session_abort_pending(struct hbone_session *s, const void *ctx, int err);
/* Marks a client stream to hand its app socket back on early failure. */
void hbone_stream_give_back(struct hbone_stream *st);

/* Server: answers 200 and starts tunnelling app_fd (taken over). */
int hbone_stream_accept(struct hbone_stream *st, int app_fd);

/* An in-process end of a stream instead of an app socket: the HTTP
 * carrier reads and writes a tunnel's bytes itself, with no socket pair
 * and no system call between it and the tunnel. The callbacks run on the
 * loop from inside the session's processing: they must not free the
 * stream (hbone_stream_abort() it), and after an abort none is called
 * again. The stream's end is reported through on_stream_done as for an
 * app socket. */
struct hbone_pipe {
    /* Peer bytes, in order: returns how many were taken. Fewer: the rest
     * is kept (within the stream's window, which is what bounds it) until
     * hbone_stream_resume(). */
    size_t (*on_data)(void *ctx, const char *p, size_t n);
    /* The peer ended its side, after every byte was taken. */
    void (*on_eof)(void *ctx);
    /* Room again after an hbone_stream_send() that took less. */
    void (*on_writable)(void *ctx);
    /* The stream ended under the pipe (the peer reset it, the session
     * failed; err < 0), after on_stream_done: it is gone after this. */
    void (*on_end)(void *ctx, int err);
    void *ctx;
};

/* Client: hbone_stream_open() with a pipe for its end (copied). */
int hbone_stream_open_pipe(struct hbone_session *s, const char *authority,
                           const struct hbone_connect_headers *hdrs, const struct hbone_pipe *pipe,
                           void *stream_ctx, struct hbone_stream **out);
/* Server: answers 200 and carries the stream's bytes through `pipe`. */
int hbone_stream_accept_pipe(struct hbone_stream *st, const struct hbone_pipe *pipe);
/* Queues bytes for the peer (sent once the tunnel is up): how many were
 * taken, at most the room left in the stream's up buffer (it grows from
 * HBONE_UP_MIN to HBONE_UP_BUF while bytes are queued);
 * 0 on a stream that is over. */
size_t hbone_stream_send(struct hbone_stream *st, const void *p, size_t n);
/* Our side is done (END_STREAM after what is queued). */
void hbone_stream_shutdown(struct hbone_stream *st);
/* The pipe's owner is done with a stream that went well: our side ends
 * (END_STREAM after what is queued), no callback is made again, what the
 * peer still sends is dropped, and the stream ends with the peer's side.
 * (A failure is hbone_stream_abort().) */
void hbone_stream_close(struct hbone_stream *st);
/* The pipe's owner hands the stream's end to a socket (an Upgrade at the
 * destination: the app's connection, relayed raw from now on); fd is
 * taken over. 0 or -errno (fd closed, the stream aborted). */
int hbone_stream_bind_fd(struct hbone_stream *st, int fd);
/* The pipe takes bytes again: what was kept is delivered at the end of
 * the loop's batch (never from inside this call). */
void hbone_stream_resume(struct hbone_stream *st);
/* Server: answers `status` and ends the stream. */
int hbone_stream_reject(struct hbone_stream *st, int status);
/* Either side: resets the stream and its app socket. Called by a pipe's
 * owner, whom no callback reaches after it. */
void hbone_stream_abort(struct hbone_stream *st, int err);
/* Anyone but the pipe's owner (a policy revoked by a reload): as
 * hbone_stream_abort, and a pipe hears of it through on_end(err), so its
 * owner lets go of the stream. */
void hbone_stream_revoke(struct hbone_stream *st, int err);
void hbone_stream_set_ctx(struct hbone_stream *st, void *stream_ctx);
struct hbone_session *hbone_stream_session(const struct hbone_stream *st);
void hbone_stream_get_stats(const struct hbone_stream *st, struct hbone_stream_stats *out);

#endif
