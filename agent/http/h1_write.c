/* HTTP/1.1 writing (see h1.h): heads from a struct h1_out_head, chunk
 * framing, reason phrases and the hop-by-hop list. What meshd sends is
 * framed from `body` alone: framing and hop-by-hop headers the caller
 * passes are skipped, never copied, and a head whose strings could
 * inject a line (CR, LF, NUL or another control byte in a value, a name
 * that is not a token) is not written at all. */
#include "http/h1.h"
#include "http/h1_rules.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/str.h"

const char h1_chunk_tail[] = "\r\n";
const char h1_last_chunk[] = "0\r\n\r\n";

/* Visible characters, SP and HT (and obs-text); no CR, LF, NUL, DEL: by
 * table, as every header value of every head goes through it. */
static const bool text_byte[256] = {
    ['\t'] = true, [' '] = true, [0x21 ... 0x7e] = true, [0x80 ... 0xff] = true};

static bool is_text_bytes(const char *s, size_t n, bool space_ok)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!text_byte[c] || (!space_ok && (c == ' ' || c == '\t')))
            return false;
    }
    return true;
}

/* Eight bytes a step: a word with no byte below 0x20 (0x21 without
 * spaces) and none 0x7f is all text; any other word is looked at byte by
 * byte (HT is text, and so is obs-text). Every value of every head meshd
 * sends goes through here, as it was written: the per-byte table was a
 * third of h1_format_head. */
static bool is_text(const char *s, size_t n, bool space_ok)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    const uint64_t below = (space_ok ? 0x20 : 0x21) * ones, del = 0x7f * ones;
    if (n < 8)
        return is_text_bytes(s, n, space_ok);
    for (size_t i = 0;; i += 8) {
        if (i + 8 > n)
            i = n - 8; /* the last word overlaps the one before: no byte-wise tail */
        uint64_t w;
        memcpy(&w, s + i, 8);
        /* Bytes below `below` (a byte >= 0x80 is never flagged), or 0x7f. */
        uint64_t low = (w - below) & ~w & highs, x = w ^ del, is_del = (x - ones) & ~x & highs;
        if ((low | is_del) && !is_text_bytes(s + i, 8, space_ok))
            return false;
        if (i + 8 == n)
            return true;
    }
}

bool h1_header_is_hop(const char *name, size_t len)
{
    /* By length first: asked for every header, twice per head. */
    const char *hop;
    switch (len) {
    case 2:
        hop = "te";
        break;
    case 7: /* trailer, upgrade */
        hop = (name[0] | 0x20) == 't' ? "trailer" : "upgrade";
        break;
    case 10: /* connection, keep-alive */
        hop = (name[0] | 0x20) == 'c' ? "connection" : "keep-alive";
        break;
    case 14:
        hop = "content-length";
        break;
    case 16:
        hop = "proxy-connection";
        break;
    case 17:
        hop = "transfer-encoding";
        break;
    default:
        return false;
    }
    return strncasecmp(hop, name, len) == 0;
}

const char *h1_reason(int status)
{
    static const struct {
        int status;
        const char *reason;
    } reasons[] = {
        {100, "Continue"},
        {101, "Switching Protocols"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {203, "Non-Authoritative Information"},
        {204, "No Content"},
        {205, "Reset Content"},
        {206, "Partial Content"},
        {300, "Multiple Choices"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {406, "Not Acceptable"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {411, "Length Required"},
        {412, "Precondition Failed"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {417, "Expectation Failed"},
        {421, "Misdirected Request"},
        {422, "Unprocessable Content"},
        {425, "Too Early"},
        {426, "Upgrade Required"},
        {428, "Precondition Required"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
    };
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "";
}

/* Appends to buf while it fits, counting the length needed in any case. */
struct out {
    char *buf;
    size_t cap, len;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len + n < o->cap)
        memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void puts0(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static bool head_is_valid(const struct h1_out_head *h)
{
    if (h->method) {
        if (!h1_is_token(h->method, strlen(h->method)) || !h->target || !*h->target ||
            !is_text(h->target, strlen(h->target), false))
            return false;
        if (h->body == H1_BODY_CLOSE) /* a request's body cannot end at a close */
            return false;
    } else {
        if (h->status < 100 || h->status > 999)
            return false;
        if (h->reason && !is_text(h->reason, strlen(h->reason), true))
            return false;
    }
    if (h->upgrade_proto) {
        for (const char *c = h->upgrade_proto; *c; c++)
            if (!h1_is_tchar((unsigned char)*c) && *c != '/')
                return false;
        if (!*h->upgrade_proto)
            return false;
    }
    for (size_t i = 0; i < h->nheaders; i++) {
        const struct http_field *f = &h->headers[i];
        if (!h1_is_token(f->name, f->name_len) || !is_text(f->value, f->value_len, true))
            return false;
    }
    return true;
}

size_t h1_format_head(const struct h1_out_head *h, char *buf, size_t cap)
{
    struct out o = {.buf = buf, .cap = cap};
    char num[24]; /* a Content-Length's digits */
    if (!head_is_valid(h))
        return 0;
    if (h->method) {
        puts0(&o, h->method);
        put(&o, " ", 1);
        puts0(&o, h->target);
        put(&o, " HTTP/1.1\r\n", 11);
    } else {
        unsigned st = (unsigned)h->status; /* 100..999: checked above */
        char line[] = {'H',
                       'T',
                       'T',
                       'P',
                       '/',
                       '1',
                       '.',
                       '1',
                       ' ',
                       (char)('0' + st / 100),
                       (char)('0' + st / 10 % 10),
                       (char)('0' + st % 10),
                       ' '};
        put(&o, line, sizeof(line));
        puts0(&o, h->reason ? h->reason : h1_reason(h->status));
        put(&o, "\r\n", 2);
    }
    for (size_t i = 0; i < h->nheaders; i++) {
        const struct http_field *f = &h->headers[i];
        if (h1_header_is_hop(f->name, f->name_len))
            continue;
        put(&o, f->name, f->name_len);
        put(&o, ": ", 2);
        put(&o, f->value, f->value_len);
        put(&o, "\r\n", 2);
    }
    if (h->body == H1_BODY_LENGTH) {
        put(&o, "Content-Length: ", 16);
        put(&o, num, str_u64(num, h->content_length));
        put(&o, "\r\n", 2);
    } else if (h->body == H1_BODY_CHUNKED) {
        puts0(&o, "Transfer-Encoding: chunked\r\n");
    }
    if (h->upgrade_proto) {
        puts0(&o, "Connection: upgrade\r\nUpgrade: ");
        puts0(&o, h->upgrade_proto);
        put(&o, "\r\n", 2);
    } else if (!h->keep_alive || h->body == H1_BODY_CLOSE) {
        puts0(&o, "Connection: close\r\n");
    }
    put(&o, "\r\n", 2);
    if (o.len < cap)
        buf[o.len] = '\0';
    return o.len;
}

size_t h1_format_chunk_head(size_t len, char *buf)
{
    int n = snprintf(buf, H1_CHUNK_HEAD_MAX, "%zx\r\n", len);
    return n > 0 ? (size_t)n : 0;
}
