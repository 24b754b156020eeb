/* HTTP sessions: one downstream connection served request by request (see
 * proxy.h). Parser callbacks only record what happened and pause; the
 * driver functions (hs_drive_down, hs_upstream_progress) act on it once the
 * parser returned, so no decision is made inside llhttp's stack. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "config/config.h"
#include "config/model.h"
#include "core/addr.h"
#include "core/container.h"
#include "core/log.h"
#include "core/upstream.h"
#include "enroll/pods.h"
#include "http/cors.h"
#include "http/h2_session.h"
#include "http/internal.h"
#include "http/request.h"
#include "http/session.h"
#include "proxy/conns.h"
#include "proxy/relay.h"
#include "telemetry/http_metrics.h"

#define HS_TICK_MS         50
#define HS_IDLE_TIMEOUT_NS (3600ull * 1000000000) /* Envoy's idle_timeout, 1 h */
#define HS_HEAD_TIMEOUT_NS (60ull * 1000000000)
#define HS_STREAM_IDLE_NS  (300ull * 1000000000) /* Envoy's stream_idle_timeout, 5 min */

/* --- plumbing ----------------------------------------------------------- */

/* Read only once what was read is parsed: level-triggered epoll would
 * otherwise wake us for bytes we are not ready to take. */
bool hs_wants_read(const struct hs *s)
{
    return !s->down_eof && !s->read_paused && s->state != HS_CLOSING && s->state != HS_LOCAL &&
           s->in_off == s->in_len && hbuf_pending(&s->out) < HTTP_OUT_HIGH;
}

static void hs_update_now(struct hs *s)
{
    /* Write now what is queued (EPOLLOUT only for what the socket would
     * not take): most responses leave without a wait and without an
     * epoll_ctl. An error stays queued for the EPOLLOUT handler to end the
     * session; CLOSING leaves it to that handler, which lingers after (a
     * stream takes it here, and ends after). */
    if (hbuf_pending(&s->out) && (s->state != HS_CLOSING || s->down_st))
        hs_down_flush(s);
    /* Room again: the response is read on (its upstream paused while the
     * queue was past the mark, and nothing else would resume it). */
    if (s->up && s->up->read_paused && hbuf_pending(&s->out) < HTTP_OUT_HIGH)
        hup_pause_read(s->up, false);
    if (s->down_st) {
        hs_down_settle(s);
        return;
    }
    uint32_t ev = 0;
    if (hs_wants_read(s))
        ev |= EPOLLIN | EPOLLRDHUP;
    if (hbuf_pending(&s->out))
        ev |= EPOLLOUT;
    loop_set(s->hp->loop, &s->io, ev);
}

static void hs_update_task(struct loop_task *t)
{
    struct hs *s = container_of(t, struct hs, update);
    if (!s->ended) /* its memory lasts the batch: tasks run before releases */
        hs_update_now(s);
}

void hs_update_events(struct hs *s)
{
    if (s->ended)
        return;
    s->update.fn = hs_update_task;
    loop_task_queue(s->hp->loop, &s->update);
}

int hs_write(struct hs *s, const void *p, size_t n)
{
    s->down_out += n;
    return hbuf_append(&s->out, p, n);
}

static void hs_free_now(struct loop_deferred *d)
{
    struct hs *s = container_of(d, struct hs, release);
    h1_parser_free(s->parser);
    hbuf_free(&s->out);
    free(s);
}

/* --- parser callbacks: record and pause --------------------------------- */

static int req_on_head(void *ctx, const struct h1_head *h)
{
    struct hs *s = ctx;
    s->req.head = h;
    s->ev_req_head = true;
    return H1_PAUSED;
}

static int req_on_body(void *ctx, const char *data, size_t len)
{
    struct hs *s = ctx;
    return http_request_body(&s->req, s->up, data, len) == 0 ? H1_OK : -1;
}

static int req_on_complete(void *ctx)
{
    struct hs *s = ctx;
    s->ev_req_complete = true;
    return H1_PAUSED;
}

static const struct h1_callbacks request_callbacks = {
    .on_head = req_on_head, .on_body = req_on_body, .on_complete = req_on_complete};

/* --- downstream --------------------------------------------------------- */

static void hs_on_request_head(struct hs *s)
{
    s->hp->stats.requests++;
    int status = 0;
    const char *why = NULL;
    s->req.at_destination = s->inbound;
    if (http_request_begin(&s->req, &s->orig_dst, loop_now_ns(), &status, &why) != 0) {
        s->hp->stats.bad_requests++;
        log_ratelimited(LOG_INFO, "http: %s: request refused (%d): %s", s->who, status, why);
        /* Whatever follows a refused CONNECT is tunnel bytes, not a
         * request: the connection ends after the reply. */
        s->keep_alive = false;
        s->req.down_keep_alive = false;
        hs_local_reply(s, status, why, strlen(why), NULL, RESP_FLAG_DPE);
        return;
    }
    http_request_trace_begin(&s->req, s->hp, s->router.pod(s->user), s->inbound);
    hs_try(s);
}

void hs_drive_down(struct hs *s)
{
    while (!s->ended && s->in_off < s->in_len) {
        /* Not during a fault's delay: its body waits in the socket (no
         * upstream to stream it to, more than a retry keeps is lost). */
        bool parsing = s->state == HS_READ_HEAD || (s->state == HS_FORWARD && !s->req.req_complete);
        if (!parsing || s->read_paused)
            return;
        if (s->state == HS_READ_HEAD && !s->head_started_ns)
            s->head_started_ns = loop_now_ns();
        size_t used = 0;
        int rc = h1_parse(s->parser, s->in + s->in_off, s->in_len - s->in_off, &used);
        s->in_off += used;
        if (rc < 0) {
            int status = 400;
            const char *why = h1_parser_error(s->parser, &status);
            s->hp->stats.bad_requests++;
            log_ratelimited(LOG_INFO, "http: %s: malformed request refused (%d): %s", s->who,
                            status, why ? why : "?");
            /* A body refused after its head went upstream (a bad chunk
             * size): the upstream goes with the attempt (hs_local_reply),
             * the client still hears 400 while no response was begun. */
            if (s->req.resp_head_sent) {
                hs_free_attempt(s, false);
                hs_end(s, -EBADMSG, RESP_FLAG_DPE);
                return;
            }
            s->keep_alive = false;
            s->req.down_keep_alive = false;
            s->req.req_complete = true; /* nothing more is read */
            hs_local_reply(s, status ? status : 400, "Bad Request", 11, NULL, RESP_FLAG_DPE);
            return;
        }
        if (s->ev_req_head) {
            s->ev_req_head = false;
            h1_parser_resume(s->parser);
            hs_on_request_head(s);
            continue;
        }
        if (s->ev_req_complete) {
            s->ev_req_complete = false;
            if (s->state == HS_READ_HEAD) {
                /* A bodyless request's end, which llhttp reports once the
                 * next bytes arrive: that request was served already. */
                h1_parser_resume(s->parser);
                continue;
            }
            http_request_body_end(&s->req, s->up);
            hs_mirror(s);
            /* The parser stays paused: the next request waits for this
             * exchange to end (hs_exchange_done resumes it). */
            return;
        }
        if (s->up && hbuf_pending(&s->up->out) >= HTTP_OUT_HIGH)
            s->read_paused = true;
    }
    if (s->in_off == s->in_len)
        s->in_off = s->in_len = 0;
}

void hs_down_eof(struct hs *s)
{
    s->down_eof = true;
    if (s->state == HS_READ_HEAD && h1_parser_idle(s->parser)) {
        hs_end(s, 0, RESP_FLAG_NONE); /* a clean close between requests */
        return;
    }
    if (!s->req.req_complete) { /* cut mid-request */
        hs_free_attempt(s, false);
        hs_end(s, -ECONNRESET, RESP_FLAG_DC);
        return;
    }
    hs_update_events(s); /* the response still goes out, then close */
}

void http_close_downstream(int fd, struct conn *c, int err, uint64_t in, uint64_t out,
                           enum resp_flag flag)
{
    if (err)
        close_with_reset(fd);
    else
        close(fd);
    if (c)
        conn_end(c, err, in, out, flag);
}

/* The session leaves the proxy's list and the loop. */
static void hs_unlink(struct hs *s)
{
    struct http_proxy *hp = s->hp;
    if (s->prev)
        s->prev->next = s->next;
    else
        hp->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    hp->stats.active_sessions--;
    loop_del(hp->loop, &s->io);
}

/* A client whose first bytes are the HTTP/2 preface (h2c prior
 * knowledge, or our own h2 upstream at the destination) is served by an
 * HTTP/2 session: the connection, its bytes read so far, the router and
 * at the destination the app's connection are handed over. */
bool hs_take_h2(struct hs *s)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    size_t k = s->in_len < sizeof(preface) - 1 ? s->in_len : sizeof(preface) - 1;
    if (s->served || s->head_started_ns || s->state != HS_READ_HEAD || k < 4 ||
        memcmp(s->in, preface, k) != 0)
        return false;
    int app_fd = -1;
    if (s->inbound) {
        if (!s->parked)
            return false;
        app_fd = s->parked->io.fd;
        loop_del(s->hp->loop, &s->parked->io);
        s->parked->io.fd = -1;
        hup_release(s->parked, false);
        s->parked = NULL;
    }
    int fd = s->io.fd;
    if (s->down_st) {
        /* Over an HBONE stream's pipe: the stream's end becomes one side
         * of a socket pair, the HTTP/2 session the other (the bytes it
         * still holds follow the ones read here). */
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1)
            return false; /* the HTTP/1 parser refuses the preface: 400 */
        int rc = hbone_stream_bind_fd(s->down_st, sv[1]);
        s->down_st = NULL;
        if (rc) {
            close(sv[0]);
            if (app_fd >= 0)
                close_with_reset(app_fd);
            hs_end(s, rc, RESP_FLAG_DC);
            return true;
        }
        fd = sv[0];
    }
    struct http_proxy *hp = s->hp;
    s->ended = true;
    hs_unlink(s);
    hp->stats.sessions--; /* counted again as the HTTP/2 session */
    http_request_reset(&s->req);
    h2s_start(hp, s->c, fd, &s->orig_dst, &s->router, s->user, app_fd, s->who, s->in, s->in_len);
    loop_defer(hp->loop, &s->release);
    return true;
}

static void hs_read(struct hs *s)
{
    if (s->in_off < s->in_len)
        return; /* parse what is there first */
    ssize_t n = recv(s->io.fd, s->in, sizeof(s->in), 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        hs_free_attempt(s, false);
        hs_end(s, -errno, RESP_FLAG_DC);
        return;
    }
    if (n == 0) {
        hs_down_eof(s);
        return;
    }
    s->down_in += (uint64_t)n;
    s->in_off = 0;
    s->in_len = (size_t)n;
    s->last_activity_ns = s->progress_ns = loop_woke_ns(s->hp->loop);
    if (hs_take_h2(s))
        return;
    hs_drive_down(s);
}

static void hs_on_event(struct loop_io *io, uint32_t events)
{
    struct hs *s = container_of(io, struct hs, io);
    if (s->ended)
        return;
    if (events & EPOLLOUT) {
        int rc = hs_down_flush(s);
        if (rc) {
            hs_free_attempt(s, false);
            hs_end(s, rc, RESP_FLAG_DC);
            return;
        }
        if (!hbuf_pending(&s->out) && s->state == HS_CLOSING) {
            hs_linger(s);
            return;
        }
        if (s->up && hbuf_pending(&s->out) < HTTP_OUT_HIGH)
            hup_pause_read(s->up, false);
    }
    if (s->state == HS_LINGER) {
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            hs_linger_read(s);
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        hs_read(s);
    if (!s->ended)
        hs_update_events(s);
}

/* --- lifetime ----------------------------------------------------------- */

/* An upgraded exchange with no connection record (at the destination,
 * over an HBONE stream's socketpair): its two sockets are pumped as they
 * are, until both sides end. */
struct hs_raw {
    struct relay r;
    struct loop *loop; /* borrowed */
    struct loop_deferred release;
};

static void hs_raw_free(struct loop_deferred *d)
{
    free(container_of(d, struct hs_raw, release));
}

static void hs_raw_done(struct relay *r, int err)
{
    struct hs_raw *raw = container_of(r, struct hs_raw, r);
    loop_defer(raw->loop, &raw->release); /* events of this batch may follow */
}

static void hs_relay_raw(struct loop *loop, int down_fd, int up_fd)
{
    struct hs_raw *raw = calloc(1, sizeof(*raw));
    if (!raw) {
        close_with_reset(down_fd);
        close_with_reset(up_fd);
        return;
    }
    *raw = (struct hs_raw){.loop = loop, .release = {.fn = hs_raw_free}};
    if (relay_start(&raw->r, loop, down_fd, up_fd, hs_raw_done) != 0)
        free(raw); /* the relay closed both */
}

void hs_end(struct hs *s, int err, enum resp_flag flag)
{
    if (s->ended)
        return;
    s->ended = true;
    struct http_proxy *hp = s->hp;
    if (s->req.head && !s->req.reported)
        hs_report(s); /* a request cut short still counts */
    hs_free_attempt(s, err != 0);
    int up_fd = -1;
    if (s->req.upgraded && s->up) {
        up_fd = s->up->io.fd; /* handed to the raw relay below */
        loop_del(hp->loop, &s->up->io);
        s->up->io.fd = -1;
    }
    hs_drop_upstream(s, false);
    if (s->parked)
        hup_release(s->parked, false);
    s->parked = NULL;
    http_request_reset(&s->req);
    hs_unlink(s);
    if (s->down_st && up_fd >= 0) {
        hs_down_flush(s); /* the 101; then the tunnel carries to the app itself */
        if (hbone_stream_bind_fd(s->down_st, up_fd) != 0)
            log_ratelimited(LOG_INFO, "http: %s: the upgraded tunnel ended first", s->who);
        s->down_st = NULL;
    } else if (s->down_st) {
        hs_down_close(s, err);
    } else if (up_fd >= 0) {
        hbuf_flush(&s->out, s->io.fd); /* the 101 */
        if (s->c)
            conn_relay_raw(s->c, s->io.fd, up_fd, s->down_out, s->down_in);
        else
            hs_relay_raw(hp->loop, s->io.fd, up_fd);
    } else {
        http_close_downstream(s->io.fd, s->c, err, s->down_in, s->down_out, flag);
    }
    s->router.release(s->user);
    loop_defer(hp->loop, &s->release);
}

/* A request from a peer agent (over HBONE) passed the limits at its
 * source, then grew there (x-request-id, a route's header edits): Istio
 * applies the limits once, at the first L7 hop, so the destination takes
 * what a source may send (request.c's HTTP_HEAD_OUT_MAX and
 * HTTP_OUT_HEADERS_MAX), still bounded. */
static const struct h1_limits hs_peer_limits = {.max_head_bytes = 128u * 1024, .max_headers = 256};

static struct hs *hs_new(struct http_proxy *hp, const struct meshd_addr *orig_dst,
                         const struct http_router *router, void *user, const struct h1_limits *lim)
{
    struct hs *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    *s = (struct hs){.hp = hp,
                     .release = {.fn = hs_free_now},
                     .orig_dst = *orig_dst,
                     .router = *router,
                     .user = user,
                     .keep_alive = true,
                     .io = {.fd = -1, .cb = hs_on_event},
                     .last_activity_ns = loop_now_ns(),
                     .progress_ns = loop_now_ns()};
    http_request_init(&s->req);
    if (h1_parser_new(true, lim, &request_callbacks, s, &s->parser) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

static int hs_link(struct hs *s)
{
    struct http_proxy *hp = s->hp;
    int rc = s->io.fd >= 0 ? loop_add(hp->loop, &s->io, EPOLLIN | EPOLLRDHUP) : 0;
    if (rc)
        return rc;
    s->next = hp->sessions;
    if (hp->sessions)
        hp->sessions->prev = s;
    hp->sessions = s;
    hp->stats.sessions++;
    hp->stats.active_sessions++;
    return 0;
}

int http_session_start(struct http_proxy *hp, struct conn *c, const struct meshd_addr *orig_dst,
                       const struct http_router *router, void *user)
{
    struct hs *s = hs_new(hp, orig_dst, router, user, NULL);
    if (!s)
        return -ENOMEM;
    s->c = c;
    snprintf(s->who, sizeof(s->who), "%s", conn_record(c)->pod);
    s->io.fd = conn_detach_fd(c); /* reported open at its first request, routed */
    conn_record(c)->per_request = true;
    int rc = hs_link(s);
    if (rc) {
        close_with_reset(s->io.fd);
        conn_end(c, rc, 0, 0, RESP_FLAG_NONE);
        h1_parser_free(s->parser);
        free(s);
        router->release(user);
        return 0; /* ended: the caller owns nothing any more */
    }
    return 0;
}

int http_session_start_inbound(struct http_proxy *hp, struct conn *c, int down_fd, int app_fd,
                               const char *who, const struct meshd_addr *orig_dst,
                               const struct http_router *router, void *user)
{
    if (c)
        down_fd = conn_take_fd(c);
    /* No connection record: the stream of a peer agent (see above). */
    struct hs *s = hs_new(hp, orig_dst, router, user, c ? NULL : &hs_peer_limits);
    int rc = s ? hup_adopt(hp, app_fd, &s->parked) : -ENOMEM;
    if (rc) {
        if (s)
            h1_parser_free(s->parser);
        free(s);
        close_with_reset(down_fd);
        close_with_reset(app_fd);
        if (c)
            conn_end(c, rc, 0, 0, RESP_FLAG_NONE);
        return rc;
    }
    s->c = c;
    if (c)
        conn_record(c)->per_request = true;
    s->inbound = true;
    snprintf(s->who, sizeof(s->who), "%s", who);
    s->io.fd = down_fd;
    rc = hs_link(s);
    if (rc) {
        close_with_reset(down_fd);
        hup_release(s->parked, false);
        h1_parser_free(s->parser);
        free(s);
        if (c)
            conn_end(c, rc, 0, 0, RESP_FLAG_NONE);
        return rc;
    }
    return 0;
}

int http_session_start_inbound_stream(struct http_proxy *hp, struct hbone_stream *st, int app_fd,
                                      const char *who, const struct meshd_addr *orig_dst,
                                      const struct http_router *router, void *user)
{
    struct hs *s = hs_new(hp, orig_dst, router, user, &hs_peer_limits);
    int rc = s ? hup_adopt(hp, app_fd, &s->parked) : -ENOMEM;
    if (rc) {
        if (s)
            h1_parser_free(s->parser);
        free(s);
        close_with_reset(app_fd);
        router->release(user);
        return rc;
    }
    s->inbound = true;
    snprintf(s->who, sizeof(s->who), "%s", who);
    s->io.fd = -1;
    hs_link(s); /* without a socket: nothing to register, it cannot fail */
    /* Linked first: a request already in the stream is served at once. */
    rc = hs_down_accept(s, st);
    if (rc)
        hs_end(s, rc, RESP_FLAG_NONE); /* the app's connection closed, `user` released */
    return rc;
}

/* --- the proxy ---------------------------------------------------------- */

/* Envoy's stream idle timeout for a request in flight: no byte moved
 * either way. True when it ended the exchange (or the session). */
static bool hs_stream_idle(struct hs *s, uint64_t now)
{
    uint64_t limit =
        s->hp->opts.stream_idle_timeout_ns ? s->hp->opts.stream_idle_timeout_ns : HS_STREAM_IDLE_NS;
    if (now - s->progress_ns <= limit)
        return false;
    log_ratelimited(LOG_INFO, "http: %s: no byte moved for %llu ms; stream timeout", s->who,
                    (unsigned long long)(limit / 1000000));
    s->hp->stats.timeouts++;
    if (s->state == HS_FORWARD && !s->req.resp_head_sent) {
        static const char body[] = "stream timeout";
        hs_local_reply(s, 408, body, sizeof(body) - 1, NULL, RESP_FLAG_SI);
    } else {
        hs_free_attempt(s, true);
        hs_end(s, -ETIMEDOUT, RESP_FLAG_SI);
    }
    return true;
}

/* The client began a request head and did not finish it in time
 * (slowloris): answered 408 with `connection: close`, as Envoy does at
 * its request_headers_timeout, and recorded as a request (flag DPE); the
 * connection then lingers and closes. */
static void hs_head_timeout(struct hs *s, uint64_t limit)
{
    log_ratelimited(LOG_INFO, "http: %s: request head not received in %llu ms; 408", s->who,
                    (unsigned long long)(limit / 1000000));
    s->hp->stats.timeouts++;
    s->keep_alive = false;
    s->req.down_keep_alive = false;
    s->req.req_complete = true; /* nothing more is read */
    static const char body[] = "request header timeout";
    hs_local_reply(s, 408, body, sizeof(body) - 1, NULL, RESP_FLAG_DPE);
}

static void hs_tick(struct hs *s, uint64_t now)
{
    uint64_t idle = s->hp->opts.idle_timeout_ns ? s->hp->opts.idle_timeout_ns : HS_IDLE_TIMEOUT_NS;
    uint64_t head = s->hp->opts.head_timeout_ns ? s->hp->opts.head_timeout_ns : HS_HEAD_TIMEOUT_NS;
    switch (s->state) {
    case HS_READ_HEAD:
        if (s->head_started_ns && !h1_parser_idle(s->parser) && now - s->head_started_ns > head)
            hs_head_timeout(s, head);
        else if (h1_parser_idle(s->parser) && now - s->last_activity_ns > idle)
            hs_end(s, 0, RESP_FLAG_NONE);
        return;
    case HS_DELAY:
        if (now >= s->req.delay_until_ns) {
            const struct pod *pod = s->router.pod(s->user);
            if (!pod) {
                hs_free_attempt(s, false);
                hs_end(s, -ENOENT, RESP_FLAG_DC);
                return;
            }
            hs_forward(s, pod);
        }
        return;
    case HS_FORWARD: {
        enum http_failure why;
        if (!http_request_deadline(&s->req, now, &why)) {
            hs_stream_idle(s, now);
            return;
        }
        if (s->req.resp_head_sent) {
            hs_free_attempt(s, true);
            hs_end(s, -ETIMEDOUT, RESP_FLAG_UT);
            return;
        }
        hs_attempt_failed(s, why, 0);
        return;
    }
    case HS_LINGER:
        if (now >= s->linger_until_ns)
            hs_end(s, 0, RESP_FLAG_NONE);
        return;
    case HS_LOCAL:
    case HS_CLOSING: /* a client that does not read what is left */
        hs_stream_idle(s, now);
        return;
    }
}

static void proxy_tick(struct ticker *t, uint64_t now)
{
    struct http_proxy *hp = t->ctx;
    for (struct hs *s = hp->sessions, *next; s; s = next) {
        next = s->next;
        hs_tick(s, now);
    }
    hups_expire(hp, now);
    h2s_tick_all(hp, now);
    sniffers_tick(hp, now);
}

int http_proxy_new(struct loop *loop, const struct http_proxy_opts *opts, struct http_proxy **out)
{
    struct http_proxy *hp = calloc(1, sizeof(*hp));
    if (!hp)
        return -ENOMEM;
    *hp = (struct http_proxy){.loop = loop, .opts = *opts};
    int rc = ticker_start(&hp->ticker, loop, HS_TICK_MS, proxy_tick, hp);
    if (rc) {
        free(hp);
        return rc;
    }
    *out = hp;
    return 0;
}

void http_proxy_free(struct http_proxy *hp)
{
    if (!hp)
        return;
    sniffers_free(hp);
    while (hp->sessions)
        hs_end(hp->sessions, -ECANCELED, RESP_FLAG_NONE);
    h2s_free_all(hp);
    hups_free(hp);
    ticker_stop(&hp->ticker);
    free(hp);
}

void http_proxy_drain(struct http_proxy *hp)
{
    for (struct hs *s = hp->sessions, *next; s; s = next) {
        next = s->next;
        s->keep_alive = false; /* the response in flight is the last one */
        if (s->state == HS_READ_HEAD && h1_parser_idle(s->parser) && s->in_off == s->in_len)
            hs_end(s, 0, RESP_FLAG_NONE);
    }
    h2s_drain_all(hp);
    hups_free(hp);
}

void http_proxy_get_stats(const struct http_proxy *hp, struct http_proxy_stats *st)
{
    *st = hp->stats;
}
