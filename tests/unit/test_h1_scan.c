/* The HTTP/1 byte filter (agent/http/h1_rules.c, h1_scan_bytes) against
 * a byte-at-a-time reference: its run-skipping fast path inside header
 * lines must refuse exactly what the per-byte rules refuse, with the same
 * reason, and leave the same state, however the bytes are split across
 * calls. The reference is the filter as it was before the fast path.
 * And the tchar table against RFC 9110's definition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "http/h1_rules.h"

static const char *ref_start_line_byte(const struct h1_scan *scan, enum h1_scan_state sc,
                                       unsigned char c)
{
    if (scan->request) {
        if (c == '\t' || (c == ' ' && sc == H1_SCAN_SP))
            return "extra whitespace in the request line";
        return NULL;
    }
    uint32_t col = scan->col;
    if ((col == 8 && c != ' ') || (col >= 9 && col <= 11 && (c < '0' || c > '9')) ||
        (col == 12 && c != ' '))
        return "malformed status line";
    return NULL;
}

static const char *ref_scan_bytes(struct h1_scan *scan, const char *s, const char *e)
{
    enum h1_scan_state sc = scan->st;
    const char *why = NULL;
    scan->run += (uint64_t)(e - s);
    for (; s < e; s++) {
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
            if (scan->line_had_text)
                scan->start_line = false;
            scan->col = 0;
            sc = H1_SCAN_LINE_START;
        } else if (c == '\r') {
            scan->line_had_text = sc != H1_SCAN_LINE_START;
            if (scan->start_line && !scan->request && scan->line_had_text && scan->col < 12) {
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
        } else if (scan->start_line && (why = ref_start_line_byte(scan, sc, c)) != NULL) {
            break;
        } else {
            sc = c == ' ' ? H1_SCAN_SP : H1_SCAN_IN_LINE;
            scan->col++;
        }
    }
    scan->st = sc;
    return why;
}

struct outcome {
    const char *why;
    const char *at; /* the byte the reason was found at (NULL: none) */
    struct h1_scan st;
};

/* Scans msg[0..n) in pieces of `step` bytes (0: one call), stopping at the
 * first refusal, with the fast filter or the reference. */
static struct outcome scan(const char *msg, size_t n, bool request, size_t step, bool ref)
{
    struct outcome o = {0};
    h1_scan_start(&o.st, request);
    for (size_t off = 0; off < n;) {
        size_t k = step && n - off > step ? step : n - off;
        o.why = ref ? ref_scan_bytes(&o.st, msg + off, msg + off + k)
                    : h1_scan_bytes(&o.st, msg + off, msg + off + k);
        if (o.why) {
            o.at = msg + off;
            break;
        }
        off += k;
    }
    return o;
}

static void same(const struct outcome *a, const struct outcome *b, const char *msg, size_t n)
{
    if ((a->why == NULL) != (b->why == NULL) || (a->why && strcmp(a->why, b->why) != 0))
        fail_msg("verdicts differ (%s / %s) on %zu bytes: %.*s", a->why ? a->why : "ok",
                 b->why ? b->why : "ok", n, (int)n, msg);
    if (!a->why) { /* the state a next call starts from */
        assert_int_equal(a->st.st, b->st.st);
        assert_int_equal(a->st.start_line, b->st.start_line);
        assert_int_equal(a->st.line_had_text, b->st.line_had_text);
        assert_int_equal(a->st.col, b->st.col);
        assert_int_equal(a->st.run, b->st.run);
    }
}

/* Written messages, each at every split: valid heads and one refusal of
 * each rule, in header lines (where the fast path runs) and start lines. */
static void written_messages_match_the_reference(void **state)
{
    (void)state;
    static const struct {
        const char *msg;
        bool request;
        const char *why; /* NULL: accepted */
    } rows[] = {
        {"GET /a?b=c HTTP/1.1\r\nHost: x\r\nUser-Agent: wrk 4.2\t(x)\r\n\r\n", true, NULL},
        {"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 3\r\n\r\n", false, NULL},
        {"GET / HTTP/1.1\r\nX: a\x01"
         "b\r\n\r\n",
         true, "control byte outside a body"},
        {"GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", true, "control byte outside a body"},
        {"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", true, "bare CR"},
        {"GET / HTTP/1.1\r\nX: ab\nY: c\r\n\r\n", true, "bare LF as a line end"},
        {"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", true, "whitespace at a line start (obs-fold)"},
        {"GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", true, "whitespace at a line start (obs-fold)"},
        {"GET  / HTTP/1.1\r\n\r\n", true, "extra whitespace in the request line"},
        {"HTTP/1.1 20 OK\r\n\r\n", false, "malformed status line"},
        {"HTTP/1.1 200\r\nX: caf\xc3\xa9 \r\n\r\n", false, NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        size_t n = strlen(rows[i].msg);
        for (size_t step = 0; step <= n; step++) {
            struct outcome a = scan(rows[i].msg, n, rows[i].request, step, false);
            struct outcome b = scan(rows[i].msg, n, rows[i].request, step, true);
            same(&a, &b, rows[i].msg, n);
            if (rows[i].why)
                assert_string_equal(a.why ? a.why : "ok", rows[i].why);
            else
                assert_null(a.why);
        }
    }
}

/* Generated heads: a valid start line, then lines drawn from an alphabet
 * heavy in what the rules look at; whole, in 1-, 3- and 7-byte pieces. */
static void generated_heads_match_the_reference(void **state)
{
    (void)state;
    static const char alphabet[] = {'a',  'Z',  ':',        ' ',        ' ',  '\t',
                                    '\r', '\n', '\r',       '\n',       0x01, 0x1f,
                                    0x7e, 0x7f, (char)0x80, (char)0xff, '0',  '/'};
    uint64_t x = 88172645463325252ull;
    for (int iter = 0; iter < 20000; iter++) {
        bool request = iter % 2 == 0;
        char msg[96];
        const char *start = request ? "GET / HTTP/1.1\r\n" : "HTTP/1.1 200 OK\r\n";
        size_t n = strlen(start);
        memcpy(msg, start, n);
        size_t len = n + (size_t)(iter % 60);
        while (n < len) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            /* every other head mostly letters: runs long enough for the
             * eight-byte steps, broken by a rare special byte */
            bool sparse = iter % 4 >= 2 && x % 16 != 0;
            msg[n++] = sparse ? (char)('a' + (x >> 8) % 26) : alphabet[x % sizeof(alphabet)];
        }
        static const size_t steps[] = {0, 1, 3, 7};
        for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
            struct outcome a = scan(msg, n, request, steps[k], false);
            struct outcome b = scan(msg, n, request, steps[k], true);
            same(&a, &b, msg, n);
        }
    }
}

/* The tchar table is RFC 9110 5.6.2's set, for every byte value. */
static void tchar_is_the_rfc_set(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        bool rfc = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
        if (h1_is_tchar((unsigned char)c) != rfc)
            fail_msg("byte 0x%02x", c);
        char one = (char)c;
        assert_int_equal(h1_is_token(&one, 1), rfc);
    }
    assert_false(h1_is_token("", 0));
    assert_true(h1_is_token("X-Request-Id", 12));
    assert_false(h1_is_token("X Request", 9));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(written_messages_match_the_reference),
        cmocka_unit_test(generated_heads_match_the_reference),
        cmocka_unit_test(tchar_is_the_rfc_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
