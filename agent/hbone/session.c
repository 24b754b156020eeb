/* HBONE sessions over nghttp2: callbacks and the TLS-side I/O (see session.h;
 * streams live in stream.c).
 * Re-entrancy: nghttp2 must not be driven (mem_send, session deletion) from
 * inside its own callbacks, and handlers may call back into this module from
 * them. So every entry point marks the session busy, callbacks only record
 * and submit, and session_settle() does the flushing and any teardown once
 * the outermost entry point unwinds. */
#include "hbone/session.h"

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

#define OUT_BUF_CAP  (128u * 1024)
#define OUT_FILL_MAX (64u * 1024)
/* Decrypted bytes handed to nghttp2 at once. Several records per batch
 * let a large DATA frame reach the app in one write(2) instead of one per
 * 16 KiB record. On the stack: the loop thread's stack is the default
 * 8 MiB and nothing below this frame is deep. */
#define READ_BATCH (128u * 1024)
/* The largest DATA frame we accept (advertised in SETTINGS; ztunnel's
 * value) and send (bounded by the stream's up buffer anyway). Large frames
 * mean fewer headers, fewer callbacks and fewer app writes per byte. */
#define FRAME_MAX_RECV (1u << 20)

/* ---- nghttp2 callbacks -------------------------------------------------- */

static struct hbone_stream *stream_of(nghttp2_session *h2, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h2, id);
}

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
    struct hbone_session *s = user;
    if (!s->server || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (s->draining || s->closing)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    struct hbone_stream *st = hbone_st_new(s, NULL);
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    st->id = f->hd.stream_id;
    nghttp2_session_set_stream_user_data(h2, st->id, st);
    return 0;
}

static void copy_header(char *dst, size_t cap, const uint8_t *v, size_t len, bool *bad)
{
    if (dst[0] || len >= cap) { /* repeated or overlong */
        *bad = true;
        return;
    }
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    struct hbone_session *s = user;
    struct hbone_stream *st = stream_of(h2, f->hd.stream_id);
    if (!st || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (!s->server) {
        if (namelen == 7 && memcmp(name, ":status", 7) == 0 && valuelen == 3)
            st->stats.status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
        return 0;
    }
    struct hbone_request *r = &st->req;
#define HDR(lit, field)                                                                            \
    if (namelen == sizeof(lit) - 1 && memcmp(name, lit, namelen) == 0) {                           \
        copy_header(r->field, sizeof(r->field), value, valuelen, &r->bad);                         \
        return 0;                                                                                  \
    }
    HDR(":method", method)
    HDR(":authority", authority)
    HDR("forwarded", forwarded)
    HDR("baggage", baggage)
    HDR("traceparent", traceparent)
    HDR("x-meshd-protocol", protocol)
#undef HDR
    return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
    struct hbone_session *s = user;
    struct hbone_stream *st = f->hd.stream_id ? stream_of(h2, f->hd.stream_id) : NULL;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        s->draining = true;
        return 0;
    }
    if (!st)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && s->server && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
        if (st->req.bad || strcmp(st->req.method, "CONNECT") != 0 || !st->req.authority[0])
            hbone_stream_reject(st, 400);
        else if (s->handler.on_request)
            s->handler.on_request(s->handler.ctx, st, &st->req);
        else
            hbone_stream_reject(st, 503);
    } else if (f->hd.type == NGHTTP2_HEADERS && !s->server &&
               f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
        if (st->stats.status == 200) {
            hbone_st_bind_app(st, st->app.fd);
            if (st->deferred) {
                st->deferred = false;
                nghttp2_session_resume_data(h2, st->id);
            }
        } else {
            log_ratelimited(LOG_INFO, "hbone: CONNECT answered %d", st->stats.status);
            nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
        }
    }
    if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        st->peer_eof = true;
        if (st->established)
            hbone_st_flush_down(st);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    struct hbone_stream *st = stream_of(h2, id);
    if (!st || st->err) {
        /* Nobody to deliver to: still credit the connection window. */
        nghttp2_session_consume_connection(h2, len);
        return 0;
    }
    if (st->detached) { /* its owner left: dropped, both windows credited */
        nghttp2_session_consume(h2, id, len);
        return 0;
    }
    st->stats.bytes_received += len;
    size_t written = 0;
    if (st->established && hbone_st_has_end(st) && st->down_off == st->down_len) {
        ssize_t n = hbone_st_deliver(st, data, len);
        if (n > 0) {
            written = (size_t)n;
            nghttp2_session_consume(h2, id, written);
        } else if (n < 0) {
            nghttp2_session_consume(h2, id, len);
            hbone_st_abort(st, (int)n);
            return 0;
        }
    }
    if (written < len) {
        int rc = hbone_st_buffer_down(st, data + written, len - written);
        if (rc) {
            nghttp2_session_consume(h2, id, len - written);
            hbone_st_abort(st, rc);
            return 0;
        }
        hbone_st_update_app(st);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t error_code, void *user)
{
    struct hbone_stream *st = stream_of(h2, id);
    if (!st)
        return 0;
    st->h2_closed = true;
    st->h2_error = error_code;
    if (error_code != NGHTTP2_NO_ERROR && !st->err)
        st->err = -ECONNRESET;
    hbone_st_maybe_finish(st);
    return 0;
}

/* DATA frames as large as the peer, the windows and the up buffer allow
 * (nghttp2 clamps the answer to the first two). */
static ssize_t data_frame_length(nghttp2_session *h2, uint8_t type, int32_t id,
                                 int32_t session_window, int32_t stream_window,
                                 uint32_t remote_max_frame, void *user)
{
    (void)h2, (void)type, (void)id, (void)session_window, (void)stream_window;
    (void)remote_max_frame, (void)user;
    return HBONE_UP_BUF;
}

/* ---- the session ------------------------------------------------------ */

/* Moves nghttp2's output to TLS; returns false when the session failed. */
static bool session_flush(struct hbone_session *s)
{
    for (;;) {
        if (s->out_off < s->out_len) {
            ssize_t n = tls_conn_write(&s->tls, s->out + s->out_off, s->out_len - s->out_off);
            if (n == -EAGAIN)
                return true;
            if (n < 0) {
                hbone_session_fail(s, s->tls.error[0] ? s->tls.error : "write failed");
                return false;
            }
            s->out_off += (size_t)n;
            continue;
        }
        s->out_off = s->out_len = 0;
        while (s->out_len < OUT_FILL_MAX) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(s->h2, &data);
            if (n < 0) {
                hbone_session_fail(s, nghttp2_strerror((int)n));
                return false;
            }
            if (n == 0)
                break;
            if (s->out_len + (size_t)n > s->out_cap) {
                /* Only an unusually large HEADERS frame gets here: the fill
                 * stops at OUT_FILL_MAX and DATA frames are <= 16 KiB. */
                char *nb = realloc(s->out, s->out_len + (size_t)n);
                if (!nb) {
                    hbone_session_fail(s, "out of memory");
                    return false;
                }
                s->out = nb;
                s->out_cap = s->out_len + (size_t)n;
            }
            memcpy(s->out + s->out_len, data, (size_t)n);
            s->out_len += (size_t)n;
        }
        if (s->out_len == 0)
            break;
    }
    /* Nothing more from nghttp2: put the queued records on the wire. */
    int rc = tls_conn_flush(&s->tls);
    if (rc == 0 || rc == -EAGAIN)
        return true;
    hbone_session_fail(s, s->tls.error[0] ? s->tls.error : "write failed");
    return false;
}

static void session_release(struct loop_deferred *d)
{
    struct hbone_session *s = container_of(d, struct hbone_session, release);
    free(s->out);
    free(s);
}

static void session_teardown(struct hbone_session *s)
{
    if (s->torn_down)
        return;
    while (s->streams) {
        struct hbone_stream *st = s->streams;
        if (!st->err)
            st->err = -ECONNRESET;
        st->h2_closed = true;
        hbone_st_finish(st);
    }
    s->torn_down = true;
    loop_del(s->loop, &s->io);
    tls_conn_shutdown(&s->tls);
    tls_conn_deinit(&s->tls);
    nghttp2_session_del(s->h2);
    s->h2 = NULL;
    if (s->handler.on_session_done)
        s->handler.on_session_done(s->handler.ctx, s);
    s->release.fn = session_release;
    loop_defer(s->loop, &s->release);
}

/* Runs after every entry point: flush output, update interest, or tear
 * down. Does nothing while an outer entry point is still on the stack. */
/* End of the loop batch: everything the batch's events submitted leaves
 * in one flush (several streams' frames, one write(2)); then interest is
 * updated, or a finished session torn down. */
static void session_flush_task(struct loop_task *t)
{
    struct hbone_session *s = container_of(t, struct hbone_session, flush_task);
    if (s->torn_down)
        return;
    s->busy++;
    if (!s->closing && s->tls.handshake_done)
        session_flush(s);
    s->busy--;
    if (!s->closing && s->established && !nghttp2_session_want_read(s->h2) &&
        !nghttp2_session_want_write(s->h2) && s->out_off == s->out_len && !tls_conn_queued(&s->tls))
        hbone_session_fail(s, "session finished");
    if (s->closing) {
        session_teardown(s);
        return;
    }
    if (loop_set(s->loop, &s->io, tls_conn_wants(&s->tls)) != 0) {
        hbone_session_fail(s, "event loop registration failed");
        session_teardown(s);
    }
}

void hbone_session_settle(struct hbone_session *s)
{
    if (s->busy || s->torn_down)
        return;
    if (s->closing) { /* at once: callers see a failed session gone */
        session_teardown(s);
        return;
    }
    loop_task_queue(s->loop, &s->flush_task);
}

static int session_h2_new(struct hbone_session *s);

static void session_on_io(struct loop_io *io, uint32_t events)
{
    struct hbone_session *s = (struct hbone_session *)io;
    s->busy++;
    if (!s->tls.handshake_done) {
        int rc = tls_conn_handshake(&s->tls);
        if (rc == -EAGAIN)
            goto out;
        if (rc < 0) {
            hbone_session_fail(s, s->tls.error[0] ? s->tls.error : "handshake failed");
            goto out;
        }
        s->established = true;
        if (s->handler.on_established && s->handler.on_established(s->handler.ctx, s) != 0) {
            hbone_session_fail(s, "peer refused");
            goto out;
        }
        /* Authenticated: only now the buffers that make a tunnel fast, and
         * a server's HTTP/2 session. A peer that never finishes a
         * handshake costs none of them. */
        if (!(s->out = malloc(OUT_BUF_CAP)) || tls_conn_upgrade(&s->tls) != 0 ||
            (!s->h2 && session_h2_new(s) != 0)) {
            hbone_session_fail(s, "out of memory");
            goto out;
        }
        s->out_cap = OUT_BUF_CAP;
    }
    for (;;) {
        uint8_t buf[READ_BATCH];
        size_t len = 0;
        ssize_t n;
        /* OpenSSL returns one record per read; gather what the socket
         * has (read-ahead makes the later ones free) before parsing. */
        while ((n = tls_conn_read(&s->tls, buf + len, sizeof(buf) - len)) > 0) {
            len += (size_t)n;
            if (len == sizeof(buf))
                break;
        }
        if (len > 0) {
            ssize_t used = nghttp2_session_mem_recv(s->h2, buf, len);
            if (used < 0) {
                hbone_session_fail(s, nghttp2_strerror((int)used));
                break;
            }
            if (s->closing)
                break;
        }
        if (n == -EAGAIN)
            break;
        if (n <= 0) {
            hbone_session_fail(s, n == 0 ? "peer closed" : s->tls.error);
            break;
        }
    }
out:
    s->busy--;
    hbone_session_settle(s);
}

/* The HTTP/2 session and our SETTINGS. 0 or -ENOMEM. */
static int session_h2_new(struct hbone_session *s)
{
    int err = -ENOMEM;
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
        goto out;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_data_source_read_length_callback(cbs, data_frame_length);
    /* We acknowledge data only once the app has it (backpressure). */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_peer_max_concurrent_streams(opt, HBONE_MAX_STREAMS);
    int rc = s->server ? nghttp2_session_server_new2(&s->h2, cbs, s, opt)
                       : nghttp2_session_client_new2(&s->h2, cbs, s, opt);
    if (rc != 0)
        goto out;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, HBONE_MAX_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, HBONE_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 8192},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, FRAME_MAX_RECV},
    };
    if (nghttp2_submit_settings(s->h2, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(s->h2, NGHTTP2_FLAG_NONE, 0, HBONE_CONN_WINDOW) !=
            0) {
        nghttp2_session_del(s->h2);
        s->h2 = NULL;
        goto out;
    }
    err = 0;
out:
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    return err;
}

int hbone_session_new(struct loop *loop, SSL_CTX *ctx, int fd, bool server,
                      const struct hbone_handler *handler, struct hbone_session **out)
{
    struct hbone_session *s = calloc(1, sizeof(*s));
    if (!s) {
        close(fd);
        return -ENOMEM;
    }
    s->loop = loop;
    s->server = server;
    s->handler = *handler;
    s->started_ns = s->idle_since_ns = loop_now_ns();
    int err = tls_conn_init(&s->tls, ctx, fd, server);
    if (err)
        goto err_free;
    /* A client opens streams before the handshake is done: it needs its
     * HTTP/2 session now. A server's waits until the client is
     * authenticated (session_on_io). */
    if (!server && (err = session_h2_new(s)) != 0)
        goto err_tls;
    s->io.fd = fd;
    s->io.cb = session_on_io;
    s->flush_task.fn = session_flush_task;
    /* A client's first flight goes out on writability. A server waits for
     * the ClientHello: OpenSSL sets up its handshake buffers (~50 KiB) at
     * the first step, which a client that never speaks must not cost. */
    if ((err = loop_add(loop, &s->io, server ? EPOLLIN : EPOLLIN | EPOLLOUT)) != 0)
        goto err_h2;
    *out = s;
    return 0;
err_h2:
    nghttp2_session_del(s->h2);
err_tls:
    tls_conn_deinit(&s->tls);
err_free:
    free(s);
    return err;
}

void hbone_session_close(struct hbone_session *s, const char *why)
{
    hbone_session_fail(s, why);
    hbone_session_settle(s);
}

void hbone_session_drain(struct hbone_session *s)
{
    if (s->draining || s->closing)
        return;
    s->draining = true;
    if (!s->h2)
        return; /* a server still in the handshake: no streams to drain */
    s->busy++;
    nghttp2_submit_goaway(s->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(s->h2),
                          NGHTTP2_NO_ERROR, NULL, 0);
    s->busy--;
    hbone_session_settle(s);
}

SSL *hbone_session_ssl(struct hbone_session *s)
{
    return s->tls.ssl;
}

bool hbone_session_usable(const struct hbone_session *s)
{
    return !s->draining && !s->closing && !s->torn_down;
}

unsigned hbone_session_streams(const struct hbone_session *s)
{
    return s->nstreams;
}

uint64_t hbone_session_idle_since_ns(const struct hbone_session *s)
{
    return s->nstreams ? 0 : s->idle_since_ns;
}

uint64_t hbone_session_started_ns(const struct hbone_session *s)
{
    return s->started_ns;
}

bool hbone_session_established(const struct hbone_session *s)
{
    return s->established;
}

const char *hbone_session_error(const struct hbone_session *s)
{
    return s->error;
}

void hbone_session_set_user(struct hbone_session *s, void *user)
{
    s->user = user;
}

void *hbone_session_user(const struct hbone_session *s)
{
    return s->user;
}
