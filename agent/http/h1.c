/* HTTP/1.x parsing over llhttp (see h1.h): llhttp parses, this file
 * gathers each head into the parser's bounded buffer, checks what llhttp
 * leaves to its caller, and delivers heads, body bytes and message ends.
 *
 * Three layers keep the framing one a proxy may trust:
 * - llhttp with its defaults (no lenient flag): methods, versions, tokens,
 *   Content-Length and chunk-size digits and overflow, TE with CL, TE not
 *   ending in chunked on a request, duplicate Content-Length headers;
 * - a byte filter over everything that is not body data (heads, chunk-size
 *   lines, trailers, the gaps between messages): CR and LF only as CRLF,
 *   no control byte but HT, no whitespace at a line's start (obs-fold),
 *   one SP between request-line parts, a three-digit status after one SP,
 *   CRLF right after chunk data. llhttp 8 accepts a bare LF as a line
 *   end, folds obs-fold lines, takes "GET  /" and statuses "2" or "0200",
 *   and skips any two bytes after chunk data; two parsers could disagree
 *   on each, so each is refused;
 * - the head itself, checked before it is delivered: one Content-Length of
 *   digits only (even "1, 1" or two equal ones: RFC 9110 8.6 lets a
 *   recipient accept them; llhttp, Envoy's http-parser and balsa codecs
 *   (envoyproxy/envoy#28931) refuse them, and so do we), no TE with CL,
 *   "chunked" once and last, header names tokens (llhttp 8 takes "X A"),
 *   no TE in HTTP/1.0 requests, no framing header spelled with '_'
 *   (CGI-style servers read it), one Host (required in 1.1), no fragment
 *   in a target, no body on CONNECT, versions 1.0 and 1.1 only, and
 *   llhttp's own framing decision (F_CHUNKED, content_length) agreeing
 *   with ours.
 * The byte filter and the head checks are h1_rules.c.
 *
 * Heads and message ends are delivered from h1_parse, not from inside
 * llhttp: the llhttp callbacks pause it internally (HPE_PAUSED), so the
 * filter has seen every byte up to that point and the position of the
 * head's or message's end is known (llhttp_get_error_pos). Body bytes are
 * delivered from llhttp's on_body, after the filter has passed the chunk
 * framing before them. */
#include "http/h1.h"
#include "http/h1_rules.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

enum h1_state {
    ST_IDLE,     /* between messages */
    ST_HEAD,     /* in a head (llhttp's on_message_begin ran) */
    ST_BODY,     /* head delivered, message not complete */
    ST_UPGRADED, /* an upgrade or CONNECT completed: the rest is not HTTP */
    ST_DEAD,     /* refused or cancelled */
};

enum h1_pause {
    PAUSE_NONE,
    PAUSE_HEAD,     /* internal: head gathered, to check and deliver */
    PAUSE_COMPLETE, /* internal: message ended, to deliver */
    PAUSE_USER,     /* a user callback paused: waits for h1_parser_resume */
};

enum h1_span {
    SPAN_NONE,
    SPAN_METHOD,
    SPAN_URL,
    SPAN_STATUS,
    SPAN_FIELD,
    SPAN_VALUE,
};

struct h1_item {
    uint32_t name_off, name_len, value_off, value_len;
};

struct h1_parser {
    llhttp_t llp;
    struct h1_callbacks cb;
    void *ctx;
    bool request;
    uint32_t max_head, max_headers;

    enum h1_state st;
    enum h1_pause pause;
    bool user_paused;    /* a user callback returned H1_PAUSED */
    bool resume_upgrade; /* h1_parser_resume after an upgrade: go on as HTTP */
    bool kick;           /* resumed: run llhttp once even on an empty feed */
    bool next_head;      /* the next response answers a HEAD */
    bool next_connect;   /* the next response answers a CONNECT */
    int dead_rc;

    /* The head being gathered: NUL-terminated strings at offsets. */
    char *buf;
    uint32_t buf_len, buf_cap;
    struct h1_item *items;
    struct http_field *fields;
    uint32_t nitems, items_cap;
    enum h1_span span;
    uint32_t method_off, target_off, reason_off;
    bool have_reason;
    uint64_t body_bytes;
    struct h1_head head;

    /* Absolute offsets in the stream, for the head limit. */
    uint64_t abs_base; /* of data[0] in the current h1_parse */
    uint64_t head_start;
    const char *data; /* the current h1_parse's input */
    const char *scan_pos;
    struct h1_scan scan;

    const char *err_reason;
    int err_status;
};

static const char empty[] = "";

static int fail_in_cb(struct h1_parser *p, int status, const char *reason)
{
    if (!p->err_reason) {
        p->err_reason = reason;
        p->err_status = status;
    }
    return HPE_USER;
}

/* The byte filter up to `end`. Framing inside a body (a chunk-size line
 * and its extensions, the trailers) is bounded like a head: llhttp reads
 * it without a limit (cf. Node's CVE-2024-22019). */
static const char *scan_to(struct h1_parser *p, const char *end)
{
    const char *why = h1_scan_bytes(&p->scan, p->scan_pos, end);
    if (!why && p->st == ST_BODY && p->scan.run > p->max_head)
        why = "chunk framing too long";
    return why;
}

static uint64_t abs_pos(const struct h1_parser *p, const char *at)
{
    return p->abs_base + (uint64_t)(at - p->data);
}

/* --- gathering the head ------------------------------------------------ */

static int buf_append(struct h1_parser *p, const char *at, size_t n)
{
    if (n > p->max_head || p->buf_len + n + 1 > p->max_head)
        return fail_in_cb(p, 431, "head larger than the limit");
    if (p->buf_len + n + 1 > p->buf_cap) {
        uint32_t cap = p->buf_cap ? p->buf_cap : 1024;
        while (cap < p->buf_len + n + 1)
            cap *= 2;
        if (cap > p->max_head)
            cap = p->max_head;
        char *nb = realloc(p->buf, cap);
        if (!nb)
            return fail_in_cb(p, 503, "out of memory");
        p->buf = nb;
        p->buf_cap = cap;
    }
    memcpy(p->buf + p->buf_len, at, n);
    p->buf_len += (uint32_t)n;
    return 0;
}

static int buf_end(struct h1_parser *p)
{
    /* buf_append keeps one byte free for this NUL. */
    if (p->buf_len + 1 > p->buf_cap && buf_append(p, "", 0) != 0)
        return HPE_USER;
    p->buf[p->buf_len++] = '\0';
    return 0;
}

static struct h1_parser *parser_of(llhttp_t *l)
{
    return l->data;
}

static int span_start(struct h1_parser *p, enum h1_span s, uint32_t *off)
{
    if (p->span != s) {
        p->span = s;
        *off = p->buf_len;
    }
    return 0;
}

static int on_message_begin(llhttp_t *l)
{
    struct h1_parser *p = parser_of(l);
    /* The last head is no longer anyone's: a large one's buffer goes, so
     * one big head does not keep the connection big. */
    if (p->buf_cap > 4096) {
        free(p->buf);
        p->buf = NULL;
        p->buf_cap = 0;
    }
    p->st = ST_HEAD;
    p->buf_len = 0;
    p->nitems = 0;
    p->span = SPAN_NONE;
    p->have_reason = false;
    p->body_bytes = 0;
    return 0;
}

static int on_method(llhttp_t *l, const char *at, size_t n)
{
    struct h1_parser *p = parser_of(l);
    span_start(p, SPAN_METHOD, &p->method_off);
    return buf_append(p, at, n);
}

static int on_url(llhttp_t *l, const char *at, size_t n)
{
    struct h1_parser *p = parser_of(l);
    span_start(p, SPAN_URL, &p->target_off);
    return buf_append(p, at, n);
}

static int on_status(llhttp_t *l, const char *at, size_t n)
{
    struct h1_parser *p = parser_of(l);
    span_start(p, SPAN_STATUS, &p->reason_off);
    p->have_reason = true;
    return buf_append(p, at, n);
}

static int on_span_complete(llhttp_t *l)
{
    struct h1_parser *p = parser_of(l);
    if (p->span == SPAN_NONE)
        return 0;
    p->span = SPAN_NONE;
    return buf_end(p);
}

static int on_header_field(llhttp_t *l, const char *at, size_t n)
{
    struct h1_parser *p = parser_of(l);
    if (p->st == ST_BODY) /* a trailer: dropped (scan_to bounds its bytes) */
        return 0;
    if (p->span != SPAN_FIELD) {
        if (p->nitems >= p->max_headers)
            return fail_in_cb(p, 431, "too many headers");
        if (p->nitems == p->items_cap) {
            uint32_t cap = p->items_cap ? p->items_cap * 2 : 16;
            if (cap > p->max_headers)
                cap = p->max_headers;
            struct h1_item *ni = realloc(p->items, cap * sizeof(*ni));
            if (!ni)
                return fail_in_cb(p, 503, "out of memory");
            p->items = ni;
            struct http_field *nf = realloc(p->fields, cap * sizeof(*nf));
            if (!nf)
                return fail_in_cb(p, 503, "out of memory");
            p->fields = nf;
            p->items_cap = cap;
        }
        p->items[p->nitems++] = (struct h1_item){.name_off = p->buf_len};
        p->span = SPAN_FIELD;
    }
    return buf_append(p, at, n);
}

static int on_header_field_complete(llhttp_t *l)
{
    struct h1_parser *p = parser_of(l);
    if (p->st == ST_BODY)
        return 0;
    if (p->span != SPAN_FIELD) /* an empty name: llhttp refuses it first */
        return fail_in_cb(p, 400, "empty header name");
    struct h1_item *it = &p->items[p->nitems - 1];
    it->name_len = p->buf_len - it->name_off;
    if (buf_end(p) != 0)
        return HPE_USER;
    it->value_off = p->buf_len;
    p->span = SPAN_VALUE;
    return 0;
}

static int on_header_value(llhttp_t *l, const char *at, size_t n)
{
    struct h1_parser *p = parser_of(l);
    if (p->st == ST_BODY)
        return 0;
    if (p->span != SPAN_VALUE) /* never from llhttp 8; the buffer stays sound */
        return fail_in_cb(p, 400, "header value without a name");
    return buf_append(p, at, n);
}

static int on_header_value_complete(llhttp_t *l)
{
    struct h1_parser *p = parser_of(l);
    if (p->st == ST_BODY)
        return 0;
    if (p->span != SPAN_VALUE)
        return fail_in_cb(p, 400, "header value without a name");
    struct h1_item *it = &p->items[p->nitems - 1];
    /* The field value excludes trailing whitespace (RFC 9110 5.5). */
    while (p->buf_len > it->value_off &&
           (p->buf[p->buf_len - 1] == ' ' || p->buf[p->buf_len - 1] == '\t'))
        p->buf_len--;
    it->value_len = p->buf_len - it->value_off;
    p->span = SPAN_NONE;
    return buf_end(p);
}

static int on_headers_complete(llhttp_t *l)
{
    struct h1_parser *p = parser_of(l);
    /* Responses to HEAD, 1xx, 204 and 304 have no body whatever their
     * headers say (RFC 9112 6.3); llhttp leaves that to this callback's
     * return value 1: set the flag that value sets, so we can pause. */
    int st = l->status_code;
    if (!p->request && (p->next_head || st / 100 == 1 || st == 204 || st == 304))
        l->flags |= F_SKIPBODY;
    /* A 2xx to CONNECT opens the tunnel: no body, the rest is raw (what
     * llhttp does for the CONNECT request itself). */
    if (!p->request && p->next_connect && st / 100 == 2) {
        l->flags |= F_SKIPBODY;
        l->upgrade = 1;
    }
    p->pause = PAUSE_HEAD;
    return HPE_PAUSED;
}

static int on_body(llhttp_t *l, const char *at, size_t n)
{
    struct h1_parser *p = parser_of(l);
    if (n == 0) /* llhttp flushes an open span at every execute's end, empty or not */
        return 0;
    const char *why = scan_to(p, at);
    if (why)
        return fail_in_cb(p, 400, why);
    p->scan_pos = at + n;
    h1_scan_after_data(&p->scan, p->head.body == H1_BODY_CHUNKED);
    p->body_bytes += n;
    if (p->head.body == H1_BODY_LENGTH && p->body_bytes > p->head.content_length)
        return fail_in_cb(p, 400, "body past its Content-Length"); /* llhttp never does this */
    int rc = p->cb.on_body ? p->cb.on_body(p->ctx, at, n) : H1_OK;
    if (rc == H1_OK)
        return 0;
    if (rc == H1_PAUSED) {
        p->pause = PAUSE_USER;
        return HPE_PAUSED;
    }
    p->st = ST_DEAD;
    p->dead_rc = -ECANCELED;
    return fail_in_cb(p, 500, "refused by a callback");
}

static int on_message_complete(llhttp_t *l)
{
    struct h1_parser *p = parser_of(l);
    p->pause = PAUSE_COMPLETE;
    return HPE_PAUSED;
}

static const llhttp_settings_t h1_settings = {
    .on_message_begin = on_message_begin,
    .on_method = on_method,
    .on_method_complete = on_span_complete,
    .on_url = on_url,
    .on_url_complete = on_span_complete,
    .on_status = on_status,
    .on_status_complete = on_span_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* --- checking and delivering the head ---------------------------------- */

static void build_head(struct h1_parser *p)
{
    struct h1_head *h = &p->head;
    llhttp_t *l = &p->llp;
    for (uint32_t i = 0; i < p->nitems; i++) {
        const struct h1_item *it = &p->items[i];
        p->fields[i] = (struct http_field){.name = p->buf + it->name_off,
                                           .value = p->buf + it->value_off,
                                           .name_len = it->name_len,
                                           .value_len = it->value_len};
    }
    *h = (struct h1_head){
        .request = p->request,
        .method = p->request ? p->buf + p->method_off : NULL,
        .target = p->request ? p->buf + p->target_off : NULL,
        .status = p->request ? 0 : l->status_code,
        .reason = !p->request && p->have_reason ? p->buf + p->reason_off : empty,
        .major = l->http_major,
        .minor = l->http_minor,
        .headers = p->fields,
        .nheaders = p->nitems,
        .keep_alive = llhttp_should_keep_alive(l),
        .upgrade = l->upgrade,
    };
    if (l->flags & F_CONTENT_LENGTH)
        h->content_length = l->content_length;
    bool no_body = l->flags & F_SKIPBODY;
    /* llhttp's rule: the rest of an upgrade is another protocol unless a
     * body was declared (CONNECT never has one). */
    bool has_body = (l->flags & F_CHUNKED) || l->content_length > 0;
    if (no_body || (h->upgrade && (l->method == HTTP_CONNECT || !has_body)))
        h->body = H1_BODY_NONE;
    else if (l->flags & F_CHUNKED)
        h->body = H1_BODY_CHUNKED;
    else if (l->flags & F_CONTENT_LENGTH)
        h->body = H1_BODY_LENGTH;
    else
        h->body = p->request ? H1_BODY_NONE : H1_BODY_CLOSE;
    /* RFC 9110 10.1.1: an HTTP/1.0 request's 100-continue is ignored. */
    const char *expect = p->request && h->minor >= 1 ? h1_head_get(h, "expect") : NULL;
    h->expect_continue = expect && strcasecmp(expect, "100-continue") == 0;
}

static int fail(struct h1_parser *p, int status, const char *reason)
{
    p->err_reason = reason;
    p->err_status = status;
    p->st = ST_DEAD;
    p->dead_rc = -EBADMSG;
    return -EBADMSG;
}

static int user_rc(struct h1_parser *p, int rc)
{
    if (rc == H1_OK || rc == H1_PAUSED) {
        p->user_paused = rc == H1_PAUSED;
        return rc;
    }
    p->err_reason = "refused by a callback";
    p->err_status = 500;
    p->st = ST_DEAD;
    p->dead_rc = -ECANCELED;
    return -ECANCELED;
}

/* The head ends at `end`: check it whole, then hand it over. */
static int deliver_head(struct h1_parser *p, const char *end)
{
    if (abs_pos(p, end) - p->head_start > p->max_head)
        return fail(p, 431, "head larger than the limit");
    build_head(p);
    const struct h1_framing seen = {
        .chunked = p->llp.flags & F_CHUNKED,
        .length = p->llp.flags & F_CONTENT_LENGTH,
        .connect = p->request && p->llp.method == HTTP_CONNECT,
        .content_length = p->llp.content_length,
    };
    const char *why = h1_check_head(&p->head, &seen);
    if (why)
        return fail(p, 400, why);
    p->st = ST_BODY;
    p->scan.run = 0; /* the body's framing is counted apart from the head */
    if (p->head.status / 100 != 1)
        p->next_head = p->next_connect = false; /* 1xx come before the answer */
    return user_rc(p, p->cb.on_head ? p->cb.on_head(p->ctx, &p->head) : H1_OK);
}

static int deliver_complete(struct h1_parser *p, const char *end)
{
    p->st = p->head.upgrade ? ST_UPGRADED : ST_IDLE;
    p->head_start = abs_pos(p, end);
    h1_scan_start(&p->scan, p->request);
    return user_rc(p, p->cb.on_complete ? p->cb.on_complete(p->ctx) : H1_OK);
}

/* --- the parser ---------------------------------------------------------- */

int h1_parser_new(bool request, const struct h1_limits *lim, const struct h1_callbacks *cb,
                  void *ctx, struct h1_parser **out)
{
    struct h1_parser *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    llhttp_init(&p->llp, request ? HTTP_REQUEST : HTTP_RESPONSE, &h1_settings);
    p->llp.data = p;
    p->request = request;
    h1_scan_start(&p->scan, request);
    p->cb = *cb;
    p->ctx = ctx;
    p->max_head = lim && lim->max_head_bytes ? lim->max_head_bytes : H1_MAX_HEAD_BYTES_DEFAULT;
    p->max_headers = lim && lim->max_headers ? lim->max_headers : H1_MAX_HEADERS_DEFAULT;
    *out = p;
    return 0;
}

void h1_parser_free(struct h1_parser *p)
{
    if (!p)
        return;
    free(p->buf);
    free(p->items);
    free(p->fields);
    free(p);
}

void h1_parser_next_is_head_response(struct h1_parser *p, bool head)
{
    p->next_head = head;
}

void h1_parser_next_is_connect_response(struct h1_parser *p, bool connect)
{
    p->next_connect = connect;
}

void h1_parser_resume(struct h1_parser *p)
{
    if (p->st == ST_UPGRADED) /* the peer refused the upgrade: HTTP goes on */
        p->resume_upgrade = true;
    if (!p->user_paused)
        return;
    p->user_paused = false;
    p->kick = true;
    llhttp_resume(&p->llp);
}

/* llhttp stopped on an error: say why, preferring the filter's reason
 * for the bytes up to the offending one. */
static int fail_llhttp(struct h1_parser *p, llhttp_errno_t e, const char *pos, const char *end)
{
    if (p->st == ST_DEAD && p->dead_rc == -ECANCELED)
        return -ECANCELED;
    if (p->err_reason)
        return fail(p, p->err_status, p->err_reason);
    if (pos && pos >= p->scan_pos && pos <= end) {
        const char *why = h1_scan_bytes(&p->scan, p->scan_pos, pos < end ? pos + 1 : end);
        if (why)
            return fail(p, 400, why);
    }
    const char *r = llhttp_get_error_reason(&p->llp);
    (void)e;
    return fail(p, 400, r && *r ? r : "malformed message");
}

int h1_parse(struct h1_parser *p, const char *data, size_t len, size_t *consumed)
{
    size_t off = 0;
    int rc = H1_OK;
    *consumed = 0;
    if (p->st == ST_DEAD)
        return p->dead_rc;
    if (p->user_paused)
        return H1_PAUSED;
    if (p->st == ST_UPGRADED) {
        if (!p->resume_upgrade)
            return H1_PAUSED;
        p->st = ST_IDLE; /* the upgrade was refused: HTTP goes on */
        p->resume_upgrade = false;
    }
    static const char none[1];
    if (!data) /* (NULL, 0): no pointer arithmetic on NULL */
        data = none, len = 0;
    p->data = data;
    /* After an internal pause llhttp runs once more even with nothing
     * left: what needs no byte (a bodiless message's end) happens now. */
    bool kick = p->kick;
    p->kick = false;
    while (off < len || kick) {
        const char *end = data + len;
        kick = false;
        p->scan_pos = data + off;
        llhttp_errno_t e = llhttp_execute(&p->llp, data + off, len - off);
        const char *pos = e == HPE_OK ? end : llhttp_get_error_pos(&p->llp);
        if (e == HPE_OK || e == HPE_PAUSED) {
            const char *why = scan_to(p, pos);
            if (why) {
                rc = fail(p, 400, why);
                break;
            }
        }
        if (e == HPE_OK) {
            off = len;
            if (p->st == ST_HEAD && abs_pos(p, end) - p->head_start > p->max_head)
                rc = fail(p, 431, "head larger than the limit");
            break;
        }
        if (e == HPE_PAUSED_UPGRADE) {
            /* Only after deliver_complete saw the upgrade and the caller
             * resumed: llhttp's own pause, right where ours was. */
            llhttp_resume_after_upgrade(&p->llp);
            off = (size_t)(pos - data);
            continue;
        }
        if (e != HPE_PAUSED) {
            rc = fail_llhttp(p, e, pos, end);
            break;
        }
        off = (size_t)(pos - data);
        enum h1_pause why = p->pause;
        p->pause = PAUSE_NONE;
        if (why == PAUSE_USER) {
            p->user_paused = true;
            rc = H1_PAUSED;
            break;
        }
        rc = why == PAUSE_HEAD ? deliver_head(p, pos) : deliver_complete(p, pos);
        if (rc != H1_OK)
            break;
        llhttp_resume(&p->llp);
        if (p->st == ST_UPGRADED) {
            rc = H1_PAUSED;
            break;
        }
        kick = true;
    }
    if (rc >= 0) {
        *consumed = off;
        p->abs_base += off;
    }
    return rc;
}

int h1_parse_eof(struct h1_parser *p)
{
    static const char none[1];
    size_t c;
    if (p->st == ST_DEAD)
        return p->dead_rc;
    /* A pause left the message where the caller stopped: finish what the
     * bytes already read hold (a bodiless message ends, a body until close
     * reaches the state that takes the close). */
    if (p->user_paused && p->st != ST_UPGRADED)
        h1_parser_resume(p);
    if (p->kick) {
        int rc = h1_parse(p, none, 0, &c);
        if (rc < 0)
            return rc;
    }
    if (p->st == ST_IDLE || p->st == ST_UPGRADED)
        return H1_OK;
    if (p->st == ST_HEAD)
        return fail(p, 400, "connection closed in a head");
    if (p->head.body != H1_BODY_CLOSE || p->user_paused)
        return fail(p, 400, "connection closed before the body's end");
    p->data = none;
    p->scan_pos = none;
    llhttp_errno_t e = llhttp_finish(&p->llp);
    if (e == HPE_PAUSED && p->pause == PAUSE_COMPLETE) {
        p->pause = PAUSE_NONE;
        int rc = deliver_complete(p, none);
        llhttp_resume(&p->llp);
        return rc < 0 ? rc : H1_OK;
    }
    return fail(p, 400, "connection closed before the body's end");
}

const char *h1_parser_error(const struct h1_parser *p, int *status)
{
    if (status)
        *status = p->err_reason ? p->err_status : 0;
    return p->err_reason;
}

bool h1_parser_idle(const struct h1_parser *p)
{
    return p->st == ST_IDLE && !p->user_paused;
}

bool h1_parser_in_body(const struct h1_parser *p)
{
    return p->st == ST_BODY;
}
