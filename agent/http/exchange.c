/* One exchange of an HTTP session (see proxy.h): routing each attempt,
 * retries on another endpoint, faults, CORS, mirrors, local replies as
 * Envoy words them, the response on its way back, and the exchange's end.
 * The session's downstream side and lifetime are in proxy.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/model.h"
#include "core/log.h"
#include "core/str.h"
#include "enroll/pods.h"
#include "http/cors.h"
#include "http/session.h"
#include "proxy/conns.h"
#include "telemetry/http_metrics.h"

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

/* What a response writer appended to s->out (which held `before` bytes)
 * after it returned rc: counted, or taken back whole on a failure. The
 * writers append in place, no staging buffer (one malloc, copy and free a
 * response head and a body piece each). */
static int hs_wrote(struct hs *s, size_t before, int rc)
{
    if (rc)
        s->out.len = s->out.off + before;
    else
        s->down_out += hbuf_pending(&s->out) - before;
    return rc;
}

static int resp_on_body(void *ctx, const char *data, size_t len)
{
    struct hup *u = ctx;
    struct hs *s = u->owner;
    if (!s)
        return u->mirror ? H1_OK : -1; /* a mirror's answer: dropped */
    size_t before = hbuf_pending(&s->out);
    return hs_wrote(s, before, http_response_body(&s->req, &s->out, data, len)) == 0 ? H1_OK : -1;
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

void hs_report(struct hs *s)
{
    struct http_request_record r;
    http_request_record_fill(&s->req, &r);
    if (s->router.report)
        s->router.report(s->user, &r, s->c ? conn_record(s->c) : NULL,
                         s->req.decided ? &s->req.d : NULL);
}

/* Lets the attempt's endpoint go: its load released, its outcome told. */
void hs_free_attempt(struct hs *s, bool failed)
{
    if (s->req.attempt_open && s->router.free)
        s->router.free(s->user, &s->req.d.route, failed);
    s->req.attempt_open = false;
}

void hs_drop_upstream(struct hs *s, bool reusable)
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
void hs_linger(struct hs *s)
{
    if (s->down_st) { /* a stream ends in order; what follows is dropped */
        hs_end(s, 0, RESP_FLAG_NONE);
        return;
    }
    if (s->down_eof || shutdown(s->io.fd, SHUT_WR) == -1) {
        hs_end(s, 0, RESP_FLAG_NONE);
        return;
    }
    s->state = HS_LINGER;
    s->linger_until_ns = loop_now_ns() + HS_LINGER_NS;
    loop_set(s->hp->loop, &s->io, EPOLLIN | EPOLLRDHUP);
}

void hs_linger_read(struct hs *s)
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
void hs_exchange_done(struct hs *s)
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
    s->last_activity_ns = loop_woke_ns(s->hp->loop);
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

void hs_local_reply(struct hs *s, int status, const char *body, size_t body_len,
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
void hs_attempt_failed(struct hs *s, enum http_failure why, int status)
{
    hs_free_attempt(s, true);
    hs_drop_upstream(s, false);
    struct http_reply reply;
    if (http_request_failed(&s->req, &s->hp->stats, why, status, &reply))
        hs_try(s);
    else
        hs_local_reply(s, reply.status, reply.body, reply.body_len, NULL, reply.flag);
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
void http_note_upstream(struct conn *c, const struct meshd_addr *orig_dst,
                        const struct outbound_route *r)
{
    if (!c)
        return;
    struct conn_record *rec = conn_record(c);
    rec->upstream = r->target.family ? r->target : *orig_dst;
    if (r->service)
        str_copy(rec->dst_service, sizeof(rec->dst_service), r->service);
    if (r->action == OUTBOUND_HBONE) {
        rec->hbone = r->key.dst;
        str_copy(rec->peer_identity, sizeof(rec->peer_identity), r->key.dst_id);
    }
    conn_mark_open(c); /* once: the TCP metrics' labels are this upstream's */
}

void http_request_trace_begin(struct http_request *r, const struct http_proxy *hp,
                              const struct pod *pod, bool server)
{
    if (hp->opts.trace_begin)
        hp->opts.trace_begin(hp->opts.trace_ctx, pod ? pod->ns : NULL, pod ? pod->name : NULL,
                             server, &r->view, &r->trace);
}

/* Shared with the HTTP/2 exchanges (request.h). */
bool http_request_route(struct http_request *r, const struct http_router *rt, void *user,
                        const struct pod *pod, struct http_reply *reply)
{
    http_request_prepare_route(r);
    rt->route(user, pod, &r->orig_dst, &r->view, &r->d);
    r->decided = true;
    const struct http_decision *d = &r->d;
    if (d->verdict == HTTP_RESPOND) {
        *reply = (struct http_reply){.status = d->status,
                                     .body = d->body,
                                     .body_len = d->body_len,
                                     .location = d->location[0] ? d->location : NULL,
                                     .flag = d->flag};
        return true;
    }
    if (d->route.action == OUTBOUND_REFUSE && d->route.retry_overflow) {
        /* The cluster had no retry left (maxRetries): the failure the
         * retry followed is answered, as if no retry had been allowed. */
        *reply = (struct http_reply){.status = r->last_status, .body = "", .flag = RESP_FLAG_URX};
        if (r->last_failure != HTTP_FAIL_STATUS)
            reply->body = http_failure_reply(r->last_failure, &reply->status, &reply->flag);
        reply->body_len = strlen(reply->body);
        return true;
    }
    if (d->route.action == OUTBOUND_REFUSE) {
        reply->flag = d->route.response_flag;
        reply->body = http_refusal_reply(reply->flag, &reply->status);
        reply->body_len = strlen(reply->body);
        reply->location = NULL;
        return true;
    }
    return false;
}

/* One attempt: route (again, avoiding the endpoint that failed), then
 * send the request to an upstream of that endpoint. */
void hs_try(struct hs *s)
{
    const struct pod *pod = s->router.pod(s->user);
    if (!pod) {
        hs_end(s, -ENOENT, RESP_FLAG_DC);
        return;
    }
    struct http_reply reply;
    if (http_request_route(&s->req, &s->router, s->user, pod, &reply)) {
        hs_local_reply(s, reply.status, reply.body, reply.body_len, reply.location, reply.flag);
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
void hs_forward(struct hs *s, const struct pod *pod)
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
        /* An Upgrade's bytes are relayed raw after its 101: from a socket. */
        rc = (s->req.upgrade ? hup_acquire_fd : hup_acquire)(s->hp, &d->route, pod, s, &s->up);
    }
    if (rc) {
        s->up = NULL;
        hs_attempt_failed(s, HTTP_FAIL_CONNECT, 0);
        return;
    }
    http_note_upstream(s->c, &s->orig_dst, &d->route);
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

void http_request_mirror(struct http_request *r, struct http_proxy *hp,
                         const struct http_router *rt, void *user,
                         const struct meshd_addr *orig_dst, http_mirror_fn send, void *ctx)
{
    const struct cfg_http_route *a = r->d.actions;
    if (r->mirrored || !a || !a->nmirrors || !rt->mirror || !r->req_complete || r->body_overflow)
        return;
    r->mirrored = true;
    const struct pod *pod = rt->pod(user);
    for (size_t i = 0; pod && i < a->nmirrors; i++) {
        if (!http_chance_ppm(a->mirrors[i].ppm))
            continue;
        struct outbound_route route = {.avoid_endpoint = -1};
        rt->mirror(user, pod, orig_dst, &a->mirrors[i].dest, &route);
        if (route.action == OUTBOUND_REFUSE)
            continue;
        if (send(ctx, &route, pod))
            hp->stats.mirrored++;
        if (rt->free)
            rt->free(user, &route, false);
    }
}

/* A mirrored copy on an upstream HTTP/1.1 connection of its own. */
static bool hs_mirror_send(void *ctx, const struct outbound_route *route, const struct pod *pod)
{
    struct hs *s = ctx;
    struct hup *m;
    if (hup_mirror(s->hp, route, pod, &m) != 0)
        return false;
    h1_parser_next_is_head_response(m->resp, s->req.is_head);
    if (http_request_send_head(&s->req, m, true) != 0)
        hup_release(m, false);
    return true;
}

void hs_mirror(struct hs *s)
{
    if (s->state == HS_FORWARD)
        http_request_mirror(&s->req, s->hp, &s->router, s->user, &s->orig_dst, hs_mirror_send, s);
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
    /* At the destination the app's one connection is the only upstream:
     * when it ends after this response, so does the downstream (else the
     * peer's pool reuses a stream whose next request finds no app). */
    bool keep = s->keep_alive && (!s->inbound || h->keep_alive);
    size_t before = hbuf_pending(&s->out);
    int rc = hs_wrote(s, before, http_response_head(&s->req, h, keep, &s->out));
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
    s->progress_ns = loop_woke_ns(s->hp->loop);
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
