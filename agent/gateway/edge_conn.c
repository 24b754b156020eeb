/* TLS connections at the edge (see edge_conn.h): handshake, then a pump
 * between the client's TLS and the carrier's plain socket. States:
 * HANDSHAKE -> PUMP -> (both directions ended) freed. */
#include "gateway/edge_conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/container.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/upstream.h"
#include "gateway/edge_tls.h"
#include "tls/conn.h"

#define EDGE_TIMEOUT_NS  (10ull * 1000000000ull) /* Istio's gateway handshake timeout */
#define EDGE_MAX_PENDING 512
#define EDGE_BUF         (16u * 1024)

enum edge_state { EDGE_HANDSHAKE, EDGE_PUMP };

struct edge_conn {
    struct edge_conns *ec;
    enum edge_state state;
    struct tls_conn tls;
    struct loop_io tio, pio; /* the client's TLS socket; the carrier's plain one */
    void *user;              /* until ready() takes it */
    uint64_t started_ns;
    struct edge_conn *prev, *next; /* pending (HANDSHAKE) or live (PUMP) */
    /* PUMP: client -> carrier, carrier -> client */
    char *up, *down;
    size_t up_off, up_len, down_off, down_len;
    bool tls_eof, plain_eof, plain_shut, tls_shut, ended;
    struct loop_deferred release;
};

static struct edge_conn **list_of(struct edge_conn *c)
{
    return c->state == EDGE_HANDSHAKE ? &c->ec->pending_head : &c->ec->live;
}

static void unlink_conn(struct edge_conn *c)
{
    struct edge_conns *ec = c->ec;
    if (c->prev)
        c->prev->next = c->next;
    else
        *list_of(c) = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else if (c->state == EDGE_HANDSHAKE)
        ec->pending_tail = c->prev;
    c->prev = c->next = NULL;
    if (c->state == EDGE_HANDSHAKE)
        ec->stats.pending--;
    else
        ec->stats.active--;
}

static void free_now(struct loop_deferred *d)
{
    struct edge_conn *c = container_of(d, struct edge_conn, release);
    free(c->up);
    free(c->down);
    free(c);
}

/* Ends the connection: a reset unless both sides ended cleanly. */
static void finish(struct edge_conn *c, bool reset)
{
    if (c->ended)
        return;
    c->ended = true;
    struct edge_conns *ec = c->ec;
    unlink_conn(c);
    loop_del(ec->loop, &c->tio);
    if (c->pio.fd >= 0) {
        loop_del(ec->loop, &c->pio);
        if (reset)
            close_with_reset(c->pio.fd);
        else
            close(c->pio.fd);
        c->pio.fd = -1;
    }
    if (reset && c->tls.fd >= 0) {
        close_with_reset(c->tls.fd);
        c->tls.fd = -1;
    }
    tls_conn_deinit(&c->tls); /* the SSL holds the edge set until here */
    if (c->user && ec->user_free)
        ec->user_free(c->user);
    c->user = NULL;
    loop_defer(ec->loop, &c->release);
}

/* --- the pump ------------------------------------------------------------ */

/* Bytes move through one buffer of the loop's (single-threaded); a
 * connection holds its own only for what a full socket left, freed once
 * sent: an idle connection holds none. */
static char scratch[EDGE_BUF];

static int keep_buf(char **buf, size_t *off, size_t *len, const char *p, size_t n)
{
    if (!*buf && !(*buf = malloc(EDGE_BUF)))
        return -ENOMEM;
    memcpy(*buf, p, n);
    *off = 0;
    *len = n;
    return 0;
}

static void drop_buf(char **buf, size_t *off, size_t *len)
{
    free(*buf);
    *buf = NULL;
    *off = *len = 0;
}

static void set_events(struct edge_conn *c)
{
    uint32_t t = 0, p = 0;
    if (!c->tls_eof && c->up_off == c->up_len)
        t |= EPOLLIN; /* not while the carrier has bytes of ours waiting */
    if (c->tls.want_write || tls_conn_queued(&c->tls))
        t |= EPOLLOUT;
    if (!c->plain_eof && c->down_len == 0)
        p |= EPOLLIN | EPOLLRDHUP;
    if (c->up_len > c->up_off)
        p |= EPOLLOUT;
    loop_set(c->ec->loop, &c->tio, t);
    loop_set(c->ec->loop, &c->pio, p);
}

/* Client -> carrier. 0, or -errno to reset. A read shorter than the
 * buffer with nothing left in OpenSSL's drained the socket: no second
 * read to hear EAGAIN (level-triggered epoll tells of what comes next). */
static int pump_up(struct edge_conn *c)
{
    bool drained = false;
    for (;;) {
        while (c->up_off < c->up_len) {
            ssize_t n = send(c->pio.fd, c->up + c->up_off, c->up_len - c->up_off, MSG_NOSIGNAL);
            if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
            c->up_off += (size_t)n;
        }
        drop_buf(&c->up, &c->up_off, &c->up_len);
        if (c->tls_eof)
            break;
        if (drained)
            return 0;
        ssize_t n = tls_conn_read(&c->tls, scratch, EDGE_BUF);
        if (n == -EAGAIN)
            return 0;
        if (n < 0)
            return (int)n;
        if (n == 0) {
            c->tls_eof = true;
            break;
        }
        drained = (size_t)n < EDGE_BUF && !SSL_has_pending(c->tls.ssl);
        ssize_t k = send(c->pio.fd, scratch, (size_t)n, MSG_NOSIGNAL);
        if (k < 0 && errno != EAGAIN && errno != EINTR)
            return -errno;
        if (k < n) /* the carrier is full: keep the rest */
            return keep_buf(&c->up, &c->up_off, &c->up_len, scratch + (k > 0 ? k : 0),
                            (size_t)(n - (k > 0 ? k : 0)));
    }
    if (!c->plain_shut) { /* the client is done: the carrier sees EOF */
        shutdown(c->pio.fd, SHUT_WR);
        c->plain_shut = true;
    }
    return 0;
}

/* Carrier -> client (`ev`: what epoll said of the carrier's socket;
 * not readable: only what waits is written). 0, or -errno to reset. */
static int pump_down(struct edge_conn *c, uint32_t ev)
{
    bool read = ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
    bool hup = ev & (EPOLLRDHUP | EPOLLHUP); /* read on to the end */
    for (;;) {
        while (c->down_off < c->down_len) {
            ssize_t n = tls_conn_write(&c->tls, c->down + c->down_off, c->down_len - c->down_off);
            if (n == -EAGAIN)
                goto flush;
            if (n < 0)
                return (int)n;
            c->down_off += (size_t)n;
        }
        drop_buf(&c->down, &c->down_off, &c->down_len);
        if (c->plain_eof || !read)
            break;
        ssize_t n = recv(c->pio.fd, scratch, EDGE_BUF, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            return -errno;
        }
        if (n == 0) {
            c->plain_eof = true;
            break;
        }
        read = (size_t)n == EDGE_BUF || hup; /* a short read drained the socket */
        size_t off = 0;
        while (off < (size_t)n) {
            ssize_t w = tls_conn_write(&c->tls, scratch + off, (size_t)n - off);
            if (w == -EAGAIN)
                break;
            if (w < 0)
                return (int)w;
            off += (size_t)w;
        }
        if (off < (size_t)n) { /* the client is slow: keep the rest (the same bytes retried) */
            int rc = keep_buf(&c->down, &c->down_off, &c->down_len, scratch + off, (size_t)n - off);
            if (rc)
                return rc;
            goto flush;
        }
    }
    if (c->plain_eof && !c->tls_shut && c->down_off == c->down_len) {
        tls_conn_shutdown(&c->tls); /* close_notify: the response is whole */
        c->tls_shut = true;
    }
flush:;
    int rc = tls_conn_flush(&c->tls);
    return rc == -EAGAIN ? 0 : rc;
}

/* `tls_ev`/`plain_ev`: what epoll said of each socket; each direction
 * is pumped only when its source is readable or its sink writable (no
 * read that can only answer EAGAIN). */
static void pump(struct edge_conn *c, uint32_t tls_ev, uint32_t plain_ev)
{
    const uint32_t in = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
    int rc = 0;
    if ((tls_ev & in) || (plain_ev & EPOLLOUT))
        rc = pump_up(c);
    if (rc == 0 && ((plain_ev & in) || (tls_ev & EPOLLOUT) || c->down_off < c->down_len ||
                    tls_conn_queued(&c->tls))) /* e.g. the answer to a KeyUpdate */
        rc = pump_down(c, plain_ev);
    if (rc == 0 && tls_conn_pending(&c->tls) && c->up_len == 0)
        rc = pump_up(c); /* decrypted bytes no epoll event announces */
    if (rc) {
        finish(c, true);
        return;
    }
    /* The carrier closed and everything reached the client. */
    if (c->plain_eof && c->tls_shut && !tls_conn_queued(&c->tls)) {
        finish(c, false);
        return;
    }
    set_events(c);
}

static void on_plain(struct loop_io *io, uint32_t events)
{
    struct edge_conn *c = container_of(io, struct edge_conn, pio);
    if (!c->ended)
        pump(c, 0, events);
}

/* --- the handshake ------------------------------------------------------- */

static void start_pump(struct edge_conn *c)
{
    struct edge_conns *ec = c->ec;
    char why[160] = "";
    if (edge_tls_check_peer(c->tls.ssl, why, sizeof(why)) != 0) {
        log_ratelimited(LOG_INFO, "gateway: client refused: %s", why);
        ec->stats.handshake_failures++;
        finish(c, true);
        return;
    }
    int sp[2];
    if (tls_conn_upgrade(&c->tls) != 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) == -1) {
        finish(c, true);
        return;
    }
    unlink_conn(c);
    c->state = EDGE_PUMP;
    c->next = ec->live;
    if (ec->live)
        ec->live->prev = c;
    ec->live = c;
    ec->stats.active++;
    ec->stats.handshakes++;
    c->pio = (struct loop_io){.fd = sp[0], .cb = on_plain};
    if (loop_add(ec->loop, &c->pio, EPOLLIN) != 0) {
        c->pio.fd = -1;
        close(sp[0]);
        close(sp[1]);
        finish(c, true);
        return;
    }
    const unsigned char *alpn = NULL;
    unsigned alen = 0;
    SSL_get0_alpn_selected(c->tls.ssl, &alpn, &alen);
    char proto[32] = "";
    if (alpn && alen < sizeof(proto))
        memcpy(proto, alpn, alen), proto[alen] = '\0';
    if (ec->verified)
        ec->verified(ec->ctx, c->user, c->tls.ssl);
    void *user = c->user;
    c->user = NULL; /* ready() owns it from here, whatever it returns */
    if (ec->ready(ec->ctx, user, sp[1], proto) != 0) {
        finish(c, true);
        return;
    }
    pump(c, EPOLLIN, EPOLLIN); /* the client's first bytes may be decrypted already */
}

static void on_tls(struct loop_io *io, uint32_t events)
{
    struct edge_conn *c = container_of(io, struct edge_conn, tio);
    if (c->ended)
        return;
    if (c->state == EDGE_PUMP) {
        pump(c, events, 0);
        return;
    }
    int rc = tls_conn_handshake(&c->tls);
    if (rc == -EAGAIN) {
        loop_set(c->ec->loop, &c->tio, tls_conn_wants(&c->tls));
        return;
    }
    if (rc) {
        c->ec->stats.handshake_failures++;
        log_ratelimited(LOG_INFO, "gateway: TLS handshake refused: %s",
                        c->tls.error[0] ? c->tls.error : strerror(-rc));
        finish(c, true);
        return;
    }
    start_pump(c);
}

int edge_conn_start(struct edge_conns *ec, int fd, SSL_CTX *ctx, struct edge_tls *set,
                    uint16_t port, void *user)
{
    size_t max = ec->max_pending ? ec->max_pending : EDGE_MAX_PENDING;
    while (ec->stats.pending >= max && ec->pending_head) {
        ec->stats.evicted++; /* the oldest makes room: idle clients cannot lock others out */
        finish(ec->pending_head, true);
    }
    struct edge_conn *c = calloc(1, sizeof(*c));
    int rc = c ? tls_conn_init(&c->tls, ctx, fd, true) : -ENOMEM;
    if (rc == 0 && (rc = edge_tls_attach(set, c->tls.ssl, port)) != 0)
        tls_conn_deinit(&c->tls);
    if (rc) {
        if (!c)
            close_with_reset(fd);
        free(c);
        if (ec->user_free)
            ec->user_free(user);
        return rc;
    }
    c->ec = ec;
    c->user = user;
    c->state = EDGE_HANDSHAKE;
    c->started_ns = loop_now_ns();
    c->release.fn = free_now;
    c->pio.fd = -1;
    c->tio = (struct loop_io){.fd = fd, .cb = on_tls};
    c->prev = ec->pending_tail;
    if (ec->pending_tail)
        ec->pending_tail->next = c;
    else
        ec->pending_head = c;
    ec->pending_tail = c;
    ec->stats.pending++;
    if ((rc = loop_add(ec->loop, &c->tio, EPOLLIN)) != 0) {
        finish(c, true);
        return rc;
    }
    return 0;
}

void edge_conns_tick(struct edge_conns *ec, uint64_t now_ns)
{
    uint64_t limit = ec->handshake_timeout_ns ? ec->handshake_timeout_ns : EDGE_TIMEOUT_NS;
    /* Oldest first: stop at the first one still in time. */
    while (ec->pending_head && now_ns - ec->pending_head->started_ns > limit) {
        ec->stats.handshake_timeouts++;
        log_ratelimited(LOG_INFO, "gateway: TLS handshake not done in %llu ms; reset",
                        (unsigned long long)(limit / 1000000));
        finish(ec->pending_head, true);
    }
}

void edge_conns_close_all(struct edge_conns *ec)
{
    while (ec->pending_head)
        finish(ec->pending_head, true);
    while (ec->live)
        finish(ec->live, true);
}
