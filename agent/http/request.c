/* One request's policy and framing (see request.h). */
#include "http/request.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <openssl/rand.h>
#include <pcre2.h>

#include "config/config.h"
#include "config/model.h"
#include "config/model_http.h"
#include "core/addr.h"
#include "core/str.h"
#include "http/cors.h"
#include "telemetry/http_metrics.h"

#define HTTP_HEAD_OUT_MAX (128u * 1024)

void http_request_init(struct http_request *r)
{
    *r = (struct http_request){.down_keep_alive = true, .up_keep_alive = true, .grpc_status = -1};
}

static void drop_decision(struct http_request *r)
{
    cfg_snapshot_unref(r->d.snap);
    r->d.snap = NULL;
    free(r->d.target);
    r->d.target = NULL;
}

void http_request_reset(struct http_request *r)
{
    drop_decision(r);
    free(r->target);
    hbuf_free(&r->body);
    http_request_init(r);
}

static uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* x-request-id: a version-4 UUID. Unique, not secret (it is sent in the
 * clear to the app and logged), so a SplitMix64 stream seeded once from
 * the OS generator replaces a RAND_bytes call and 16 printf conversions
 * per request. The loop thread is its only user. */
static void new_request_id(char out[40])
{
    static uint64_t state; /* the loop thread's: see above */
    if (!state && RAND_bytes((unsigned char *)&state, sizeof(state)) != 1)
        state = realtime_ns();
    unsigned char b[16];
    for (int half = 0; half < 2; half++) {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        memcpy(b + 8 * half, &z, 8);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}

int http_request_begin(struct http_request *r, const struct meshd_addr *orig_dst, uint64_t now,
                       int *status, const char **why)
{
    const struct h1_head *h = r->head;
    r->orig_dst = *orig_dst;
    r->start_ns = now;
    r->start_real_ns = realtime_ns();
    r->is_head = strcmp(h->method, "HEAD") == 0;
    r->down_keep_alive = h->keep_alive;
    r->req_complete = h->body == H1_BODY_NONE;
    r->req_framing = h->body == H1_BODY_LENGTH    ? HTTP_FRAME_LENGTH
                     : h->body == H1_BODY_CHUNKED ? HTTP_FRAME_CHUNKED
                                                  : HTTP_FRAME_NONE;
    *status = 400;
    if (strcmp(h->method, "CONNECT") == 0) {
        *status = 405; /* meshd is no forward proxy */
        *why = "CONNECT is not served";
        return -EBADMSG;
    }
    const char *host = h1_head_get(h, "host");
    if (!host && (h->major > 1 || h->minor >= 1)) {
        *why = "missing Host header"; /* RFC 9112 3.2 */
        return -EBADMSG;
    }
    const char *t = h->target;
    /* absolute-form (a client configured with a proxy): its authority
     * wins over Host, as RFC 9112 3.2.2 says. */
    const char *authority_from_target = NULL;
    size_t alen = 0;
    if (strncasecmp(t, "http://", 7) == 0 || strncasecmp(t, "https://", 8) == 0) {
        const char *a = strstr(t, "://") + 3;
        const char *p = a + strcspn(a, "/?");
        authority_from_target = a;
        alen = (size_t)(p - a);
        t = *p ? p : "/";
    }
    if (t[0] != '/' && strcmp(t, "*") != 0) {
        *why = "request target is not a path";
        return -EBADMSG;
    }
    size_t tlen = strlen(t);
    if (tlen > HTTP_PATH_MAX) {
        *status = 414;
        *why = "URI too long";
        return -EBADMSG;
    }
    /* One allocation: path NUL query NUL authority NUL. */
    size_t hostlen = authority_from_target ? alen : host ? strlen(host) : 0;
    r->target = malloc(tlen + hostlen + 3);
    if (!r->target) {
        *status = 503;
        *why = "out of memory";
        return -ENOMEM;
    }
    memcpy(r->target, t, tlen + 1);
    char *q = strchr(r->target, '?');
    char *auth = r->target + tlen + 2;
    if (q)
        *q++ = '\0';
    r->target[tlen + 1] = '\0';
    memcpy(auth, authority_from_target ? authority_from_target : host ? host : "", hostlen);
    auth[hostlen] = '\0';
    const char *rid = h1_head_get(h, "x-request-id");
    r->has_request_id = rid && *rid && strlen(rid) < sizeof(r->request_id);
    if (r->has_request_id)
        str_copy(r->request_id, sizeof(r->request_id), rid);
    else
        new_request_id(r->request_id);
    r->upgrade = h->upgrade;
    r->view = (struct http_request_view){.method = h->method,
                                         .path = r->target,
                                         .query = q ? q : r->target + tlen + 1,
                                         .authority = auth,
                                         .scheme = "http",
                                         .headers = h->headers,
                                         .nheaders = h->nheaders};
    return 0;
}

void http_request_prepare_route(struct http_request *r)
{
    struct outbound_route last = r->d.route;
    bool had = r->decided;
    drop_decision(r);
    memset(&r->d, 0, sizeof(r->d));
    if (had) { /* a retry: not the endpoint that just failed */
        r->d.route.avoid_cluster = last.cluster;
        r->d.route.avoid_endpoint = last.endpoint;
        r->d.route.retry = true;
    } else {
        r->d.route.avoid_endpoint = -1;
    }
}

/* --- the head sent upstream --------------------------------------------- */

static bool in_list(const struct cfg_strs *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcasecmp(l->v[i], name) == 0)
            return true;
    return false;
}

static bool in_kvs(const struct cfg_kv *kv, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(kv[i].key, name) == 0)
            return true;
    return false;
}

static bool removed(const struct cfg_header_ops *ops, const char *name)
{
    return ops && (in_list(&ops->remove, name) || in_kvs(ops->set, ops->nset, name));
}

static void push(struct http_field *f, size_t *n, const char *name, const char *value)
{
    if (*n >= HTTP_OUT_HEADERS_MAX)
        return;
    f[(*n)++] = http_field_of(name, value);
}

static void push_ops(struct http_field *f, size_t *n, const struct cfg_header_ops *ops)
{
    if (!ops)
        return;
    for (size_t i = 0; i < ops->nset; i++)
        push(f, n, ops->set[i].key, ops->set[i].value);
    for (size_t i = 0; i < ops->nadd; i++)
        push(f, n, ops->add[i].key, ops->add[i].value);
}

/* Copies `h`'s end-to-end fields, less those the edits replace or
 * remove, then appends the edits: the route's, then the destination's. */
static size_t edited_fields(const struct h1_head *h, const struct cfg_header_ops *route,
                            const struct cfg_header_ops *dest, bool skip_host,
                            struct http_field *out)
{
    size_t n = 0;
    /* The Connection headers alone, looked through for each field (not
     * every header for each): most heads have none, or one saying
     * keep-alive. More than fit here: the whole head is looked through. */
    struct http_field conn[4];
    struct h1_head lists = {.headers = conn};
    for (size_t i = 0; i < h->nheaders; i++) {
        const struct http_field *f = &h->headers[i];
        if (f->name_len != 10 || strncasecmp(f->name, "connection", 10) != 0)
            continue;
        if (lists.nheaders == sizeof(conn) / sizeof(conn[0])) {
            lists = *h;
            break;
        }
        conn[lists.nheaders++] = *f;
    }
    for (size_t i = 0; i < h->nheaders; i++) {
        const struct http_field *f = &h->headers[i];
        if (h1_header_is_hop(f->name, f->name_len) ||
            (lists.nheaders && h1_head_connection_lists(&lists, f->name, f->name_len)) ||
            (skip_host && !strcasecmp(f->name, "host")))
            continue;
        if (removed(route, f->name) || removed(dest, f->name))
            continue;
        if (n < HTTP_OUT_HEADERS_MAX)
            out[n++] = *f;
    }
    push_ops(out, &n, route);
    push_ops(out, &n, dest);
    return n;
}

static const struct cfg_headers *dest_headers(const struct http_request *r)
{
    const struct cfg_http_route *a = r->d.actions;
    return a && a->dest_headers ? &a->dest_headers[r->d.dest_index] : NULL;
}

/* The path after the route's rewrite: uri replaces the prefix the route
 * matched (or the whole path), uriRegexRewrite substitutes every match. */
static const char *rewritten_path(const struct http_request *r, char *buf, size_t len)
{
    const struct cfg_http_route *a = r->d.actions;
    const char *path = r->view.path;
    if (!a || !a->rewrite.set)
        return path;
    if (a->rewrite.regex && a->rewrite.regex_rewrite) {
        PCRE2_SIZE outlen = len;
        int rc = pcre2_substitute(a->rewrite.regex, (PCRE2_SPTR)path, PCRE2_ZERO_TERMINATED, 0,
                                  PCRE2_SUBSTITUTE_GLOBAL, NULL, NULL,
                                  (PCRE2_SPTR)a->rewrite.regex_rewrite, PCRE2_ZERO_TERMINATED,
                                  (PCRE2_UCHAR *)buf, &outlen);
        return rc >= 0 ? buf : path;
    }
    if (!a->rewrite.uri)
        return path;
    size_t prefix = 0;
    size_t nmatch = r->d.vs_route ? r->d.vs_route->nmatch : 0;
    for (size_t i = 0; a->match && i < nmatch; i++) {
        const struct cfg_str_match *m = &a->match[i].uri;
        if (m->set && m->kind == CFG_STR_PREFIX && strncmp(path, m->value, strlen(m->value)) == 0) {
            prefix = strlen(m->value);
            break;
        }
    }
    if (!prefix) {
        snprintf(buf, len, "%s", a->rewrite.uri);
        return buf;
    }
    snprintf(buf, len, "%s%s", a->rewrite.uri, path + prefix);
    return buf;
}

/* Formats a head meshd sends on: into `small` (a caller's stack buffer)
 * when it fits, which nearly every head does, else into a buffer of its
 * length (*heap, the caller frees), up to HTTP_HEAD_OUT_MAX. Returns the
 * head, or NULL with *err: -EINVAL (it would inject a line), -E2BIG, or
 * -ENOMEM. Per request: no 128 KiB allocation for a 300-byte head. */
static const char *format_head(const struct h1_out_head *oh, char *small, size_t cap, char **heap,
                               size_t *len, int *err)
{
    *heap = NULL;
    *len = h1_format_head(oh, small, cap);
    if (*len == 0) {
        *err = -EINVAL;
        return NULL;
    }
    if (*len < cap)
        return small;
    if (*len >= HTTP_HEAD_OUT_MAX) {
        *err = -E2BIG;
        return NULL;
    }
    if (!(*heap = malloc(*len + 1))) {
        *err = -ENOMEM;
        return NULL;
    }
    h1_format_head(oh, *heap, *len + 1);
    return *heap;
}

/* Whether `f` is one of the client's fields (not a route's edit). */
static bool from_client(const struct h1_head *h, const struct http_field *f)
{
    for (size_t i = 0; i < h->nheaders; i++)
        if (h->headers[i].name == f->name)
            return true;
    return false;
}

/* An external request at the edge (d.edge): what the client said of
 * itself and of Envoy is replaced (Envoy's header sanitizing with
 * use_remote_address), and its x-request-id is a new one; the route's
 * own header edits stay (Envoy applies them after). */
static size_t edge_fields(struct http_request *r, struct http_field *f, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = f[i].name;
        bool sanitized = !strcasecmp(name, "x-forwarded-for") ||
                         !strcasecmp(name, "x-forwarded-proto") ||
                         !strcasecmp(name, "x-request-id") || !strncasecmp(name, "x-envoy-", 8);
        if (sanitized && from_client(r->head, &f[i]))
            continue;
        f[k++] = f[i];
    }
    if (r->has_request_id) {
        new_request_id(r->request_id);
        r->has_request_id = false;
    }
    static const char *const names[] = {"x-forwarded-for", "x-forwarded-proto",
                                        "x-envoy-external-address"};
    const char *values[] = {r->d.edge_xff, r->d.edge_proto, r->d.edge_client};
    for (size_t e = 0; e < 3; e++) {
        bool edited = false; /* a route's edit of the same field wins */
        for (size_t i = 0; i < k && !edited; i++)
            edited = !strcasecmp(f[i].name, names[e]);
        if (!edited)
            push(f, &k, names[e], values[e]);
    }
    return k;
}

int http_request_attempt_fields(struct http_request *r, bool shadow, struct http_field *f,
                                size_t cap, char *authority_buf, size_t authority_len,
                                const char **authority, char *target, size_t target_len)
{
    const struct cfg_http_route *a = r->d.actions;
    const struct cfg_headers *dh = dest_headers(r);
    char path[HTTP_PATH_MAX];
    const char *auth =
        a && a->rewrite.set && a->rewrite.authority ? a->rewrite.authority : r->view.authority;
    if (shadow) {
        snprintf(authority_buf, authority_len, "%s-shadow", auth);
        auth = authority_buf;
    }
    *authority = auth;
    if (cap < HTTP_OUT_HEADERS_MAX)
        return -E2BIG;
    size_t n =
        edited_fields(r->head, a ? &a->headers.request : NULL, dh ? &dh->request : NULL, true, f);
    if (r->d.edge)
        n = edge_fields(r, f, n);
    if (!r->has_request_id && !removed(a ? &a->headers.request : NULL, "x-request-id"))
        push(f, &n, "x-request-id", r->request_id);
    /* The values live in the request: the caller formats the fields after. */
    n = trace_fields(&r->trace, f, n, HTTP_OUT_HEADERS_MAX, &r->trace_out);
    const char *p = rewritten_path(r, path, sizeof(path));
    size_t tn = 0;
    bool fits = r->d.target /* the destination's normalized path, query included */
                    ? str_append(target, target_len, &tn, r->d.target)
                    : str_append(target, target_len, &tn, p) &&
                          (!*r->view.query || (str_append(target, target_len, &tn, "?") &&
                                               str_append(target, target_len, &tn, r->view.query)));
    if (!fits)
        return -E2BIG; /* a rewrite past the bound: never a cut path */
    return (int)n;
}

int http_request_send_head(struct http_request *r, struct hup *up, bool shadow)
{
    const struct h1_head *h = r->head;
    struct http_field f[HTTP_OUT_HEADERS_MAX + 1];
    char target[HTTP_PATH_MAX], shadowed[512];
    const char *authority;
    int nf = http_request_attempt_fields(r, shadow, f + 1, HTTP_OUT_HEADERS_MAX, shadowed,
                                         sizeof(shadowed), &authority, target, sizeof(target));
    if (nf < 0)
        return nf;
    size_t n = (size_t)nf;
    size_t first = 1;
    if (*authority)
        f[0] = http_field_of("Host", authority);
    else
        first = 0;
    struct h1_out_head oh = {.method = h->method,
                             .target = target,
                             .headers = f + 1 - first,
                             .nheaders = n + first,
                             .body = h->body == H1_BODY_CHUNKED  ? H1_BODY_CHUNKED
                                     : h->body == H1_BODY_LENGTH ? H1_BODY_LENGTH
                                                                 : H1_BODY_NONE,
                             .content_length = h->content_length,
                             .keep_alive = !r->upgrade,
                             .upgrade_proto = r->upgrade ? h1_head_get(h, "upgrade") : NULL};
    /* -EINVAL: a header edit would have injected a line (never sent) */
    char small[8192], *heap;
    size_t len;
    int rc;
    const char *head = format_head(&oh, small, sizeof(small), &heap, &len, &rc);
    if (head)
        rc = hup_send(up, head, len);
    free(heap);
    if (rc == 0 && hbuf_pending(&r->body))
        rc = hup_send(up, r->body.data + r->body.off, hbuf_pending(&r->body));
    if (rc == 0 && r->req_complete && r->req_framing == HTTP_FRAME_CHUNKED &&
        (r->attempt > 0 || shadow)) /* the body was whole: its last chunk too */
        rc = hup_send(up, h1_last_chunk, strlen(h1_last_chunk));
    return rc;
}

/* Appends body bytes framed as the request was (chunk heads re-written:
 * what goes upstream is meshd's framing, never the client's). */
static int frame(struct hbuf *b, enum http_framing fr, const char *data, size_t len)
{
    if (fr != HTTP_FRAME_CHUNKED)
        return hbuf_append(b, data, len);
    char ch[H1_CHUNK_HEAD_MAX];
    size_t n = h1_format_chunk_head(len, ch);
    int rc = hbuf_append(b, ch, n);
    if (rc == 0)
        rc = hbuf_append(b, data, len);
    if (rc == 0)
        rc = hbuf_append(b, h1_chunk_tail, strlen(h1_chunk_tail));
    return rc;
}

int http_request_body(struct http_request *r, struct hup *up, const char *data, size_t len)
{
    if (!len)
        return 0;
    r->req_bytes += len;
    if (!r->body_overflow) {
        if (hbuf_pending(&r->body) + len + 32 > HTTP_RETRY_BODY_MAX) {
            r->body_overflow = true; /* too big to replay: no retry */
            hbuf_free(&r->body);
        } else if (frame(&r->body, r->req_framing, data, len)) {
            r->body_overflow = true;
        }
    }
    if (!up)
        return 0;
    struct hbuf tmp = {0};
    int rc = frame(&tmp, r->req_framing, data, len);
    if (rc == 0)
        rc = hup_send(up, tmp.data, tmp.len);
    hbuf_free(&tmp);
    return rc;
}

void http_request_body_end(struct http_request *r, struct hup *up)
{
    if (r->req_complete)
        return;
    r->req_complete = true;
    if (r->req_framing == HTTP_FRAME_CHUNKED && up)
        hup_send(up, h1_last_chunk, strlen(h1_last_chunk));
}

size_t http_request_local_fields(struct http_request *r, int status, size_t body_len,
                                 const struct http_field *extra, size_t nextra,
                                 const char *location, enum resp_flag flag, struct http_field *f)
{
    r->status = status;
    if (flag != RESP_FLAG_NONE)
        r->flag = flag;
    size_t n = 0;
    for (size_t i = 0; i < nextra && n < 8; i++)
        f[n++] = extra[i];
    if (location)
        push(f, &n, "location", location);
    if (body_len)
        push(f, &n, "content-type", "text/plain");
    push(f, &n, "server", "meshd");
    return n;
}

int http_request_local_reply(struct http_request *r, int status, const char *body, size_t body_len,
                             const struct http_field *extra, size_t nextra, const char *location,
                             enum resp_flag flag, struct hbuf *out)
{
    struct http_field f[HTTP_LOCAL_FIELDS_MAX];
    size_t n = http_request_local_fields(r, status, body_len, extra, nextra, location, flag, f);
    char head[2048];
    bool keep = r->down_keep_alive && r->req_complete;
    struct h1_out_head oh = {.status = status,
                             .headers = f,
                             .nheaders = n,
                             .body = H1_BODY_LENGTH,
                             .content_length = body_len,
                             .keep_alive = keep};
    size_t len = h1_format_head(&oh, head, sizeof(head));
    if (len == 0 || len >= sizeof(head))
        return -E2BIG;
    r->down_keep_alive = keep;
    r->resp_bytes = r->is_head ? 0 : body_len;
    int rc = hbuf_append(out, head, len);
    if (rc == 0 && body_len && !r->is_head)
        rc = hbuf_append(out, body, body_len);
    return rc;
}

/* --- the response, downstream ------------------------------------------- */

int http_response_interim(struct http_request *r, const struct h1_head *h, struct hbuf *out)
{
    if (r->head->minor == 0 && r->head->major == 1)
        return 0; /* an HTTP/1.0 client knows no 1xx */
    char head[1024];
    struct h1_out_head oh = {.status = h->status, .body = H1_BODY_NONE, .keep_alive = true};
    size_t len = h1_format_head(&oh, head, sizeof(head));
    return len && len < sizeof(head) ? hbuf_append(out, head, len) : -E2BIG;
}

size_t http_response_fields(const struct http_request *r, const struct h1_head *h,
                            struct http_field *f, char *cors, size_t cors_len)
{
    const struct cfg_http_route *a = r->d.actions;
    const struct cfg_headers *dh = dest_headers(r);
    size_t n =
        edited_fields(h, a ? &a->headers.response : NULL, dh ? &dh->response : NULL, false, f);
    if (r->cors_origin && a && n + 6 <= HTTP_OUT_HEADERS_MAX)
        n += http_cors_fields(&a->cors, r->cors_origin, false, f + n, cors, cors_len);
    return n;
}

int http_response_head(struct http_request *r, const struct h1_head *h, bool keep_alive,
                       struct hbuf *out)
{
    r->status = h->status;
    r->first_byte_ns = 1;
    r->up_keep_alive = h->keep_alive;
    bool client_11 = r->head->major == 1 && r->head->minor >= 1;
    enum h1_body body = h->body;
    uint64_t clen = h->content_length;
    r->resp_framing = body == H1_BODY_LENGTH    ? HTTP_FRAME_LENGTH
                      : body == H1_BODY_CHUNKED ? HTTP_FRAME_CHUNKED
                      : body == H1_BODY_CLOSE   ? HTTP_FRAME_CLOSE
                                                : HTTP_FRAME_NONE;
    if (body == H1_BODY_CLOSE) {
        /* Until the server closes: chunked to an HTTP/1.1 client so the
         * connection persists; an HTTP/1.0 one reads until we close. */
        if (client_11) {
            body = H1_BODY_CHUNKED;
            r->resp_framing = HTTP_FRAME_CHUNKED;
        } else {
            r->down_keep_alive = false;
        }
        r->up_keep_alive = false;
    } else if (body == H1_BODY_CHUNKED && !client_11) {
        body = H1_BODY_CLOSE; /* de-chunked to a 1.0 client, ended by our close */
        r->resp_framing = HTTP_FRAME_CLOSE;
        r->down_keep_alive = false;
    }
    if (r->is_head) { /* HEAD: the length of what GET would return, no body */
        const char *cl = h1_head_get(h, "content-length");
        body = cl ? H1_BODY_LENGTH : H1_BODY_NONE;
        clen = cl ? strtoull(cl, NULL, 10) : 0;
        r->resp_framing = HTTP_FRAME_NONE;
    }
    if (h->status == 101) {
        r->upgraded = r->upgrade;
        body = H1_BODY_NONE;
    }
    struct http_field f[HTTP_OUT_HEADERS_MAX];
    char cors[1024];
    size_t n = http_response_fields(r, h, f, cors, sizeof(cors));
    bool keep = keep_alive && r->down_keep_alive && r->req_complete;
    r->down_keep_alive = keep;
    struct h1_out_head oh = {.status = h->status,
                             .reason = h->reason && *h->reason ? h->reason : NULL,
                             .headers = f,
                             .nheaders = n,
                             .body = body,
                             .content_length = clen,
                             .keep_alive = keep || r->upgraded,
                             .upgrade_proto = r->upgraded ? h1_head_get(h, "upgrade") : NULL};
    char small[8192], *heap;
    size_t len;
    int rc;
    const char *head = format_head(&oh, small, sizeof(small), &heap, &len, &rc);
    if (head)
        rc = hbuf_append(out, head, len);
    free(heap);
    return rc;
}

int http_response_body(struct http_request *r, struct hbuf *out, const char *data, size_t len)
{
    r->resp_bytes += len;
    return frame(out,
                 r->resp_framing == HTTP_FRAME_CHUNKED ? HTTP_FRAME_CHUNKED : HTTP_FRAME_LENGTH,
                 data, len);
}

void http_response_complete(struct http_request *r, struct hbuf *out, uint64_t *counted)
{
    if (r->resp_framing == HTTP_FRAME_CHUNKED &&
        hbuf_append(out, h1_last_chunk, strlen(h1_last_chunk)) == 0)
        *counted += strlen(h1_last_chunk);
}

_Static_assert(offsetof(struct http_request_record, labels) == 0, "the labels come first");

void http_request_record_fill(struct http_request *r, struct http_request_record *out)
{
    const struct h1_head *h = r->head;
    r->reported = true;
    /* Empty labels without clearing their ~3 KiB per request: the
     * reporter fills them (telemetry's labels memo copies a set in). */
    for (size_t i = 0; i < TL__COUNT; i++)
        out->labels.v[i][0] = '\0';
    memset((char *)out + sizeof(out->labels), 0, sizeof(*out) - sizeof(out->labels));
    out->response_code = r->status;
    out->grpc_status = r->grpc_status;
    out->grpc = r->grpc;
    out->request_bytes = r->req_bytes;
    out->response_bytes = r->resp_bytes;
    out->duration_ns = r->start_ns ? loop_now_ns() - r->start_ns : 0;
    out->start_realtime_ns = r->start_real_ns;
    out->method = h ? h->method : NULL;
    out->path = h ? h->target : NULL;
    out->protocol = h && h->major == 2 ? "HTTP/2" : h && h->minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
    out->authority = r->view.authority;
    out->user_agent = h ? h1_head_get(h, "user-agent") : NULL;
    out->request_id = r->request_id;
    out->forwarded_for = h ? h1_head_get(h, "x-forwarded-for") : NULL;
    out->upstream_host = r->upstream_host[0] ? r->upstream_host : NULL;
    out->upstream_cluster = r->d.cluster[0] ? r->d.cluster : NULL;
    out->response_flags = resp_flag_name(r->flag);
    out->trace = &r->trace;
    out->forwarded_proto = r->d.edge ? r->d.edge_proto
                           : h       ? h1_head_get(h, "x-forwarded-proto")
                                     : NULL;
}
