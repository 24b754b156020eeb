/* HTTP/2 at the edge (see edge_h2.h): one client connection's codec, and
 * per stream an HTTP/1.1 exchange with the carrier. A stream: OPEN (the
 * request head written, its body following as DATA arrives) -> its
 * response head, body, end framed back -> closed (the stream's socket
 * closed; reset when it ended before its response did). */
#include "gateway/edge_h2.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/container.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/upstream.h"
#include "http/h1.h"
#include "http/h2.h"

#define EH2_IN_BUF      (16u * 1024)
#define EH2_OUT_MAX     (256u * 1024) /* the connection's framed bytes not yet written */
#define EH2_RESP_QUEUED (64u * 1024)  /* a response's bytes waiting to be framed */
#define EH2_REQ_MAX     (H2_STREAM_WINDOW + 4096u) /* a window, plus chunk framing */
#define EH2_IDLE_NS     (3600ull * 1000000000ull)  /* Envoy's idle_timeout */

/* A byte queue toward a socket, bounded by `cap`. */
struct ebuf {
    char *p;
    size_t off, len, cap;
};

static int ebuf_append(struct ebuf *b, const void *p, size_t n, size_t max)
{
    if (b->off == b->len)
        b->off = b->len = 0;
    if (b->len + n > b->cap) {
        if (b->off) { /* slide what is left to the front first */
            memmove(b->p, b->p + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        if (cap > max)
            return -ENOBUFS;
        if (cap != b->cap) {
            char *q = realloc(b->p, cap);
            if (!q)
                return -ENOMEM;
            b->p = q;
            b->cap = cap;
        }
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static size_t ebuf_pending(const struct ebuf *b)
{
    return b->len - b->off;
}

/* 0 (all written, or the socket is full), or -errno. */
static int ebuf_flush(struct ebuf *b, int fd)
{
    while (b->off < b->len) {
        ssize_t n = send(fd, b->p + b->off, b->len - b->off, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        b->off += (size_t)n;
    }
    return 0;
}

struct eh2_stream {
    struct edge_h2 *c;
    struct h2_stream *st; /* NULL once the codec closed it */
    struct eh2_stream *prev, *next;
    struct loop_io io; /* our end of the stream's carrier connection */
    struct h1_parser *resp;
    struct ebuf out;     /* request bytes toward the carrier */
    size_t body_pending; /* request DATA in `out`, consumed once written */
    bool chunked, resp_started, resp_ended_in_head, resp_done, gone;
    struct loop_deferred release;
};

struct edge_h2 {
    struct edge_h2s *set;
    struct edge_h2 *prev, *next;
    struct loop_io io;
    struct h2_conn *h2;
    struct ebuf out;
    void *user;
    struct eh2_stream *streams;
    uint64_t idle_since_ns;
    bool ended, goaway;
    struct loop_task flush;
    struct loop_deferred release;
};

static void conn_end(struct edge_h2 *c, bool reset);

/* --- a stream ------------------------------------------------------------- */

static void stream_free_now(struct loop_deferred *d)
{
    struct eh2_stream *s = container_of(d, struct eh2_stream, release);
    h1_parser_free(s->resp);
    free(s->out.p);
    free(s);
}

/* The stream's carrier connection ends; the codec's stream, if still
 * there, is reset. */
static void stream_gone(struct eh2_stream *s, bool reset_stream)
{
    if (s->gone)
        return;
    s->gone = true;
    struct edge_h2 *c = s->c;
    if (s->io.fd >= 0) {
        loop_del(c->set->loop, &s->io);
        if (s->resp_done)
            close(s->io.fd);
        else
            close_with_reset(s->io.fd);
        s->io.fd = -1;
    }
    if (s->prev)
        s->prev->next = s->next;
    else
        c->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (!c->streams)
        c->idle_since_ns = loop_now_ns();
    if (s->st) {
        h2_stream_set_user(s->st, NULL);
        if (reset_stream)
            h2_reset(c->h2, s->st, H2_INTERNAL_ERROR);
        s->st = NULL;
    }
    loop_defer(c->set->loop, &s->release);
    loop_task_queue(c->set->loop, &c->flush);
}

static void stream_events(struct eh2_stream *s)
{
    uint32_t ev = 0;
    if (!s->resp_done && (!s->st || h2_stream_queued(s->st) < EH2_RESP_QUEUED))
        ev |= EPOLLIN | EPOLLRDHUP;
    if (ebuf_pending(&s->out))
        ev |= EPOLLOUT;
    loop_set(s->c->set->loop, &s->io, ev);
}

static int stream_flush(struct eh2_stream *s)
{
    int rc = ebuf_flush(&s->out, s->io.fd);
    if (rc == 0 && !ebuf_pending(&s->out) && s->body_pending && s->st) {
        h2_consume(s->c->h2, s->st, s->body_pending); /* the client may send as much more */
        s->body_pending = 0;
        loop_task_queue(s->c->set->loop, &s->c->flush);
    }
    return rc;
}

/* The carrier's response, as the stream's. */
static int resp_head(void *ctx, const struct h1_head *h)
{
    struct eh2_stream *s = ctx;
    if (h->status < 200)
        return H1_OK; /* 100 Continue: HTTP/2 clients do not wait for it */
    struct http_field f[H1_MAX_HEADERS_DEFAULT];
    size_t n = 0;
    for (size_t i = 0; i < h->nheaders && n < H1_MAX_HEADERS_DEFAULT; i++) {
        const struct http_field *x = &h->headers[i];
        if (h1_header_is_hop(x->name, x->name_len) ||
            h1_head_connection_lists(h, x->name, x->name_len))
            continue;
        f[n++] = *x;
    }
    char len[24];                    /* copied by the codec */
    if (h->body == H1_BODY_LENGTH) { /* the length is framing in HTTP/1, a field in HTTP/2 */
        snprintf(len, sizeof(len), "%llu", (unsigned long long)h->content_length);
        f[n++] = http_field_of("content-length", len);
    }
    struct h2_head out = {.status = h->status,
                          .fields = f,
                          .nfields = n,
                          .end_stream = h->body == H1_BODY_NONE ||
                                        (h->body == H1_BODY_LENGTH && !h->content_length)};
    s->resp_started = true;
    s->resp_ended_in_head = out.end_stream;
    if (!s->st)
        return H1_OK;
    return h2_submit_response(s->c->h2, s->st, &out) == 0 ? H1_OK : -1;
}

static int resp_body(void *ctx, const char *p, size_t n)
{
    struct eh2_stream *s = ctx;
    if (!s->st || !n)
        return H1_OK;
    return h2_send_data(s->c->h2, s->st, p, n, false) == 0 ? H1_OK : -1;
}

static int resp_complete(void *ctx)
{
    struct eh2_stream *s = ctx;
    if (!s->resp_started)
        return H1_OK; /* a 1xx */
    s->resp_done = true;
    /* end_stream went with a bodiless head; else an empty DATA ends it. */
    if (s->st && !s->resp_ended_in_head)
        h2_send_data(s->c->h2, s->st, NULL, 0, true);
    return H1_OK;
}

static const struct h1_callbacks resp_callbacks = {
    .on_head = resp_head, .on_body = resp_body, .on_complete = resp_complete};

static void stream_on_event(struct loop_io *io, uint32_t events)
{
    struct eh2_stream *s = container_of(io, struct eh2_stream, io);
    if (s->gone)
        return;
    if ((events & EPOLLOUT) && stream_flush(s) != 0) {
        stream_gone(s, true);
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        char buf[EH2_IN_BUF];
        ssize_t n = recv(io->fd, buf, sizeof(buf), 0);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            stream_gone(s, true);
            return;
        }
        size_t used;
        int rc = n > 0    ? h1_parse(s->resp, buf, (size_t)n, &used)
                 : n == 0 ? h1_parse_eof(s->resp)
                          : H1_OK;
        loop_task_queue(s->c->set->loop, &s->c->flush);
        if (rc < 0 || (n == 0 && !s->resp_done)) {
            s->c->set->stats.stream_errors++;
            stream_gone(s, true); /* cut short, or not HTTP: the client sees a reset */
            return;
        }
        if (s->resp_done && (!s->st || n == 0)) {
            stream_gone(s, false);
            return;
        }
    }
    stream_events(s);
}

/* A new stream's request, as an HTTP/1.1 request to a new carrier
 * connection. */
static int stream_open(struct edge_h2 *c, struct h2_stream *st, const struct h2_head *h)
{
    if (!h->method || !h->path || !strcmp(h->method, "CONNECT"))
        return -EPROTO; /* no extended CONNECT or tunnels at the edge */
    struct eh2_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    *s = (struct eh2_stream){.c = c,
                             .st = st,
                             .io = {.fd = -1, .cb = stream_on_event},
                             .release = {.fn = stream_free_now}};
    struct http_field f[H2_MAX_FIELDS + 1];
    size_t n = 0;
    bool has_len = false;
    if (h->authority && *h->authority)
        f[n++] = http_field_of("host", h->authority);
    for (size_t i = 0; i < h->nfields && n < H2_MAX_FIELDS + 1; i++) {
        if (h->fields[i].name_len == 14 && !strcasecmp(h->fields[i].name, "content-length"))
            has_len = true; /* nghttp2 checked it against the DATA */
        if (h->authority && *h->authority && !strcasecmp(h->fields[i].name, "host"))
            continue; /* :authority wins (RFC 9113 8.3.1) */
        f[n++] = h->fields[i];
    }
    const char *len = NULL;
    for (size_t i = 0; i < h->nfields && has_len; i++)
        if (!strcasecmp(h->fields[i].name, "content-length"))
            len = h->fields[i].value;
    s->chunked = !h->end_stream && !len;
    struct h1_out_head oh = {.method = h->method,
                             .target = h->path,
                             .headers = f,
                             .nheaders = n,
                             .body = h->end_stream ? H1_BODY_NONE
                                     : len         ? H1_BODY_LENGTH
                                                   : H1_BODY_CHUNKED,
                             .content_length = len ? strtoull(len, NULL, 10) : 0,
                             .keep_alive = false};
    char head[H2_MAX_HEAD_BYTES + 1024];
    size_t hl = h1_format_head(&oh, head, sizeof(head));
    int sp[2] = {-1, -1};
    int rc = hl == 0 || hl >= sizeof(head) ? -EPROTO : 0;
    if (rc == 0)
        rc = h1_parser_new(false, NULL, &resp_callbacks, s, &s->resp);
    if (rc == 0)
        rc = ebuf_append(&s->out, head, hl, sizeof(head));
    if (rc == 0 && socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) == -1)
        rc = -errno;
    if (rc == 0) {
        s->io.fd = sp[0];
        rc = loop_add(c->set->loop, &s->io, EPOLLIN | EPOLLRDHUP | EPOLLOUT);
        if (rc) {
            close(sp[0]);
            s->io.fd = -1;
        }
    }
    if (rc == 0 && !strcmp(h->method, "HEAD"))
        h1_parser_next_is_head_response(s->resp, true);
    if (rc == 0) {
        rc = c->set->open(c->set->ctx, c->user, sp[1]); /* sp[1] is the carrier's now */
        sp[1] = -1;
    }
    if (rc) {
        if (sp[1] >= 0)
            close(sp[1]);
        if (s->io.fd >= 0) {
            loop_del(c->set->loop, &s->io);
            close_with_reset(s->io.fd);
        }
        h1_parser_free(s->resp);
        free(s->out.p);
        free(s);
        return rc;
    }
    s->next = c->streams;
    if (c->streams)
        c->streams->prev = s;
    c->streams = s;
    h2_stream_set_user(st, s);
    c->set->stats.streams++;
    return 0;
}

/* --- the codec's callbacks ------------------------------------------------ */

static int on_head(void *ctx, struct h2_stream *st, const struct h2_head *h)
{
    struct edge_h2 *c = ctx;
    struct eh2_stream *s = h2_stream_user(st);
    if (h->trailers) { /* request trailers: HTTP/1.1 carries none here, the body ends */
        if (s && s->chunked && ebuf_append(&s->out, h1_last_chunk, 5, EH2_REQ_MAX) != 0)
            stream_gone(s, true);
        if (s && !s->gone && stream_flush(s) == 0)
            stream_events(s);
        return 0;
    }
    return stream_open(c, st, h) == 0 ? 0 : -1;
}

static int on_data(void *ctx, struct h2_stream *st, const uint8_t *p, size_t n)
{
    struct eh2_stream *s = h2_stream_user(st);
    if (!s)
        return 0;
    char ch[H1_CHUNK_HEAD_MAX];
    int rc = 0;
    if (s->chunked && n) {
        size_t cl = h1_format_chunk_head(n, ch);
        rc = ebuf_append(&s->out, ch, cl, EH2_REQ_MAX);
    }
    if (rc == 0)
        rc = ebuf_append(&s->out, p, n, EH2_REQ_MAX);
    if (rc == 0 && s->chunked && n)
        rc = ebuf_append(&s->out, h1_chunk_tail, 2, EH2_REQ_MAX);
    s->body_pending += n;
    if (rc == 0)
        rc = stream_flush(s);
    if (rc) {
        stream_gone(s, true);
        return 0;
    }
    stream_events(s);
    return 0;
}

static void on_end(void *ctx, struct h2_stream *st)
{
    struct eh2_stream *s = h2_stream_user(st);
    if (!s || !s->chunked)
        return;
    if (ebuf_append(&s->out, h1_last_chunk, 5, EH2_REQ_MAX) != 0 || stream_flush(s) != 0) {
        stream_gone(s, true);
        return;
    }
    s->chunked = false; /* the body is whole */
    stream_events(s);
}

static void on_close(void *ctx, struct h2_stream *st, uint32_t error)
{
    struct eh2_stream *s = h2_stream_user(st);
    if (!s)
        return;
    s->st = NULL; /* the codec forgets it */
    stream_gone(s, false);
}

static void on_sent(void *ctx, struct h2_stream *st, size_t n)
{
    struct eh2_stream *s = h2_stream_user(st);
    if (s && !s->gone)
        stream_events(s); /* room again: read more of the response */
}

static const struct h2_callbacks eh2_callbacks = {.on_head = on_head,
                                                  .on_data = on_data,
                                                  .on_end = on_end,
                                                  .on_close = on_close,
                                                  .on_sent = on_sent};

/* --- the connection ------------------------------------------------------- */

static void conn_free_now(struct loop_deferred *d)
{
    struct edge_h2 *c = container_of(d, struct edge_h2, release);
    h2_conn_free(c->h2);
    free(c->out.p);
    free(c);
}

static void conn_end(struct edge_h2 *c, bool reset)
{
    if (c->ended)
        return;
    c->ended = true;
    struct edge_h2s *set = c->set;
    while (c->streams)
        stream_gone(c->streams, false);
    loop_del(set->loop, &c->io);
    if (reset)
        close_with_reset(c->io.fd);
    else
        close(c->io.fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        set->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    set->stats.active--;
    if (set->user_free)
        set->user_free(c->user);
    loop_defer(set->loop, &c->release);
}

static void conn_flush(struct edge_h2 *c)
{
    if (c->ended)
        return;
    while (ebuf_pending(&c->out) < EH2_OUT_MAX) {
        const uint8_t *p;
        ssize_t n = h2_conn_pull(c->h2, &p);
        if (n < 0) {
            conn_end(c, true);
            return;
        }
        if (n == 0)
            break;
        if (ebuf_append(&c->out, p, (size_t)n, 2 * EH2_OUT_MAX) != 0) {
            conn_end(c, true);
            return;
        }
    }
    if (ebuf_flush(&c->out, c->io.fd) != 0) {
        conn_end(c, true);
        return;
    }
    if (h2_conn_done(c->h2) && !ebuf_pending(&c->out)) {
        conn_end(c, false);
        return;
    }
    uint32_t ev = EPOLLRDHUP;
    if (ebuf_pending(&c->out) < EH2_OUT_MAX)
        ev |= EPOLLIN; /* a client not reading its responses is not read either */
    if (ebuf_pending(&c->out))
        ev |= EPOLLOUT;
    loop_set(c->set->loop, &c->io, ev);
}

static void conn_flush_task(struct loop_task *t)
{
    conn_flush(container_of(t, struct edge_h2, flush));
}

static void conn_on_event(struct loop_io *io, uint32_t events)
{
    struct edge_h2 *c = container_of(io, struct edge_h2, io);
    if (c->ended)
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        uint8_t buf[EH2_IN_BUF];
        ssize_t n = recv(io->fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_end(c, n != 0 || c->streams);
            return;
        }
        if (n > 0 && h2_conn_recv(c->h2, buf, (size_t)n) != 0) {
            log_ratelimited(LOG_INFO, "gateway: h2: client connection refused: protocol "
                                      "error or flood");
            conn_flush(c); /* the GOAWAY */
            conn_end(c, true);
            return;
        }
    }
    conn_flush(c);
}

int edge_h2_start(struct edge_h2s *set, int fd, void *user)
{
    struct edge_h2 *c = calloc(1, sizeof(*c));
    int rc = c ? h2_conn_new(H2_SERVER, &eh2_callbacks, c, &c->h2) : -ENOMEM;
    if (rc == 0) {
        c->set = set;
        c->user = user;
        c->io = (struct loop_io){.fd = fd, .cb = conn_on_event};
        c->flush = (struct loop_task){.fn = conn_flush_task};
        c->release = (struct loop_deferred){.fn = conn_free_now};
        c->idle_since_ns = loop_now_ns();
        rc = loop_add(set->loop, &c->io, EPOLLIN | EPOLLRDHUP);
    }
    if (rc) {
        if (c)
            h2_conn_free(c->h2);
        free(c);
        close_with_reset(fd);
        if (set->user_free)
            set->user_free(user);
        return rc;
    }
    c->next = set->head;
    if (set->head)
        set->head->prev = c;
    set->head = c;
    set->stats.connections++;
    set->stats.active++;
    conn_flush(c); /* our SETTINGS */
    return 0;
}

void edge_h2s_tick(struct edge_h2s *set, uint64_t now_ns)
{
    for (struct edge_h2 *c = set->head; c; c = c->next)
        if (!c->goaway && !c->streams && now_ns - c->idle_since_ns > EH2_IDLE_NS) {
            c->goaway = true;
            h2_conn_goaway(c->h2, H2_NO_ERROR);
            loop_task_queue(set->loop, &c->flush);
        }
}

void edge_h2s_close_all(struct edge_h2s *set)
{
    while (set->head)
        conn_end(set->head, true);
}
