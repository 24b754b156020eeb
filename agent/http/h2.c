/* HTTP/2 codec over nghttp2 (see h2.h): the connection and what it
 * receives. What it sends is in h2_send.c. */
#include "http/h2_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nghttp2/nghttp2.h>

enum { P_METHOD, P_PATH, P_AUTHORITY, P_SCHEME, P_STATUS };

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void block_free(struct h2_block *b)
{
    if (b)
        free(b->buf);
    free(b);
}

static int block_put(struct h2_block *b, const uint8_t *p, size_t n, uint32_t *off)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->buf, cap);
        if (!d)
            return -ENOMEM;
        b->buf = d;
        b->cap = cap;
    }
    *off = (uint32_t)b->len;
    memcpy(b->buf + b->len, p, n);
    b->buf[b->len + n] = '\0';
    b->len += n + 1;
    return 0;
}

/* The block is whole: its fields become pointers (the buffer is final). */
static void block_view(struct h2_block *b, struct h2_head *h)
{
    for (size_t i = 0; i < b->nfields; i++) {
        const char *name = b->buf + b->off[i][0], *value = b->buf + b->off[i][1];
        b->fields[i] = http_field_of(name, value);
    }
    const char *pv[5];
    for (int i = 0; i < 5; i++)
        pv[i] = b->pseudo[i] ? b->buf + b->pseudo[i] - 1 : NULL;
    *h = (struct h2_head){.method = pv[P_METHOD],
                          .path = pv[P_PATH],
                          .authority = pv[P_AUTHORITY],
                          .scheme = pv[P_SCHEME],
                          .status = pv[P_STATUS] ? atoi(pv[P_STATUS]) : 0,
                          .fields = b->fields,
                          .nfields = b->nfields};
}

struct h2_stream *h2_stream_new(struct h2_conn *c, int32_t id)
{
    struct h2_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->c = c;
    st->id = id;
    st->next = c->streams;
    if (c->streams)
        c->streams->prev = st;
    c->streams = st;
    c->nstreams++;
    c->stats.streams++;
    return st;
}

/* Frees a stream already out of its connection's list. */
static void stream_destroy(struct h2_stream *st)
{
    st->c->nstreams--;
    block_free(st->head);
    block_free(st->trailer);
    free(st->out);
    free(st->tnv);
    free(st->tbuf);
    free(st);
}

void h2_stream_free(struct h2_stream *st)
{
    struct h2_conn *c = st->c;
    if (st->prev)
        st->prev->next = st->next;
    else
        c->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    stream_destroy(st);
}

static struct h2_stream *stream_of(nghttp2_session *ng, int32_t id)
{
    return nghttp2_session_get_stream_user_data(ng, id);
}

/* --- receiving ---------------------------------------------------------- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    struct h2_conn *c = user;
    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct h2_stream *st = stream_of(ng, f->hd.stream_id);
    if (!st && c->role == H2_SERVER && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
        if (!(st = h2_stream_new(c, f->hd.stream_id)))
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, st);
    }
    if (!st)
        return 0;
    struct h2_block *b = calloc(1, sizeof(*b));
    if (!b)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    /* A 1xx head is replaced by the final one; after the head, trailers. */
    if (st->head_done) {
        block_free(st->trailer);
        st->trailer = b;
    } else {
        block_free(st->head);
        st->head = b;
    }
    return 0;
}

static struct h2_block *current_block(struct h2_stream *st)
{
    return st->head_done ? st->trailer : st->head;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    struct h2_conn *c = user;
    (void)flags;
    struct h2_stream *st = stream_of(ng, f->hd.stream_id);
    struct h2_block *b = st ? current_block(st) : NULL;
    if (!b)
        return 0;
    b->bytes += namelen + valuelen + 32;
    if (b->bytes > H2_MAX_HEAD_BYTES || b->nfields >= H2_MAX_FIELDS) {
        b->refused = true;
        c->stats.refused++;
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM */
    }
    uint32_t off;
    if (namelen && name[0] == ':') {
        static const char *const names[5] = {":method", ":path", ":authority", ":scheme",
                                             ":status"};
        for (int i = 0; i < 5; i++) {
            if (strlen(names[i]) == namelen && memcmp(names[i], name, namelen) == 0) {
                if (block_put(b, value, valuelen, &off))
                    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
                b->pseudo[i] = off + 1;
            }
        }
        return 0; /* nghttp2 checked which pseudo-headers are allowed */
    }
    uint32_t noff, voff;
    if (block_put(b, name, namelen, &noff) || block_put(b, value, valuelen, &voff))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    b->off[b->nfields][0] = noff;
    b->off[b->nfields][1] = voff;
    b->nfields++;
    return 0;
}

/* The peer reset a stream: past the budget, the connection ends
 * (CVE-2023-44487: a client opening and cancelling streams at once keeps
 * the server busy at no concurrency cost to itself). */
static void count_reset(struct h2_conn *c)
{
    uint64_t now = mono_ns();
    c->stats.resets_received++;
    if (now - c->rst_window_start > H2_RST_WINDOW_NS) {
        c->rst_window_start = now;
        c->rst_count = 0;
    }
    if (++c->rst_count > H2_RST_MAX && !c->failed) {
        c->failed = true;
        c->stats.violations++;
        nghttp2_session_terminate_session(c->ng, H2_ENHANCE_CALM);
    }
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    struct h2_conn *c = user;
    struct h2_stream *st = f->hd.stream_id ? stream_of(ng, f->hd.stream_id) : NULL;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS: {
        struct h2_block *b = st ? current_block(st) : NULL;
        if (!b)
            return 0;
        struct h2_head h;
        block_view(b, &h);
        h.end_stream = end;
        h.trailers = st->head_done;
        bool interim = c->role == H2_CLIENT && !st->head_done && h.status >= 100 && h.status < 200;
        if (!interim)
            st->head_done = true;
        if (!interim && c->cb.on_head && c->cb.on_head(c->ctx, st, &h) != 0) {
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, H2_REFUSED_STREAM);
            return 0;
        }
        if (h.trailers) {
            block_free(st->trailer);
            st->trailer = NULL;
        }
        if (end && c->cb.on_end)
            c->cb.on_end(c->ctx, st);
        return 0;
    }
    case NGHTTP2_DATA:
        if (st && end && c->cb.on_end)
            c->cb.on_end(c->ctx, st);
        return 0;
    case NGHTTP2_RST_STREAM:
        count_reset(c);
        return 0;
    case NGHTTP2_GOAWAY:
        c->goaway_seen = true;
        return 0;
    default:
        return 0;
    }
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    struct h2_conn *c = user;
    (void)flags;
    struct h2_stream *st = stream_of(ng, id);
    if (!st || !st->head_done || !c->cb.on_data) {
        nghttp2_session_consume(ng, id, len); /* nobody to deliver to */
        return 0;
    }
    st->unconsumed += len;
    if (c->cb.on_data(c->ctx, st, data, len) != 0)
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, H2_INTERNAL_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error, void *user)
{
    struct h2_conn *c = user;
    struct h2_stream *st = stream_of(ng, id);
    if (!st)
        return 0;
    if (st->unconsumed) /* the window of what the caller never passed on */
        nghttp2_session_consume_connection(ng, st->unconsumed);
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    if (c->cb.on_close)
        c->cb.on_close(c->ctx, st, error);
    h2_stream_free(st);
    return 0;
}

static int on_invalid_frame(nghttp2_session *ng, const nghttp2_frame *f, int err, void *user)
{
    struct h2_conn *c = user;
    (void)ng;
    (void)f;
    (void)err;
    c->stats.violations++;
    return 0;
}

/* A connection error nghttp2 answers with GOAWAY (stream errors only
 * reset their stream and do not come here). */
static int on_error(nghttp2_session *ng, int lib_error, const char *msg, size_t len, void *user)
{
    struct h2_conn *c = user;
    (void)ng;
    (void)msg;
    (void)len;
    if (lib_error != 0 && !c->failed) {
        c->failed = true;
        c->stats.violations++;
    }
    return 0;
}

/* Some violations nghttp2 answers with GOAWAY without telling (DATA on
 * stream 0): our GOAWAY with an error code is how they show. */
static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    struct h2_conn *c = user;
    (void)ng;
    if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != H2_NO_ERROR && !c->failed) {
        c->failed = true;
        c->stats.violations++;
    }
    return 0;
}

/* --- the connection ----------------------------------------------------- */

int h2_conn_new(enum h2_role role, const struct h2_callbacks *cb, void *ctx, struct h2_conn **out)
{
    struct h2_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    *c = (struct h2_conn){.role = role, .cb = *cb, .ctx = ctx, .rst_window_start = mono_ns()};
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    int rc = -ENOMEM;
    if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
        goto out;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, on_invalid_frame);
    nghttp2_session_callbacks_set_error_callback2(cbs, on_error);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_continuations(opt, H2_MAX_CONTINUATION);
    nghttp2_option_set_stream_reset_rate_limit(opt, H2_RST_MAX, H2_RST_MAX / 10);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_max_settings(opt, 32);
    if (role == H2_SERVER)
        rc = nghttp2_session_server_new2(&c->ng, cbs, c, opt);
    else
        rc = nghttp2_session_client_new2(&c->ng, cbs, c, opt);
    if (rc) {
        rc = -ENOMEM;
        goto out;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_MAX_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, H2_MAX_HEAD_BYTES},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    size_t niv = role == H2_SERVER ? 3 : 4; /* ENABLE_PUSH is a client's setting */
    rc = nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, niv);
    if (rc == 0)
        rc = nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW);
    rc = rc ? -ENOMEM : 0;
out:
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rc) {
        if (c->ng)
            nghttp2_session_del(c->ng);
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void h2_conn_free(struct h2_conn *c)
{
    if (!c)
        return;
    c->cb = (struct h2_callbacks){0}; /* nghttp2_session_del closes streams: tell no one */
    nghttp2_session_del(c->ng);
    for (struct h2_stream *st = c->streams, *next; st; st = next) {
        next = st->next;
        stream_destroy(st);
    }
    free(c);
}

int h2_conn_recv(struct h2_conn *c, const uint8_t *p, size_t n)
{
    if (c->failed)
        return -EPROTO;
    ssize_t rc = nghttp2_session_mem_recv(c->ng, p, n);
    if (rc < 0) {
        c->failed = true;
        c->stats.violations++;
        /* A fatal error (a bad preface, a flood): GOAWAY if still possible. */
        bool flood = rc == NGHTTP2_ERR_FLOODED || rc == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS;
        nghttp2_session_terminate_session(c->ng, flood ? H2_ENHANCE_CALM : H2_PROTOCOL_ERROR);
        return rc == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
    }
    /* A connection error nghttp2 answered with GOAWAY itself. */
    if (c->failed || (!nghttp2_session_want_read(c->ng) && !c->goaway_seen)) {
        c->failed = true;
        return -EPROTO;
    }
    return 0;
}

ssize_t h2_conn_pull(struct h2_conn *c, const uint8_t **out)
{
    ssize_t n = nghttp2_session_mem_send(c->ng, out);
    return n < 0 ? -EPROTO : n;
}

bool h2_conn_done(const struct h2_conn *c)
{
    return !nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng);
}

bool h2_conn_accepting(const struct h2_conn *c)
{
    return !c->goaway_seen && !c->failed && nghttp2_session_want_read(c->ng) &&
           c->nstreams < H2_MAX_STREAMS &&
           c->nstreams <
               nghttp2_session_get_remote_settings(c->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

unsigned h2_conn_streams(const struct h2_conn *c)
{
    return c->nstreams;
}

void h2_conn_close_streams(struct h2_conn *c, uint32_t error)
{
    /* Detached first: on_close may not reach the list. */
    struct h2_stream *list = c->streams;
    c->streams = NULL;
    for (struct h2_stream *st = list, *next; st; st = next) {
        next = st->next;
        if (st->id > 0)
            nghttp2_session_set_stream_user_data(c->ng, st->id, NULL);
        if (c->cb.on_close)
            c->cb.on_close(c->ctx, st, error);
        stream_destroy(st);
    }
}

void h2_conn_goaway(struct h2_conn *c, uint32_t code)
{
    int32_t last = nghttp2_session_get_last_proc_stream_id(c->ng);
    if (code == H2_NO_ERROR) /* the streams in flight finish, then want_read ends */
        nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, last, code, NULL, 0);
    else
        nghttp2_session_terminate_session2(c->ng, last, code);
}

void h2_conn_get_stats(const struct h2_conn *c, struct h2_stats *st)
{
    *st = c->stats;
}

void *h2_stream_user(const struct h2_stream *st)
{
    return st->user;
}

void h2_stream_set_user(struct h2_stream *st, void *user)
{
    st->user = user;
}

int32_t h2_stream_id(const struct h2_stream *st)
{
    return st->id;
}

size_t h2_stream_queued(const struct h2_stream *st)
{
    return st->olen - st->ooff;
}
