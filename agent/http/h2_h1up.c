/* An HTTP/2 stream's attempt over HTTP/1.1 (see h2_session.h): an h2
 * client's request whose decision says the backend speaks HTTP/1.1 only
 * (`upstream_http1`: at the edge, Istio's gateway talks to a port by its
 * declared protocol, and http is HTTP/1.1). One upstream connection per
 * attempt at a time, opened as an HTTP/1 upstream's is (hup_open: plain
 * TCP from the pod's netns, or a socket pair an HBONE stream carries) or
 * taken idle from this module's keep-alive pool (same endpoint, same way,
 * same pod): the attempt's head (Host from the authority; a body of
 * unknown length chunked), the kept body and then the stream's DATA as it
 * arrives, the response parsed back (hop-by-hop and framing fields
 * dropped: HTTP/2 frames the body itself) into the exchange's h2x_up_*
 * reports, as an upstream HTTP/2 stream's would be. Flow control end to
 * end: the client's DATA is consumed once written to the socket
 * (h2x_up_sent); the response is read only while less than
 * H2H1_RESP_QUEUED of it waits to be framed to the client (h2h1_resume
 * when the client took some). States: CONNECTING -> SENDING/READING ->
 * done (the response whole: the exchange told h2x_up_end; the connection
 * IDLE when both sides kept it alive and the request went whole, else
 * closed) or failed (h2x_up_closed: a retry, or a cut). An IDLE connection
 * that becomes readable (the server closed) or waits past H2H1_IDLE_NS is
 * closed; at most H2H1_IDLE_MAX wait per endpoint (the proxy's
 * max_idle_upstreams when set). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/container.h"
#include "core/upstream.h"
#include "enroll/pods.h"
#include "http/h2_session.h"

#define H2H1_RESP_QUEUED (64u * 1024)
#define H2H1_IDLE_NS     (60ull * 1000000000) /* as an HTTP/1 upstream's */
#define H2H1_IDLE_MAX    32u
#define H2H1_READ_ROUNDS 4 /* reads per event: other connections get their turn */

struct h2h1 {
    struct http_proxy *hp;
    struct h2h1 *prev, *next; /* hp->h2h1s, while open */
    struct h2x *x;            /* NULL once the exchange let go or was told the end */
    struct loop_io io;
    struct hbuf out;
    struct h1_parser *resp;
    size_t body_unsent;        /* DATA in `out` whose window the client waits on */
    struct outbound_route key; /* what it reaches, from whose netns */
    uint32_t pod_id;
    uint64_t requests, idle_since_ns;
    bool connected, hbone, closed, idle;
    bool denied; /* its HBONE tunnel was refused by the peer's policy (401) */
    /* the attempt's */
    bool chunked, req_done, got_bytes, resp_started, resp_done, resp_keep_alive;
    struct loop_deferred release;
};

static void free_now(struct loop_deferred *d)
{
    struct h2h1 *a = container_of(d, struct h2h1, release);
    h1_parser_free(a->resp);
    hbuf_free(&a->out);
    free(a);
}

/* The connection closes (reset unless its response was whole); freed at
 * the batch's end, so a parser callback may get here. */
static void close_conn(struct h2h1 *a)
{
    if (a->closed)
        return;
    a->closed = true;
    if (a->prev)
        a->prev->next = a->next;
    else if (a->hp->h2h1s == a)
        a->hp->h2h1s = a->next;
    if (a->next)
        a->next->prev = a->prev;
    a->prev = a->next = NULL;
    if (a->io.registered)
        loop_del(a->hp->loop, &a->io);
    if (a->io.fd >= 0) {
        if (a->resp_done)
            close(a->io.fd);
        else
            close_with_reset(a->io.fd);
    }
    a->io.fd = -1;
    loop_defer(a->hp->loop, &a->release);
}

/* Detaches the exchange: it hears nothing more from us. */
static struct h2x *detach(struct h2h1 *a)
{
    struct h2x *x = a->x;
    a->x = NULL;
    if (x)
        x->h1 = NULL;
    return x;
}

/* Cut before a whole response: a connection that never answered reached
 * no app (a connect failure, retried as Istio's default policy does). */
static void fail(struct h2h1 *a)
{
    struct h2x *x = detach(a);
    close_conn(a);
    if (x)
        h2x_up_closed_by(x, H2_INTERNAL_ERROR, !a->got_bytes, a->denied);
}

/* Same endpoint, same way, same pod: how many wait idle. */
static unsigned idle_count(const struct h2h1 *a)
{
    unsigned n = 0;
    for (const struct h2h1 *b = a->hp->h2h1s; b; b = b->next)
        n += b->idle && b->pod_id == a->pod_id && hup_same_target(&b->key, &a->key);
    return n;
}

static bool may_read(const struct h2h1 *a)
{
    const struct h2x *x = a->x;
    return x && !a->resp_done && (!x->down || h2_stream_queued(x->down) < H2H1_RESP_QUEUED);
}

static void set_events(struct h2h1 *a)
{
    if (a->closed)
        return;
    uint32_t ev = may_read(a) || a->idle ? EPOLLIN | EPOLLRDHUP : 0;
    if (!a->connected || hbuf_pending(&a->out))
        ev |= EPOLLOUT;
    loop_set(a->hp->loop, &a->io, ev);
}

/* 0 (all written, or the socket is full), or -errno. */
static int flush(struct h2h1 *a)
{
    if (!a->connected)
        return 0;
    int rc = hbuf_flush(&a->out, a->io.fd);
    if (rc == 0 && !hbuf_pending(&a->out) && a->body_unsent && a->x) {
        size_t n = a->body_unsent;
        a->body_unsent = 0;
        h2x_up_sent(a->x, n); /* the client may send as much more */
    }
    return rc;
}

/* --- the response -------------------------------------------------------- */

static int resp_head(void *ctx, const struct h1_head *h)
{
    struct h2h1 *a = ctx;
    if (h->status < 200)
        return H1_OK; /* 100 Continue: an HTTP/2 client does not wait for it */
    struct http_field f[H1_MAX_HEADERS_DEFAULT];
    size_t n = 0;
    for (size_t i = 0; i < h->nheaders && n < H1_MAX_HEADERS_DEFAULT; i++) {
        const struct http_field *x = &h->headers[i];
        if (!h1_header_is_hop(x->name, x->name_len) &&
            !h1_head_connection_lists(h, x->name, x->name_len))
            f[n++] = *x;
    }
    struct h2_head out = {.status = h->status,
                          .fields = f,
                          .nfields = n,
                          .end_stream = h->body == H1_BODY_NONE ||
                                        (h->body == H1_BODY_LENGTH && !h->content_length)};
    a->resp_started = true;
    a->resp_keep_alive = h->keep_alive;
    if (a->x)
        h2x_up_head(a->x, &out); /* may retry on the status: the exchange lets go */
    return a->x ? H1_OK : -1;
}

static int resp_body(void *ctx, const char *p, size_t n)
{
    struct h2h1 *a = ctx;
    if (a->x && n)
        h2x_up_data(a->x, (const uint8_t *)p, n);
    return a->x ? H1_OK : -1;
}

static int resp_complete(void *ctx)
{
    struct h2h1 *a = ctx;
    if (!a->resp_started)
        return H1_OK; /* a 1xx ended */
    a->resp_done = true;
    return H1_PAUSED; /* the next response is another attempt's */
}

static const struct h1_callbacks resp_callbacks = {
    .on_head = resp_head, .on_body = resp_body, .on_complete = resp_complete};

/* The response is whole: the exchange ends; the connection waits for
 * the next request to its endpoint when both sides keep it alive and no
 * byte followed the response (`leftover`: nobody asked for it). */
static void done(struct h2h1 *a, bool leftover)
{
    struct h2x *x = detach(a);
    uint32_t per_conn = a->key.max_requests_per_conn; /* DestinationRule's */
    unsigned max = a->hp->opts.max_idle_upstreams ? a->hp->opts.max_idle_upstreams : H2H1_IDLE_MAX;
    if (a->resp_keep_alive && a->req_done && !leftover && !hbuf_pending(&a->out) && !a->denied &&
        (!per_conn || a->requests < per_conn) && idle_count(a) < max) {
        a->idle = true;
        a->idle_since_ns = loop_now_ns();
        set_events(a);
    } else {
        close_conn(a);
    }
    if (x)
        h2x_up_end(x);
}

static void read_resp(struct h2h1 *a)
{
    char buf[HTTP_IN_BUF];
    for (int round = 0; round < H2H1_READ_ROUNDS && may_read(a); round++) {
        ssize_t n = recv(a->io.fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0) {
            fail(a);
            return;
        }
        size_t used = 0;
        int rc = n ? h1_parse(a->resp, buf, (size_t)n, &used) : h1_parse_eof(a->resp);
        a->got_bytes |= n > 0;
        if (a->closed)
            return; /* the exchange let go in a callback */
        if (a->resp_done) {
            done(a, n > 0 && used < (size_t)n);
            return;
        }
        if (rc < 0 || n == 0) { /* not HTTP, or cut short */
            fail(a);
            return;
        }
    }
}

static void on_event(struct loop_io *io, uint32_t events)
{
    struct h2h1 *a = container_of(io, struct h2h1, io);
    if (a->closed)
        return;
    if (a->idle) { /* the server closed, or sent what nobody asked for */
        close_conn(a);
        return;
    }
    if (!a->connected && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) &&
        hup_connect_done(io->fd, a->hbone, &a->connected) != 0) {
        fail(a);
        return;
    }
    if ((events & EPOLLOUT) && flush(a) != 0) {
        fail(a);
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        read_resp(a);
    set_events(a);
}

/* --- the request --------------------------------------------------------- */

/* Body bytes framed as the head said (chunked: one chunk each). */
static int queue_body(struct h2h1 *a, const void *p, size_t n, bool eof)
{
    int rc = 0;
    if (a->chunked && n) {
        char ch[H1_CHUNK_HEAD_MAX];
        rc = hbuf_append(&a->out, ch, h1_format_chunk_head(n, ch));
        if (rc == 0)
            rc = hbuf_append(&a->out, p, n);
        if (rc == 0)
            rc = hbuf_append(&a->out, h1_chunk_tail, 2);
    } else if (n) {
        rc = hbuf_append(&a->out, p, n);
    }
    if (rc == 0 && eof && a->chunked) {
        rc = hbuf_append(&a->out, h1_last_chunk, strlen(h1_last_chunk));
        a->chunked = false;
    }
    a->req_done |= rc == 0 && eof; /* the body is whole */
    return rc;
}

/* The attempt's head as HTTP/1.1 into `a->out`. */
static int queue_head(struct h2h1 *a, struct h2x *x)
{
    struct http_field f[HTTP_OUT_HEADERS_MAX + 1];
    char target[HTTP_PATH_MAX], abuf[512];
    const char *authority;
    int n = http_request_attempt_fields(&x->req, false, f + 1, HTTP_OUT_HEADERS_MAX, abuf,
                                        sizeof(abuf), &authority, target, sizeof(target));
    if (n < 0)
        return n;
    size_t first = *authority ? 1 : 0;
    f[0] = http_field_of("Host", authority);
    bool has_len = http_field_get(x->head.headers, x->head.nheaders, "content-length") != NULL;
    enum h1_body body = x->head.body == H1_BODY_NONE ? H1_BODY_NONE
                        : has_len                    ? H1_BODY_LENGTH
                                                     : H1_BODY_CHUNKED;
    a->chunked = body == H1_BODY_CHUNKED;
    a->req_done = body == H1_BODY_NONE;
    struct h1_out_head oh = {.method = x->head.method,
                             .target = target,
                             .headers = f + 1 - first,
                             .nheaders = (size_t)n + first,
                             .body = body,
                             .content_length = x->head.content_length,
                             .keep_alive = true};
    char small[8192];
    size_t len = h1_format_head(&oh, small, sizeof(small));
    if (len == 0)
        return -EINVAL; /* a header edit would have injected a line */
    if (len < sizeof(small))
        return hbuf_append(&a->out, small, len);
    char *big = malloc(len + 1);
    int rc = big ? 0 : -ENOMEM;
    if (rc == 0)
        rc = h1_format_head(&oh, big, len + 1) == len ? hbuf_append(&a->out, big, len) : -EINVAL;
    free(big);
    return rc;
}

/* An idle connection to `r`'s endpoint from `pod`, taken, or NULL. */
static struct h2h1 *take_idle(struct http_proxy *hp, const struct outbound_route *r,
                              const struct pod *pod)
{
    for (struct h2h1 *a = hp->h2h1s; a; a = a->next) {
        if (a->idle && a->pod_id == pod->id && hup_same_target(&a->key, r)) {
            a->idle = false;
            hp->stats.upstreams_reused++;
            return a;
        }
    }
    return NULL;
}

/* A new connection, linked; NULL with *rc. */
static struct h2h1 *open_conn(struct http_proxy *hp, const struct outbound_route *r,
                              const struct pod *pod, int *rc)
{
    struct h2h1 *a = calloc(1, sizeof(*a));
    if (!a) {
        *rc = -ENOMEM;
        return NULL;
    }
    *a = (struct h2h1){.hp = hp,
                       .key = *r,
                       .pod_id = pod->id,
                       .io = {.fd = -1, .cb = on_event},
                       .release = {.fn = free_now}};
    *rc = h1_parser_new(false, NULL, &resp_callbacks, a, &a->resp);
    if (*rc == 0)
        *rc = hup_open(hp, r, pod, a, &a->io.fd, &a->hbone);
    if (*rc == 0 && (*rc = loop_add(hp->loop, &a->io, EPOLLIN | EPOLLRDHUP | EPOLLOUT)) != 0)
        close_with_reset(a->io.fd);
    if (*rc) {
        h1_parser_free(a->resp);
        free(a);
        return NULL;
    }
    a->connected = a->hbone; /* the pair is; the tunnel's failures arrive as EOF */
    a->next = hp->h2h1s;
    if (hp->h2h1s)
        hp->h2h1s->prev = a;
    hp->h2h1s = a;
    hp->stats.upstreams_opened++;
    return a;
}

int h2h1_open(struct http_proxy *hp, const struct outbound_route *r, const struct pod *pod,
              struct h2x *x, struct h2h1 **out)
{
    int rc = 0;
    struct h2h1 *a = take_idle(hp, r, pod);
    if (!a && !(a = open_conn(hp, r, pod, &rc)))
        return rc;
    a->chunked = a->req_done = a->got_bytes = false;
    a->resp_started = a->resp_done = a->resp_keep_alive = false;
    a->body_unsent = 0;
    rc = queue_head(a, x);
    size_t kept = hbuf_pending(&x->req.body);
    if (rc == 0)
        rc = queue_body(a, x->req.body.data + x->req.body.off, kept, x->req.req_complete);
    if (rc) {
        close_conn(a);
        return rc;
    }
    h1_parser_resume(a->resp); /* paused at the last response's end */
    h1_parser_next_is_head_response(a->resp, strcmp(x->head.method, "HEAD") == 0);
    /* What was kept before the first attempt still holds the client's
     * window; a retry's copy was consumed already. */
    a->body_unsent = x->req.attempt == 0 ? kept : 0;
    a->x = x;
    a->requests++;
    (void)flush(a); /* a failure shows again in the next event */
    set_events(a);
    *out = a;
    return 0;
}

int h2h1_send(struct h2h1 *a, const void *p, size_t n, bool eof)
{
    if (a->closed)
        return -EPIPE;
    int rc = queue_body(a, p, n, eof);
    if (rc)
        return rc;
    a->body_unsent += n;
    (void)flush(a); /* a failure shows again in the next event, which fails the attempt */
    set_events(a);
    return 0;
}

void h2h1_resume(struct h2h1 *a)
{
    set_events(a);
}

void h2h1_abandon(struct h2h1 *a)
{
    detach(a);
    close_conn(a);
}

void h2h1s_expire(struct http_proxy *hp, uint64_t now_ns)
{
    for (struct h2h1 *a = hp->h2h1s, *next; a; a = next) {
        next = a->next;
        if (a->idle && now_ns - a->idle_since_ns > H2H1_IDLE_NS)
            close_conn(a);
    }
}

void h2h1s_free(struct http_proxy *hp)
{
    while (hp->h2h1s) {
        struct h2h1 *a = hp->h2h1s;
        detach(a);
        close_conn(a);
    }
}

void h2h1_note_denied(struct http_proxy *hp, const void *stream_ctx)
{
    for (struct h2h1 *a = hp->h2h1s; a; a = a->next)
        if (a == stream_ctx)
            a->denied = true;
}
