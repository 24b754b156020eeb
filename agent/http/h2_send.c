/* What the HTTP/2 codec sends (see h2.h): heads with their names lower
 * case, DATA from a bounded per-stream queue through nghttp2's data
 * provider (deferred while empty), trailers after the last DATA, resets
 * and window updates for what the caller consumed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h2_internal.h"

/* --- sending ------------------------------------------------------------ */

static ssize_t read_data(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
    struct h2_conn *c = user;
    struct h2_stream *st = src->ptr;
    size_t n = st->olen - st->ooff;
    if (n > length)
        n = length;
    if (n) /* nothing queued: no buffer at all */
        memcpy(buf, st->out + st->ooff, n);
    st->ooff += n;
    if (st->ooff == st->olen)
        st->ooff = st->olen = 0;
    if (n && c->cb.on_sent)
        c->cb.on_sent(c->ctx, st, n);
    if (st->olen == 0 && st->out_eof) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->tnv) {
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            if (nghttp2_submit_trailer(ng, id, st->tnv, st->ntnv) != 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        return (ssize_t)n;
    }
    return n ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
}

/* nghttp2 names and values for `h`: pseudo-headers first, names lower
 * case (copied into *bufp, which the caller frees after submitting). */
static nghttp2_nv *build_nv(const struct h2_head *h, bool request, size_t *nnv, char **bufp)
{
    size_t bytes = 16;
    for (size_t i = 0; i < h->nfields; i++)
        bytes += h->fields[i].name_len + 1;
    nghttp2_nv *nv = calloc(h->nfields + 5, sizeof(*nv));
    char *buf = malloc(bytes);
    if (!nv || !buf) {
        free(nv);
        free(buf);
        return NULL;
    }
    size_t n = 0;
#define NV(nm, val)                                                                                \
    nv[n++] = (nghttp2_nv)                                                                         \
    {                                                                                              \
        (uint8_t *)(nm), (uint8_t *)(val), strlen(nm), strlen(val), NGHTTP2_NV_FLAG_NONE           \
    }
    if (request) {
        NV(":method", h->method);
        NV(":scheme", h->scheme ? h->scheme : "http");
        NV(":authority", h->authority ? h->authority : "");
        NV(":path", h->path);
    } else if (h->status) {
        snprintf(buf, 16, "%d", h->status);
        NV(":status", buf);
    }
#undef NV
    char *p = buf + 16;
    for (size_t i = 0; i < h->nfields; i++) {
        const struct http_field *f = &h->fields[i];
        for (uint32_t k = 0; k < f->name_len; k++) {
            char ch = f->name[k];
            p[k] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
        }
        nv[n++] = (nghttp2_nv){(uint8_t *)p, (uint8_t *)f->value, f->name_len, f->value_len,
                               NGHTTP2_NV_FLAG_NONE};
        p += f->name_len + 1;
    }
    *nnv = n;
    *bufp = buf;
    return nv;
}

int h2_submit_request(struct h2_conn *c, const struct h2_head *h, void *user,
                      struct h2_stream **out)
{
    if (!h2_conn_accepting(c))
        return -EAGAIN;
    size_t n;
    char *buf;
    nghttp2_nv *nv = build_nv(h, true, &n, &buf);
    if (!nv)
        return -ENOMEM;
    struct h2_stream *st = h2_stream_new(c, 0);
    if (!st) {
        free(nv);
        free(buf);
        return -ENOMEM;
    }
    st->user = user;
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_data};
    st->has_provider = !h->end_stream;
    int32_t id = nghttp2_submit_request(c->ng, NULL, nv, n, h->end_stream ? NULL : &dp, st);
    free(nv);
    free(buf);
    if (id < 0) {
        h2_stream_free(st);
        return id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? -EAGAIN : -ENOMEM;
    }
    st->id = id;
    *out = st;
    return 0;
}

int h2_submit_response(struct h2_conn *c, struct h2_stream *st, const struct h2_head *h)
{
    size_t n;
    char *buf;
    nghttp2_nv *nv = build_nv(h, false, &n, &buf);
    if (!nv)
        return -ENOMEM;
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_data};
    st->has_provider = !h->end_stream;
    int rc = nghttp2_submit_response(c->ng, st->id, nv, n, h->end_stream ? NULL : &dp);
    free(nv);
    free(buf);
    return rc ? -EPROTO : 0;
}

int h2_send_data(struct h2_conn *c, struct h2_stream *st, const void *p, size_t n, bool eof)
{
    if (st->out_eof)
        return -EPIPE;
    /* The bound is on what waits to be framed, not on what a reader that
     * always leaves a remainder (a slow client) had framed before. */
    if (st->olen - st->ooff + n > H2_MAX_FRAME_QUEUE)
        return -ENOBUFS;
    if (st->ooff && st->olen + n > H2_MAX_FRAME_QUEUE) { /* the framed part leaves */
        memmove(st->out, st->out + st->ooff, st->olen - st->ooff);
        st->olen -= st->ooff;
        st->ooff = 0;
    }
    if (n) {
        char *d = realloc(st->out, st->olen + n);
        if (!d)
            return -ENOMEM;
        st->out = d;
        memcpy(st->out + st->olen, p, n);
        st->olen += n;
    }
    st->out_eof = eof;
    if (st->has_provider)
        nghttp2_session_resume_data(c->ng, st->id);
    return 0;
}

int h2_send_trailers(struct h2_conn *c, struct h2_stream *st, const struct http_field *f, size_t n)
{
    struct h2_head h = {.fields = f, .nfields = n};
    size_t nnv;
    char *names;
    nghttp2_nv *nv = build_nv(&h, false, &nnv, &names);
    if (!nv)
        return -ENOMEM;
    /* The values are the caller's: copied next to the names. */
    size_t bytes = 0;
    for (size_t i = 0; i < nnv; i++)
        bytes += nv[i].namelen + nv[i].valuelen + 2;
    char *buf = malloc(bytes + 1), *q = buf;
    for (size_t i = 0; buf && i < nnv; i++) {
        memcpy(q, nv[i].name, nv[i].namelen);
        nv[i].name = (uint8_t *)q;
        q += nv[i].namelen + 1;
        memcpy(q, nv[i].value, nv[i].valuelen);
        nv[i].value = (uint8_t *)q;
        q += nv[i].valuelen + 1;
    }
    free(names);
    if (!buf) {
        free(nv);
        return -ENOMEM;
    }
    free(st->tnv);
    free(st->tbuf);
    st->tnv = nv;
    st->ntnv = nnv;
    st->tbuf = buf;
    return h2_send_data(c, st, NULL, 0, true);
}

void h2_reset(struct h2_conn *c, struct h2_stream *st, uint32_t code)
{
    nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, st->id, code);
}

void h2_consume(struct h2_conn *c, struct h2_stream *st, size_t n)
{
    if (n > st->unconsumed)
        n = st->unconsumed;
    st->unconsumed -= n;
    if (n)
        nghttp2_session_consume(c->ng, st->id, n);
}
