/* Upstream HTTP/1.1 connections of the HTTP carrier and their keep-alive
 * pool (see internal.h).
 *
 * An upstream reaches one endpoint one way: plain TCP from the source
 * pod's netns (core/upstream, so it is meshd's own and never captured
 * again), or an HBONE CONNECT stream through the pool whose end is this
 * connection itself (the stream's pipe, hbone/session.h: its DATA is
 * parsed where it arrives, our bytes are queued into it, no socket in
 * between). The HTTP/1 bytes are the same either way, and the tunnel keeps
 * its end-to-end flow control. An Upgrade needs a socket to relay raw
 * after its 101: its tunnel's end is one side of a socket pair. After a complete exchange with
 * keep-alive on both sides it goes idle, keyed by what it reaches (action, endpoint, identities),
 * and the next request to that endpoint reuses it: over HBONE, one tunnel carries many requests. An
 * idle upstream that becomes readable (the server closed, or sent bytes nobody asked for) is
 * closed. */
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
#include "hbone/pool.h"
#include "http/h2_session.h"
#include "http/internal.h"

#define HUP_IDLE_TIMEOUT_NS   (60ull * 1000000000) /* an idle upstream is closed after */
#define HUP_MIRROR_TIMEOUT_NS (30ull * 1000000000) /* a mirror's response is waited for */

/* --- byte queue --------------------------------------------------------- */

int hbuf_append(struct hbuf *b, const void *p, size_t n)
{
    if (b->off && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + n > b->cap) {
        if (b->off) { /* compact first */
            memmove(b->data, b->data + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        if (b->len + n > b->cap) {
            size_t cap = b->cap ? b->cap : 4096;
            while (cap < b->len + n)
                cap *= 2;
            char *d = realloc(b->data, cap);
            if (!d)
                return -ENOMEM;
            b->data = d;
            b->cap = cap;
        }
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

size_t hbuf_pending(const struct hbuf *b)
{
    return b->len - b->off;
}

void hbuf_consume(struct hbuf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

void hbuf_free(struct hbuf *b)
{
    free(b->data);
    *b = (struct hbuf){0};
}

int hbuf_flush(struct hbuf *b, int fd)
{
    while (hbuf_pending(b)) {
        ssize_t n = send(fd, b->data + b->off, hbuf_pending(b), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -errno;
        }
        hbuf_consume(b, (size_t)n);
    }
    /* An idle queue keeps no memory: sessions spend most time waiting. */
    if (b->cap > 16384) {
        free(b->data);
        *b = (struct hbuf){0};
    }
    return 0;
}

void hbuf_send_stream(struct hbuf *b, struct hbone_stream *st)
{
    while (hbuf_pending(b)) {
        size_t k = hbone_stream_send(st, b->data + b->off, hbuf_pending(b));
        if (!k)
            break;
        hbuf_consume(b, k);
    }
}

/* --- one upstream ------------------------------------------------------- */

static void hup_free_now(struct loop_deferred *d)
{
    struct hup *u = container_of(d, struct hup, release);
    hbuf_free(&u->out);
    h1_parser_free(u->resp);
    free(u);
}

static void idle_unlink(struct hup *u)
{
    struct http_proxy *hp = u->hp;
    if (u->idle_prev)
        u->idle_prev->idle_next = u->idle_next;
    else if (hp->idle == u)
        hp->idle = u->idle_next;
    if (u->idle_next)
        u->idle_next->idle_prev = u->idle_prev;
    u->idle_next = u->idle_prev = NULL;
    u->in_idle = false;
    hp->nidle--;
    hp->stats.upstreams_idle = hp->nidle;
}

static void all_link(struct http_proxy *hp, struct hup *u)
{
    u->all_next = hp->all;
    if (hp->all)
        hp->all->all_prev = u;
    hp->all = u;
}

static void hup_close(struct hup *u)
{
    if (u->st) {
        /* The tunnel goes with it, its end never reported to us: ended in
         * order after an exchange that went well (the destination's
         * record is a clean close), reset after a failure or mid-message. */
        struct hbone_stream *st = u->st;
        u->st = NULL;
        hbone_stream_set_ctx(st, NULL);
        if (u->broken || hbuf_pending(&u->out) || !h1_parser_idle(u->resp))
            hbone_stream_abort(st, 0);
        else
            hbone_stream_close(st);
    }
    struct http_proxy *hp = u->hp;
    if (u->all_prev)
        u->all_prev->all_next = u->all_next;
    else if (hp->all == u)
        hp->all = u->all_next;
    if (u->all_next)
        u->all_next->all_prev = u->all_prev;
    u->all_next = u->all_prev = NULL;
    if (u->io.registered)
        loop_del(u->hp->loop, &u->io);
    if (u->io.fd >= 0)
        close_with_reset(u->io.fd);
    u->io.fd = -1;
    loop_defer(u->hp->loop, &u->release);
}

/* Sends what is queued: 0 (all, or what the socket or tunnel took), -errno. */
static int hup_flush(struct hup *u)
{
    if (!u->st)
        return hbuf_flush(&u->out, u->io.fd);
    hbuf_send_stream(&u->out, u->st);
    return 0;
}

static void hup_update_events(struct hup *u, bool read_paused)
{
    if (u->st) { /* a tunnel's pipe: no socket to watch */
        if (!u->broken && hbuf_pending(&u->out))
            hup_flush(u);
        return;
    }
    /* Send now (an error stays queued: the EPOLLOUT handler fails it). */
    if (u->connected && !u->broken && hbuf_pending(&u->out))
        hbuf_flush(&u->out, u->io.fd);
    uint32_t ev = read_paused ? 0 : EPOLLIN | EPOLLRDHUP;
    if (!u->connected || hbuf_pending(&u->out))
        ev |= EPOLLOUT;
    loop_set(u->hp->loop, &u->io, ev);
}

/* Someone waits for what this upstream reads: a session, or a mirror. */
static bool busy(const struct hup *u)
{
    return u->owner || u->mirror;
}

/* A parse made progress: the session acts on it, or a mirror whose
 * response is whole is done. */
static void progress(struct hup *u)
{
    if (u->owner) {
        hs_upstream_progress(u->owner, u);
    } else if (u->mirror && u->mirror_done) {
        u->mirror = false;
        hup_release(u, true);
    }
}

static void hup_fail(struct hup *u, int err)
{
    u->broken = true;
    if (u->mirror) {
        u->mirror = false;
        hup_close(u);
    } else if (u->owner)
        hs_upstream_failed(u->owner, u, err);
    else
        hup_close(u);
}

/* The server closed (or the tunnel ended cleanly). */
static void hup_at_eof(struct hup *u)
{
    u->eof = true;
    int rc = h1_parse_eof(u->resp);
    /* An until-close body ended: its completion (recorded by the
     * callback, which left the parser paused) is acted on first. */
    if (rc == H1_OK && u->got_bytes)
        progress(u);
    if (busy(u))
        hup_fail(u, rc == H1_OK && u->got_bytes ? -EPIPE : -ECONNRESET);
}

/* Parses response bytes buf[0..n): how many were taken. All of them,
 * unless `may_stop` and the owner paused reading (a tunnel keeps the
 * rest); a socket's bytes, read already, are parsed whole, at most one
 * read's worth (HTTP_IN_BUF) per parse. */
static size_t hup_feed(struct hup *u, const char *buf, size_t n, bool may_stop)
{
    u->got_bytes = true;
    size_t off = 0;
    /* A resumed parser runs once more on nothing (h1.h): a bodiless
     * response (to HEAD, 204, 304) whose head ends the read completes
     * only then. Bounded: each kick is one parser event at most. */
    int kicks = 0;
    bool kick = false;
    while ((off < n || kick) && busy(u) && !u->broken && !(may_stop && u->read_paused)) {
        kick = false;
        size_t used = 0, chunk = n - off < HTTP_IN_BUF ? n - off : HTTP_IN_BUF;
        int rc = h1_parse(u->resp, buf + off, chunk, &used);
        off += used;
        if (rc < 0) {
            const char *why = h1_parser_error(u->resp, NULL);
            log_ratelimited(LOG_INFO, "http: upstream sent a malformed response: %s",
                            why ? why : "?");
            hup_fail(u, -EPROTO);
            return n;
        }
        /* A response that ends here with bytes after it (nobody asked
         * for them) must not be pooled: a pipelined request taking it
         * at once would read them as its answer. */
        u->leftover = off < n;
        progress(u);
        u->leftover = false;
        if (rc == H1_PAUSED && busy(u) && !u->broken) {
            h1_parser_resume(u->resp);
            kick = off == n && ++kicks <= 4;
            continue;
        }
        if (rc == H1_PAUSED)
            break; /* the session let go of it, or paused reading */
    }
    if (off < n && !busy(u)) {
        /* Bytes past the end of the response nobody asked for: the
         * connection cannot be trusted for another request. */
        u->broken = true;
        if (u->in_idle) {
            idle_unlink(u);
            hup_close(u);
        }
        return n;
    }
    return off;
}

static void hup_read(struct hup *u)
{
    char buf[HTTP_IN_BUF];
    for (int rounds = 0; rounds < 4 && busy(u) && !u->broken && !u->read_paused; rounds++) {
        ssize_t n = recv(u->io.fd, buf, sizeof(buf), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            hup_fail(u, -errno);
            return;
        }
        if (n == 0) {
            hup_at_eof(u);
            return;
        }
        if (hup_feed(u, buf, (size_t)n, false) < (size_t)n || u->broken)
            return;
    }
}

/* --- the in-process end of an HBONE stream ------------------------------ */

/* An idle upstream hearing from its server (a close, bytes nobody asked
 * for) is done. */
static void hup_idle_end(struct hup *u)
{
    u->broken = true;
    if (u->in_idle) {
        idle_unlink(u);
        hup_close(u);
    }
}

static size_t hup_pipe_data(void *ctx, const char *p, size_t n)
{
    struct hup *u = ctx;
    if (!busy(u)) {
        hup_idle_end(u);
        return n;
    }
    if (u->broken)
        return n; /* failed: its end is on the way */
    return hup_feed(u, p, n, true);
}

static void hup_pipe_eof(void *ctx)
{
    struct hup *u = ctx;
    if (busy(u))
        hup_at_eof(u);
    else
        hup_idle_end(u);
}

/* The tunnel ended under it (after on_stream_done told why). */
static void hup_pipe_end(void *ctx, int err)
{
    struct hup *u = ctx;
    u->st = NULL; /* over: nothing of it is ours any more */
    u->broken = true;
    if (busy(u))
        hup_fail(u, err);
    else if (u->in_idle) {
        idle_unlink(u);
        hup_close(u);
    }
}

static void hup_pipe_writable(void *ctx)
{
    struct hup *u = ctx;
    hup_flush(u);
    if (!hbuf_pending(&u->out) && u->owner)
        hs_upstream_progress(u->owner, u); /* room again: read more of the request */
}

static void hup_on_event(struct loop_io *io, uint32_t events)
{
    struct hup *u = container_of(io, struct hup, io);
    if (!busy(u)) { /* idle: the server closed it, or spoke unasked */
        if (u->in_idle) {
            idle_unlink(u);
            hup_close(u);
        }
        return;
    }
    if (!u->connected && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = hup_connect_done(io->fd, u->hbone, &u->connected);
        if (err) {
            hup_fail(u, err);
            return;
        }
    }
    if (u->connected && hbuf_pending(&u->out)) {
        int rc = hbuf_flush(&u->out, io->fd);
        if (rc) {
            hup_fail(u, rc);
            return;
        }
        if (!hbuf_pending(&u->out) && u->owner)
            hs_upstream_progress(u->owner, u); /* room again: read more of the request */
    }
    if (busy(u) && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        hup_read(u);
    if (busy(u) && !u->broken)
        hup_update_events(u, u->read_paused); /* a pause the owner asked for holds */
}

bool hup_same_target(const struct outbound_route *a, const struct outbound_route *b)
{
    if (a->action != b->action || !addr_equal(&a->target, &b->target))
        return false;
    if (a->action != OUTBOUND_HBONE)
        return true;
    return strcmp(a->key.src_id, b->key.src_id) == 0 && strcmp(a->key.dst_id, b->key.dst_id) == 0 &&
           addr_equal(&a->key.dst, &b->key.dst);
}

int hup_open(struct http_proxy *hp, const struct outbound_route *r, const struct pod *pod,
             void *stream_ctx, int *fd, bool *hbone)
{
    *hbone = false;
    if (r->action == OUTBOUND_PASSTHROUGH) {
        int up = upstream_connect(pod->netns_fd, &r->target, NULL, &hp->opts.owner, &r->tuning);
        if (up < 0)
            return up;
        *fd = up;
        return 0;
    }
    if (!hp->opts.pool)
        return -ENOTSUP;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1)
        return -errno;
    char authority[ADDR_STRLEN];
    addr_format(&r->target, authority, sizeof(authority));
    struct hbone_connect_headers hdrs = {.protocol = HBONE_PROTOCOL_HTTP};
    int rc = hbone_pool_connect(hp->opts.pool, &r->key, pod->netns_fd, r->client_ctx, authority,
                                &hdrs, sv[1], stream_ctx);
    if (rc) { /* the pool closed sv[1] */
        close(sv[0]);
        return rc;
    }
    *fd = sv[0];
    *hbone = true;
    return 0;
}

int hup_connect_done(int fd, bool hbone, bool *connected)
{
    int err = upstream_connect_result(fd);
    if (err)
        return -err;
    *connected = true;
    if (!hbone)
        upstream_connected(fd);
    return 0;
}

/* A new upstream's connection: over HBONE the stream's end is the
 * upstream itself (its pipe), unless a socket is needed (an Upgrade,
 * relayed raw after its 101: a socket pair, hup_open's). */
static int hup_connect(struct http_proxy *hp, struct hup *u, const struct outbound_route *r,
                       const struct pod *pod, bool needs_fd)
{
    if (r->action == OUTBOUND_HBONE && !needs_fd) {
        if (!hp->opts.pool)
            return -ENOTSUP;
        char authority[ADDR_STRLEN];
        addr_format(&r->target, authority, sizeof(authority));
        struct hbone_connect_headers hdrs = {.protocol = HBONE_PROTOCOL_HTTP};
        static const struct hbone_pipe pipe = {.on_data = hup_pipe_data,
                                               .on_eof = hup_pipe_eof,
                                               .on_writable = hup_pipe_writable,
                                               .on_end = hup_pipe_end};
        struct hbone_pipe p = pipe;
        p.ctx = u;
        u->hbone = true;
        u->connected = true; /* the tunnel's failures arrive as its end */
        return hbone_pool_connect_pipe(hp->opts.pool, &r->key, pod->netns_fd, r->client_ctx,
                                       authority, &hdrs, &p, u, &u->st);
    }
    int rc = hup_open(hp, r, pod, u, &u->io.fd, &u->hbone);
    if (rc == 0 && u->hbone)
        u->connected = true; /* the pair is; the tunnel's failures arrive as EOF */
    return rc;
}

static int acquire(struct http_proxy *hp, const struct outbound_route *r, const struct pod *pod,
                   struct hs *owner, bool needs_fd, struct hup **out)
{
    for (struct hup *u = hp->idle; u; u = u->idle_next) {
        if (u->pod_id != pod->id || !hup_same_target(&u->key, r) || (needs_fd && u->io.fd < 0))
            continue; /* another pod's: its source address, its netns */
        idle_unlink(u);
        u->key.idle_timeout_ns = r->idle_timeout_ns; /* the policy as it is now */
        u->owner = owner;
        u->got_bytes = false;
        u->read_paused = false;
        hp->stats.upstreams_reused++;
        hup_update_events(u, false);
        *out = u;
        return 0;
    }
    struct hup *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    *u = (struct hup){.hp = hp,
                      .owner = owner,
                      .key = *r,
                      .pod_id = pod->id,
                      .io = {.fd = -1, .cb = hup_on_event},
                      .release = {.fn = hup_free_now}};
    int rc = h1_parser_new(false, NULL, &hs_response_callbacks, u, &u->resp);
    if (rc == 0)
        rc = hup_connect(hp, u, r, pod, needs_fd);
    if (rc == 0 && u->io.fd >= 0)
        rc = loop_add(hp->loop, &u->io, EPOLLIN | EPOLLRDHUP | EPOLLOUT);
    if (rc) {
        if (u->st) {
            hbone_stream_set_ctx(u->st, NULL);
            hbone_stream_abort(u->st, rc);
        }
        if (u->io.fd >= 0)
            close_with_reset(u->io.fd);
        h1_parser_free(u->resp);
        free(u);
        return rc;
    }
    hp->stats.upstreams_opened++;
    all_link(hp, u);
    *out = u;
    return 0;
}

int hup_acquire(struct http_proxy *hp, const struct outbound_route *r, const struct pod *pod,
                struct hs *owner, struct hup **out)
{
    return acquire(hp, r, pod, owner, false, out);
}

int hup_acquire_fd(struct http_proxy *hp, const struct outbound_route *r, const struct pod *pod,
                   struct hs *owner, struct hup **out)
{
    return acquire(hp, r, pod, owner, true, out);
}

int hup_mirror(struct http_proxy *hp, const struct outbound_route *r, const struct pod *pod,
               struct hup **out)
{
    int rc = hup_acquire(hp, r, pod, NULL, out);
    if (rc)
        return rc;
    (*out)->mirror = true;
    (*out)->mirror_done = false;
    (*out)->started_ns = loop_now_ns();
    return 0;
}

int hup_adopt(struct http_proxy *hp, int fd, struct hup **out)
{
    struct hup *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    *u = (struct hup){.hp = hp,
                      .connected = true,
                      .io = {.fd = fd, .cb = hup_on_event},
                      .release = {.fn = hup_free_now}};
    int rc = h1_parser_new(false, NULL, &hs_response_callbacks, u, &u->resp);
    if (rc == 0)
        rc = loop_add(hp->loop, &u->io, EPOLLRDHUP);
    if (rc) {
        h1_parser_free(u->resp);
        free(u);
        return rc;
    }
    all_link(hp, u);
    *out = u;
    return 0;
}

int hup_send(struct hup *u, const void *p, size_t n)
{
    int rc = hbuf_append(&u->out, p, n);
    if (rc == 0 && u->connected && !u->broken)
        hup_update_events(u, u->read_paused);
    return rc;
}

void hup_pause_read(struct hup *u, bool paused)
{
    bool was = u->read_paused;
    u->read_paused = paused;
    if (u->st && was && !paused)
        hbone_stream_resume(u->st); /* what the tunnel kept, at the batch's end */
    if (!u->broken && u->io.registered)
        hup_update_events(u, paused);
}

void hup_release(struct hup *u, bool reusable)
{
    struct http_proxy *hp = u->hp;
    u->owner = NULL;
    u->read_paused = false;
    h1_parser_resume(u->resp); /* paused at the response's end */
    unsigned max = hp->opts.max_idle_upstreams ? hp->opts.max_idle_upstreams : 32;
    if (!reusable || u->broken || u->eof || u->leftover || hbuf_pending(&u->out) ||
        !h1_parser_idle(u->resp) || hp->nidle >= max * 16) {
        hup_close(u);
        return;
    }
    /* At most `max` idle to one target: counted only when the idle list
     * could hold that many (a walk per request otherwise, two string
     * compares per idle upstream), and no further than `max`. */
    size_t same = 0;
    for (struct hup *i = hp->nidle >= max ? hp->idle : NULL; i && same < max; i = i->idle_next)
        same += i->pod_id == u->pod_id && hup_same_target(&i->key, &u->key);
    if (same >= max) {
        hup_close(u);
        return;
    }
    u->requests++;
    u->idle_since_ns = loop_woke_ns(hp->loop);
    u->idle_next = hp->idle;
    if (hp->idle)
        hp->idle->idle_prev = u;
    hp->idle = u;
    u->in_idle = true;
    hp->nidle++;
    hp->stats.upstreams_idle = hp->nidle;
    if (u->io.fd >= 0) /* a tunnel's pipe tells of its end itself */
        loop_set(hp->loop, &u->io, EPOLLIN | EPOLLRDHUP);
}

void hups_expire(struct http_proxy *hp, uint64_t now_ns)
{
    for (struct hup *u = hp->all, *next; u; u = next) {
        next = u->all_next;
        if (u->mirror && now_ns - u->started_ns > HUP_MIRROR_TIMEOUT_NS) {
            u->mirror = false; /* nobody waits for a mirror's answer for long */
            hup_close(u);
        }
    }
    struct hup *u = hp->idle;
    while (u) {
        struct hup *next = u->idle_next;
        uint64_t idle = u->key.idle_timeout_ns ? u->key.idle_timeout_ns : HUP_IDLE_TIMEOUT_NS;
        if (now_ns - u->idle_since_ns > idle) {
            idle_unlink(u);
            hup_close(u);
        }
        u = next;
    }
}

void hups_free(struct http_proxy *hp)
{
    while (hp->idle) {
        struct hup *u = hp->idle;
        idle_unlink(u);
        hup_close(u);
    }
}

/* The HBONE pool's stream end for an upstream's tunnel, which tells why
 * it ended: the upstream learns that it did right after, from its socket
 * pair's EOF (or reset) or its pipe's on_end. `stream_ctx` is only
 * compared with the live upstreams, never followed: the upstream may be
 * gone. */
void http_proxy_on_stream_done(void *ctx, struct hbone_stream *st, void *stream_ctx, int err,
                               const struct hbone_stream_stats *stats)
{
    struct http_proxy *hp = ctx;
    (void)st;
    if (stats->app_fd >= 0) /* a pool that gives sockets back: ours is done */
        close(stats->app_fd);
    if (!hp || !stream_ctx || !stats->status || stats->status == 200)
        return;
    for (struct hup *u = hp->all; u; u = u->all_next) {
        if (u == stream_ctx) {
            u->denied = stats->status == 401;
            break;
        }
    }
    if (stats->status == 401) {
        h2ups_note_denied(hp, stream_ctx);
        h2h1_note_denied(hp, stream_ctx);
    }
    log_ratelimited(LOG_INFO, "http: HBONE tunnel refused by the peer: %d (%d)", stats->status,
                    err);
}
