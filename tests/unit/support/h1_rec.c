/* The HTTP/1 codec tests' recorder (see h1_rec.h). */
#include "h1_rec.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put(struct h1_rec *r, const char *s, size_t n)
{
    if (r->len + n >= sizeof(r->trace))
        n = sizeof(r->trace) - 1 - r->len;
    memcpy(r->trace + r->len, s, n);
    r->len += n;
    r->trace[r->len] = '\0';
}

static const char *body_name(const struct h1_head *h, char *b, size_t cap)
{
    switch (h->body) {
    case H1_BODY_NONE:
        return "none";
    case H1_BODY_LENGTH:
        snprintf(b, cap, "len:%" PRIu64, h->content_length);
        return b;
    case H1_BODY_CHUNKED:
        return "chunked";
    case H1_BODY_CLOSE:
        return "close";
    }
    return "?";
}

static int on_head(void *ctx, const struct h1_head *h)
{
    struct h1_rec *r = ctx;
    char d[1024], b[32];
    r->after_error |= r->dead;
    r->heads++;
    r->body_total = 0;
    r->declared = h->body == H1_BODY_LENGTH ? h->content_length : ~0ull;
    if (h->request)
        snprintf(d, sizeof(d), "<%s %s %u.%u %s%s%s%s>", h->method, h->target, h->major, h->minor,
                 body_name(h, b, sizeof(b)), h->keep_alive ? "" : " close",
                 h->upgrade ? " upgrade" : "", h->expect_continue ? " expect" : "");
    else
        snprintf(d, sizeof(d), "<%d %s %u.%u %s%s%s>", h->status, h->reason, h->major, h->minor,
                 body_name(h, b, sizeof(b)), h->keep_alive ? "" : " close",
                 h->upgrade ? " upgrade" : "");
    put(r, d, strlen(d));
    size_t o = 0;
    r->hdrs[0] = '\0';
    for (size_t i = 0; i < h->nheaders && o < sizeof(r->hdrs); i++) {
        /* The lengths say what the NULs say. */
        assert_int_equal(strlen(h->headers[i].name), h->headers[i].name_len);
        assert_int_equal(strlen(h->headers[i].value), h->headers[i].value_len);
        o += (size_t)snprintf(r->hdrs + o, sizeof(r->hdrs) - o, "%s%s=%s", i ? "|" : "",
                              h->headers[i].name, h->headers[i].value);
    }
    if (r->fail_head)
        return -1;
    return r->heads == r->pause_head ? H1_PAUSED : H1_OK;
}

static int on_body(void *ctx, const char *data, size_t len)
{
    struct h1_rec *r = ctx;
    r->after_error |= r->dead;
    assert_true(len > 0);
    r->bodies++;
    r->body_total += len;
    r->over_declared |= r->body_total > r->declared;
    put(r, data, len);
    return r->bodies == r->pause_body ? H1_PAUSED : H1_OK;
}

static int on_complete(void *ctx)
{
    struct h1_rec *r = ctx;
    r->after_error |= r->dead;
    r->completes++;
    put(r, "$", 1);
    if (r->head_after && r->completes == r->head_after)
        h1_parser_next_is_head_response(r->p, true);
    return r->completes == r->pause_complete ? H1_PAUSED : H1_OK;
}

static const struct h1_callbacks rec_cb = {on_head, on_body, on_complete};

struct h1_rec *h1_rec_new(bool request, const struct h1_limits *lim)
{
    struct h1_rec *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    assert_int_equal(h1_parser_new(request, lim, &rec_cb, r, &r->p), 0);
    return r;
}

void h1_rec_free(struct h1_rec *r)
{
    if (!r)
        return;
    h1_parser_free(r->p);
    free(r);
}

int h1_rec_feed(struct h1_rec *r, const char *in, size_t n, size_t step, size_t *used)
{
    size_t off = 0;
    int rc = H1_OK;
    int heads = r->heads, bodies = r->bodies, completes = r->completes;
    bool resumed = false; /* after a resume, feed even an empty rest (h1.h) */
    while (off < n || resumed) {
        resumed = false;
        size_t chunk = step && n - off > step ? step : n - off;
        size_t c = 0;
        rc = h1_parse(r->p, in + off, chunk, &c);
        assert_true(c <= chunk);
        if (rc < 0) {
            r->dead = true;
            break;
        }
        off += c;
        if (rc == H1_PAUSED) {
            bool ours = (r->heads != heads && r->heads == r->pause_head) ||
                        (r->bodies != bodies && r->bodies == r->pause_body) ||
                        (r->completes != completes && r->completes == r->pause_complete);
            if (!ours)
                break; /* an upgrade: the rest is not HTTP */
            heads = r->heads, bodies = r->bodies, completes = r->completes;
            h1_parser_resume(r->p);
            resumed = true;
        } else {
            assert_int_equal(c, chunk);
        }
    }
    if (used)
        *used = off;
    return rc;
}

void h1_rec_expect_all_splits(bool request, const char *in, const char *want, int want_rc,
                              int want_status)
{
    h1_rec_expect_all_splits_n(request, in, strlen(in), want, want_rc, want_status);
}

void h1_rec_expect_all_splits_n(bool request, const char *in, size_t n, const char *want,
                                int want_rc, int want_status)
{
    for (size_t mode = 0; mode <= n + 1; mode++) {
        struct h1_rec *r = h1_rec_new(request, NULL);
        int rc;
        if (mode <= 1) {
            rc = h1_rec_feed(r, in, n, mode, NULL); /* 0: whole, 1: byte by byte */
        } else {
            size_t cut = mode - 1, used = 0;
            rc = h1_rec_feed(r, in, cut, 0, &used);
            if (rc == H1_OK && used == cut && cut < n)
                rc = h1_rec_feed(r, in + cut, n - cut, 0, NULL);
        }
        int status = 0;
        const char *why = h1_parser_error(r->p, &status);
        if (strcmp(r->trace, want) != 0 || rc != want_rc ||
            (want_rc == -EBADMSG && (status != want_status || !why || !*why)))
            fail_msg("cut %zu of \"%s\": trace \"%s\" rc %d status %d (%s), want \"%s\" rc %d "
                     "status %d",
                     mode, in, r->trace, rc, status, why ? why : "-", want, want_rc, want_status);
        assert_false(r->after_error);
        assert_false(r->over_declared);
        h1_rec_free(r);
    }
}
