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
#include "http/internal.h"
#include "http/request.h"
#include "proxy/conns.h"
#include "proxy/relay.h"
#include "telemetry/http_metrics.h"

#define HS_TICK_MS               50
#define HS_IDLE_TIMEOUT_NS       (3600ull * 1000000000) /* Envoy's idle_timeout, 1 h */
#define HS_HEAD_TIMEOUT_NS       (60ull * 1000000000)
#define HS_MAX_REQUESTS_PER_CONN 100000
/* nginx's lingering close: a connection closed with unread input is reset
 * (TCP sends RST, a unix socket passes ECONNRESET on), which can destroy
 * the response in flight; so after the last response our side is shut and
 * the client's remaining bytes are read and dropped, for a bounded time. */
#define HS_LINGER_NS    (2ull * 1000000000)
#define HS_LINGER_BYTES (1u << 20)

enum hs_state {
    HS_READ_HEAD, /* between requests, or reading one's head */
    HS_DELAY,     /* a fault delay before the request is routed */
    HS_FORWARD,   /* the request is with an upstream */
    HS_LOCAL,     /* a local reply is being written */
    HS_CLOSING,   /* flushing what is left, then close */
    HS_LINGER,    /* sent all, our side shut: what the client still sends is dropped */
};

struct hs {
    struct http_proxy *hp;
    struct hs *prev, *next;
    struct conn *c;
    struct loop_io io;
    struct meshd_addr orig_dst;
    struct http_router router;
    void *user;
    struct h1_parser *parser;
    char in[HTTP_IN_BUF];
    size_t in_off, in_len; /* unparsed downstream bytes */
    struct hbuf out;       /* to the downstream */
    enum hs_state state;
    bool down_eof, keep_alive, read_paused, ended;
    uint64_t last_activity_ns, head_started_ns, served, linger_until_ns, lingered;
    uint64_t down_in, down_out; /* the connection's bytes, for its record */
    /* recorded by parser callbacks, acted on by the drivers */
    bool ev_req_head, ev_req_complete, ev_resp_head, ev_resp_complete;
    struct http_request req; /* the request in flight (http/request.h) */
    struct hup *up;
    /* The destination side: the one upstream, the app, connected before
     * the session began and kept between requests; no record of ours. */
    bool inbound;
    struct hup *parked;
    char who[RECORD_POD_LEN]; /* for logs: the pod served */
    const struct h1_head *resp_head;
    struct loop_deferred release;
};

static void hs_end(struct hs *s, int err, enum resp_flag flag);
static void hs_drive_down(struct hs *s);
static void hs_try(struct hs *s);
static void hs_linger(struct hs *s);
static void hs_mirror(struct hs *s);
static void hs_forward(struct hs *s, const struct pod *pod);

/* --- plumbing ----------------------------------------------------------- */

static void hs_update_events(struct hs *s)
{
    /* Write now what is queued (EPOLLOUT only for what the socket would
     * not take): most responses leave without a wait and without an
     * epoll_ctl. An error stays queued for the EPOLLOUT handler to end the
     * session; CLOSING leaves it to that handler, which lingers after. */
    if (hbuf_pending(&s->out) && s->state != HS_CLOSING)
        hbuf_flush(&s->out, s->io.fd);
    uint32_t ev = 0;
    /* Read only once what was read is parsed: level-triggered epoll would
     * otherwise wake us for bytes we are not ready to take. */
    bool want_read = !s->down_eof && !s->read_paused && s->state != HS_CLOSING &&
                     s->state != HS_LOCAL && s->in_off == s->in_len &&
                     hbuf_pending(&s->out) < HTTP_OUT_HIGH;
    if (want_read)
        ev |= EPOLLIN | EPOLLRDHUP;
    if (hbuf_pending(&s->out))
        ev |= EPOLLOUT;
    loop_set(s->hp->loop, &s->io, ev);
}

static int hs_write(struct hs *s, const void *p, size_t n)
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

/* The response parser belongs to its upstream, which serves one session
 * after another: its callbacks find the session through the upstream. */
static int resp_on_head(void *ctx, const struct h1_head *h)
{
    struct hup *u = ctx;
    struct hs *s = u->owner;
    if (!s)
        return u->mirror ? H1_OK : -1; /* a mirror's answer: dropped */
    s->resp_head = h;
    s->ev_resp_head = true;
    return H1_PAUSED;
}

static int resp_on_body(void *ctx, const char *data, size_t len)
{
    struct hup *u = ctx;
    struct hs *s = u->owner;
    if (!s)
        return u->mirror ? H1_OK : -1; /* a mirror's answer: dropped */
    struct hbuf tmp = {0};
    int rc = http_response_body(&s->req, &tmp, data, len);
    if (rc == 0)
        rc = hs_write(s, tmp.data + tmp.off, hbuf_pending(&tmp));
    hbuf_free(&tmp);
    return rc == 0 ? H1_OK : -1;
}

static int resp_on_complete(void *ctx)
{
    struct hup *u = ctx;
    struct hs *s = u->owner;
    if (!s && u->mirror) {
        u->mirror_done = true;
        return H1_PAUSED;
    }
    if (!s)
        return -1;
    if (s->resp_head && s->resp_head->status >= 100 && s->resp_head->status < 200 &&
        s->resp_head->status != 101)
        return H1_OK; /* an interim response: the final one follows */
    s->ev_resp_complete = true;
    return H1_PAUSED;
}

const struct h1_callbacks hs_response_callbacks = {
    .on_head = resp_on_head, .on_body = resp_on_body, .on_complete = resp_on_complete};

/* --- the end of one exchange -------------------------------------------- */

static void hs_report(struct hs *s)
{
    struct http_request_record r;
    http_request_record_fill(&s->req, &r);
    if (s->router.report)
        s->router.report(s->user, &r, s->c ? conn_record(s->c) : NULL,
                         s->req.decided ? &s->req.d : NULL);
}

/* Lets the attempt's endpoint go: its load released, its outcome told. */
static void hs_free_attempt(struct hs *s, bool failed)
{
    if (s->req.attempt_open && s->router.free)
        s->router.free(s->user, &s->req.d.route, failed);
    s->req.attempt_open = false;
}

static void hs_drop_upstream(struct hs *s, bool reusable)
{
    if (s->up && s->inbound && reusable && !s->up->broken && !s->up->eof) {
        s->parked = s->up; /* the app's connection waits for the next request */
        s->parked->owner = NULL;
    } else if (s->up) {
        hup_release(s->up, reusable && !s->inbound);
    }
    s->up = NULL;
}

/* Everything is sent: shut our side and drop what the client still sends
 * until it closes (or the bound), then close. */
static void hs_linger(struct hs *s)
{
    if (s->down_eof || shutdown(s->io.fd, SHUT_WR) == -1) {
        hs_end(s, 0, RESP_FLAG_NONE);
        return;
    }
    s->state = HS_LINGER;
    s->linger_until_ns = loop_now_ns() + HS_LINGER_NS;
    loop_set(s->hp->loop, &s->io, EPOLLIN | EPOLLRDHUP);
}

static void hs_linger_read(struct hs *s)
{
    char buf[HTTP_IN_BUF];
    ssize_t n = recv(s->io.fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    s->lingered += n > 0 ? (uint64_t)n : 0;
    if (n <= 0 || s->lingered > HS_LINGER_BYTES)
        hs_end(s, 0, RESP_FLAG_NONE);
}

/* The response is complete (or a local reply was written): the request is
 * over; the next one is read if the connection persists. */
static void hs_exchange_done(struct hs *s)
{
    uint32_t per_conn = s->req.d.route.max_requests_per_conn;
    bool upstream_ok = s->req.req_complete && s->req.up_keep_alive &&
                       (!per_conn || !s->up || s->up->requests + 1 < per_conn);
    hs_free_attempt(s, s->req.status >= 500);
    hs_drop_upstream(s, upstream_ok);
    hs_report(s);
    bool persist = s->keep_alive && s->req.down_keep_alive && s->req.req_complete && !s->down_eof &&
                   s->served < HS_MAX_REQUESTS_PER_CONN && s->router.pod(s->user) != NULL;
    http_request_reset(&s->req);
    s->served++;
    s->ev_req_head = s->ev_req_complete = s->ev_resp_head = s->ev_resp_complete = false;
    if (!persist) {
        s->state = HS_CLOSING;
        if (!hbuf_pending(&s->out))
            hs_linger(s);
        else
            hs_update_events(s);
        return;
    }
    s->state = HS_READ_HEAD;
    s->last_activity_ns = loop_now_ns();
    s->head_started_ns = 0;
    h1_parser_resume(s->parser);
    /* A bodyless request's end is delivered by the parse after its head's
     * pause: run it now, or the parser is not idle between requests (a
     * clean close would read as a cut, the idle timeout would not run). */
    size_t used = 0;
    if (s->in_off == s->in_len && h1_parse(s->parser, s->in, 0, &used) == H1_PAUSED &&
        s->ev_req_complete) {
        s->ev_req_complete = false;
        h1_parser_resume(s->parser);
    }
    hs_update_events(s);
    hs_drive_down(s); /* a pipelined request may be buffered already */
}

/* Answers the request in flight from meshd itself. */
static void hs_local_reply_with(struct hs *s, int status, const char *body, size_t body_len,
                                const struct http_field *extra, size_t nextra, const char *location,
                                enum resp_flag flag)
{
    s->hp->stats.local_replies++;
    hs_free_attempt(s, false);
    hs_drop_upstream(s, false);
    struct hbuf tmp = {0};
    if (http_request_local_reply(&s->req, status, body, body_len, extra, nextra, location, flag,
                                 &tmp) == 0)
        hs_write(s, tmp.data + tmp.off, hbuf_pending(&tmp));
    hbuf_free(&tmp);
    /* Its body, if any, is read and dropped so the next request is found;
     * a reply to a request whose body is still coming closes after it. */
    if (!s->req.req_complete)
        s->req.down_keep_alive = false;
    s->state = HS_LOCAL;
    hs_exchange_done(s);
}

static void hs_local_reply(struct hs *s, int status, const char *body, size_t body_len,
                           const char *location, enum resp_flag flag)
{
    hs_local_reply_with(s, status, body, body_len, NULL, 0, location, flag);
}

/* The route's corsPolicy: an allowed origin's preflight is answered here;
 * its other requests get the CORS headers on their response. True when
 * the request was answered. */
static bool hs_cors(struct hs *s)
{
    const struct cfg_http_route *a = s->req.d.actions;
    s->req.cors_origin = a ? http_cors_origin(&a->cors, &s->req.view) : NULL;
    if (!s->req.cors_origin || !http_cors_is_preflight(&s->req.view))
        return false;
    struct http_field f[6];
    char buf[1024];
    size_t n = http_cors_fields(&a->cors, s->req.cors_origin, true, f, buf, sizeof(buf));
    hs_local_reply_with(s, 200, NULL, 0, f, n, NULL, RESP_FLAG_NONE);
    return true;
}

/* --- attempts ----------------------------------------------------------- */

/* An attempt failed before its response was sent downstream: retried on
 * another endpoint when the policy allows, else answered as Envoy does. */
static void hs_attempt_failed(struct hs *s, enum http_failure why, int status)
{
    hs_free_attempt(s, true);
    hs_drop_upstream(s, false);
    if (http_request_may_retry(&s->req, why, status, loop_now_ns())) {
        s->hp->stats.retries++;
        s->req.retried = true;
        hs_try(s);
        return;
    }
    if (why == HTTP_FAIL_TIMEOUT)
        s->hp->stats.timeouts++;
    int code;
    enum resp_flag flag;
    const char *body = http_failure_reply(why, &code, &flag);
    hs_local_reply(s, code, body, strlen(body), NULL, flag);
}

void hs_upstream_failed(struct hs *s, struct hup *u, int err)
{
    if (u != s->up)
        return;
    if (s->req.resp_head_sent) { /* too late to answer: cut the downstream */
        hs_free_attempt(s, true);
        hs_end(s, err, RESP_FLAG_UC);
        return;
    }
    if (u->denied) { /* the destination's policy refused the tunnel: final */
        static const char body[] = "RBAC: access denied";
        hs_local_reply(s, 403, body, sizeof(body) - 1, NULL, RESP_FLAG_DENY);
        return;
    }
    /* Connected (plain TCP: the request may have reached the app) is a
     * reset, which Istio's default policy does not replay; HBONE learns
     * of a refused tunnel only here, as a connect failure. */
    bool reached = u->got_bytes || u->requests || (u->connected && !u->hbone);
    hs_attempt_failed(s, reached ? HTTP_FAIL_RESET : HTTP_FAIL_CONNECT, 0);
}

/* The connection's record shows where its latest request went: the
 * endpoint, the tunnel and the identity the pool verified. */
static void hs_note_upstream(struct hs *s, const struct outbound_route *r)
{
    if (!s->c)
        return;
    struct conn_record *rec = conn_record(s->c);
    rec->upstream = r->target.family ? r->target : s->orig_dst;
    if (r->service)
        snprintf(rec->dst_service, sizeof(rec->dst_service), "%s", r->service);
    if (r->action == OUTBOUND_HBONE) {
        rec->hbone = r->key.dst;
        snprintf(rec->peer_identity, sizeof(rec->peer_identity), "%s", r->key.dst_id);
    }
    conn_mark_open(s->c); /* once: the TCP metrics' labels are this upstream's */
}

/* One attempt: route (again, avoiding the endpoint that failed), then
 * send the request to an upstream of that endpoint. */
static void hs_try(struct hs *s)
{
    const struct pod *pod = s->router.pod(s->user);
    if (!pod) {
        hs_end(s, -ENOENT, RESP_FLAG_DC);
        return;
    }
    http_request_prepare_route(&s->req);
    s->router.route(s->user, pod, &s->orig_dst, &s->req.view, &s->req.d);
    s->req.decided = true;
    struct http_decision *d = &s->req.d;
    if (d->verdict == HTTP_RESPOND) {
        hs_local_reply(s, d->status, d->body, d->body_len, d->location[0] ? d->location : NULL,
                       d->flag);
        return;
    }
    if (d->route.action == OUTBOUND_REFUSE) {
        int code;
        enum resp_flag flag = d->route.response_flag;
        const char *body = http_refusal_reply(flag, &code);
        hs_local_reply(s, code, body, strlen(body), NULL, flag);
        return;
    }
    s->req.attempt_open = true;
    if (!s->req.faulted) { /* the first attempt: CORS, then faults */
        s->req.faulted = true;
        if (hs_cors(s))
            return;
        int abort_status;
        uint64_t delay = http_request_fault(&s->req, &abort_status);
        if (abort_status) {
            hs_local_reply(s, abort_status, "fault filter abort", 18, NULL, RESP_FLAG_FI);
            return;
        }
        if (delay) {
            s->req.delay_until_ns = loop_now_ns() + delay;
            s->state = HS_DELAY;
            hs_update_events(s);
            return;
        }
    }
    hs_forward(s, pod);
}

/* Sends the decided attempt (after a fault's delay: the same decision,
 * not a new routing that would leave this endpoint unfreed). */
static void hs_forward(struct hs *s, const struct pod *pod)
{
    struct http_decision *d = &s->req.d;
    s->state = HS_FORWARD;
    http_request_start_try(&s->req, loop_now_ns());
    int rc;
    if (s->inbound) { /* the app's connection, or none left */
        s->up = s->parked;
        s->parked = NULL;
        rc = s->up ? 0 : -ENOTCONN;
        if (s->up) {
            s->up->owner = s;
            s->up->got_bytes = false;
            hup_pause_read(s->up, false);
        }
    } else {
        rc = hup_acquire(s->hp, &d->route, pod, s, &s->up);
    }
    if (rc) {
        s->up = NULL;
        hs_attempt_failed(s, HTTP_FAIL_CONNECT, 0);
        return;
    }
    hs_note_upstream(s, &d->route);
    /* The head for this destination, then whatever body is kept. */
    rc = http_request_send_head(&s->req, s->up, false);
    if (rc) {
        hs_end(s, rc, RESP_FLAG_UF);
        return;
    }
    h1_parser_next_is_head_response(s->up->resp, s->req.is_head);
    hs_mirror(s);
    hs_update_events(s);
    hs_drive_down(s);
}

/* The route's mirrors get a copy of the request once it is whole (and
 * small enough to have been kept): fire and forget, their answers dropped,
 * their endpoints' load not held (nobody waits for them). */
static void hs_mirror(struct hs *s)
{
    const struct cfg_http_route *a = s->req.d.actions;
    if (s->req.mirrored || !a || !a->nmirrors || !s->router.mirror || !s->req.req_complete ||
        s->req.body_overflow || s->state != HS_FORWARD)
        return;
    s->req.mirrored = true;
    const struct pod *pod = s->router.pod(s->user);
    for (size_t i = 0; pod && i < a->nmirrors; i++) {
        if (!http_chance_ppm(a->mirrors[i].ppm))
            continue;
        struct outbound_route route = {.avoid_endpoint = -1};
        s->router.mirror(s->user, pod, &s->orig_dst, &a->mirrors[i].dest, &route);
        if (route.action == OUTBOUND_REFUSE)
            continue;
        struct hup *m;
        if (hup_mirror(s->hp, &route, pod, &m) == 0) {
            h1_parser_next_is_head_response(m->resp, s->req.is_head);
            if (http_request_send_head(&s->req, m, true) != 0)
                hup_release(m, false);
            s->hp->stats.mirrored++;
        }
        if (s->router.free)
            s->router.free(s->user, &route, false);
    }
}

/* --- upstream progress -------------------------------------------------- */

static void hs_on_response_head(struct hs *s)
{
    const struct h1_head *h = s->resp_head;
    if (h->status >= 100 && h->status < 200 && h->status != 101) {
        struct hbuf tmp = {0}; /* interim: passed on as is (100 Continue) */
        if (http_response_interim(&s->req, h, &tmp) == 0)
            hs_write(s, tmp.data + tmp.off, hbuf_pending(&tmp));
        hbuf_free(&tmp);
        hs_update_events(s);
        return;
    }
    if (http_request_retry_on_status(&s->req, h->status, loop_now_ns())) {
        hs_attempt_failed(s, HTTP_FAIL_STATUS, h->status);
        return;
    }
    struct hbuf tmp = {0};
    /* At the destination the app's one connection is the only upstream:
     * when it ends after this response, so does the downstream (else the
     * peer's pool reuses a stream whose next request finds no app). */
    bool keep = s->keep_alive && (!s->inbound || h->keep_alive);
    int rc = http_response_head(&s->req, h, keep, &tmp);
    if (rc == 0)
        rc = hs_write(s, tmp.data + tmp.off, hbuf_pending(&tmp));
    hbuf_free(&tmp);
    if (rc) {
        hs_end(s, rc, RESP_FLAG_DC);
        return;
    }
    s->req.resp_head_sent = true;
    hs_update_events(s);
}

void hs_upstream_progress(struct hs *s, struct hup *u)
{
    if (u != s->up || s->ended)
        return;
    if (s->ev_resp_head) {
        s->ev_resp_head = false;
        hs_on_response_head(s);
        if (u != s->up) /* retried or answered */
            return;
    }
    if (s->ev_resp_complete) {
        s->ev_resp_complete = false;
        http_response_complete(&s->req, &s->out, &s->down_out);
        if (s->req.upgraded) {
            /* 101: both sides carry raw bytes from now on. */
            hs_end(s, 0, RESP_FLAG_NONE);
            return;
        }
        hs_exchange_done(s);
        return;
    }
    /* Backpressure both ways: the upstream is read while the downstream
     * takes its bytes, the downstream while the upstream takes its. */
    hup_pause_read(u, hbuf_pending(&s->out) >= HTTP_OUT_HIGH);
    hs_update_events(s); /* body bytes queued: they go out as they come */
    if (hbuf_pending(&u->out) < HTTP_OUT_HIGH && s->read_paused) {
        s->read_paused = false;
        hs_update_events(s);
        hs_drive_down(s);
    }
}

/* --- downstream --------------------------------------------------------- */

static void hs_on_request_head(struct hs *s)
{
    s->hp->stats.requests++;
    int status = 0;
    const char *why = NULL;
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
    hs_try(s);
}

/* Parses what the downstream sent, as far as the state allows. */
static void hs_drive_down(struct hs *s)
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
        return;
    }
    s->down_in += (uint64_t)n;
    s->in_off = 0;
    s->in_len = (size_t)n;
    s->last_activity_ns = loop_now_ns();
    hs_drive_down(s);
}

static void hs_on_event(struct loop_io *io, uint32_t events)
{
    struct hs *s = container_of(io, struct hs, io);
    if (s->ended)
        return;
    if (events & EPOLLOUT) {
        int rc = hbuf_flush(&s->out, io->fd);
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

static void hs_end(struct hs *s, int err, enum resp_flag flag)
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
    if (s->prev)
        s->prev->next = s->next;
    else
        hp->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    hp->stats.active_sessions--;
    loop_del(hp->loop, &s->io);
    if (up_fd >= 0) {
        hbuf_flush(&s->out, s->io.fd); /* the 101 */
        if (s->c)
            conn_relay_raw(s->c, s->io.fd, up_fd, s->down_out, s->down_in);
        else
            hs_relay_raw(hp->loop, s->io.fd, up_fd);
    } else {
        if (err)
            close_with_reset(s->io.fd);
        else
            close(s->io.fd);
        if (s->c)
            conn_end(s->c, err, s->down_in, s->down_out, flag);
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
                     .last_activity_ns = loop_now_ns()};
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
    int rc = loop_add(hp->loop, &s->io, EPOLLIN | EPOLLRDHUP);
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

/* --- the proxy ---------------------------------------------------------- */

static void hs_tick(struct hs *s, uint64_t now)
{
    uint64_t idle = s->hp->opts.idle_timeout_ns ? s->hp->opts.idle_timeout_ns : HS_IDLE_TIMEOUT_NS;
    uint64_t head = s->hp->opts.head_timeout_ns ? s->hp->opts.head_timeout_ns : HS_HEAD_TIMEOUT_NS;
    switch (s->state) {
    case HS_READ_HEAD:
        if (s->head_started_ns && !h1_parser_idle(s->parser) && now - s->head_started_ns > head)
            hs_end(s, -ETIMEDOUT, RESP_FLAG_DC);
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
        if (!http_request_deadline(&s->req, now, &why))
            return;
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
    case HS_CLOSING:
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
    hups_free(hp);
}

void http_proxy_get_stats(const struct http_proxy *hp, struct http_proxy_stats *st)
{
    *st = hp->stats;
}
