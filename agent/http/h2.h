/* HTTP/2 framing for the HTTP carrier, over nghttp2: one connection's
 * codec, as a server (a client's h2c prior-knowledge connection) or as a
 * client (meshd's own upstream connection). No I/O: bytes go in with
 * h2_conn_recv and come out with h2_conn_pull.
 *
 * A stream's head reaches the caller whole (pseudo-headers split out,
 * regular fields in order, names lower case as HTTP/2 requires), in a
 * buffer the codec keeps until the stream closes. What a hostile peer
 * could use to hold memory or CPU is bounded and, past the bound, refused:
 * concurrent streams (H2_MAX_STREAMS, advertised and enforced), a head's
 * size and field count (as the HTTP/1 codec's limits: 431-sized heads
 * reset the stream), flow-control windows (the caller consumes what it
 * passed on: a slow reader stops the peer, see h2_consume), CONTINUATION
 * frames per head, and streams the peer resets (the "rapid reset" flood,
 * CVE-2023-44487: past H2_RST_MAX in H2_RST_WINDOW_NS the connection gets
 * GOAWAY ENHANCE_YOUR_CALM). Protocol violations end the connection with
 * GOAWAY; h2_conn_recv then fails and the caller flushes and closes. */
#ifndef MESHD_HTTP_H2_H
#define MESHD_HTTP_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http/message.h"

/* Envoy's default for max_concurrent_streams is 2^31-1, its overload
 * protection aside; a node agent bounds it like nginx (128) and h2o (100). */
#define H2_MAX_STREAMS      100u
#define H2_MAX_HEAD_BYTES   (60u * 1024) /* as H1_MAX_HEAD_BYTES_DEFAULT (Envoy: 60 KiB) */
#define H2_MAX_FIELDS       100u         /* as H1_MAX_HEADERS_DEFAULT */
#define H2_STREAM_WINDOW    65535u       /* the protocol's initial window */
#define H2_CONN_WINDOW      (1u << 20)
#define H2_MAX_CONTINUATION 8u
#define H2_RST_MAX          200u /* peer resets tolerated per window */
#define H2_RST_WINDOW_NS    (10ull * 1000000000)
#define H2_MAX_FRAME_QUEUE  (256u * 1024) /* our queued DATA per stream */

/* nghttp2's error codes, as sent in RST_STREAM and GOAWAY */
#define H2_NO_ERROR       0x0u
#define H2_PROTOCOL_ERROR 0x1u
#define H2_INTERNAL_ERROR 0x2u
#define H2_REFUSED_STREAM 0x7u
#define H2_CANCEL         0x8u
#define H2_ENHANCE_CALM   0xbu

enum h2_role { H2_SERVER, H2_CLIENT };

/* One head: a request's (server), a response's or trailers (client), or a
 * request's trailers (server). Strings NUL-terminated, borrowed. */
struct h2_head {
    const char *method, *path, *authority, *scheme; /* request; NULL when absent */
    int status;                                     /* response: :status */
    const struct http_field *fields;                /* regular fields, as received */
    size_t nfields;
    bool end_stream; /* no body follows */
    bool trailers;   /* a trailing block: fields only */
};

struct h2_conn;
struct h2_stream;

struct h2_callbacks {
    /* A head. Server: a new stream (set its user with h2_stream_set_user).
     * Nonzero: the stream is reset (REFUSED_STREAM). */
    int (*on_head)(void *ctx, struct h2_stream *st, const struct h2_head *h);
    /* Body bytes; the window reopens only once the caller h2_consume()s. */
    int (*on_data)(void *ctx, struct h2_stream *st, const uint8_t *p, size_t n);
    /* The peer ended its side (END_STREAM). */
    void (*on_end)(void *ctx, struct h2_stream *st);
    /* The stream is gone (error: H2_NO_ERROR when closed cleanly); `st` is
     * invalid after this returns. */
    void (*on_close)(void *ctx, struct h2_stream *st, uint32_t error);
    /* n bytes of what the caller queued with h2_send_data were framed. */
    void (*on_sent)(void *ctx, struct h2_stream *st, size_t n);
};

struct h2_stats {
    uint64_t streams, resets_received, refused, violations;
};

/* -ENOMEM. The server expects the client preface first. */
int h2_conn_new(enum h2_role role, const struct h2_callbacks *cb, void *ctx, struct h2_conn **out);
void h2_conn_free(struct h2_conn *c); /* accepts NULL; no callback runs */
/* Bytes from the peer. 0, or -EPROTO (a violation or a flood: GOAWAY is
 * queued, pull it, then close), -ENOMEM. Not from this conn's callbacks. */
int h2_conn_recv(struct h2_conn *c, const uint8_t *p, size_t n);
/* What to send next: >0 bytes at *out (valid until the next call), 0 when
 * nothing, -errno. Not from this conn's callbacks. */
ssize_t h2_conn_pull(struct h2_conn *c, const uint8_t **out);
/* Neither side wants the connection any more (GOAWAY exchanged, or an
 * error): close once pulled dry. */
bool h2_conn_done(const struct h2_conn *c);
/* A client: may another stream start (no GOAWAY seen, the peer's
 * concurrency limit not reached)? */
bool h2_conn_accepting(const struct h2_conn *c);
unsigned h2_conn_streams(const struct h2_conn *c);
/* Every stream is told on_close(error) and forgotten (the connection is
 * being closed; nothing more is framed for them). */
void h2_conn_close_streams(struct h2_conn *c, uint32_t error);
/* Ends the connection after the streams in flight (GOAWAY with `code`). */
void h2_conn_goaway(struct h2_conn *c, uint32_t code);
void h2_conn_get_stats(const struct h2_conn *c, struct h2_stats *st);

void *h2_stream_user(const struct h2_stream *st);
void h2_stream_set_user(struct h2_stream *st, void *user);
int32_t h2_stream_id(const struct h2_stream *st);
/* DATA queued and not yet framed. */
size_t h2_stream_queued(const struct h2_stream *st);

/* Client: a request (h: method, path, authority, scheme, fields;
 * end_stream when no body). -EAGAIN when no stream may start. */
int h2_submit_request(struct h2_conn *c, const struct h2_head *h, void *user,
                      struct h2_stream **out);
/* Server: the response head (h: status, fields, end_stream). */
int h2_submit_response(struct h2_conn *c, struct h2_stream *st, const struct h2_head *h);
/* Queues body bytes (copied); `eof` ends our side. -ENOBUFS past
 * H2_MAX_FRAME_QUEUE. */
int h2_send_data(struct h2_conn *c, struct h2_stream *st, const void *p, size_t n, bool eof);
/* Ends our side with trailers, after the queued DATA. */
int h2_send_trailers(struct h2_conn *c, struct h2_stream *st, const struct http_field *f, size_t n);
/* Resets the stream; on_close follows. */
void h2_reset(struct h2_conn *c, struct h2_stream *st, uint32_t code);
/* The caller passed n received bytes on: the peer may send as many more. */
void h2_consume(struct h2_conn *c, struct h2_stream *st, size_t n);

#endif
