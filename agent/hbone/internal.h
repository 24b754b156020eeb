/* Private to agent/hbone: the session and stream structures and the
 * functions session.c and stream.c share. Nothing outside hbone/ includes
 * this; the public API is hbone/session.h. */
#ifndef MESHD_HBONE_INTERNAL_H
#define MESHD_HBONE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <nghttp2/nghttp2.h>

#include "core/loop.h"
#include "hbone/session.h"
#include "tls/conn.h"

struct hbone_stream {
    struct loop_io app; /* fd -1 until bound */
    /* Or an in-process end (has_pipe), detached (has_pipe false) once the
     * stream is aborted or finished. */
    struct hbone_pipe pipe;
    bool has_pipe, detached; /* detached: the pipe's owner left (hbone_stream_close) */
    struct loop_task resume; /* hbone_stream_resume(): deliver at batch end */
    struct hbone_session *s;
    int32_t id;
    void *ctx;
    /* up: app -> peer, sent by the data provider */
    char *up;
    uint32_t up_head, up_tail;
    uint32_t up_cap; /* of `up`: HBONE_UP_BUF for a socket's reads, a pipe's grows to it */
    bool app_eof;    /* app sent FIN */
    bool deferred;   /* data provider waits for bytes */
    /* down: peer -> app, acknowledged to the peer once written */
    char *down;
    size_t down_off, down_len, down_cap;
    bool peer_eof;    /* END_STREAM received */
    bool app_wr_shut; /* FIN sent to the app */
    bool established; /* 200 sent or received */
    bool give_back;   /* client: return app.fd on failure before 200 */
    bool h2_closed;
    uint32_t h2_error;
    int err; /* first local error, -errno */
    bool finished;
    struct hbone_request req; /* server: the request being received */
    struct hbone_stream_stats stats;
    struct hbone_stream *prev, *next;
    struct loop_deferred release;
};

struct hbone_session {
    struct loop_io io;
    struct loop *loop; /* borrowed */
    struct tls_conn tls;
    nghttp2_session *h2;
    bool server;
    struct hbone_handler handler;
    bool established, draining, closing, torn_down;
    int busy; /* depth of entry points on the stack */
    char *out;
    size_t out_off, out_len, out_cap;
    struct hbone_stream *streams;
    unsigned nstreams;
    uint64_t started_ns, idle_since_ns;
    char error[160];
    void *user;
    struct loop_task flush_task; /* queued by hbone_session_settle() */
    struct loop_deferred release;
};

/* A session records its first failure and is torn down when it settles. */
static inline void hbone_session_fail(struct hbone_session *s, const char *why)
{
    if (!s->error[0])
        snprintf(s->error, sizeof(s->error), "%s", why);
    s->closing = true;
}

/* Tears a failed session down at once; otherwise queues the flush and
 * interest update for the end of the loop batch. A no-op while an outer
 * entry point is still on the stack. */
void hbone_session_settle(struct hbone_session *s);

/* stream.c */
struct hbone_stream *hbone_st_new(struct hbone_session *s, void *ctx);
void hbone_st_finish(struct hbone_stream *st);
void hbone_st_maybe_finish(struct hbone_stream *st);
void hbone_st_abort(struct hbone_stream *st, int err);
void hbone_st_flush_down(struct hbone_stream *st);
int hbone_st_buffer_down(struct hbone_stream *st, const uint8_t *data, size_t len);
void hbone_st_update_app(struct hbone_stream *st);
ssize_t hbone_st_read_cb(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *user);
int hbone_st_bind_app(struct hbone_stream *st, int app_fd);
/* Hands peer bytes to the stream's end (its socket or its pipe): how many
 * it took; -errno when the end failed (the stream is aborted). */
ssize_t hbone_st_deliver(struct hbone_stream *st, const uint8_t *data, size_t len);
/* The stream has an end to deliver to (a socket or a pipe). */
static inline bool hbone_st_has_end(const struct hbone_stream *st)
{
    return st->app.fd >= 0 || st->has_pipe;
}

#endif
