/* Request smuggling and the head limits (issue 15): each row is a message
 * two parsers could frame differently, or a head past the limits; each is
 * refused with -EBADMSG, the status meshd answers (400, 431) and a reason,
 * and nothing of the bad message reaches a callback: not its head, not a
 * byte of its body. Every row is fed whole, byte by byte and cut at every
 * position. A good request before a bad one in the same bytes is still
 * delivered whole, and only it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1.h"
#include "support/h1_rec.h"

#define RQ         "GET / HTTP/1.1\r\nHost: x\r\n"
#define POST       "POST / HTTP/1.1\r\nHost: x\r\n"
#define GOOD       "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"
#define GOOD_TRACE "<GET /ok 1.1 none>$"

struct smuggle_row {
    const char *name, *in;
    int status;
};

static void expect_refused_n(bool request, const char *in, size_t n, int status)
{
    h1_rec_expect_all_splits_n(request, in, n, "", -EBADMSG, status);
    /* After a good request on the same connection: that one whole. */
    if (request) {
        char both[8192];
        assert_true(n + sizeof(GOOD) <= sizeof(both));
        memcpy(both, GOOD, sizeof(GOOD) - 1);
        memcpy(both + sizeof(GOOD) - 1, in, n);
        h1_rec_expect_all_splits_n(true, both, sizeof(GOOD) - 1 + n, GOOD_TRACE, -EBADMSG, status);
    }
}

static void expect_refused(bool request, const struct smuggle_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        print_message("%s\n", rows[i].name);
        expect_refused_n(request, rows[i].in, strlen(rows[i].in), rows[i].status);
    }
}

static void framing_conflicts_are_refused(void **state)
{
    static const struct smuggle_row rows[] = {
        {"two different Content-Length",
         POST "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
        /* RFC 9110 8.6 lets a recipient take equal ones; llhttp and Envoy
         * refuse them, and a proxy gains nothing by guessing. */
        {"two equal Content-Length", POST "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
         400},
        {"a Content-Length list", POST "Content-Length: 5, 5\r\n\r\nhello", 400},
        {"Content-Length then Transfer-Encoding",
         POST "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {"Transfer-Encoding then Content-Length",
         POST "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 400},
        {"Transfer-Encoding not ending in chunked", POST "Transfer-Encoding: gzip\r\n\r\nabc", 400},
        {"chunked then gzip", POST "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400},
        {"chunked twice in one header", POST "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
         400},
        {"chunked in two headers",
         POST "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {"chunked with a parameter", POST "Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", 400},
        {"an empty Transfer-Encoding element", POST "Transfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n",
         400},
        {"Transfer-Encoding in HTTP/1.0",
         "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {"a CONNECT with a body",
         "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nContent-Length: 2\r\n\r\nab", 400},
        {"Content-Length overflow", POST "Content-Length: 99999999999999999999\r\n\r\n", 400},
        {"negative Content-Length", POST "Content-Length: -1\r\n\r\n", 400},
        {"signed Content-Length", POST "Content-Length: +5\r\n\r\nhello", 400},
        {"hex Content-Length", POST "Content-Length: 0x5\r\n\r\nhello", 400},
        {"two numbers in Content-Length", POST "Content-Length: 5 5\r\n\r\nhello", 400},
        {"empty Content-Length", POST "Content-Length:\r\n\r\n", 400},
        {"Transfer_Encoding with Content-Length",
         POST "Content-Length: 5\r\nTransfer_Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {"Content_Length", POST "content_LENGTH: 5\r\n\r\nhello", 400},
        {"no Host in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", 400},
        {"two Host headers", RQ "Host: y\r\n\r\n", 400},
    };
    expect_refused(true, rows, sizeof(rows) / sizeof(rows[0]));
}

static void line_and_byte_tricks_are_refused(void **state)
{
    static const struct smuggle_row rows[] = {
        {"obs-fold", RQ "X-A: a\r\n b\r\n\r\n", 400},
        {"obs-fold with a tab", RQ "X-A: a\r\n\tb\r\n\r\n", 400},
        {"obs-fold of Content-Length", POST "Content-Length: 1\r\n 0\r\n\r\n0123456789", 400},
        {"whitespace before the first header", "GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400},
        {"bare CR in a value", RQ "X-A: a\rb\r\n\r\n", 400},
        {"bare CR ending a line", RQ "X-A: a\r\r\n\r\n", 400},
        {"bare CR in the request line", "GET /\r HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"bare LF line ends", "GET / HTTP/1.1\nHost: x\n\n", 400},
        {"bare LF ending a header", RQ "X-A: a\n\r\n", 400},
        {"bare LF ending the head", RQ "\n", 400},
        {"bare LF before a request", "\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"control byte in a value", RQ "X-A: a\x01b\r\n\r\n", 400},
        {"DEL in a value", RQ "X-A: a\x7f\r\n\r\n", 400},
        {"escape in a value", RQ "X-A: \x1b[31m\r\n\r\n", 400},
        {"space before the colon", RQ "Content-Length : 5\r\n\r\nhello", 400},
        {"tab before the colon", RQ "X-A\t: a\r\n\r\n", 400},
        {"space before the colon of any header", RQ "X-A : a\r\n\r\n", 400},
        {"space inside a name", RQ "X A: a\r\n\r\n", 400},
        {"invalid name character", RQ "X(A): a\r\n\r\n", 400},
        {"@ in a name", RQ "X@A: a\r\n\r\n", 400},
        {"space inside a name", RQ "X A: a\r\n\r\n", 400},
        {"space inside Transfer-Encoding", POST "Transfer Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {"empty header name", RQ ": a\r\n\r\n", 400},
        {"header line without a colon", RQ "X-A a\r\n\r\n", 400},
        {"HTTP/0.9 request", "GET /\r\n\r\n", 400},
        {"HTTP/2.0 in a request line", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 400},
        {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", 400},
        {"lowercase http", "GET / http/1.1\r\nHost: x\r\n\r\n", 400},
        {"invalid method token", "G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"lowercase method", "get / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"space in the target", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"control byte in the target", "GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400},
        {"fragment in the target", "GET /public#/../admin HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"tab between the parts", "GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"space at the request line's end", "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400},
        {"two spaces after the method", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    };
    expect_refused(true, rows, sizeof(rows) / sizeof(rows[0]));
}

static void nul_bytes_are_refused(void **state)
{
    static const char value[] = RQ "X-A: a\0b\r\n\r\n", name[] = RQ "X\0A: b\r\n\r\n",
                      target[] = "GET /\0 HTTP/1.1\r\nHost: x\r\n\r\n";
    expect_refused_n(true, value, sizeof(value) - 1, 400);
    expect_refused_n(true, name, sizeof(name) - 1, 400);
    expect_refused_n(true, target, sizeof(target) - 1, 400);
}

#define CHUNKED POST "Transfer-Encoding: chunked\r\n\r\n"

static void chunk_framing_tricks_are_refused(void **state)
{
    static const struct smuggle_row rows[] = {
        {"invalid chunk size", CHUNKED "zz\r\nhello\r\n0\r\n\r\n", 400},
        {"chunk size overflow", CHUNKED "ffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400},
        {"negative chunk size", CHUNKED "-5\r\nhello\r\n0\r\n\r\n", 400},
        {"0x chunk size", CHUNKED "0x5\r\nhello\r\n0\r\n\r\n", 400},
        {"empty chunk size", CHUNKED "\r\nhello\r\n0\r\n\r\n", 400},
        {"chunk size with a bare LF", CHUNKED "5\nhello\r\n0\r\n\r\n", 400},
        {"last chunk with a bare LF", CHUNKED "0\n\r\n", 400},
        {"trailer ending in a bare LF", CHUNKED "0\r\nX-T: a\n\r\n", 400},
        {"control byte in a chunk extension", CHUNKED "0;a=\x01\r\n\r\n", 400},
    };
    /* The head is good and delivered; the body's framing is refused before
     * any of the chunk's bytes (the trace holds the head only). */
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("%s\n", rows[i].name);
        h1_rec_expect_all_splits(true, rows[i].in, "<POST / 1.1 chunked>", -EBADMSG,
                                 rows[i].status);
    }
    /* llhttp 8 skips any two bytes after a chunk's data: the data is
     * delivered, then the message refused before its end (a proxy aborts
     * what it forwarded: the upstream never sees the message complete). */
    h1_rec_expect_all_splits(true, CHUNKED "5\r\nhelloXX0\r\n\r\n", "<POST / 1.1 chunked>hello",
                             -EBADMSG, 400);
    h1_rec_expect_all_splits(true, CHUNKED "5\r\nhello\n0\r\n\r\n", "<POST / 1.1 chunked>hello",
                             -EBADMSG, 400);
}

static void responses_framed_two_ways_are_refused(void **state)
{
    static const struct smuggle_row rows[] = {
        {"two Content-Length",
         "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
        {"Content-Length with Transfer-Encoding",
         "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         400},
        {"chunked then gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
        {"chunked twice",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
         "chunked\r\n\r\n0\r\n\r\n",
         400},
        {"obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", 400},
        {"space inside a name", "HTTP/1.1 200 OK\r\nContent Length: 5\r\nContent-Length: 0\r\n\r\n",
         400},
        {"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", 400},
        {"HTTP/2.0 status line", "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", 400},
        {"status out of range", "HTTP/1.1 1000 OK\r\nContent-Length: 0\r\n\r\n", 400},
        /* llhttp 8 takes all of these; a status decides whether a body follows */
        {"one-digit status", "HTTP/1.1 2\r\nContent-Length: 0\r\n\r\n", 400},
        {"two-digit status", "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", 400},
        {"four-digit status", "HTTP/1.1 0204 OK\r\nContent-Length: 0\r\n\r\n", 400},
        {"two spaces before the status", "HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n", 400},
        {"no status", "HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400},
        {"tab before the status", "HTTP/1.1\t200 OK\r\nContent-Length: 0\r\n\r\n", 400},
        {"control byte in the reason", "HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n", 400},
    };
    expect_refused(false, rows, sizeof(rows) / sizeof(rows[0]));
}

/* --- limits ---------------------------------------------------------------- */

static int feed_limited(const struct h1_limits *lim, const char *in, size_t n, size_t step,
                        int *status, int *heads)
{
    struct h1_rec *r = h1_rec_new(true, lim);
    int rc = h1_rec_feed(r, in, n, step, NULL);
    h1_parser_error(r->p, status);
    *heads = r->heads;
    h1_rec_free(r);
    return rc;
}

/* A head of exactly `size` bytes: request line, Host, one padding header. */
static char *head_of(size_t size, const char *target_pad, size_t nextra)
{
    char *b = malloc(size + 1);
    assert_non_null(b);
    int o = snprintf(b, size + 1, "GET /%s HTTP/1.1\r\nHost: x\r\n", target_pad);
    for (size_t i = 0; i < nextra; i++)
        o += snprintf(b + o, size + 1 - (size_t)o, "H%zu: v\r\n", i);
    size_t pad = size - (size_t)o - strlen("X: \r\n\r\n");
    o += snprintf(b + o, size + 1 - (size_t)o, "X: ");
    memset(b + o, 'a', pad);
    o += (int)pad;
    memcpy(b + o, "\r\n\r\n", 5);
    assert_int_equal(strlen(b), size);
    return b;
}

static void heads_past_the_limits_get_431(void **state)
{
    static const struct {
        const char *name;
        uint32_t max_head, max_headers;
        size_t size, nextra;
        bool long_target;
        int status;
    } rows[] = {
        {"default limit, exactly 60 KiB", 0, 0, 60 * 1024, 0, false, 0},
        {"default limit, one byte more", 0, 0, 60 * 1024 + 1, 0, false, 431},
        {"a 60 KiB request line", 0, 0, 60 * 1024 + 1, 0, true, 431},
        {"small limit, at it", 256, 0, 256, 0, false, 0},
        {"small limit, past it", 256, 0, 257, 0, false, 431},
        {"default header count, 100", 0, 0, 4096, 98, false, 0},
        {"default header count, 101", 0, 0, 4096, 99, false, 431},
        {"header count 4, at it", 0, 4, 512, 2, false, 0},
        {"header count 4, past it", 0, 4, 512, 3, false, 431},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct h1_limits lim = {rows[i].max_head, rows[i].max_headers};
        char *pad = calloc(1, rows[i].size);
        assert_non_null(pad);
        if (rows[i].long_target)
            memset(pad, 'p', rows[i].size - 64);
        char *in = head_of(rows[i].size, pad, rows[i].nextra);
        for (size_t step = 0; step <= 1; step++) {
            int status = -1, heads = -1;
            int rc = feed_limited(&lim, in, strlen(in), step ? 7 : 0, &status, &heads);
            print_message("%s, %s\n", rows[i].name, step ? "7-byte pieces" : "whole");
            assert_int_equal(rc, rows[i].status ? -EBADMSG : H1_OK);
            assert_int_equal(status, rows[i].status);
            assert_int_equal(heads, rows[i].status ? 0 : 1);
        }
        free(in);
        free(pad);
    }
}

/* Bytes llhttp reads without a callback (whitespace before a value) still
 * count: a head never grows past the limit unnoticed. */
static void whitespace_counts_toward_the_limit(void **state)
{
    size_t n = 70 * 1024;
    char *in = malloc(n + 64);
    assert_non_null(in);
    int o = snprintf(in, 64, RQ "X:");
    memset(in + o, ' ', n);
    memcpy(in + o + n, "v\r\n\r\n", 6);
    int status = 0, heads = 0;
    assert_int_equal(feed_limited(NULL, in, strlen(in), 4096, &status, &heads), -EBADMSG);
    assert_int_equal(status, 431);
    assert_int_equal(heads, 0);
    free(in);
}

/* Trailers are read and dropped, but not without bound. */
static void oversize_trailers_are_refused(void **state)
{
    struct h1_limits lim = {.max_head_bytes = 1024};
    char in[4096];
    int o = snprintf(in, sizeof(in), CHUNKED "0\r\n");
    for (int i = 0; o < 2048; i++)
        o += snprintf(in + o, sizeof(in) - (size_t)o, "T%d: aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", i);
    snprintf(in + o, sizeof(in) - (size_t)o, "\r\n");
    int status = 0, heads = 0;
    assert_int_equal(feed_limited(&lim, in, strlen(in), 0, &status, &heads), -EBADMSG);
    assert_int_equal(status, 400);
    assert_int_equal(heads, 1);
}

/* A chunk-size line is framing too: bounded like a head, however long the
 * extensions or the zeros (llhttp reads them without a limit). A large
 * head before it does not count. */
static void oversize_chunk_lines_are_refused(void **state)
{
    static const struct {
        const char *name, *prefix, *fill, *suffix;
        size_t n;
        int rc;
    } rows[] = {
        {"60 KiB of chunk extension", "5;e=", "a", "\r\nhello\r\n0\r\n\r\n", 62 * 1024, -EBADMSG},
        {"60 KiB of leading zeros", "", "0", "5\r\nhello\r\n0\r\n\r\n", 62 * 1024, -EBADMSG},
        {"a 50 KiB extension passes", "5;e=", "a", "\r\nhello\r\n0\r\n\r\n", 50 * 1024, H1_OK},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        size_t head_pad = 50 * 1024;
        char *in = malloc(head_pad + rows[i].n + 256);
        assert_non_null(in);
        int o = sprintf(in, POST "X-Pad: ");
        memset(in + o, 'p', head_pad);
        o += (int)head_pad;
        o += sprintf(in + o, "\r\nTransfer-Encoding: chunked\r\n\r\n%s", rows[i].prefix);
        memset(in + o, rows[i].fill[0], rows[i].n);
        o += (int)rows[i].n;
        o += sprintf(in + o, "%s", rows[i].suffix);
        for (size_t step = 0; step <= 1; step++) {
            struct h1_rec *r = h1_rec_new(true, NULL);
            int status = 0;
            print_message("%s, %s\n", rows[i].name, step ? "4 KiB pieces" : "whole");
            assert_int_equal(h1_rec_feed(r, in, (size_t)o, step ? 4096 : 0, NULL), rows[i].rc);
            h1_parser_error(r->p, &status);
            assert_int_equal(status, rows[i].rc ? 400 : 0);
            assert_string_equal(r->trace,
                                rows[i].rc ? "<POST / 1.1 chunked>" : "<POST / 1.1 chunked>hello$");
            h1_rec_free(r);
        }
        free(in);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(framing_conflicts_are_refused),
        cmocka_unit_test(line_and_byte_tricks_are_refused),
        cmocka_unit_test(nul_bytes_are_refused),
        cmocka_unit_test(chunk_framing_tricks_are_refused),
        cmocka_unit_test(responses_framed_two_ways_are_refused),
        cmocka_unit_test(heads_past_the_limits_get_431),
        cmocka_unit_test(whitespace_counts_toward_the_limit),
        cmocka_unit_test(oversize_trailers_are_refused),
        cmocka_unit_test(oversize_chunk_lines_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
