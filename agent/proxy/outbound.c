/* Outbound proxy: accept, original destination, upstream connect, relay. */
#include "proxy/outbound.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "capture/capture.h"
#include "core/addr.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/netns.h"
#include "enroll/pods.h"
#include "proxy/relay.h"

#define ACCEPT_BATCH 64
/* Bounds a connect to an unresponsive destination (SYN retries). */
#define UPSTREAM_USER_TIMEOUT_MS 10000

struct listener {
    struct loop_io io;
    struct outbound *ob;
    struct pod *pod; /* borrowed: the registry frees the pod after detach */
};

struct pod_listeners {
    struct listener l[2]; /* IPv4, IPv6 */
};

struct outbound_conn {
    struct relay relay;
    struct loop_io connect_io; /* upstream socket while connecting */
    int down_fd;
    uint64_t start_ns;
    struct conn_record rec;
    struct outbound *ob;
    struct outbound_conn *prev, *next;
    struct loop_deferred release;
};

struct outbound {
    struct loop *loop;       /* borrowed */
    struct capture *capture; /* borrowed */
    struct outbound_opts opts;
    struct outbound_conn *active;
    struct outbound_stats stats;
    struct records *records;
    uint64_t next_id;
};

int outbound_new(struct loop *loop, struct capture *capture, const struct outbound_opts *opts,
                 struct outbound **out)
{
    struct outbound *ob = calloc(1, sizeof(*ob));
    if (!ob)
        return -ENOMEM;
    ob->loop = loop;
    ob->capture = capture;
    ob->opts = *opts;
    int err = records_new(opts->records ? opts->records : 1, &ob->records);
    if (err) {
        free(ob);
        return err;
    }
    *out = ob;
    return 0;
}

static void conn_release(struct loop_deferred *d)
{
    struct outbound_conn *c =
        (struct outbound_conn *)((char *)d - offsetof(struct outbound_conn, release));
    free(c);
}

static void close_with_reset(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

static uint64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Finishes a connection's record and schedules its release. */
static void conn_finish(struct outbound_conn *c, enum conn_state state, int err)
{
    struct outbound *ob = c->ob;
    c->rec.state = state;
    c->rec.error = err < 0 ? -err : err;
    c->rec.duration_ms = (loop_now_ns() - c->start_ns) / 1000000;
    if (c->rec.state == CONN_FAILED)
        ob->stats.failed++;
    records_push(ob->records, &c->rec);
    if (c->prev)
        c->prev->next = c->next;
    else
        ob->active = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ob->stats.active--;
    char src[ADDR_STRLEN], dst[ADDR_STRLEN];
    log_debug("outbound: conn %llu %s %s -> %s %s sent=%llu received=%llu",
              (unsigned long long)c->rec.id, c->rec.pod, addr_format(&c->rec.src, src, sizeof(src)),
              addr_format(&c->rec.orig_dst, dst, sizeof(dst)), conn_state_name(state),
              (unsigned long long)c->rec.bytes_sent, (unsigned long long)c->rec.bytes_received);
    c->release.fn = conn_release;
    loop_defer(ob->loop, &c->release);
}

static void conn_on_relay_done(struct relay *r, int err)
{
    struct outbound_conn *c = (struct outbound_conn *)r;
    c->rec.bytes_sent = r->bytes[RELAY_DOWN];
    c->rec.bytes_received = r->bytes[RELAY_UP];
    conn_finish(c, err ? CONN_FAILED : CONN_CLOSED, err);
}

static void conn_on_connected(struct loop_io *io, uint32_t events)
{
    struct outbound_conn *c =
        (struct outbound_conn *)((char *)io - offsetof(struct outbound_conn, connect_io));
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
        soerr = errno;
    if (soerr == 0 && !(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        return;
    loop_del(c->ob->loop, io);
    if (soerr) {
        char dst[ADDR_STRLEN];
        log_ratelimited(LOG_INFO, "outbound: %s: connect to %s failed: %s", c->rec.pod,
                        addr_format(&c->rec.orig_dst, dst, sizeof(dst)), strerror(soerr));
        close(io->fd);
        close_with_reset(c->down_fd);
        conn_finish(c, CONN_FAILED, soerr);
        return;
    }
    c->rec.state = CONN_OPEN;
    c->ob->stats.forwarded++;
    int rc = relay_start(&c->relay, c->ob->loop, c->down_fd, io->fd, conn_on_relay_done);
    if (rc)
        conn_finish(c, CONN_FAILED, rc);
}

/* Opens the upstream socket in the pod netns and starts a non-blocking
 * connect to the original destination. */
static int conn_connect(struct outbound_conn *c, struct pod *pod)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    int rc = addr_to_sockaddr(&c->rec.orig_dst, &ss, &sslen);
    if (rc)
        return rc;
    int fd =
        netns_socket(pod->netns_fd, ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    int one = 1;
    unsigned int timeout = UPSTREAM_USER_TIMEOUT_MS;
    if (setsockopt(fd, SOL_SOCKET, SO_MARK, &c->ob->opts.mark, sizeof(c->ob->opts.mark)) == -1) {
        /* Without the mark our own connect would be captured again: refuse. */
        rc = -errno;
        close(fd);
        return rc;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof(timeout));
    if (connect(fd, (struct sockaddr *)&ss, sslen) == -1 && errno != EINPROGRESS) {
        rc = -errno;
        close(fd);
        return rc;
    }
    c->connect_io.fd = fd;
    c->connect_io.cb = conn_on_connected;
    rc = loop_add(c->ob->loop, &c->connect_io, EPOLLOUT);
    if (rc)
        close(fd);
    return rc;
}

static void outbound_accept_one(struct listener *l, int fd, const struct sockaddr *peer,
                                socklen_t peerlen)
{
    struct outbound *ob = l->ob;
    struct pod *pod = l->pod;
    ob->stats.accepted++;
    struct meshd_flow_key key = {.netns_cookie = pod->netns_cookie};
    if (addr_from_sockaddr(peer, peerlen, &key.src) != 0) {
        close_with_reset(fd);
        return;
    }
    if (ob->stats.active >= ob->opts.max_conns) {
        ob->stats.overflow++;
        log_ratelimited(LOG_WARN, "outbound: %s/%s: %zu connections active, refusing", pod->ns,
                        pod->name, ob->opts.max_conns);
        close_with_reset(fd);
        return;
    }
    struct outbound_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close_with_reset(fd);
        return;
    }
    c->ob = ob;
    c->down_fd = fd;
    c->start_ns = loop_now_ns();
    c->rec.id = ++ob->next_id;
    c->rec.start_unix_ms = unix_ms();
    c->rec.src = key.src;
    c->rec.state = CONN_CONNECTING;
    snprintf(c->rec.direction, sizeof(c->rec.direction), "outbound");
    snprintf(c->rec.pod, sizeof(c->rec.pod), "%s/%s", pod->ns, pod->name);
    c->next = ob->active;
    if (ob->active)
        ob->active->prev = c;
    ob->active = c;
    ob->stats.active++;

    struct meshd_orig_dst od;
    int rc = capture_orig_dst_take(ob->capture, &key, &od);
    if (rc) {
        /* Fail closed: without the original destination there is nowhere
         * safe to send the bytes. */
        char src[ADDR_STRLEN];
        ob->stats.no_orig_dst++;
        log_ratelimited(LOG_WARN, "outbound: %s: no original destination for %s; refused",
                        c->rec.pod, addr_format(&key.src, src, sizeof(src)));
        close_with_reset(fd);
        conn_finish(c, CONN_FAILED, rc);
        return;
    }
    c->rec.orig_dst = od.dst;
    rc = conn_connect(c, pod);
    if (rc) {
        close_with_reset(fd);
        conn_finish(c, CONN_FAILED, rc);
    }
}

static void listener_on_io(struct loop_io *io, uint32_t events)
{
    struct listener *l = (struct listener *)io;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t peerlen = sizeof(peer);
        int fd = accept4(io->fd, (struct sockaddr *)&peer, &peerlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_ratelimited(LOG_WARN, "outbound: accept: %s", strerror(errno));
            return;
        }
        outbound_accept_one(l, fd, (struct sockaddr *)&peer, peerlen);
    }
}

static int listen_in_pod(struct outbound *ob, struct pod *pod, int family, struct listener *l)
{
    struct meshd_addr a = {.family = family == AF_INET ? MESHD_AF_INET : MESHD_AF_INET6,
                           .port = htons(ob->opts.port)};
    if (family == AF_INET)
        a.addr[0] = 127, a.addr[3] = 1;
    else
        a.addr[15] = 1;
    struct sockaddr_storage ss;
    socklen_t len;
    addr_to_sockaddr(&a, &ss, &len);
    int fd = netns_socket(pod->netns_fd, family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) == -1 || listen(fd, 4096) == -1) {
        int err = -errno;
        close(fd);
        return err;
    }
    l->io.fd = fd;
    l->io.cb = listener_on_io;
    l->ob = ob;
    l->pod = pod;
    int err = loop_add(ob->loop, &l->io, EPOLLIN);
    if (err) {
        close(fd);
        l->io.fd = -1;
    }
    return err;
}

int outbound_attach_pod(void *ctx, struct pod *pod)
{
    struct outbound *ob = ctx;
    struct pod_listeners *pl = calloc(1, sizeof(*pl));
    if (!pl)
        return -ENOMEM;
    pl->l[0].io.fd = pl->l[1].io.fd = -1;
    int err = listen_in_pod(ob, pod, AF_INET, &pl->l[0]);
    if (err) {
        free(pl);
        return err;
    }
    /* A pod without IPv6 (disabled, or lo has no ::1) is IPv4-only. */
    err = listen_in_pod(ob, pod, AF_INET6, &pl->l[1]);
    if (err)
        log_warn("outbound: %s/%s: no IPv6 listener (%s); IPv6 connects will be refused", pod->ns,
                 pod->name, strerror(-err));
    pod->proxy_state = pl;
    return 0;
}

void outbound_detach_pod(void *ctx, struct pod *pod)
{
    struct outbound *ob = ctx;
    struct pod_listeners *pl = pod->proxy_state;
    if (!pl)
        return;
    for (int i = 0; i < 2; i++) {
        if (pl->l[i].io.fd < 0)
            continue;
        loop_del(ob->loop, &pl->l[i].io);
        close(pl->l[i].io.fd);
    }
    free(pl);
    pod->proxy_state = NULL;
}

void outbound_free(struct outbound *ob)
{
    if (!ob)
        return;
    while (ob->active) {
        struct outbound_conn *c = ob->active;
        ob->active = c->next;
        if (c->rec.state == CONN_CONNECTING) {
            loop_del(ob->loop, &c->connect_io);
            close(c->connect_io.fd);
            close_with_reset(c->down_fd);
        } else {
            relay_abort(&c->relay);
        }
        free(c);
    }
    records_free(ob->records);
    free(ob);
}

void outbound_foreach(const struct outbound *ob, void (*fn)(const struct conn_record *, void *),
                      void *arg)
{
    for (const struct outbound_conn *c = ob->active; c; c = c->next) {
        struct conn_record rec = c->rec;
        if (rec.state == CONN_OPEN) {
            rec.bytes_sent = c->relay.bytes[RELAY_DOWN];
            rec.bytes_received = c->relay.bytes[RELAY_UP];
        }
        rec.duration_ms = (loop_now_ns() - c->start_ns) / 1000000;
        fn(&rec, arg);
    }
    for (size_t i = 0; i < records_count(ob->records); i++)
        fn(records_get(ob->records, i), arg);
}

void outbound_get_stats(const struct outbound *ob, struct outbound_stats *st)
{
    *st = ob->stats;
}
