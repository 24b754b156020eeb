/* Upstream HTTP/2 connections of the HTTP carrier (see h2_session.h).
 *
 * A connection reaches one endpoint one way, exactly as an HTTP/1
 * upstream (upstream.c): plain TCP from the source pod's netns, or an
 * HBONE stream through the pool whose app end is one side of a socket
 * pair. Unlike HTTP/1 it is never idle-pooled per request: streams of any
 * session of the proxy share it while it accepts streams (the peer's
 * SETTINGS_MAX_CONCURRENT_STREAMS and ours, H2_MAX_STREAMS; no GOAWAY
 * seen); past that, a new connection is opened. One with no stream left
 * is closed after HUP2_IDLE_NS, or at once when it can take none. A
 * connection that fails fails its streams: those that never got a byte
 * back as connect failures (retried as Istio's default policy does), the
 * others as resets. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/container.h"
#include "core/log.h"
#include "core/upstream.h"
#include "enroll/pods.h"
#include "http/h2_session.h"

#define HUP2_IDLE_NS (60ull * 1000000000)

static void h2up_free_now(struct loop_deferred *d)
{
    struct h2up *u = container_of(d, struct h2up, release);
    h2_conn_free(u->h2);
    hbuf_free(&u->out);
    free(u);
}

static void unlink_shared(struct h2up *u)
{
    struct http_proxy *hp = u->hp;
    if (u->owned)
        return;
    if (u->prev)
        u->prev->next = u->next;
    else if (hp->h2ups == u)
        hp->h2ups = u->next;
    if (u->next)
        u->next->prev = u->prev;
    u->prev = u->next = NULL;
}

/* Closes the connection; its streams are told first. */
static void h2up_fail(struct h2up *u, int err)
{
    if (u->closed)
        return;
    u->closed = true;
    u->broken = true;
    unlink_shared(u);
    (void)err;
    /* A connection that never answered: its streams reached no app. */
    h2_conn_close_streams(u->h2, u->got_bytes ? H2_INTERNAL_ERROR : H2_REFUSED_STREAM);
    if (u->io.registered)
        loop_del(u->hp->loop, &u->io);
    if (u->io.fd >= 0)
        close_with_reset(u->io.fd);
    u->io.fd = -1;
    loop_defer(u->hp->loop, &u->release);
}

void h2up_close(struct h2up *u)
{
    h2up_fail(u, 0);
}

static void h2up_update_events(struct h2up *u)
{
    uint32_t ev = EPOLLIN | EPOLLRDHUP;
    if (!u->connected || hbuf_pending(&u->out))
        ev |= EPOLLOUT;
    loop_set(u->hp->loop, &u->io, ev);
}

/* Frames what the codec has, sends what the socket takes. */
static void h2up_flush_now(struct h2up *u)
{
    if (u->closed)
        return;
    while (hbuf_pending(&u->out) < HTTP_OUT_HIGH) {
        const uint8_t *p;
        ssize_t n = h2_conn_pull(u->h2, &p);
        if (n < 0) {
            h2up_fail(u, (int)n);
            return;
        }
        if (n == 0 || hbuf_append(&u->out, p, (size_t)n) != 0)
            break;
    }
    if (u->connected && hbuf_flush(&u->out, u->io.fd) != 0) {
        h2up_fail(u, -EPIPE);
        return;
    }
    if (h2_conn_done(u->h2) && !hbuf_pending(&u->out)) {
        h2up_fail(u, 0);
        return;
    }
    if (!h2_conn_streams(u->h2) && !u->idle_since_ns)
        u->idle_since_ns = loop_now_ns();
    h2up_update_events(u);
}

static void h2up_flush_task(struct loop_task *t)
{
    h2up_flush_now(container_of(t, struct h2up, flush));
}

void h2up_kick(struct h2up *u)
{
    if (!u->closed)
        loop_task_queue(u->hp->loop, &u->flush);
}

static void h2up_read(struct h2up *u)
{
    uint8_t buf[HTTP_IN_BUF];
    for (int rounds = 0; rounds < 4 && !u->closed; rounds++) {
        ssize_t n = recv(u->io.fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            h2up_fail(u, n ? -errno : -ECONNRESET);
            return;
        }
        u->got_bytes = true;
        int rc = h2_conn_recv(u->h2, buf, (size_t)n);
        if (rc) {
            log_ratelimited(LOG_INFO, "http2: upstream protocol error (%d)", rc);
            h2up_flush_now(u); /* the GOAWAY */
            h2up_fail(u, rc);
            return;
        }
    }
}

static void h2up_on_event(struct loop_io *io, uint32_t events)
{
    struct h2up *u = container_of(io, struct h2up, io);
    if (u->closed)
        return;
    if (!u->connected && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = hup_connect_done(io->fd, u->hbone, &u->connected);
        if (err) {
            h2up_fail(u, err);
            return;
        }
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        h2up_read(u);
    if (!u->closed)
        h2up_flush_now(u);
}

/* --- the codec's callbacks: each stream's user is its exchange ---------- */

static int up_on_head(void *ctx, struct h2_stream *st, const struct h2_head *h)
{
    (void)ctx;
    struct h2x *x = h2_stream_user(st);
    if (x)
        h2x_up_head(x, h);
    return 0;
}

static int up_on_data(void *ctx, struct h2_stream *st, const uint8_t *p, size_t n)
{
    struct h2up *u = ctx;
    struct h2x *x = h2_stream_user(st);
    if (x)
        h2x_up_data(x, p, n);
    else
        h2_consume(u->h2, st, n);
    return 0;
}

static void up_on_end(void *ctx, struct h2_stream *st)
{
    (void)ctx;
    struct h2x *x = h2_stream_user(st);
    if (x)
        h2x_up_end(x);
}

static void up_on_close(void *ctx, struct h2_stream *st, uint32_t error)
{
    struct h2up *u = ctx;
    struct h2x *x = h2_stream_user(st);
    if (x)
        h2x_up_closed(x, error, !u->got_bytes);
    if (!h2_conn_streams(u->h2))
        u->idle_since_ns = loop_now_ns();
}

static void up_on_sent(void *ctx, struct h2_stream *st, size_t n)
{
    (void)ctx;
    struct h2x *x = h2_stream_user(st);
    if (x)
        h2x_up_sent(x, n);
}

static const struct h2_callbacks up_callbacks = {.on_head = up_on_head,
                                                 .on_data = up_on_data,
                                                 .on_end = up_on_end,
                                                 .on_close = up_on_close,
                                                 .on_sent = up_on_sent};

/* --- acquiring ---------------------------------------------------------- */

static struct h2up *h2up_new(struct http_proxy *hp)
{
    struct h2up *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    *u = (struct h2up){.hp = hp,
                       .io = {.fd = -1, .cb = h2up_on_event},
                       .flush = {.fn = h2up_flush_task},
                       .release = {.fn = h2up_free_now}};
    if (h2_conn_new(H2_CLIENT, &up_callbacks, u, &u->h2) != 0) {
        free(u);
        return NULL;
    }
    return u;
}

static int h2up_register(struct h2up *u)
{
    int rc = loop_add(u->hp->loop, &u->io, EPOLLIN | EPOLLRDHUP | EPOLLOUT);
    if (rc) {
        if (u->io.fd >= 0)
            close_with_reset(u->io.fd);
        h2_conn_free(u->h2);
        free(u);
    }
    return rc;
}

int h2up_acquire(struct http_proxy *hp, const struct outbound_route *r, const struct pod *pod,
                 struct h2up **out)
{
    for (struct h2up *u = hp->h2ups; u; u = u->next) {
        if (u->pod_id == pod->id && hup_same_target(&u->key, r) && !u->broken && !u->retired &&
            h2_conn_accepting(u->h2)) {
            hp->stats.upstreams_reused++;
            *out = u;
            return 0;
        }
    }
    struct h2up *u = h2up_new(hp);
    if (!u)
        return -ENOMEM;
    u->key = *r;
    u->pod_id = pod->id;
    int rc = hup_open(hp, r, pod, u, &u->io.fd, &u->hbone);
    if (rc == 0 && u->hbone)
        u->connected = true; /* the pair is; the tunnel's failures arrive as EOF */
    if (rc) {
        h2_conn_free(u->h2);
        free(u);
        return rc;
    }
    if ((rc = h2up_register(u)) != 0)
        return rc;
    hp->stats.upstreams_opened++;
    u->next = hp->h2ups;
    if (hp->h2ups)
        hp->h2ups->prev = u;
    hp->h2ups = u;
    *out = u;
    return 0;
}

int h2up_adopt(struct http_proxy *hp, int fd, struct h2up **out)
{
    struct h2up *u = h2up_new(hp);
    if (!u) {
        close_with_reset(fd);
        return -ENOMEM;
    }
    u->io.fd = fd;
    u->connected = true;
    u->owned = true;
    int rc = h2up_register(u);
    if (rc == 0)
        *out = u;
    return rc;
}

int h2up_request(struct h2up *u, const struct h2_head *h, struct h2x *x, struct h2_stream **out)
{
    if (u->closed)
        return -ENOTCONN;
    int rc = h2_submit_request(u->h2, h, x, out);
    if (rc == 0) {
        u->idle_since_ns = 0;
        uint32_t max = u->key.max_requests_per_conn; /* DestinationRule's, per connection */
        if (max && ++u->requests >= max)
            u->retired = true;
        h2up_kick(u);
    }
    return rc;
}

void h2ups_expire(struct http_proxy *hp, uint64_t now_ns)
{
    for (struct h2up *u = hp->h2ups, *next; u; u = next) {
        next = u->next;
        if (!h2_conn_streams(u->h2) &&
            (u->retired || !h2_conn_accepting(u->h2) ||
             (u->idle_since_ns && now_ns - u->idle_since_ns > HUP2_IDLE_NS)))
            h2up_fail(u, 0);
    }
}

void h2ups_note_denied(struct http_proxy *hp, const void *stream_ctx)
{
    for (struct h2up *u = hp->h2ups; u; u = u->next)
        if (u == stream_ctx)
            u->denied = true;
}

void h2ups_free(struct http_proxy *hp)
{
    while (hp->h2ups)
        h2up_fail(hp->h2ups, -ECANCELED);
}
