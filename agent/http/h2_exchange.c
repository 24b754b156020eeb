/* One stream's exchange on a downstream HTTP/2 connection (see
 * h2_session.h): the request's head becomes the same struct
 * http_request an HTTP/1 request is (http/request.h: its view, decision,
 * retry, timeout and fault policy, header edits, record), each attempt a
 * stream of an upstream HTTP/2 connection; local replies (no route, no
 * healthy upstream, a fault's abort, a refusal, a timeout, a direct
 * response, a redirect, 403 RBAC at the destination) are HTTP/2 responses,
 * with grpc-status for a gRPC request. Trailers pass through: gRPC's
 * status is in them (or in the head of a trailers-only response). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/model.h"
#include "core/log.h"
#include "http/cors.h"
#include "http/h2_session.h"
#include "proxy/conns.h"
#include "telemetry/http_metrics.h"

static void h2x_try(struct h2x *x);

static void h2x_report(struct h2x *x)
{
    struct h2s *s = x->s;
    if (x->req.reported || !s->router.report)
        return;
    struct http_request_record r;
    http_request_record_fill(&x->req, &r);
    s->router.report(s->user, &r, s->c ? conn_record(s->c) : NULL,
                     x->req.decided ? &x->req.d : NULL);
}

static void h2x_free_attempt(struct h2x *x, bool failed)
{
    if (x->req.attempt_open && x->s->router.free)
        x->s->router.free(x->s->user, &x->req.d.route, failed);
    x->req.attempt_open = false;
}

/* The attempt's upstream stream is abandoned (reset, told nothing more). */
static void h2x_drop_upstream(struct h2x *x)
{
    if (x->h1)
        h2h1_abandon(x->h1);
    x->h1 = NULL;
    if (x->ups) {
        h2_stream_set_user(x->ups, NULL);
        h2_reset(x->up->h2, x->ups, H2_CANCEL);
        h2up_kick(x->up);
    }
    x->ups = NULL;
    x->up = NULL;
}

static void h2x_finish(struct h2x *x)
{
    x->state = H2X_DONE;
    h2x_free_attempt(x, x->req.status >= 500 || x->req.status == 0);
    h2x_report(x);
    h2s_kick(x->s);
}

/* The downstream stream is cut (a response was begun, or none can be). */
static void h2x_cut(struct h2x *x, enum resp_flag flag)
{
    if (x->req.flag == RESP_FLAG_NONE)
        x->req.flag = flag;
    h2x_drop_upstream(x);
    if (x->down)
        h2_reset(x->s->h2, x->down, H2_INTERNAL_ERROR);
    h2x_finish(x);
}

/* Istio's (Envoy's) HTTP to gRPC status mapping, for local replies. */
static const char *grpc_status_of(int status)
{
    switch (status) {
    case 400:
        return "13";
    case 401:
        return "16";
    case 403:
        return "7";
    case 404:
        return "12";
    case 429:
    case 502:
    case 503:
    case 504:
        return "14";
    default:
        return "2";
    }
}

static void h2x_local_reply_with(struct h2x *x, int status, const char *body, size_t len,
                                 const struct http_field *extra, size_t nextra,
                                 const char *location, enum resp_flag flag)
{
    struct h2s *s = x->s;
    s->hp->stats.local_replies++;
    h2x_free_attempt(x, false);
    h2x_drop_upstream(x);
    struct http_field ex[8], f[HTTP_LOCAL_FIELDS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < nextra && n < 6; i++)
        ex[n++] = extra[i];
    char msg[128];
    if (x->req.grpc && status != 200) {
        snprintf(msg, sizeof(msg), "%.*s", (int)(len < 100 ? len : 100), body ? body : "");
        ex[n++] = http_field_of("grpc-status", grpc_status_of(status));
        ex[n++] = http_field_of("grpc-message", msg);
    }
    n = http_request_local_fields(&x->req, status, len, ex, n, location, flag, f);
    bool with_body = len && !x->req.is_head;
    x->req.resp_bytes = with_body ? len : 0;
    if (x->down) {
        struct h2_head h = {.status = status, .fields = f, .nfields = n, .end_stream = !with_body};
        int rc = h2_submit_response(s->h2, x->down, &h);
        if (rc == 0 && with_body)
            rc = h2_send_data(s->h2, x->down, body, len, true);
        if (rc)
            h2_reset(s->h2, x->down, H2_INTERNAL_ERROR);
    }
    x->req.resp_head_sent = true;
    h2x_finish(x);
}

static void h2x_local_reply(struct h2x *x, int status, const char *body, size_t len,
                            const char *location, enum resp_flag flag)
{
    h2x_local_reply_with(x, status, body, len, NULL, 0, location, flag);
}

static void h2x_attempt_failed(struct h2x *x, enum http_failure why, int status)
{
    h2x_free_attempt(x, true);
    h2x_drop_upstream(x);
    struct http_reply reply;
    if (http_request_failed(&x->req, &x->s->hp->stats, why, status, &reply))
        h2x_try(x);
    else
        h2x_local_reply(x, reply.status, reply.body, reply.body_len, NULL, reply.flag);
}

/* Opens a stream of `u` for the request: this attempt's head (`shadow`:
 * a mirror's copy, whose stream has no user: its answer is dropped), then
 * the body kept so far. -E2BIG when a rewrite passes the bound. */
static int h2x_open_stream(struct h2x *x, struct h2up *u, bool shadow, struct h2_stream **st)
{
    struct http_field f[HTTP_OUT_HEADERS_MAX + 1];
    char target[HTTP_PATH_MAX], abuf[512];
    const char *authority;
    int n = http_request_attempt_fields(&x->req, shadow, f, HTTP_OUT_HEADERS_MAX, abuf,
                                        sizeof(abuf), &authority, target, sizeof(target));
    if (n < 0)
        return n;
    /* TE is hop-by-hop, but "trailers" is what a gRPC server expects. */
    const char *te = http_field_get(x->head.headers, x->head.nheaders, "te");
    if (te && strcasestr(te, "trailers"))
        f[n++] = http_field_of("te", "trailers");
    size_t kept = hbuf_pending(&x->req.body);
    bool body = !x->req.req_complete || kept;
    struct h2_head h = {.method = x->head.method,
                        .path = target,
                        .authority = authority,
                        .scheme = "http",
                        .fields = f,
                        .nfields = (size_t)n,
                        .end_stream = !body};
    int rc = h2up_request(u, &h, shadow ? NULL : x, st);
    if (rc == 0 && body && (kept || x->req.req_complete))
        rc =
            h2_send_data(u->h2, *st, x->req.body.data + x->req.body.off, kept, x->req.req_complete);
    return rc;
}

/* The route's mirrors get a copy once the request is whole (and small
 * enough to have been kept): fire and forget on a stream of their own,
 * their answers dropped, their endpoints' load not held. */
static bool h2x_mirror_send(void *ctx, const struct outbound_route *route, const struct pod *pod)
{
    struct h2x *x = ctx;
    struct h2up *u;
    struct h2_stream *st;
    return h2up_acquire(x->s->hp, route, pod, &u) == 0 && h2x_open_stream(x, u, true, &st) == 0;
}

static void h2x_mirror(struct h2x *x)
{
    struct h2s *s = x->s;
    /* Mirrors go over HTTP/2: not where the backend speaks HTTP/1.1. */
    if (x->state == H2X_FORWARD && !s->inbound && !x->req.d.upstream_http1)
        http_request_mirror(&x->req, s->hp, &s->router, s->user, &s->orig_dst, h2x_mirror_send, x);
}

/* The decided attempt goes to a stream of an upstream connection. */
static void h2x_forward(struct h2x *x, const struct pod *pod)
{
    struct h2s *s = x->s;
    struct http_decision *d = &x->req.d;
    x->state = H2X_FORWARD;
    http_request_start_try(&x->req, loop_now_ns());
    if (!s->inbound && d->upstream_http1) { /* the backend speaks HTTP/1.1 only */
        int rc = h2h1_open(s->hp, &d->route, pod, x, &x->h1);
        if (rc == -E2BIG) {
            h2x_cut(x, RESP_FLAG_UF);
            return;
        }
        if (rc) {
            x->h1 = NULL;
            h2x_attempt_failed(x, HTTP_FAIL_CONNECT, 0);
            return;
        }
        http_note_upstream(s->c, &s->orig_dst, &d->route);
        return;
    }
    struct h2up *u = s->app;
    int rc =
        s->inbound ? (u && !u->closed ? 0 : -ENOTCONN) : h2up_acquire(s->hp, &d->route, pod, &u);
    if (rc) {
        h2x_attempt_failed(x, HTTP_FAIL_CONNECT, 0);
        return;
    }
    http_note_upstream(s->c, &s->orig_dst, &d->route);
    rc = h2x_open_stream(x, u, false, &x->ups);
    if (rc == -E2BIG || rc == -ENOBUFS) {
        h2x_cut(x, RESP_FLAG_UF);
        return;
    }
    if (rc) {
        x->ups = NULL;
        h2x_attempt_failed(x, HTTP_FAIL_CONNECT, 0);
        return;
    }
    x->up = u;
    h2x_mirror(x);
}

/* One attempt: route (avoiding the endpoint that failed), then forward. */
static void h2x_try(struct h2x *x)
{
    struct h2s *s = x->s;
    const struct pod *pod = s->router.pod(s->user);
    if (!pod) {
        h2x_cut(x, RESP_FLAG_DC);
        return;
    }
    struct http_reply reply;
    if (http_request_route(&x->req, &s->router, s->user, pod, &reply)) {
        h2x_local_reply(x, reply.status, reply.body, reply.body_len, reply.location, reply.flag);
        return;
    }
    const struct http_decision *d = &x->req.d;
    x->req.attempt_open = true;
    if (!x->req.faulted) { /* the first attempt: CORS, then faults */
        x->req.faulted = true;
        const struct cfg_http_route *a = d->actions;
        x->req.cors_origin = a ? http_cors_origin(&a->cors, &x->req.view) : NULL;
        if (x->req.cors_origin && http_cors_is_preflight(&x->req.view)) {
            struct http_field f[6];
            char buf[1024];
            size_t n = http_cors_fields(&a->cors, x->req.cors_origin, true, f, buf, sizeof(buf));
            h2x_local_reply_with(x, 200, NULL, 0, f, n, NULL, RESP_FLAG_NONE);
            return;
        }
        int abort_status;
        uint64_t delay = http_request_fault(&x->req, &abort_status);
        if (abort_status) {
            h2x_local_reply(x, abort_status, "fault filter abort", 18, NULL, RESP_FLAG_FI);
            return;
        }
        if (delay) {
            x->req.delay_until_ns = loop_now_ns() + delay;
            x->state = H2X_DELAY;
            return;
        }
    }
    h2x_forward(x, pod);
}

void h2x_tick(struct h2x *x, uint64_t now)
{
    if (x->state == H2X_DELAY && now >= x->req.delay_until_ns) {
        const struct pod *pod = x->s->router.pod(x->s->user);
        if (pod)
            h2x_forward(x, pod);
        else
            h2x_cut(x, RESP_FLAG_DC);
        return;
    }
    enum http_failure why;
    if (x->state != H2X_FORWARD || !http_request_deadline(&x->req, now, &why))
        return;
    if (x->req.resp_head_sent) {
        h2x_cut(x, RESP_FLAG_UT);
        return;
    }
    h2x_attempt_failed(x, why, 0);
}

void h2x_free(struct h2x *x, int err)
{
    struct h2s *s = x->s;
    if (x->state != H2X_DONE) { /* cut short: still counted */
        if (err && x->req.flag == RESP_FLAG_NONE)
            x->req.flag = RESP_FLAG_DC;
        h2x_free_attempt(x, false);
        h2x_report(x);
    }
    h2x_drop_upstream(x);
    if (x->down)
        h2_stream_set_user(x->down, NULL);
    if (x->prev)
        x->prev->next = x->next;
    else
        s->xs = x->next;
    if (x->next)
        x->next->prev = x->prev;
    http_request_reset(&x->req);
    free(x->fields);
    free(x);
}

/* --- what the upstream stream reports ----------------------------------- */

static void note_grpc_status(struct h2x *x, const struct http_field *f, size_t n)
{
    const char *g = http_field_get(f, n, "grpc-status");
    if (g && *g >= '0' && *g <= '9' && strlen(g) <= 2)
        x->req.grpc_status = atoi(g);
}

void h2x_up_head(struct h2x *x, const struct h2_head *h)
{
    struct h2s *s = x->s;
    if (x->state != H2X_FORWARD)
        return;
    if (h->trailers) {
        note_grpc_status(x, h->fields, h->nfields);
        if (x->down && h2_send_trailers(s->h2, x->down, h->fields, h->nfields) != 0) {
            h2x_cut(x, RESP_FLAG_DC);
            return;
        }
        x->trailers_sent = true;
        h2s_kick(s);
        return;
    }
    if (http_request_retry_on_status(&x->req, h->status, loop_now_ns())) {
        h2x_attempt_failed(x, HTTP_FAIL_STATUS, h->status);
        return;
    }
    struct h1_head rh = {.status = h->status,
                         .headers = h->fields,
                         .nheaders = h->nfields,
                         .major = 2,
                         .keep_alive = true,
                         .body = h->end_stream ? H1_BODY_NONE : H1_BODY_LENGTH};
    x->req.status = h->status;
    x->req.first_byte_ns = 1;
    if (h->end_stream) /* trailers-only: gRPC's status is in the head */
        note_grpc_status(x, h->fields, h->nfields);
    struct http_field f[HTTP_OUT_HEADERS_MAX];
    char cors[1024];
    size_t n = http_response_fields(&x->req, &rh, f, cors, sizeof(cors));
    x->req.resp_head_sent = true;
    if (!x->down)
        return;
    struct h2_head out = {
        .status = h->status, .fields = f, .nfields = n, .end_stream = h->end_stream};
    if (h2_submit_response(s->h2, x->down, &out) != 0) {
        h2x_cut(x, RESP_FLAG_DC);
        return;
    }
    h2s_kick(s);
}

void h2x_up_data(struct h2x *x, const uint8_t *p, size_t n)
{
    struct h2s *s = x->s;
    x->req.resp_bytes += n;
    if (!x->down || x->state != H2X_FORWARD) {
        if (x->ups)
            h2_consume(x->up->h2, x->ups, n);
        return;
    }
    if (h2_send_data(s->h2, x->down, p, n, false) != 0) {
        h2x_cut(x, RESP_FLAG_DC);
        return;
    }
    h2s_kick(s);
}

void h2x_up_end(struct h2x *x)
{
    if (x->state != H2X_FORWARD)
        return;
    if (x->down && !x->trailers_sent)
        h2_send_data(x->s->h2, x->down, NULL, 0, true);
    h2x_finish(x);
}

void h2x_up_closed(struct h2x *x, uint32_t error, bool connect_failed)
{
    h2x_up_closed_by(x, error, connect_failed, x->up && x->up->denied);
}

void h2x_up_closed_by(struct h2x *x, uint32_t error, bool connect_failed, bool denied)
{
    x->ups = NULL; /* gone: not to be reset */
    x->up = NULL;
    if (x->state != H2X_FORWARD)
        return;
    if (denied && !x->req.resp_head_sent) { /* the destination's policy refused the tunnel */
        static const char body[] = "RBAC: access denied";
        h2x_local_reply(x, 403, body, sizeof(body) - 1, NULL, RESP_FLAG_DENY);
        return;
    }
    if (x->req.resp_head_sent) { /* too late to answer: cut the downstream */
        h2x_free_attempt(x, true);
        h2x_cut(x, RESP_FLAG_UC);
        return;
    }
    bool refused = connect_failed || error == H2_REFUSED_STREAM;
    h2x_attempt_failed(x, refused ? HTTP_FAIL_CONNECT : HTTP_FAIL_RESET, 0);
}

void h2x_up_sent(struct h2x *x, size_t n)
{
    if (x->down) { /* framed upstream: the client may send as much more */
        h2_consume(x->s->h2, x->down, n);
        h2s_kick(x->s);
    }
}

/* --- the downstream codec's callbacks ----------------------------------- */

static struct h2x *h2x_new(struct h2s *s, struct h2_stream *st, const struct h2_head *h)
{
    struct h2x *x = calloc(1, sizeof(*x));
    struct http_field *f = calloc(h->nfields + 1, sizeof(*f));
    if (!x || !f) {
        free(x);
        free(f);
        return NULL;
    }
    size_t n = h->nfields;
    memcpy(f, h->fields, n * sizeof(*f));
    /* :authority is the Host routing and policy read (RFC 9113 8.3.1). */
    if (h->authority && !http_field_get(f, n, "host"))
        f[n++] = http_field_of("host", h->authority);
    const char *cl = http_field_get(f, n, "content-length");
    x->s = s;
    x->down = st;
    x->fields = f;
    x->head = (struct h1_head){.request = true,
                               .method = h->method ? h->method : "",
                               .target = h->path ? h->path : "",
                               .major = 2,
                               .headers = f,
                               .nheaders = n,
                               .body = h->end_stream ? H1_BODY_NONE : H1_BODY_LENGTH,
                               .content_length = cl ? strtoull(cl, NULL, 10) : 0,
                               .keep_alive = true};
    http_request_init(&x->req);
    x->req.head = &x->head;
    x->next = s->xs;
    if (s->xs)
        s->xs->prev = x;
    s->xs = x;
    h2_stream_set_user(st, x);
    return x;
}

static int down_on_head(void *ctx, struct h2_stream *st, const struct h2_head *h)
{
    struct h2s *s = ctx;
    if (h->trailers) /* a request's trailers: not forwarded (gRPC sends none) */
        return 0;
    s->hp->stats.requests++;
    struct h2x *x = h2x_new(s, st, h);
    if (!x)
        return -ENOMEM;
    x->req.at_destination = s->inbound;
    int status = 0;
    const char *why = NULL;
    if (http_request_begin(&x->req, &s->orig_dst, loop_now_ns(), &status, &why) != 0) {
        s->hp->stats.bad_requests++;
        log_ratelimited(LOG_INFO, "http2: %s: request refused (%d): %s", s->who, status, why);
        h2x_local_reply(x, status, why, strlen(why), NULL, RESP_FLAG_DPE);
        return 0;
    }
    const char *ct = http_field_get(x->head.headers, x->head.nheaders, "content-type");
    x->req.grpc = ct && strncasecmp(ct, "application/grpc", 16) == 0;
    http_request_trace_begin(&x->req, s->hp, s->router.pod(s->user), s->inbound);
    h2x_try(x);
    return 0;
}

static int down_on_data(void *ctx, struct h2_stream *st, const uint8_t *p, size_t n)
{
    struct h2s *s = ctx;
    struct h2x *x = h2_stream_user(st);
    if (!x || x->state == H2X_DONE) {
        h2_consume(s->h2, st, n); /* answered already: dropped */
        return 0;
    }
    bool overflowed = x->req.body_overflow;
    http_request_body(&x->req, NULL, (const char *)p, n); /* counted, kept for a retry */
    if (x->ups) {
        if (h2_send_data(x->up->h2, x->ups, p, n, false) != 0)
            h2x_cut(x, RESP_FLAG_UF);
        else
            h2up_kick(x->up);
    } else if (x->h1) {
        if (h2h1_send(x->h1, p, n, false) != 0)
            h2x_cut(x, RESP_FLAG_UF);
    } else if (x->req.body_overflow && !overflowed) {
        h2x_cut(x, RESP_FLAG_DPE); /* more than is kept, with nowhere to send it */
    }
    return 0;
}

static void down_on_end(void *ctx, struct h2_stream *st)
{
    (void)ctx;
    struct h2x *x = h2_stream_user(st);
    if (!x)
        return;
    x->down_ended = true;
    http_request_body_end(&x->req, NULL);
    if (x->ups && h2_send_data(x->up->h2, x->ups, NULL, 0, true) == 0)
        h2up_kick(x->up);
    if (x->h1 && h2h1_send(x->h1, NULL, 0, true) != 0)
        h2x_cut(x, RESP_FLAG_UF);
    else
        h2x_mirror(x);
}

static void down_on_close(void *ctx, struct h2_stream *st, uint32_t error)
{
    (void)ctx;
    struct h2x *x = h2_stream_user(st);
    if (!x)
        return;
    x->down = NULL;
    h2x_free(x, error ? -ECONNRESET : 0);
}

static void down_on_sent(void *ctx, struct h2_stream *st, size_t n)
{
    (void)ctx;
    struct h2x *x = h2_stream_user(st);
    if (x && x->ups) { /* framed to the client: the upstream may send more */
        h2_consume(x->up->h2, x->ups, n);
        h2up_kick(x->up);
    }
    if (x && x->h1)
        h2h1_resume(x->h1);
}

const struct h2_callbacks h2s_callbacks = {.on_head = down_on_head,
                                           .on_data = down_on_data,
                                           .on_end = down_on_end,
                                           .on_close = down_on_close,
                                           .on_sent = down_on_sent};
