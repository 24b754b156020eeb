/* Request/response connection handling with per-client deadlines and a
 * per-source fair share (see reqserver.h).
 *
 * Clients sit in one list in accept order (oldest first); tables are small
 * (tens of clients), so eviction and the deadline timer scan the list. One
 * timerfd per server is armed at the earliest deadline and only while
 * clients exist. */
#include "admin/reqserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "core/container.h"
#include "core/log.h"
#include "core/loop.h"

/* After the response: how long the client's remaining input is drained. */
#define REQSERVER_LINGER_MS 1000
/* The request buffer starts this small and doubles up to max_request. */
#define REQSERVER_IN_START 1024

enum client_state { CLIENT_READING, CLIENT_WRITING, CLIENT_LINGERING };

/* A peer address without its port; family 0 for unix peers. */
struct source {
    sa_family_t family;
    uint8_t addr[16];
};

struct client {
    struct loop_io io;
    struct reqserver *srv; /* borrowed */
    enum client_state state;
    struct source src;
    uint64_t deadline_ns;
    char *in; /* in_cap + 1 bytes, NUL-terminated while reading */
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off;
    struct client *prev, *next; /* accept order: s->head is the oldest */
    struct loop_deferred release;
};

struct reqserver {
    struct loop_io io;
    struct loop_io timer;
    struct loop *loop; /* borrowed */
    struct reqserver_ops ops;
    struct client *head, *tail;
    size_t nclients;
    uint64_t armed_ns; /* 0: disarmed */
    struct reqserver_stats stats;
};

static const char *const reject_names[REQSERVER_REJECT__MAX] = {
    [REQSERVER_FULL] = "full",
    [REQSERVER_SOURCE_CAP] = "source_cap",
    [REQSERVER_EVICTED] = "evicted",
    [REQSERVER_READ_TIMEOUT] = "read_timeout",
    [REQSERVER_WRITE_TIMEOUT] = "write_timeout",
    [REQSERVER_TOO_LARGE] = "too_large",
    [REQSERVER_NOT_LOOPBACK] = "not_loopback",
};

const char *reqserver_reject_name(enum reqserver_reject r)
{
    return r < REQSERVER_REJECT__MAX ? reject_names[r] : "unknown";
}

static uint64_t ms_to_ns(unsigned ms)
{
    return (uint64_t)ms * 1000000ull;
}

static void source_of(const struct sockaddr_storage *ss, struct source *out)
{
    memset(out, 0, sizeof(*out));
    if (ss->ss_family == AF_INET) {
        out->family = AF_INET;
        memcpy(out->addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        out->family = AF_INET6;
        memcpy(out->addr, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    }
}

static bool source_eq(const struct source *a, const struct source *b)
{
    return a->family == b->family && memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

static bool source_is_loopback(const struct source *s)
{
    static const uint8_t v6_loopback[16] = {[15] = 1};
    static const uint8_t v4_mapped[12] = {[10] = 0xff, [11] = 0xff};
    if (s->family == AF_INET)
        return s->addr[0] == 127;
    if (s->family == AF_INET6)
        return memcmp(s->addr, v6_loopback, 16) == 0 ||
               (memcmp(s->addr, v4_mapped, 12) == 0 && s->addr[12] == 127);
    return false;
}

static const char *source_format(const struct source *s, char *buf, size_t len)
{
    if (!s->family || !inet_ntop(s->family, s->addr, buf, (socklen_t)len))
        snprintf(buf, len, "local");
    return buf;
}

/* Arms the timer at the earliest client deadline (disarms with none). */
static void server_arm(struct reqserver *s)
{
    uint64_t next = 0;
    for (const struct client *c = s->head; c; c = c->next)
        if (!next || c->deadline_ns < next)
            next = c->deadline_ns;
    if (next == s->armed_ns)
        return;
    struct itimerspec its = {.it_value = {.tv_sec = (time_t)(next / 1000000000ull),
                                          .tv_nsec = (long)(next % 1000000000ull)}};
    if (timerfd_settime(s->timer.fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
        s->armed_ns = next;
}

static void client_release(struct loop_deferred *d)
{
    struct client *c = container_of(d, struct client, release);
    free(c->in);
    free(c->out);
    free(c);
}

/* Closes c; `why` is counted unless it is REQSERVER_REJECT__MAX (a normal
 * end). c stays allocated until the end of the loop batch. */
static void client_close(struct client *c, enum reqserver_reject why)
{
    struct reqserver *s = c->srv;
    if (why < REQSERVER_REJECT__MAX) {
        char a[INET6_ADDRSTRLEN];
        s->stats.rejected[why]++;
        log_ratelimited(LOG_WARN, "%s: client %s dropped (%s)", s->ops.name,
                        source_format(&c->src, a, sizeof(a)), reqserver_reject_name(why));
        /* Abortive: a plain close would leave the unsent response to the
         * kernel, an orphan a client that never reads keeps alive. */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->io.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    loop_del(s->loop, &c->io);
    close(c->io.fd);
    *(c->prev ? &c->prev->next : &s->head) = c->next;
    *(c->next ? &c->next->prev : &s->tail) = c->prev;
    s->nclients--;
    c->release.fn = client_release;
    loop_defer(s->loop, &c->release);
}

static void client_respond(struct client *c, const char *req, size_t len)
{
    struct reqserver *s = c->srv;
    s->ops.respond(s->ops.ctx, req, len, &c->out, &c->out_len);
    if (!c->out) {
        client_close(c, REQSERVER_REJECT__MAX);
        return;
    }
    c->state = CLIENT_WRITING;
    c->deadline_ns = loop_now_ns() + ms_to_ns(s->ops.write_ms);
    loop_set(s->loop, &c->io, EPOLLOUT);
}

/* The whole response is out: stop sending and drain the client's input
 * for a moment, since closing with unread input resets the connection and
 * the client could lose the response (a 431 to an oversized request). */
static void client_linger(struct client *c)
{
    struct reqserver *s = c->srv;
    s->stats.served++;
    free(c->out);
    c->out = NULL;
    free(c->in);
    c->in = NULL;
    c->state = CLIENT_LINGERING;
    c->deadline_ns = loop_now_ns() + ms_to_ns(REQSERVER_LINGER_MS);
    if (shutdown(c->io.fd, SHUT_WR) == -1) {
        client_close(c, REQSERVER_REJECT__MAX);
        return;
    }
    loop_set(s->loop, &c->io, EPOLLIN);
}

static void client_write(struct client *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->io.fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
            return;
        } else {
            client_close(c, REQSERVER_REJECT__MAX);
            return;
        }
    }
    client_linger(c);
}

static void client_drain(struct client *c)
{
    char sink[4096];
    /* Bounded per event: the deadline ends a client that keeps sending. */
    for (int i = 0; i < 16; i++) {
        ssize_t n = read(c->io.fd, sink, sizeof(sink));
        if (n == -1 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0)
            break;
    }
    client_close(c, REQSERVER_REJECT__MAX);
}

/* Room for more input: doubles the buffer up to max_request. */
static int client_grow(struct client *c)
{
    size_t max = c->srv->ops.max_request;
    size_t cap = c->in_cap ? c->in_cap * 2 : REQSERVER_IN_START;
    if (cap > max)
        cap = max;
    char *in = realloc(c->in, cap + 1);
    if (!in)
        return -ENOMEM;
    c->in = in;
    c->in_cap = cap;
    return 0;
}

static void client_read(struct client *c)
{
    struct reqserver *s = c->srv;
    for (;;) {
        if (c->in_len == s->ops.max_request) {
            s->stats.rejected[REQSERVER_TOO_LARGE]++;
            log_ratelimited(LOG_WARN, "%s: request over %zu bytes", s->ops.name,
                            s->ops.max_request);
            client_respond(c, NULL, 0);
            return;
        }
        if (c->in_len == c->in_cap && client_grow(c) != 0) {
            client_close(c, REQSERVER_REJECT__MAX);
            return;
        }
        ssize_t n = read(c->io.fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n == -1 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n < 0) {
            client_close(c, REQSERVER_REJECT__MAX);
            return;
        }
        c->in_len += (size_t)n;
        c->in[c->in_len] = '\0';
        size_t req = s->ops.complete(c->in, c->in_len, n == 0);
        if (req) {
            client_respond(c, c->in, req);
            return;
        }
        if (n == 0) { /* EOF before a complete request */
            client_close(c, REQSERVER_REJECT__MAX);
            return;
        }
    }
}

static void client_on_io(struct loop_io *io, uint32_t events)
{
    struct client *c = (struct client *)io;
    struct reqserver *s = c->srv;
    switch (c->state) {
    case CLIENT_READING:
        client_read(c);
        break;
    case CLIENT_WRITING:
        client_write(c);
        break;
    case CLIENT_LINGERING:
        client_drain(c);
        break;
    }
    server_arm(s);
}

static void on_timer(struct loop_io *io, uint32_t events)
{
    struct reqserver *s = container_of(io, struct reqserver, timer);
    uint64_t expirations;
    if (read(io->fd, &expirations, sizeof(expirations)) == -1 && errno != EAGAIN)
        return;
    s->armed_ns = 0;
    uint64_t now = loop_now_ns();
    for (struct client *c = s->head, *next; c; c = next) {
        next = c->next;
        if (c->deadline_ns > now)
            continue;
        if (c->state == CLIENT_READING)
            client_close(c, REQSERVER_READ_TIMEOUT);
        else if (c->state == CLIENT_WRITING)
            client_close(c, REQSERVER_WRITE_TIMEOUT);
        else
            client_close(c, REQSERVER_REJECT__MAX);
    }
    server_arm(s);
}

static size_t source_count(const struct reqserver *s, const struct source *src)
{
    size_t n = 0;
    for (const struct client *c = s->head; c; c = c->next)
        n += source_eq(&c->src, src);
    return n;
}

/* The table is full and a client from a source holding `mine` wants in:
 * the oldest client of the source holding the most, if that is more than
 * `mine` (without addresses: the oldest client). NULL: refuse the newcomer.
 * Ties go to the source whose oldest client is older (found first). */
static struct client *pick_victim(struct reqserver *s, size_t mine)
{
    if (!s->ops.max_per_source)
        return s->head;
    struct client *victim = NULL;
    size_t most = mine;
    for (struct client *c = s->head; c; c = c->next) {
        size_t n = source_count(s, &c->src);
        if (n > most) {
            most = n;
            victim = c;
        }
    }
    return victim;
}

/* Decides on a newcomer: REQSERVER_REJECT__MAX to admit it (after evicting
 * someone if full), else the reason to refuse it. */
static enum reqserver_reject admit(struct reqserver *s, const struct source *src)
{
    if (s->ops.loopback_only && !source_is_loopback(src))
        return REQSERVER_NOT_LOOPBACK;
    size_t mine = s->ops.max_per_source ? source_count(s, src) : 0;
    if (s->ops.max_per_source && mine >= s->ops.max_per_source)
        return REQSERVER_SOURCE_CAP;
    if (s->nclients < s->ops.max_clients)
        return REQSERVER_REJECT__MAX;
    struct client *victim = pick_victim(s, mine);
    if (!victim)
        return REQSERVER_FULL;
    client_close(victim, REQSERVER_EVICTED);
    return REQSERVER_REJECT__MAX;
}

static void on_accept(struct loop_io *io, uint32_t events)
{
    struct reqserver *s = (struct reqserver *)io;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss = {0};
        socklen_t sslen = sizeof(ss);
        int fd = accept4(io->fd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1)
            break;
        struct source src;
        source_of(&ss, &src);
        enum reqserver_reject why = admit(s, &src);
        if (why != REQSERVER_REJECT__MAX) {
            char a[INET6_ADDRSTRLEN];
            s->stats.rejected[why]++;
            log_ratelimited(LOG_WARN, "%s: client %s refused (%s)", s->ops.name,
                            source_format(&src, a, sizeof(a)), reqserver_reject_name(why));
            close(fd);
            continue;
        }
        struct client *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->io.fd = fd;
        c->io.cb = client_on_io;
        c->srv = s;
        c->src = src;
        c->deadline_ns = loop_now_ns() + ms_to_ns(s->ops.read_ms);
        if (client_grow(c) != 0 || loop_add(s->loop, &c->io, EPOLLIN) != 0) {
            close(fd);
            free(c->in);
            free(c);
            continue;
        }
        c->prev = s->tail;
        *(s->tail ? &s->tail->next : &s->head) = c;
        s->tail = c;
        s->nclients++;
    }
    server_arm(s);
}

int reqserver_new(struct loop *loop, int listen_fd, const struct reqserver_ops *ops,
                  struct reqserver **out)
{
    int err = -ENOMEM;
    struct reqserver *s = calloc(1, sizeof(*s));
    if (!s)
        goto err_close;
    s->loop = loop;
    s->ops = *ops;
    s->io.fd = listen_fd;
    s->io.cb = on_accept;
    s->timer.cb = on_timer;
    s->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->timer.fd == -1) {
        err = -errno;
        goto err_free;
    }
    if ((err = loop_add(loop, &s->timer, EPOLLIN)) != 0)
        goto err_timer;
    if ((err = loop_add(loop, &s->io, EPOLLIN)) != 0)
        goto err_timer_del;
    *out = s;
    return 0;
err_timer_del:
    loop_del(loop, &s->timer);
err_timer:
    close(s->timer.fd);
err_free:
    free(s);
err_close:
    close(listen_fd);
    return err;
}

void reqserver_free(struct reqserver *s)
{
    if (!s)
        return;
    while (s->head)
        client_close(s->head, REQSERVER_REJECT__MAX);
    loop_del(s->loop, &s->io);
    close(s->io.fd);
    loop_del(s->loop, &s->timer);
    close(s->timer.fd);
    free(s);
}

void reqserver_get_stats(const struct reqserver *s, struct reqserver_stats *out)
{
    *out = s->stats;
    out->clients = s->nclients;
}

int reqserver_listen_fd(const struct reqserver *s)
{
    return s->io.fd;
}
