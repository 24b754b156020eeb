/* Proxied connection table, upstream connect and relay (see conns.h). */
#include "proxy/conns.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/container.h"
#include "core/log.h"
#include "core/loop.h"
#include "meshd/telemetry.h"
#include "proxy/cookies.h"
#include "proxy/relay.h"
#include "core/upstream.h"

struct conn {
    struct relay relay;           /* first: the relay callback casts back */
    struct loop_io connect_io;    /* upstream socket while connecting */
    conn_attempt_fn attempt_done; /* and who hears how that ends */
    void *attempt_ctx;
    conn_connected_fn connected; /* conn_connect(): who takes the socket */
    void *connected_ctx;
    int down_fd;
    uint64_t start_ns;
    struct conn_record rec;
    bool reported_open;
    struct conns *t;
    struct conn *prev, *next;
    struct loop_deferred release;
    struct conn *twin;    /* the destination's record of a same-node connection */
    struct conn *primary; /* a twin's: the connection that carries it */
    bool splice;          /* relay with splice(2) */
};

struct conns {
    struct loop *loop; /* borrowed */
    struct conns_opts opts;
    struct conn *active;
    struct conns_stats stats;
    struct records *records;
    struct cookie_index *cookies; /* kernel events to their records */
    uint64_t next_id;
};

int conns_new(struct loop *loop, const struct conns_opts *opts, struct conns **out)
{
    struct conns *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->loop = loop;
    t->opts = *opts;
    int err = records_new(opts->records ? opts->records : 1, &t->records);
    if (!err && (err = cookie_index_new(&t->cookies)) != 0)
        records_free(t->records);
    if (err) {
        free(t);
        return err;
    }
    *out = t;
    return 0;
}

/* The kernel's socket cookie: how sockops events find their record. */
static uint64_t sock_cookie(int fd)
{
    uint64_t cookie = 0;
    socklen_t len = sizeof(cookie);
    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) == -1)
        return 0;
    return cookie;
}

/* Socket `k` (0: the app's, 1: the upstream's) of `c` is now `fd`'s: its
 * kernel events join the record. */
static void conn_set_cookie(struct conn *c, int k, int fd)
{
    cookie_index_del(c->t->cookies, c->rec.sock_cookie[k], &c->rec); /* a former attempt's */
    c->rec.sock_cookie[k] = sock_cookie(fd);
    (void)cookie_index_put(c->t->cookies, c->rec.sock_cookie[k], &c->rec); /* else unjoined */
}

/* The record moves into the ring of finished ones (which may evict the
 * oldest): the index follows it. */
static void conn_keep_record(struct conns *t, struct conn *c)
{
    size_t cap = t->opts.records ? t->opts.records : 1;
    if (records_count(t->records) == cap) {
        const struct conn_record *old = records_get(t->records, 0);
        for (int k = 0; k < 2; k++)
            cookie_index_del(t->cookies, old->sock_cookie[k], old);
    }
    struct conn_record *kept = records_push(t->records, &c->rec);
    for (int k = 0; k < 2; k++) {
        cookie_index_del(t->cookies, c->rec.sock_cookie[k], &c->rec);
        (void)cookie_index_put(t->cookies, c->rec.sock_cookie[k], kept);
    }
}

static void conn_release(struct loop_deferred *d)
{
    free(container_of(d, struct conn, release));
}

static uint64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void conn_unlink(struct conn *c)
{
    struct conns *t = c->t;
    if (c->prev)
        c->prev->next = c->next;
    else
        t->active = c->next;
    if (c->next)
        c->next->prev = c->prev;
    t->stats.active--;
}

void conn_mark_open(struct conn *c)
{
    const struct conns_observer *o = &c->t->opts.observer;
    c->rec.state = CONN_OPEN;
    if (c->twin)
        conn_mark_open(c->twin);
    if (c->reported_open)
        return;
    c->t->stats.forwarded++;
    if (o->opened)
        o->opened(o->ctx, &c->rec);
    c->reported_open = true;
}

/* Finishes a connection's record and schedules its release. */
static void conn_finish(struct conn *c, enum conn_state state, int err)
{
    struct conns *t = c->t;
    const struct conns_observer *o = &t->opts.observer;
    c->rec.state = state;
    c->rec.error = err < 0 ? -err : err;
    c->rec.duration_ms = (loop_now_ns() - c->start_ns) / 1000000;
    if (state == CONN_FAILED)
        t->stats.failed++;
    if (!c->reported_open && o->opened)
        o->opened(o->ctx, &c->rec);
    if (o->closed)
        o->closed(o->ctx, &c->rec);
    conn_keep_record(t, c);
    conn_unlink(c);
    struct conn *tw = conn_untwin(c);
    if (tw) { /* the destination saw what the source saw */
        tw->rec.bytes_sent = c->rec.bytes_sent;
        tw->rec.bytes_received = c->rec.bytes_received;
        if (c->rec.response_flag != RESP_FLAG_NONE)
            tw->rec.response_flag = c->rec.response_flag;
        conn_finish(tw, state, err);
    }
    char src[ADDR_STRLEN], dst[ADDR_STRLEN];
    log_debug("%s: conn %llu %s %s -> %s %s %s sent=%llu received=%llu", c->rec.direction,
              (unsigned long long)c->rec.id, c->rec.pod, addr_format(&c->rec.src, src, sizeof(src)),
              addr_format(&c->rec.orig_dst, dst, sizeof(dst)), conn_state_name(state),
              resp_flag_name(c->rec.response_flag), (unsigned long long)c->rec.bytes_sent,
              (unsigned long long)c->rec.bytes_received);
    c->release.fn = conn_release;
    loop_defer(t->loop, &c->release);
}

struct conn *conn_begin(struct conns *t, int down_fd, const char *direction, const char *pod,
                        const struct meshd_addr *src)
{
    t->stats.accepted++;
    if (t->stats.active >= t->opts.max_conns) {
        t->stats.overflow++;
        log_ratelimited(LOG_WARN, "%s: %s: %zu connections active, refusing", direction, pod,
                        t->opts.max_conns);
        close_with_reset(down_fd);
        return NULL;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close_with_reset(down_fd);
        return NULL;
    }
    c->t = t;
    c->down_fd = down_fd;
    c->connect_io.fd = -1;
    c->start_ns = loop_now_ns();
    c->rec.id = ++t->next_id;
    c->rec.start_unix_ms = unix_ms();
    c->rec.src = *src;
    c->rec.state = CONN_CONNECTING;
    conn_set_cookie(c, 0, down_fd);
    snprintf(c->rec.direction, sizeof(c->rec.direction), "%s", direction);
    snprintf(c->rec.pod, sizeof(c->rec.pod), "%s", pod);
    c->next = t->active;
    if (t->active)
        t->active->prev = c;
    t->active = c;
    t->stats.active++;
    return c;
}

struct conn_record *conn_record(struct conn *c)
{
    return &c->rec;
}

int conn_app_fd(const struct conn *c)
{
    return c->down_fd;
}

int conn_detach_fd(struct conn *c)
{
    int fd = c->down_fd;
    c->down_fd = -1;
    return fd;
}

int conn_take_fd(struct conn *c)
{
    int fd = c->down_fd;
    c->down_fd = -1;
    conn_mark_open(c);
    return fd;
}

void conn_return_fd(struct conn *c, int fd)
{
    close_with_reset(c->down_fd); /* none: a carrier took it */
    c->down_fd = fd;
}

void conn_end(struct conn *c, int err, uint64_t bytes_sent, uint64_t bytes_received,
              enum resp_flag flag)
{
    close_with_reset(c->down_fd); /* still ours: no carrier took it */
    c->down_fd = -1;
    c->rec.bytes_sent = bytes_sent;
    c->rec.bytes_received = bytes_received;
    if (flag != RESP_FLAG_NONE)
        c->rec.response_flag = flag;
    conn_finish(c, err ? CONN_FAILED : CONN_CLOSED, err);
}

void conn_refuse(struct conn *c, int err, enum resp_flag flag)
{
    c->rec.response_flag = flag;
    c->t->stats.refused++;
    close_with_reset(c->down_fd);
    conn_finish(c, CONN_FAILED, err);
}

void conn_refuse_self_call(struct conn *c)
{
    c->t->stats.self_calls++;
    conn_refuse(c, -ECONNREFUSED, RESP_FLAG_SELF_CALL);
}

static void conn_on_relay_done(struct relay *r, int err)
{
    struct conn *c = (struct conn *)r;
    c->rec.bytes_sent += r->bytes[RELAY_DOWN];
    c->rec.bytes_received += r->bytes[RELAY_UP];
    /* Envoy's flags: the upstream (UC) or the downstream (DC) terminated
     * the connection abnormally. */
    if (err)
        c->rec.response_flag = r->failed_end == RELAY_UP ? RESP_FLAG_UC : RESP_FLAG_DC;
    conn_finish(c, err ? CONN_FAILED : CONN_CLOSED, err);
}

/* A connect attempt failed (the upstream socket is gone): the watcher may
 * take the connection on; otherwise it fails with a reset and `flag`:
 * Envoy's UF for a connect that failed (its own timeout included), UT for
 * one cut at a route's deadline. */
static void conn_connect_failed(struct conn *c, int err, enum resp_flag flag)
{
    conn_attempt_fn done = c->attempt_done;
    c->attempt_done = NULL;
    if (done && done(c->attempt_ctx, c, err))
        return;
    close_with_reset(c->down_fd);
    c->down_fd = -1;
    c->rec.response_flag = flag;
    conn_finish(c, CONN_FAILED, err);
}

static void conn_on_connected(struct loop_io *io, uint32_t events)
{
    struct conn *c = container_of(io, struct conn, connect_io);
    int soerr = upstream_connect_result(io->fd);
    if (soerr == 0 && !(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        return;
    loop_del(c->t->loop, io);
    int up_fd = io->fd;
    io->fd = -1;
    conn_connected_fn connected = c->connected;
    c->connected = NULL;
    if (connected) { /* a carrier of its own takes the socket */
        if (soerr) {
            close(up_fd);
            connected(c->connected_ctx, c, -soerr);
            return;
        }
        upstream_connected(up_fd);
        conn_mark_open(c);
        connected(c->connected_ctx, c, up_fd);
        return;
    }
    if (soerr) {
        char dst[ADDR_STRLEN];
        log_ratelimited(LOG_INFO, "%s: %s: connect to %s failed: %s", c->rec.direction, c->rec.pod,
                        addr_format(&c->rec.upstream, dst, sizeof(dst)), strerror(soerr));
        close(up_fd);
        conn_connect_failed(c, -soerr, RESP_FLAG_UF);
        return;
    }
    upstream_connected(up_fd);
    conn_mark_open(c);
    conn_attempt_fn done = c->attempt_done;
    c->attempt_done = NULL;
    if (done)
        done(c->attempt_ctx, c, 0);
    int rc = c->splice
                 ? relay_start_splice(&c->relay, c->t->loop, c->down_fd, up_fd, conn_on_relay_done)
                 : relay_start(&c->relay, c->t->loop, c->down_fd, up_fd, conn_on_relay_done);
    if (rc)
        conn_finish(c, CONN_FAILED, rc);
}

void conn_set_splice(struct conn *c)
{
    c->splice = true;
}

void conn_relay_raw(struct conn *c, int down_fd, int up_fd, uint64_t bytes_sent,
                    uint64_t bytes_received)
{
    c->rec.bytes_sent = bytes_sent;
    c->rec.bytes_received = bytes_received;
    int rc = relay_start(&c->relay, c->t->loop, down_fd, up_fd, conn_on_relay_done);
    if (rc)
        conn_finish(c, CONN_FAILED, rc);
}

/* The one upstream connect of a connection, watched on the loop: the
 * connecting socket, or -errno with nothing left open. */
static int connect_start(struct conn *c, int netns_fd, const struct meshd_addr *to,
                         const struct upstream_source *bind_src,
                         const struct upstream_tuning *tuning)
{
    int fd = upstream_connect(netns_fd, to, bind_src, &c->t->opts.owner, tuning);
    if (fd < 0)
        return fd;
    c->connect_io.fd = fd;
    c->connect_io.cb = conn_on_connected;
    int rc = loop_add(c->t->loop, &c->connect_io, EPOLLOUT);
    if (rc) {
        close(fd);
        c->connect_io.fd = -1;
        return rc;
    }
    return fd;
}

void conn_forward_attempt(struct conn *c, int netns_fd, const struct meshd_addr *dst,
                          const struct upstream_source *bind_src,
                          const struct upstream_tuning *tuning, conn_attempt_fn done, void *ctx)
{
    c->attempt_done = done;
    c->attempt_ctx = ctx;
    const struct meshd_addr *to = dst ? dst : &c->rec.orig_dst;
    c->rec.upstream = *to;
    int rc = connect_start(c, netns_fd, to, bind_src, tuning);
    if (rc >= 0)
        conn_set_cookie(c, 1, rc);
    else
        conn_connect_failed(c, rc, RESP_FLAG_UF);
}

int conn_connect(struct conn *c, int netns_fd, const struct meshd_addr *dst,
                 const struct upstream_source *bind_src, const struct upstream_tuning *tuning,
                 conn_connected_fn done, void *ctx)
{
    c->connected = done;
    c->connected_ctx = ctx;
    int rc = connect_start(c, netns_fd, dst, bind_src, tuning);
    if (rc < 0)
        c->connected = NULL;
    else
        conn_set_cookie(c, 1, rc); /* the socket toward the app (HBONE inbound) */
    return rc < 0 ? rc : 0;
}

void conn_cancel_connect(struct conn *c)
{
    if (c->connect_io.fd < 0)
        return;
    loop_del(c->t->loop, &c->connect_io);
    close(c->connect_io.fd);
    c->connect_io.fd = -1;
    c->connected = NULL;
}

void conn_forward(struct conn *c, int netns_fd, const struct meshd_addr *dst,
                  const struct upstream_source *bind_src, const struct upstream_tuning *tuning)
{
    conn_forward_attempt(c, netns_fd, dst, bind_src, tuning, NULL, NULL);
}

int conn_abort_connect(struct conn *c, int err)
{
    if (c->connect_io.fd < 0)
        return -EALREADY;
    conn_connected_fn connected = c->connected;
    conn_cancel_connect(c);
    if (connected)
        connected(c->connected_ctx, c, err);
    else
        conn_connect_failed(c, err, RESP_FLAG_UT);
    return 0;
}

size_t conns_revalidate(struct conns *t, const char *direction,
                        bool (*keep)(void *ctx, const struct conn_record *rec), void *ctx)
{
    size_t closed = 0;
    struct conn *next;
    for (struct conn *c = t->active; c; c = next) {
        next = c->next; /* conn_finish unlinks c */
        if (c->down_fd < 0 || c->rec.state != CONN_OPEN || c->relay.finished ||
            strcmp(c->rec.direction, direction) != 0 || keep(ctx, &c->rec))
            continue;
        c->rec.bytes_sent = c->relay.bytes[RELAY_DOWN];
        c->rec.bytes_received = c->relay.bytes[RELAY_UP];
        relay_abort(&c->relay);
        c->rec.response_flag = RESP_FLAG_DENY;
        conn_finish(c, CONN_FAILED, -EACCES);
        closed++;
    }
    return closed;
}

void conn_twin(struct conn *c, struct conn *twin)
{
    c->twin = twin;
    twin->primary = c;
}

struct conn *conn_untwin(struct conn *c)
{
    struct conn *tw = c->twin;
    c->twin = NULL;
    if (tw)
        tw->primary = NULL;
    return tw;
}

size_t conns_revalidate_twins(struct conns *t,
                              bool (*keep)(void *ctx, const struct conn_record *rec), void *ctx)
{
    size_t closed = 0;
    struct conn *next;
    for (struct conn *c = t->active; c; c = next) {
        next = c->next; /* conn_finish unlinks c and its twin */
        while (next && next == c->twin)
            next = next->next;
        if (!c->twin || c->down_fd < 0 || c->rec.state != CONN_OPEN || c->relay.finished ||
            keep(ctx, &c->twin->rec))
            continue;
        c->rec.bytes_sent = c->relay.bytes[RELAY_DOWN];
        c->rec.bytes_received = c->relay.bytes[RELAY_UP];
        relay_abort(&c->relay);
        c->rec.response_flag = RESP_FLAG_DENY;
        conn_finish(c, CONN_FAILED, -EACCES);
        closed++;
    }
    return closed;
}

void conns_free(struct conns *t)
{
    if (!t)
        return;
    while (t->active) {
        struct conn *c = t->active;
        t->active = c->next;
        if (c->down_fd < 0) {
            /* carried by an HBONE stream, which its session tears down */
            conn_cancel_connect(c);
        } else if (c->rec.state == CONN_OPEN) {
            relay_abort(&c->relay);
        } else {
            if (c->connect_io.fd >= 0) {
                loop_del(t->loop, &c->connect_io);
                close(c->connect_io.fd);
            }
            if (c->attempt_done) /* the watcher frees its own state only */
                c->attempt_done(c->attempt_ctx, c, -ECANCELED);
            close_with_reset(c->down_fd);
        }
        free(c);
    }
    records_free(t->records);
    cookie_index_free(t->cookies);
    free(t);
}

void conns_foreach(const struct conns *t, void (*fn)(const struct conn_record *, void *), void *arg)
{
    for (const struct conn *c = t->active; c; c = c->next) {
        struct conn_record rec = c->rec;
        const struct conn *relayed = c->primary ? c->primary : c; /* a twin: its carrier's */
        if (rec.state == CONN_OPEN && relayed->rec.state == CONN_OPEN && relayed->down_fd >= 0) {
            rec.bytes_sent = relayed->relay.bytes[RELAY_DOWN];
            rec.bytes_received = relayed->relay.bytes[RELAY_UP];
        }
        rec.duration_ms = (loop_now_ns() - c->start_ns) / 1000000;
        fn(&rec, arg);
    }
    for (size_t i = 0; i < records_count(t->records); i++)
        fn(records_get(t->records, i), arg);
}

const struct conn_record *conns_kernel_event(struct conns *t, const struct meshd_conn_event *ev)
{
    struct conn_record *rec = cookie_index_get(t->cookies, ev->sock_cookie);
    if (!rec)
        return NULL;
    rec->rtt_us = ev->srtt_us;
    rec->retrans = ev->total_retrans;
    rec->kernel_seen = 1;
    return rec;
}

void conns_get_stats(const struct conns *t, struct conns_stats *st)
{
    *st = t->stats;
}
