/* HBONE streams: one CONNECT tunnel bound to a plain socket, or to an
 * in-process pipe (session.h). The app side (reads into the up buffer,
 * writes from the down buffer), the data provider nghttp2 pulls DATA from,
 * and the public stream API. Flow control is end to end: peer data is
 * acknowledged only once the app (or the pipe) has it. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/container.h"
#include "core/log.h"
#include "hbone/internal.h"

struct hbone_stream *hbone_st_new(struct hbone_session *s, void *ctx)
{
    struct hbone_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->s = s;
    st->ctx = ctx;
    st->app.fd = -1;
    st->next = s->streams;
    if (s->streams)
        s->streams->prev = st;
    s->streams = st;
    s->nstreams++;
    s->idle_since_ns = 0;
    return st;
}

static void stream_release(struct loop_deferred *d)
{
    struct hbone_stream *st = container_of(d, struct hbone_stream, release);
    free(st->up);
    free(st->down);
    free(st);
}

static void close_app(struct hbone_stream *st, bool reset)
{
    st->has_pipe = false; /* a pipe's owner hears of the end from on_stream_done */
    if (st->app.fd < 0)
        return;
    loop_del(st->s->loop, &st->app);
    if (reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(st->app.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(st->app.fd);
    st->app.fd = -1;
}

/* Reports the stream and unlinks it; memory goes after the loop batch. */
void hbone_st_finish(struct hbone_stream *st)
{
    if (st->finished)
        return;
    struct hbone_session *s = st->s;
    st->finished = true;
    int err = st->err;
    if (!err && st->h2_error != NGHTTP2_NO_ERROR)
        err = -ECONNRESET;
    if (!err && !st->established)
        err = -ECONNREFUSED;
    st->stats.app_fd = -1;
    struct hbone_pipe pipe = st->pipe; /* told after the handler: see session.h */
    bool piped = st->has_pipe;
    if (err && st->give_back && !st->established && st->app.fd >= 0 && st->stats.bytes_sent == 0) {
        loop_del(s->loop, &st->app);
        st->stats.app_fd = st->app.fd; /* the handler's now */
        st->app.fd = -1;
    }
    close_app(st, err != 0);
    if (st->id > 0 && !s->torn_down)
        nghttp2_session_set_stream_user_data(s->h2, st->id, NULL);
    if (st->prev)
        st->prev->next = st->next;
    else
        s->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    if (--s->nstreams == 0)
        s->idle_since_ns = loop_now_ns();
    if (s->handler.on_stream_done)
        s->handler.on_stream_done(s->handler.ctx, st, st->ctx, err, &st->stats);
    if (piped && pipe.on_end)
        pipe.on_end(pipe.ctx, err ? err : -ECONNRESET);
    st->release.fn = stream_release;
    loop_defer(s->loop, &st->release);
}

/* A stream is over once nghttp2 closed it and the app has everything. */
void hbone_st_maybe_finish(struct hbone_stream *st)
{
    if (st->h2_closed && (st->down_len == st->down_off || !hbone_st_has_end(st) || st->err))
        hbone_st_finish(st);
}

/* Local failure on the app side: reset the tunnel. */
void hbone_st_abort(struct hbone_stream *st, int err)
{
    if (!st->err)
        st->err = err;
    /* A socket to give back stays open for hbone_st_finish to return. */
    if (!(st->give_back && !st->established && st->stats.bytes_sent == 0))
        close_app(st, true);
    if (!st->h2_closed)
        nghttp2_submit_rst_stream(st->s->h2, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    else
        hbone_st_maybe_finish(st);
}

ssize_t hbone_st_deliver(struct hbone_stream *st, const uint8_t *data, size_t len)
{
    if (st->has_pipe)
        return (ssize_t)st->pipe.on_data(st->pipe.ctx, (const char *)data, len);
    ssize_t n = send(st->app.fd, data, len, MSG_NOSIGNAL);
    if (n >= 0)
        return n;
    return errno == EAGAIN || errno == EINTR ? 0 : -errno;
}

/* Writes buffered peer data to the app and acknowledges it to the peer. */
void hbone_st_flush_down(struct hbone_stream *st)
{
    while (hbone_st_has_end(st) && st->down_off < st->down_len) {
        ssize_t n = hbone_st_deliver(st, (const uint8_t *)st->down + st->down_off,
                                     st->down_len - st->down_off);
        if (n < 0) {
            hbone_st_abort(st, (int)n);
            return;
        }
        if (n == 0)
            break;
        st->down_off += (size_t)n;
        nghttp2_session_consume(st->s->h2, st->id, (size_t)n);
    }
    if (st->down_off == st->down_len)
        st->down_off = st->down_len = 0;
    if (hbone_st_has_end(st) && st->down_len == 0 && st->peer_eof && !st->app_wr_shut) {
        st->app_wr_shut = true;
        if (st->has_pipe)
            st->pipe.on_eof(st->pipe.ctx);
        else
            shutdown(st->app.fd, SHUT_WR);
    }
    hbone_st_maybe_finish(st);
}

/* Appends peer data that the app could not take yet. Bounded by the
 * stream window: nghttp2 rejects peers that overrun it. */
int hbone_st_buffer_down(struct hbone_stream *st, const uint8_t *data, size_t len)
{
    if (st->down_off > 0 && st->down_len + len > st->down_cap) {
        memmove(st->down, st->down + st->down_off, st->down_len - st->down_off);
        st->down_len -= st->down_off;
        st->down_off = 0;
    }
    if (st->down_len + len > st->down_cap) {
        size_t cap = st->down_cap ? st->down_cap : 16384;
        while (cap < st->down_len + len)
            cap *= 2;
        if (cap > HBONE_STREAM_WINDOW)
            cap = HBONE_STREAM_WINDOW;
        if (st->down_len + len > cap)
            return -ENOBUFS;
        char *nd = realloc(st->down, cap);
        if (!nd)
            return -ENOMEM;
        st->down = nd;
        st->down_cap = cap;
    }
    memcpy(st->down + st->down_len, data, len);
    st->down_len += len;
    return 0;
}

/* How far the up buffer may fill: its size, or HBONE_UP_BUF before it
 * exists (it is allocated on the first byte). */
static uint32_t up_limit(const struct hbone_stream *st)
{
    return st->up ? st->up_cap : HBONE_UP_BUF;
}

static void stream_on_app_io(struct loop_io *io, uint32_t events)
{
    struct hbone_stream *st = (struct hbone_stream *)io;
    struct hbone_session *s = st->s;
    s->busy++;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        bool got = false;
        while (!st->app_eof && st->up_tail < up_limit(st) && st->app.fd >= 0) {
            /* The up buffer exists only while it holds bytes: an idle
             * tunnel costs no buffer memory. */
            if (!st->up) {
                if (!(st->up = malloc(HBONE_UP_BUF))) {
                    hbone_st_abort(st, -ENOMEM);
                    break;
                }
                st->up_cap = HBONE_UP_BUF;
            }
            ssize_t n = read(st->app.fd, st->up + st->up_tail, st->up_cap - st->up_tail);
            if (n > 0) {
                st->up_tail += (uint32_t)n;
                got = true;
            } else if (n == 0) {
                st->app_eof = true;
                got = true;
            } else if (errno == EAGAIN || errno == EINTR) {
                break;
            } else {
                hbone_st_abort(st, -errno);
                break;
            }
        }
        if (got && st->deferred && !st->h2_closed) {
            st->deferred = false;
            nghttp2_session_resume_data(s->h2, st->id);
        }
    }
    if ((events & EPOLLOUT) && !st->finished)
        hbone_st_flush_down(st);
    if (!st->finished)
        hbone_st_update_app(st);
    s->busy--;
    hbone_session_settle(s);
}

void hbone_st_update_app(struct hbone_stream *st)
{
    if (st->app.fd < 0 || !st->established)
        return;
    uint32_t want = 0;
    if (!st->app_eof && st->up_tail < up_limit(st))
        want |= EPOLLIN;
    if (st->down_off < st->down_len)
        want |= EPOLLOUT;
    if (want == 0)
        loop_del(st->s->loop, &st->app);
    else if (loop_set(st->s->loop, &st->app, want) != 0)
        hbone_st_abort(st, -ENOMEM);
}

ssize_t hbone_st_read_cb(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
    struct hbone_stream *st = src->ptr;
    if (!st || st->finished)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    size_t avail = st->up_tail - st->up_head;
    if (!st->established || (avail == 0 && !st->app_eof)) {
        st->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = avail < length ? avail : length;
    if (n)
        memcpy(buf, st->up + st->up_head, n);
    bool was_full = st->up && st->up_tail == st->up_cap;
    st->up_head += (uint32_t)n;
    st->stats.bytes_sent += n;
    if (st->up_head == st->up_tail) {
        st->up_head = st->up_tail = 0;
        free(st->up); /* drained: given back while the tunnel is quiet */
        st->up = NULL;
        st->up_cap = 0;
        if (st->app_eof)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    if (was_full && st->has_pipe)
        st->pipe.on_writable(st->pipe.ctx);
    else if (was_full)
        hbone_st_update_app(st);
    return (ssize_t)n;
}

/* Binds the app socket once the tunnel is up, and starts both directions. */
int hbone_st_bind_app(struct hbone_stream *st, int app_fd)
{
    st->app.fd = app_fd;
    st->app.cb = stream_on_app_io;
    st->established = true;
    hbone_st_update_app(st);
    if (st->down_len > st->down_off)
        hbone_st_flush_down(st);
    return 0;
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NO_COPY_NAME     \
    }

/* Submits the CONNECT of a new client stream `st`. */
static int stream_submit(struct hbone_session *s, struct hbone_stream *st, const char *authority,
                         const struct hbone_connect_headers *hdrs, struct hbone_stream **out)
{
    nghttp2_nv nva[6] = {NV(":method", "CONNECT"), NV(":authority", authority)};
    size_t n = 2;
    if (hdrs && hdrs->forwarded)
        nva[n++] = (nghttp2_nv)NV("forwarded", hdrs->forwarded);
    if (hdrs && hdrs->baggage)
        nva[n++] = (nghttp2_nv)NV("baggage", hdrs->baggage);
    if (hdrs && hdrs->traceparent)
        nva[n++] = (nghttp2_nv)NV("traceparent", hdrs->traceparent);
    if (hdrs && hdrs->protocol)
        nva[n++] = (nghttp2_nv)NV("x-meshd-protocol", hdrs->protocol);
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = hbone_st_read_cb};
    s->busy++;
    int32_t id = nghttp2_submit_request(s->h2, NULL, nva, n, &prd, st);
    s->busy--;
    if (id < 0) {
        /* Reported once, through on_stream_done (which may take the app
         * socket back), not also by a return code. */
        st->err = -EIO;
        st->h2_closed = true;
        hbone_st_finish(st);
        return 0;
    }
    st->id = id;
    *out = st;
    hbone_session_settle(s);
    return 0;
}

int hbone_stream_open(struct hbone_session *s, const char *authority,
                      const struct hbone_connect_headers *hdrs, int app_fd, void *stream_ctx,
                      struct hbone_stream **out)
{
    if (!hbone_session_usable(s) || s->server)
        return -ENOTCONN; /* app_fd stays the caller's */
    struct hbone_stream *st = hbone_st_new(s, stream_ctx);
    if (!st)
        return -ENOMEM;
    st->app.fd = app_fd; /* registered once the peer answers 200 */
    return stream_submit(s, st, authority, hdrs, out);
}

int hbone_stream_open_pipe(struct hbone_session *s, const char *authority,
                           const struct hbone_connect_headers *hdrs, const struct hbone_pipe *pipe,
                           void *stream_ctx, struct hbone_stream **out)
{
    if (!hbone_session_usable(s) || s->server)
        return -ENOTCONN;
    struct hbone_stream *st = hbone_st_new(s, stream_ctx);
    if (!st)
        return -ENOMEM;
    st->pipe = *pipe;
    st->has_pipe = true;
    *out = NULL;
    return stream_submit(s, st, authority, hdrs, out);
}

/* Server: 200, then the stream's bytes to app_fd (or its pipe: -1). */
static int stream_answer_200(struct hbone_stream *st, int app_fd)
{
    struct hbone_session *s = st->s;
    nghttp2_nv nva[] = {NV(":status", "200")};
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = hbone_st_read_cb};
    st->stats.status = 200;
    s->busy++;
    int rc = nghttp2_submit_response(s->h2, st->id, nva, 1, &prd);
    if (rc == 0)
        hbone_st_bind_app(st, app_fd);
    else if (app_fd >= 0)
        close(app_fd);
    s->busy--;
    hbone_session_settle(s);
    return rc == 0 ? 0 : -EIO;
}

int hbone_stream_accept(struct hbone_stream *st, int app_fd)
{
    if (st->finished || st->h2_closed) {
        close(app_fd);
        return -ECONNRESET;
    }
    return stream_answer_200(st, app_fd);
}

int hbone_stream_accept_pipe(struct hbone_stream *st, const struct hbone_pipe *pipe)
{
    if (st->finished || st->h2_closed)
        return -ECONNRESET;
    st->pipe = *pipe;
    st->has_pipe = true;
    int rc = stream_answer_200(st, -1);
    if (rc)
        st->has_pipe = false;
    return rc;
}

size_t hbone_stream_send(struct hbone_stream *st, const void *p, size_t n)
{
    if (st->finished || st->h2_closed || st->err || st->app_eof)
        return 0;
    /* The up buffer exists only while it holds bytes (as for a socket),
     * sized to what is queued: an HTTP head per request would otherwise
     * cost a 64 KiB malloc and a free that consolidates the heap. It grows,
     * up to HBONE_UP_BUF, as more is queued before it drains. */
    if (st->up_cap < HBONE_UP_BUF && n > st->up_cap - st->up_tail) {
        uint32_t cap = st->up_cap ? st->up_cap : HBONE_UP_MIN;
        while (cap < HBONE_UP_BUF && cap - st->up_tail < n)
            cap *= 2;
        char *nb = realloc(st->up, cap);
        if (!nb)
            return 0;
        st->up = nb;
        st->up_cap = cap;
    }
    size_t room = st->up_cap - st->up_tail;
    size_t k = n < room ? n : room;
    memcpy(st->up + st->up_tail, p, k);
    st->up_tail += (uint32_t)k;
    if (k && st->deferred && st->established) {
        st->deferred = false;
        nghttp2_session_resume_data(st->s->h2, st->id);
        hbone_session_settle(st->s);
    }
    return k;
}

void hbone_stream_shutdown(struct hbone_stream *st)
{
    if (st->finished || st->app_eof)
        return;
    st->app_eof = true;
    if (st->deferred && st->established && !st->h2_closed) {
        st->deferred = false;
        nghttp2_session_resume_data(st->s->h2, st->id);
        hbone_session_settle(st->s);
    }
}

void hbone_stream_close(struct hbone_stream *st)
{
    struct hbone_session *s = st->s;
    if (st->finished || !st->has_pipe)
        return;
    st->has_pipe = false;
    st->detached = true;
    if (st->down_len > st->down_off && st->id > 0) /* kept for the pipe: dropped, credited */
        nghttp2_session_consume(s->h2, st->id, st->down_len - st->down_off);
    st->down_off = st->down_len = 0;
    s->busy++;
    hbone_stream_shutdown(st);
    hbone_st_maybe_finish(st);
    s->busy--;
    hbone_session_settle(s);
}

int hbone_stream_bind_fd(struct hbone_stream *st, int fd)
{
    struct hbone_session *s = st->s;
    if (st->finished || !st->has_pipe) {
        close(fd);
        return -ECONNRESET;
    }
    st->has_pipe = false;
    s->busy++;
    hbone_st_bind_app(st, fd);
    s->busy--;
    hbone_session_settle(s);
    return 0;
}

static void stream_resume_task(struct loop_task *t)
{
    struct hbone_stream *st = container_of(t, struct hbone_stream, resume);
    struct hbone_session *s = st->s;
    if (st->finished)
        return;
    s->busy++;
    hbone_st_flush_down(st);
    s->busy--;
    hbone_session_settle(s);
}

void hbone_stream_resume(struct hbone_stream *st)
{
    if (st->finished || !st->has_pipe || st->down_off == st->down_len)
        return;
    st->resume.fn = stream_resume_task;
    loop_task_queue(st->s->loop, &st->resume);
}

int hbone_stream_reject(struct hbone_stream *st, int status)
{
    struct hbone_session *s = st->s;
    if (st->finished || st->h2_closed)
        return -ECONNRESET;
    if (status < 100 || status > 599)
        status = 500;
    char code[8];
    snprintf(code, sizeof(code), "%d", status);
    nghttp2_nv nva[] = {NV(":status", code)};
    st->stats.status = status;
    s->busy++;
    int rc = nghttp2_submit_response(s->h2, st->id, nva, 1, NULL);
    s->busy--;
    hbone_session_settle(s);
    return rc == 0 ? 0 : -EIO;
}

int hbone_session_abort_pending(struct hbone_session *s, const void *ctx, int err)
{
    for (struct hbone_stream *st = s->streams; st; st = st->next) {
        if (st->ctx != ctx || st->finished)
            continue;
        if (st->established)
            return 1;
        hbone_stream_abort(st, err);
        return 0;
    }
    return -ENOENT;
}

void hbone_stream_give_back(struct hbone_stream *st)
{
    st->give_back = true;
}

void hbone_stream_abort(struct hbone_stream *st, int err)
{
    struct hbone_session *s = st->s;
    if (st->finished)
        return;
    s->busy++;
    hbone_st_abort(st, err);
    s->busy--;
    hbone_session_settle(s);
}

void hbone_stream_revoke(struct hbone_stream *st, int err)
{
    struct hbone_session *s = st->s;
    if (st->finished)
        return;
    /* The abort takes the pipe off the stream, so its end would never be
     * reported: told here, once, as a peer's reset is. */
    struct hbone_pipe pipe = st->pipe;
    bool piped = st->has_pipe;
    s->busy++;
    hbone_st_abort(st, err);
    if (piped && pipe.on_end)
        pipe.on_end(pipe.ctx, err);
    s->busy--;
    hbone_session_settle(s);
}

void hbone_stream_set_ctx(struct hbone_stream *st, void *stream_ctx)
{
    st->ctx = stream_ctx;
}

struct hbone_session *hbone_stream_session(const struct hbone_stream *st)
{
    return st->s;
}

void hbone_stream_get_stats(const struct hbone_stream *st, struct hbone_stream_stats *out)
{
    *out = st->stats;
}
