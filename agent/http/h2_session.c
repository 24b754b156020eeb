/* One downstream HTTP/2 connection of the HTTP carrier (see
 * h2_session.h): its socket, its codec, its streams' exchanges
 * (h2_exchange.c), and its lifetime. An HTTP/1 session whose client's
 * first bytes are the HTTP/2 preface hands its connection over here
 * (proxy.c), at the source as at the destination. The connection ends
 * when the client closes, on a protocol violation (after our GOAWAY), when
 * idle past the proxy's idle timeout (GOAWAY first), or on a drain. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/container.h"
#include "core/log.h"
#include "http/h2_session.h"
#include "proxy/conns.h"

#define H2S_IDLE_TIMEOUT_NS (3600ull * 1000000000) /* Envoy's idle_timeout, 1 h */

static void h2s_free_now(struct loop_deferred *d)
{
    struct h2s *s = container_of(d, struct h2s, release);
    h2_conn_free(s->h2);
    hbuf_free(&s->out);
    free(s);
}

static void h2s_update_events(struct h2s *s)
{
    uint32_t ev = EPOLLRDHUP;
    if (hbuf_pending(&s->out) < HTTP_OUT_HIGH)
        ev |= EPOLLIN; /* a client not reading its responses is not read either */
    if (hbuf_pending(&s->out))
        ev |= EPOLLOUT;
    loop_set(s->hp->loop, &s->io, ev);
}

static void h2s_flush_now(struct h2s *s)
{
    if (s->ended)
        return;
    while (hbuf_pending(&s->out) < HTTP_OUT_HIGH) {
        const uint8_t *p;
        ssize_t n = h2_conn_pull(s->h2, &p);
        if (n < 0) {
            h2s_end(s, (int)n, RESP_FLAG_DPE);
            return;
        }
        if (n == 0)
            break;
        if (hbuf_append(&s->out, p, (size_t)n) != 0) {
            h2s_end(s, -ENOMEM, RESP_FLAG_NONE);
            return;
        }
        s->down_out += (uint64_t)n;
    }
    int rc = hbuf_flush(&s->out, s->io.fd);
    if (rc) {
        h2s_end(s, rc, RESP_FLAG_DC);
        return;
    }
    if (h2_conn_done(s->h2) && !hbuf_pending(&s->out)) {
        h2s_end(s, 0, RESP_FLAG_NONE);
        return;
    }
    h2s_update_events(s);
}

static void h2s_flush_task(struct loop_task *t)
{
    h2s_flush_now(container_of(t, struct h2s, flush));
}

void h2s_kick(struct h2s *s)
{
    if (!s->ended)
        loop_task_queue(s->hp->loop, &s->flush);
}

static void h2s_recv(struct h2s *s, const uint8_t *p, size_t n)
{
    s->down_in += n;
    s->last_activity_ns = loop_now_ns();
    int rc = h2_conn_recv(s->h2, p, n);
    if (rc) {
        s->hp->stats.bad_requests++;
        log_ratelimited(LOG_INFO, "http2: %s: connection refused: protocol error or flood", s->who);
        h2s_flush_now(s); /* the GOAWAY */
        h2s_end(s, rc, RESP_FLAG_DPE);
    }
}

static void h2s_on_event(struct loop_io *io, uint32_t events)
{
    struct h2s *s = container_of(io, struct h2s, io);
    if (s->ended)
        return;
    if ((events & EPOLLIN) || (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        uint8_t buf[HTTP_IN_BUF];
        ssize_t n = recv(io->fd, buf, sizeof(buf), 0);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            h2s_end(s, -errno, RESP_FLAG_DC);
            return;
        }
        if (n == 0) { /* the client is gone: its streams with it */
            bool cut = h2_conn_streams(s->h2) != 0;
            h2s_end(s, cut ? -ECONNRESET : 0, cut ? RESP_FLAG_DC : RESP_FLAG_NONE);
            return;
        }
        if (n > 0)
            h2s_recv(s, buf, (size_t)n);
    }
    if (!s->ended)
        h2s_flush_now(s);
}

void h2s_end(struct h2s *s, int err, enum resp_flag flag)
{
    if (s->ended)
        return;
    s->ended = true;
    struct http_proxy *hp = s->hp;
    while (s->xs)
        h2x_free(s->xs, err ? err : -ECONNRESET);
    h2_conn_close_streams(s->h2, H2_CANCEL); /* exchanges are gone: nobody is told */
    if (s->app)
        h2up_close(s->app);
    s->app = NULL;
    if (s->prev)
        s->prev->next = s->next;
    else
        hp->h2sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    hp->stats.active_sessions--;
    loop_del(hp->loop, &s->io);
    http_close_downstream(s->io.fd, s->c, err, s->down_in, s->down_out, flag);
    s->router.release(s->user);
    loop_defer(hp->loop, &s->release);
}

int h2s_start(struct http_proxy *hp, struct conn *c, int fd, const struct meshd_addr *orig_dst,
              const struct http_router *router, void *user, int app_fd, const char *who,
              const char *pre, size_t npre)
{
    struct h2s *s = calloc(1, sizeof(*s));
    int rc = s ? h2_conn_new(H2_SERVER, &h2s_callbacks, s, &s->h2) : -ENOMEM;
    if (rc == 0 && app_fd >= 0) {
        rc = h2up_adopt(hp, app_fd, &s->app);
        app_fd = -1; /* adopted, or closed */
    }
    if (rc == 0) {
        s->hp = hp;
        s->c = c;
        s->orig_dst = *orig_dst;
        s->router = *router;
        s->user = user;
        s->inbound = s->app != NULL;
        s->io = (struct loop_io){.fd = fd, .cb = h2s_on_event};
        s->flush = (struct loop_task){.fn = h2s_flush_task};
        s->release = (struct loop_deferred){.fn = h2s_free_now};
        s->last_activity_ns = loop_now_ns();
        snprintf(s->who, sizeof(s->who), "%s", who);
        rc = loop_add(hp->loop, &s->io, EPOLLIN | EPOLLRDHUP);
    }
    if (rc) {
        if (s && s->app)
            h2up_close(s->app);
        if (s)
            h2_conn_free(s->h2);
        free(s);
        if (app_fd >= 0)
            close_with_reset(app_fd);
        close_with_reset(fd);
        if (c)
            conn_end(c, rc, 0, 0, RESP_FLAG_NONE);
        router->release(user);
        return rc;
    }
    s->next = hp->h2sessions;
    if (hp->h2sessions)
        hp->h2sessions->prev = s;
    hp->h2sessions = s;
    hp->stats.sessions++;
    hp->stats.active_sessions++;
    if (npre)
        h2s_recv(s, (const uint8_t *)pre, npre);
    if (!s->ended)
        h2s_flush_now(s);
    return 0;
}

void h2s_tick_all(struct http_proxy *hp, uint64_t now_ns)
{
    uint64_t idle = hp->opts.idle_timeout_ns ? hp->opts.idle_timeout_ns : H2S_IDLE_TIMEOUT_NS;
    for (struct h2s *s = hp->h2sessions, *next; s; s = next) {
        next = s->next;
        for (struct h2x *x = s->xs, *xn; x && !s->ended; x = xn) {
            xn = x->next;
            h2x_tick(x, now_ns);
        }
        if (s->ended)
            continue;
        /* Idle, or its pod left: GOAWAY, once; the connection ends after. */
        if (!s->goaway &&
            ((!s->xs && now_ns - s->last_activity_ns > idle) || !s->router.pod(s->user))) {
            s->goaway = true;
            h2_conn_goaway(s->h2, H2_NO_ERROR);
            h2s_kick(s);
        }
    }
    h2ups_expire(hp, now_ns);
    h2h1s_expire(hp, now_ns);
}

void h2s_free_all(struct http_proxy *hp)
{
    while (hp->h2sessions)
        h2s_end(hp->h2sessions, -ECANCELED, RESP_FLAG_NONE);
    h2ups_free(hp);
    h2h1s_free(hp);
}

void h2s_drain_all(struct http_proxy *hp)
{
    for (struct h2s *s = hp->h2sessions; s; s = s->next) {
        if (!s->goaway)
            h2_conn_goaway(s->h2, H2_NO_ERROR); /* streams in flight finish */
        s->goaway = true;
        h2s_kick(s);
    }
    h2ups_expire(hp, UINT64_MAX); /* idle upstreams close */
    h2h1s_expire(hp, UINT64_MAX);
}
