/* The HTTP/1 codec's own rules (see h1_rules.h and h1.c's top): the byte
 * filter and the head checks that close what llhttp 8 leaves open, and
 * the head helpers of h1.h. */
#include "http/h1_rules.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* RFC 9110 5.6.2 tchar, as a table: every header name of every message
 * goes through it. */
static const bool tchar[256] = {
    ['a' ... 'z'] = true, ['A' ... 'Z'] = true, ['0' ... '9'] = true, ['!'] = true,  ['#'] = true,
    ['$'] = true,         ['%'] = true,         ['&'] = true,         ['\''] = true, ['*'] = true,
    ['+'] = true,         ['-'] = true,         ['.'] = true,         ['^'] = true,  ['_'] = true,
    ['`'] = true,         ['|'] = true,         ['~'] = true,
};

bool h1_is_tchar(unsigned char c)
{
    return tchar[c];
}

bool h1_is_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!tchar[(unsigned char)s[i]])
            return false;
    return true;
}

void h1_scan_start(struct h1_scan *s, bool request)
{
    s->st = H1_SCAN_LINE_START;
    s->request = request;
    s->start_line = true;
    s->line_had_text = false;
    s->col = 0;
    s->run = 0;
}

void h1_scan_after_data(struct h1_scan *s, bool chunk)
{
    /* llhttp 8 skips any two bytes after a chunk's data. When a piece of
     * data ends mid-chunk, the next bytes are data again, never scanned. */
    s->st = chunk ? H1_SCAN_DATA_END : H1_SCAN_LINE_START;
    s->run = 0;
}

/* The byte filter: CRLF only, no controls but HT, no whitespace opening a
 * line. Returns the reason when [s, e) breaks a rule. */
/* One byte of a start line, at column `col`, after state `sc`. llhttp 8
 * takes "GET  /", and a status of "2", "20", "0200" or, after two spaces,
 * 0: meshd takes one SP between request-line parts and three digits. */
static const char *start_line_byte(bool request, uint32_t col, enum h1_scan_state sc,
                                   unsigned char c)
{
    if (request) {
        if (c == '\t' || (c == ' ' && sc == H1_SCAN_SP))
            return "extra whitespace in the request line";
        return NULL;
    }
    if ((col == 8 && c != ' ') || (col >= 9 && col <= 11 && (c < '0' || c > '9')) ||
        (col == 12 && c != ' '))
        return "malformed status line";
    return NULL;
}

/* Bytes that change nothing inside a header line (after its first byte):
 * VCHAR, obs-text, SP and HT. Everything else is looked at one by one. */
static const bool in_line_plain[256] = {
    [' '] = true, ['\t'] = true, [0x21 ... 0x7e] = true, [0x80 ... 0xff] = true};

const char *h1_scan_bytes(struct h1_scan *scan, const char *s, const char *e)
{
    /* The state in locals, written back once: the compiler cannot keep
     * fields of *scan in registers across the byte reads (char aliases). */
    enum h1_scan_state sc = scan->st;
    bool start_line = scan->start_line, had_text = scan->line_had_text;
    const bool request = scan->request;
    uint32_t col = scan->col;
    const char *why = NULL;
    scan->run += (uint64_t)(e - s);
    for (; s < e; s++) {
        /* Inside a header line, a run of plain bytes at once: what the
         * rules below would do to each is only the state (SP or not) and
         * the column, so both are set once, from the run's last byte. */
        if (!start_line && (sc == H1_SCAN_IN_LINE || sc == H1_SCAN_SP)) {
            const char *run = s;
#ifdef __SSE2__
            /* Sixteen bytes a step up to the first below 0x20 or DEL (an
             * HT stops it too: the bytes loop below takes it). */
            while (e - s >= 16) {
                __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
                __m128i low = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
                __m128i del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f));
                int special = _mm_movemask_epi8(_mm_or_si128(low, del));
                if (special) {
                    s += __builtin_ctz((unsigned)special);
                    break;
                }
                s += 16;
            }
#endif
            /* Eight bytes a step while none is below 0x20 or DEL (an HT
             * stops it too: the bytes loop takes it). */
            while (e - s >= 8) {
                uint64_t w;
                memcpy(&w, s, 8);
                uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
                uint64_t del = w ^ (0x7f * ones);
                if (((w - 0x20 * ones) & ~w & high) | ((del - ones) & ~del & high))
                    break;
                s += 8;
            }
            while (s < e && in_line_plain[(unsigned char)*s])
                s++;
            if (s > run) {
                sc = s[-1] == ' ' ? H1_SCAN_SP : H1_SCAN_IN_LINE;
                col += (uint32_t)(s - run);
            }
            if (s == e)
                break;
        }
        unsigned char c = (unsigned char)*s;
        if (sc == H1_SCAN_DATA_END) {
            if (c != '\r') {
                why = "chunk data longer than its size";
                break;
            }
            sc = H1_SCAN_CR;
        } else if (sc == H1_SCAN_CR) {
            if (c != '\n') {
                why = "bare CR";
                break;
            }
            if (had_text)
                start_line = false;
            col = 0;
            sc = H1_SCAN_LINE_START;
        } else if (c == '\r') {
            had_text = sc != H1_SCAN_LINE_START;
            if (start_line && !request && had_text && col < 12) {
                why = "malformed status line";
                break;
            }
            sc = H1_SCAN_CR;
        } else if (c == '\n') {
            why = "bare LF as a line end";
            break;
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            why = "control byte outside a body";
            break;
        } else if ((c == ' ' || c == '\t') && sc == H1_SCAN_LINE_START) {
            why = "whitespace at a line start (obs-fold)";
            break;
        } else if (start_line && (why = start_line_byte(request, col, sc, c)) != NULL) {
            break;
        } else {
            sc = c == ' ' ? H1_SCAN_SP : H1_SCAN_IN_LINE;
            col++;
        }
    }
    scan->st = sc;
    scan->start_line = start_line;
    scan->line_had_text = had_text;
    scan->col = col;
    return why;
}

static bool name_is(const struct http_field *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && strncasecmp(f->name, name, n) == 0;
}

/* "Transfer_Encoding" is no framing header to llhttp, but servers that
 * map '_' to '-' (CGI-style) read it as one: a framing lookalike. */
static bool framing_lookalike(const struct http_field *f)
{
    static const char *const names[] = {"content-length", "transfer-encoding"};
    /* By length first: this is asked for every header of every message. */
    if ((f->name_len != 14 && f->name_len != 17) || !memchr(f->name, '_', f->name_len))
        return false;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i]) != f->name_len)
            continue;
        size_t j = 0;
        while (j < f->name_len &&
               (f->name[j] == '_' ? '-' : (char)(f->name[j] | 0x20)) == names[i][j])
            j++;
        if (j == f->name_len)
            return true;
    }
    return false;
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0 || n > 19) /* 19 digits always fit in uint64_t */
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Walks one Transfer-Encoding value; the list's elements, OWS-trimmed. */
static const char *te_value(const char *v, int *chunked, bool *chunked_last)
{
    const char *s = v;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        const char *e = s;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if (t == s)
            return "empty Transfer-Encoding element";
        if ((size_t)(t - s) == 7 && strncasecmp(s, "chunked", 7) == 0) {
            if (++*chunked > 1)
                return "chunked given twice";
            *chunked_last = true;
        } else {
            *chunked_last = false;
        }
        if (!*e)
            return NULL;
        s = e + 1;
    }
}

const char *h1_check_head(const struct h1_head *h, const struct h1_framing *l)
{
    int ncl = 0, nte = 0, nhost = 0, chunked = 0;
    bool chunked_last = false;
    uint64_t cl = 0;
    if (h->major != 1 || h->minor > 1)
        return "HTTP version not 1.0 or 1.1";
    if (!h->request && (h->status < 100 || h->status > 999))
        return "status not three digits";
    for (size_t i = 0; i < h->nheaders; i++) {
        const struct http_field *f = &h->headers[i];
        if (f->name_len == 0) /* llhttp 8 takes ": v" as a field with no name */
            return "empty header name";
        if (!h1_is_token(f->name, f->name_len)) /* llhttp 8 takes "X A: v" */
            return "header name not a token";
        if (framing_lookalike(f))
            return "framing header spelled with '_'";
        if (name_is(f, "content-length")) {
            if (++ncl > 1)
                return "duplicate Content-Length";
            if (!all_digits(f->value, f->value_len))
                return "invalid Content-Length";
            cl = strtoull(f->value, NULL, 10);
        } else if (name_is(f, "transfer-encoding")) {
            nte++;
            const char *why = te_value(f->value, &chunked, &chunked_last);
            if (why)
                return why;
        } else if (name_is(f, "host")) {
            nhost++;
        }
    }
    if (ncl && nte)
        return "Transfer-Encoding with Content-Length";
    if (nte && chunked && !chunked_last)
        return "chunked is not the last Transfer-Encoding";
    if (h->request) {
        /* A fragment is never sent (RFC 9112 3.2); a path matcher and the
         * app could cut "/a#/b" differently. Envoy refuses it too. */
        if (strchr(h->target, '#'))
            return "fragment in the request target";
        if (nte && !chunked_last)
            return "Transfer-Encoding of a request not ending in chunked";
        if (nte && h->minor == 0)
            return "Transfer-Encoding in an HTTP/1.0 request";
        if (nhost > 1)
            return "duplicate Host";
        if (nhost == 0 && h->minor == 1)
            return "HTTP/1.1 request without Host";
        if (l->connect && (ncl || nte))
            return "CONNECT with a body";
    }
    /* Our reading and llhttp's must be one. */
    if (l->chunked != (nte && chunked_last) || l->length != (ncl == 1) ||
        (ncl && cl != l->content_length))
        return "framing headers read two ways";
    return NULL;
}

const char *h1_head_get(const struct h1_head *h, const char *name)
{
    return http_field_get(h->headers, h->nheaders, name);
}

bool h1_head_connection_lists(const struct h1_head *h, const char *name, size_t len)
{
    for (size_t i = 0; i < h->nheaders; i++) {
        const struct http_field *f = &h->headers[i];
        if (!name_is(f, "connection"))
            continue;
        /* A comma-separated list of tokens, OWS around each. */
        const char *s = f->value;
        while (*s) {
            while (*s == ' ' || *s == '\t' || *s == ',')
                s++;
            const char *e = s;
            while (*e && *e != ',' && *e != ' ' && *e != '\t')
                e++;
            if ((size_t)(e - s) == len && len && strncasecmp(s, name, len) == 0)
                return true;
            s = e;
        }
    }
    return false;
}
