/* libFuzzer driver: the HTTP/1 codec (agent/http/h1.c). The input, after
 * its first byte, is fed to a request parser and to a response parser in
 * two pieces cut where the first byte says (its bits also choose pauses
 * after heads and body pieces, small limits, a response to HEAD),
 * resuming every pause. It
 * checks the codec's promises: consumed never past the input, body bytes
 * of a Content-Length message never past the length, fields NUL-terminated
 * at their lengths, no callback after a refusal, a refusal always with a
 * reason and a 400/431 status; and that a head it accepted, formatted
 * again by h1_format_head, is written and parses again. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1.h"

struct fz {
    struct h1_parser *p;
    bool dead, pause_heads, pause_bodies, round_trip, request;
    uint64_t declared, body;
    int paused_at;
};

static void must(bool ok)
{
    if (!ok)
        abort();
}

static int ok_cb(void *ctx, const struct h1_head *h)
{
    (void)ctx, (void)h;
    return H1_OK;
}
static const struct h1_callbacks plain_cb = {.on_head = ok_cb};

/* The accepted head, written again and parsed again. */
static void round_trip(const struct h1_head *h)
{
    struct h1_out_head o = {.method = h->method,
                            .target = h->target,
                            .status = h->status,
                            .reason = h->reason,
                            .headers = h->headers,
                            .nheaders = h->nheaders,
                            .body = h->body,
                            .content_length = h->content_length,
                            .keep_alive = h->keep_alive};
    static char buf[70 * 1024];
    size_t n = h1_format_head(&o, buf, sizeof(buf));
    must(n > 0 || (h->request && h->body == H1_BODY_CLOSE));
    if (n == 0 || n >= sizeof(buf))
        return;
    struct h1_parser *p;
    size_t c;
    struct h1_limits lim = {.max_head_bytes = sizeof(buf)};
    must(h1_parser_new(h->request, &lim, &plain_cb, NULL, &p) == 0);
    int rc = h1_parse(p, buf, n, &c);
    const char *why = h1_parser_error(p, NULL);
    /* HTTP/1.0 without Host becomes HTTP/1.1 without Host. */
    must(rc >= 0 || (why && strcmp(why, "HTTP/1.1 request without Host") == 0));
    h1_parser_free(p);
}

static int on_head(void *ctx, const struct h1_head *h)
{
    struct fz *f = ctx;
    must(!f->dead);
    for (size_t i = 0; i < h->nheaders; i++) {
        must(strlen(h->headers[i].name) == h->headers[i].name_len);
        must(strlen(h->headers[i].value) == h->headers[i].value_len);
        must(h->headers[i].name_len > 0);
    }
    must(h->reason != NULL);
    must(h->major == 1 && h->minor <= 1);
    f->body = 0;
    f->declared = h->body == H1_BODY_LENGTH ? h->content_length : UINT64_MAX;
    if (h->body == H1_BODY_NONE)
        f->declared = 0;
    if (f->round_trip && !h->upgrade)
        round_trip(h);
    return f->pause_heads ? H1_PAUSED : H1_OK;
}

static int on_body(void *ctx, const char *d, size_t n)
{
    struct fz *f = ctx;
    (void)d;
    must(!f->dead && n > 0);
    f->body += n;
    must(f->body <= f->declared);
    return f->pause_bodies ? H1_PAUSED : H1_OK;
}

static int on_complete(void *ctx)
{
    struct fz *f = ctx;
    must(!f->dead);
    must(f->declared == UINT64_MAX || f->body == f->declared);
    return H1_OK;
}

static const struct h1_callbacks fz_cb = {on_head, on_body, on_complete};

static void feed(struct fz *f, const char *d, size_t n)
{
    size_t off = 0;
    bool resumed = false; /* after a resume, feed even an empty rest (h1.h) */
    for (int guard = 0; (off < n || resumed) && guard < 100000; guard++) {
        resumed = false;
        size_t c = 0;
        int rc = h1_parse(f->p, d + off, n - off, &c);
        must(c <= n - off);
        if (rc < 0) {
            int status = 0;
            const char *why = h1_parser_error(f->p, &status);
            must(rc == -EBADMSG && why && *why);
            must(status == 400 || status == 431 || status == 503);
            must(c == 0);
            f->dead = true;
            return;
        }
        off += c;
        if (rc == H1_PAUSED) {
            if (!f->pause_heads && !f->pause_bodies && c == 0)
                return; /* upgraded */
            h1_parser_resume(f->p);
            resumed = true;
        }
    }
}

static void run(bool request, uint8_t ctl, const char *d, size_t n)
{
    struct fz f = {.pause_heads = ctl & 1,
                   .round_trip = ctl & 2,
                   .pause_bodies = ctl & 32,
                   .request = request};
    struct h1_limits lim = {.max_head_bytes = (ctl & 4) ? 512 : 0,
                            .max_headers = (ctl & 8) ? 8 : 0};
    must(h1_parser_new(request, &lim, &fz_cb, &f, &f.p) == 0);
    if (!request && (ctl & 16))
        h1_parser_next_is_head_response(f.p, true);
    size_t cut = n ? (size_t)ctl * n / 255 : 0;
    feed(&f, d, cut);
    if (!f.dead)
        feed(&f, d + cut, n - cut);
    if (!f.dead) {
        int rc = h1_parse_eof(f.p);
        must(rc == H1_OK || rc == -EBADMSG);
        f.dead = true;
    }
    h1_parser_free(f.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 256 * 1024)
        return 0;
    run(true, data[0], (const char *)data + 1, size - 1);
    run(false, data[0], (const char *)data + 1, size - 1);
    return 0;
}
