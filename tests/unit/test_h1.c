/* The HTTP/1 codec (agent/http/h1.c over llhttp): every message is fed
 * whole, byte by byte and split at every position, and must give the same
 * trace of callbacks; pipelining, pausing, HEAD/1xx/204/304, body until
 * close, keep-alive, upgrades; the request smuggling table (each case
 * refused with its status, nothing of the bad message delivered); the
 * limits; and the writer, checked by parsing what it wrote. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1.h"
#include "support/h1_rec.h"

#define GOOD_REQ "GET / HTTP/1.1\r\nHost: x\r\n\r\n"

/* --- requests and responses, every split --------------------------------- */

static void requests_parse_the_same_in_every_split(void **state)
{
    static const struct {
        const char *name, *in, *trace;
    } rows[] = {
        {"simple GET", "GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n", "<GET /a?b=c 1.1 none>$"},
        {"POST with Content-Length",
         "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
         "<POST /p 1.1 len:5>hello$"},
        {"Content-Length 0", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
         "<POST /p 1.1 len:0>$"},
        {"chunked with extension and trailers",
         "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
         "<POST /c 1.1 chunked>hello world$"},
        {"Transfer-Encoding gzip, chunked",
         "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, "
         "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
         "<POST /c 1.1 chunked>abc$"},
        {"uppercase CHUNKED",
         "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n",
         "<POST /c 1.1 chunked>$"},
        {"absolute-form target",
         "GET http://h.example:8080/p?q HTTP/1.1\r\nHost: h.example\r\n\r\n",
         "<GET http://h.example:8080/p?q 1.1 none>$"},
        {"asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "<OPTIONS * 1.1 none>$"},
        {"CONNECT authority-form", "CONNECT h.example:443 HTTP/1.1\r\nHost: h.example:443\r\n\r\n",
         "<CONNECT h.example:443 1.1 none upgrade>$"},
        {"HTTP/1.0 without Host closes", "GET / HTTP/1.0\r\n\r\n", "<GET / 1.0 none close>$"},
        {"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
         "<GET / 1.0 none>$"},
        {"Expect: 100-continue",
         "PUT /u HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nok",
         "<PUT /u 1.1 len:2 expect>ok$"},
        {"Expect in HTTP/1.0 is ignored",
         "PUT /u HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
         "<PUT /u 1.0 len:2 close>ok$"},
        {"one leading empty line", "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", "<GET / 1.1 none>$"},
        {"pipelined three",
         "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: "
         "3\r\n\r\n"
         "abcGET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
         "<GET /1 1.1 none>$<POST /2 1.1 len:3>abc$<GET /3 1.1 none close>$"},
        {"other names with '_' pass",
         "GET / HTTP/1.1\r\nHost: x\r\nX_Id: 1\r\nContent_Lengthy: 2\r\n\r\n", "<GET / 1.1 none>$"},
        {"obs-text in a value", "GET / HTTP/1.1\r\nHost: x\r\nX-L: caf\xc3\xa9\r\n\r\n",
         "<GET / 1.1 none>$"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("%s\n", rows[i].name);
        h1_rec_expect_all_splits(true, rows[i].in, rows[i].trace,
                                 strstr(rows[i].trace, "upgrade") ? H1_PAUSED : H1_OK, 0);
    }
}

static void responses_parse_the_same_in_every_split(void **state)
{
    static const struct {
        const char *name, *in, *trace;
    } rows[] = {
        {"200 with length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
         "<200 OK 1.1 len:2>hi$"},
        {"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
         "<200 OK 1.1 chunked>hi$"},
        {"204 has no body",
         "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
         "<204 No Content 1.1 none>$<200 OK 1.1 len:0>$"},
        {"304 ignores its Content-Length",
         "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 "
         "OK\r\nContent-Length: "
         "1\r\n\r\nx",
         "<304 Not Modified 1.1 none>$<200 OK 1.1 len:1>x$"},
        {"100 Continue then 200",
         "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
         "<100 Continue 1.1 none>$<200 OK 1.1 len:0>$"},
        {"103 Early Hints with a header",
         "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: "
         "0\r\n\r\n",
         "<103 Early Hints 1.1 none>$<200 OK 1.1 len:0>$"},
        {"no reason phrase", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", "<404  1.1 len:0>$"},
        {"no SP after the status", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
         "<404  1.1 len:0>$"},
        {"reason with spaces and a tab", "HTTP/1.1 200 A  b\tc\r\nContent-Length: 0\r\n\r\n",
         "<200 A  b\tc 1.1 len:0>$"},
        {"1.0 close-delimited is body until close", "HTTP/1.0 200 OK\r\n\r\nabc",
         "<200 OK 1.0 close close>abc"},
        {"101 switching",
         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
         "<101 Switching Protocols 1.1 none upgrade>$"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("%s\n", rows[i].name);
        h1_rec_expect_all_splits(false, rows[i].in, rows[i].trace,
                                 strstr(rows[i].trace, "upgrade") ? H1_PAUSED : H1_OK, 0);
    }
}

static void header_fields_are_kept_in_order_and_trimmed(void **state)
{
    struct h1_rec *r = h1_rec_new(true, NULL);
    static const char in[] =
        "GET / HTTP/1.1\r\nHost:  x.example \r\nX-Empty:\r\nx-CASE: \tA b\t\r\n"
        "Cookie: a=1\r\nCookie: b=2\r\n\r\n";
    assert_int_equal(h1_rec_feed(r, in, strlen(in), 1, NULL), H1_OK);
    assert_string_equal(r->hdrs, "Host=x.example|X-Empty=|x-CASE=A b|Cookie=a=1|Cookie=b=2");
    h1_rec_free(r);
}

static const char *last_value;
static int get_cookie(void *ctx, const struct h1_head *h)
{
    (void)ctx;
    last_value = h1_head_get(h, "COOKIE");
    return h1_head_get(h, "absent") ? -1 : H1_OK;
}

static void head_get_is_case_insensitive_first_value(void **state)
{
    struct h1_callbacks cb = {.on_head = get_cookie};
    struct h1_parser *p;
    size_t c;
    static const char in[] = "GET / HTTP/1.1\r\nHost: x\r\ncookie: a=1\r\nCookie: b=2\r\n\r\n";
    assert_int_equal(h1_parser_new(true, NULL, &cb, NULL, &p), 0);
    assert_int_equal(h1_parse(p, in, strlen(in), &c), H1_OK);
    assert_string_equal(last_value, "a=1");
    h1_parser_free(p);
}

/* --- pausing ---------------------------------------------------------------- */

#define REQ_BODY "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"

/* A pause stops right after the callback: *consumed is where the caller
 * feeds again, and nothing more is delivered until h1_parser_resume. */
static void pause_stops_after_the_callback(void **state)
{
    static const char in[] = REQ_BODY "hello"
                                      "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n";
    static const struct {
        const char *name;
        int head, body, complete;
        size_t consumed;
        const char *trace;
    } rows[] = {
        {"on_head", 1, 0, 0, sizeof(REQ_BODY) - 1, "<POST /p 1.1 len:5>"},
        {"on_body", 0, 1, 0, sizeof(REQ_BODY) - 1 + 5, "<POST /p 1.1 len:5>hello"},
        {"on_complete", 0, 0, 1, sizeof(REQ_BODY) - 1 + 5, "<POST /p 1.1 len:5>hello$"},
        {"second on_head", 2, 0, 0, sizeof(in) - 1, "<POST /p 1.1 len:5>hello$<GET /2 1.1 none>"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct h1_rec *r = h1_rec_new(true, NULL);
        r->pause_head = rows[i].head, r->pause_body = rows[i].body;
        r->pause_complete = rows[i].complete;
        size_t c = 0;
        print_message("%s\n", rows[i].name);
        assert_int_equal(h1_parse(r->p, in, sizeof(in) - 1, &c), H1_PAUSED);
        assert_int_equal(c, rows[i].consumed);
        assert_string_equal(r->trace, rows[i].trace);
        /* Still paused: nothing is consumed, nothing delivered. */
        size_t c2 = 99;
        assert_int_equal(h1_parse(r->p, in + c, sizeof(in) - 1 - c, &c2), H1_PAUSED);
        assert_int_equal(c2, 0);
        assert_string_equal(r->trace, rows[i].trace);
        h1_parser_resume(r->p);
        assert_int_equal(h1_parse(r->p, in + c, sizeof(in) - 1 - c, &c2), H1_OK);
        assert_int_equal(c + c2, sizeof(in) - 1);
        assert_string_equal(r->trace, "<POST /p 1.1 len:5>hello$<GET /2 1.1 none>$");
        h1_rec_free(r);
    }
}

/* The caller may feed the same bytes in other pieces after a pause. */
static void pause_and_resume_in_every_split(void **state)
{
    static const char cl[] = REQ_BODY "hello" REQ_BODY "world",
                      chunked[] =
                          "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "3\r\nhel\r\n2\r\nlo\r\n0\r\nT: 1\r\n\r\n" REQ_BODY "world";
    static const struct {
        const char *in, *trace;
        size_t len;
    } inputs[] = {
        {cl, "<POST /p 1.1 len:5>hello$<POST /p 1.1 len:5>world$", sizeof(cl) - 1},
        {chunked, "<POST /c 1.1 chunked>hello$<POST /p 1.1 len:5>world$", sizeof(chunked) - 1},
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
        for (int which = 0; which < 6; which++)
            for (size_t step = 0; step <= 3; step++) {
                struct h1_rec *r = h1_rec_new(true, NULL);
                /* the first or second of each callback */
                int nth = which / 3 + 1;
                if (which % 3 == 0)
                    r->pause_head = nth;
                else if (which % 3 == 1)
                    r->pause_body = nth;
                else
                    r->pause_complete = nth;
                assert_int_equal(h1_rec_feed(r, inputs[i].in, inputs[i].len, step, NULL), H1_OK);
                assert_string_equal(r->trace, inputs[i].trace);
                h1_rec_free(r);
            }
}

/* A pause on the last bytes of a body until close, then the empty feed
 * after the resume: llhttp flushes its open body span empty, which is
 * never a body callback (found by fuzz_h1). */
static void no_empty_body_pieces_after_a_resume(void **state)
{
    static const char in[] = "HTTP/1.1 200 OK\r\n\r\nbody";
    for (size_t step = 0; step <= 1; step++) {
        struct h1_rec *r = h1_rec_new(false, NULL);
        r->pause_head = 1;
        r->pause_body = step ? 4 : 1;
        assert_int_equal(h1_rec_feed(r, in, sizeof(in) - 1, step, NULL), H1_OK);
        assert_int_equal(r->bodies, step ? 4 : 1);
        assert_int_equal(h1_parse_eof(r->p), H1_OK);
        assert_string_equal(r->trace, "<200 OK 1.1 close close>body$");
        h1_rec_free(r);
    }
}

/* --- idle, in_body, eof ---------------------------------------------------- */

static void idle_and_in_body_follow_the_message(void **state)
{
    struct h1_rec *r = h1_rec_new(true, NULL);
    size_t c;
    assert_true(h1_parser_idle(r->p));
    assert_false(h1_parser_in_body(r->p));
    assert_int_equal(h1_parse(r->p, "POST", 4, &c), H1_OK);
    assert_false(h1_parser_idle(r->p));
    assert_false(h1_parser_in_body(r->p));
    static const char rest[] = " / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\na";
    assert_int_equal(h1_parse(r->p, rest, sizeof(rest) - 1, &c), H1_OK);
    assert_true(h1_parser_in_body(r->p));
    assert_int_equal(h1_parse(r->p, "b", 1, &c), H1_OK);
    assert_true(h1_parser_idle(r->p));
    assert_false(h1_parser_in_body(r->p));
    assert_string_equal(r->trace, "<POST / 1.1 len:2>ab$");
    h1_rec_free(r);
}

static void eof_completes_only_a_body_until_close(void **state)
{
    static const struct {
        const char *name;
        bool request;
        const char *in;
        int rc;
        const char *trace, *trace_paused; /* paused after the head: the rest unread */
    } rows[] = {
        {"between requests", true, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", H1_OK, "<GET / 1.1 none>$",
         "<GET / 1.1 none>$"},
        {"nothing read", true, "", H1_OK, "", ""},
        {"in a request head", true, "GET / HTTP/1.1\r\nHo", -EBADMSG, "", ""},
        {"in a Content-Length body", true, REQ_BODY "hel", -EBADMSG, "<POST /p 1.1 len:5>hel",
         "<POST /p 1.1 len:5>"},
        {"in a chunked body", true,
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", -EBADMSG,
         "<POST / 1.1 chunked>abc", "<POST / 1.1 chunked>"},
        {"body until close", false, "HTTP/1.1 200 OK\r\n\r\nsome bytes", H1_OK,
         "<200 OK 1.1 close close>some bytes$", "<200 OK 1.1 close close>$"},
        {"body until close, empty", false, "HTTP/1.1 200 OK\r\n\r\n", H1_OK,
         "<200 OK 1.1 close close>$", "<200 OK 1.1 close close>$"},
        {"body until close, TE not chunked", false,
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz", H1_OK,
         "<200 OK 1.1 close close>zz$", "<200 OK 1.1 close close>$"},
        {"in a response head", false, "HTTP/1.1 200 OK\r\n", -EBADMSG, "", ""},
        {"short response body", false, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab", -EBADMSG,
         "<200 OK 1.1 len:3>ab", "<200 OK 1.1 len:3>"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        for (int paused = 0; paused <= 1; paused++) {
            struct h1_rec *r = h1_rec_new(rows[i].request, NULL);
            r->pause_head = paused; /* eof while paused after the head */
            print_message("%s%s\n", rows[i].name, paused ? ", paused" : "");
            size_t c;
            int prc = h1_parse(r->p, rows[i].in, strlen(rows[i].in), &c);
            assert_true(prc == H1_OK || prc == H1_PAUSED);
            int status = 0;
            assert_int_equal(h1_parse_eof(r->p), rows[i].rc);
            assert_string_equal(r->trace, paused ? rows[i].trace_paused : rows[i].trace);
            if (rows[i].rc < 0) {
                assert_non_null(h1_parser_error(r->p, &status));
                assert_int_equal(status, 400);
            } else {
                assert_null(h1_parser_error(r->p, &status));
            }
            h1_rec_free(r);
        }
}

/* --- responses to HEAD, keep-alive ------------------------------------------ */

static void head_responses_have_no_body(void **state)
{
    static const char in[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
                             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    for (size_t step = 0; step <= 1; step++) {
        struct h1_rec *r = h1_rec_new(false, NULL);
        /* The first two answer HEAD requests (the second named from the
         * first one's on_complete), the third a GET. */
        h1_parser_next_is_head_response(r->p, true);
        r->head_after = 1;
        r->pause_complete = 2;
        assert_int_equal(h1_rec_feed(r, in, sizeof(in) - 1, step, NULL), H1_OK);
        assert_string_equal(r->trace, "<200 OK 1.1 none>$<200 OK 1.1 none>$<200 OK 1.1 len:2>ok$");
        h1_rec_free(r);
    }
    /* 1xx before the answer to HEAD do not use the mark up. */
    struct h1_rec *r = h1_rec_new(false, NULL);
    h1_parser_next_is_head_response(r->p, true);
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: "
                               "9\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
    assert_int_equal(h1_rec_feed(r, cont, sizeof(cont) - 1, 0, NULL), H1_OK);
    assert_string_equal(r->trace,
                        "<100 Continue 1.1 none>$<200 OK 1.1 none>$<204 No Content 1.1 none>$");
    h1_rec_free(r);
}

static void keep_alive_follows_version_and_connection(void **state)
{
    static const struct {
        const char *name;
        bool request;
        const char *in;
        bool keep_alive;
    } rows[] = {
        {"1.1 request", true, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", true},
        {"1.1 request, close", true, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
         false},
        {"1.1 request, Close", true, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n",
         false},
        {"1.1 request, close in a list", true,
         "GET / HTTP/1.1\r\nHost: x\r\nConnection: x-foo, close\r\n\r\n", false},
        {"1.1 request, keep-alive", true,
         "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", true},
        {"1.0 request", true, "GET / HTTP/1.0\r\n\r\n", false},
        {"1.0 request, keep-alive", true, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
        {"1.0 request, Keep-Alive", true, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
        {"1.1 response with length", false, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
        {"1.1 response, close", false,
         "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false},
        {"1.1 response until close", false, "HTTP/1.1 200 OK\r\n\r\n", false},
        {"1.0 response with length", false, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
        {"1.0 response, keep-alive", false,
         "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", true},
        {"1.1 204", false, "HTTP/1.1 204 No Content\r\n\r\n", true},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct h1_rec *r = h1_rec_new(rows[i].request, NULL);
        print_message("%s\n", rows[i].name);
        assert_int_equal(h1_rec_feed(r, rows[i].in, strlen(rows[i].in), 0, NULL), H1_OK);
        assert_int_equal(r->heads, 1);
        assert_int_equal(strstr(r->trace, " close>") == NULL, rows[i].keep_alive);
        h1_rec_free(r);
    }
}

/* After a message that closes the connection, what follows is ignored:
 * not delivered as another message. */
static void nothing_is_delivered_after_connection_close(void **state)
{
    static const char in[] = "GET /1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                             "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n";
    for (size_t step = 0; step <= 1; step++) {
        struct h1_rec *r = h1_rec_new(true, NULL);
        size_t used = 0;
        /* llhttp (loose) reads the rest and drops it; the caller closes. */
        assert_int_equal(h1_rec_feed(r, in, sizeof(in) - 1, step, &used), H1_OK);
        assert_int_equal(used, sizeof(in) - 1);
        assert_string_equal(r->trace, "<GET /1 1.1 none close>$");
        h1_rec_free(r);
    }
}

/* --- upgrades ---------------------------------------------------------------- */

static void upgrade_stops_at_the_message_end(void **state)
{
    static const struct {
        const char *name;
        bool request;
        const char *head, *trace;
    } rows[] = {
        {"websocket request", true,
         "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
         "<GET /ws 1.1 none upgrade>$"},
        {"upgrade request with a body", true,
         "POST /u HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: upgrade\r\nContent-Length: "
         "2\r\n\r\nhi",
         "<POST /u 1.1 len:2 upgrade>hi$"},
        {"CONNECT", true, "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n",
         "<CONNECT db:5432 1.1 none upgrade>$"},
        {"101 response", false,
         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
         "<101 Switching Protocols 1.1 none upgrade>$"},
    };
    static const char raw[] = "\x81\x05hello\r\n\n\0GET / HTTP/1.1\r\n";
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        for (size_t step = 0; step <= 1; step++) {
            char in[512];
            size_t hl = strlen(rows[i].head);
            memcpy(in, rows[i].head, hl);
            memcpy(in + hl, raw, sizeof(raw) - 1);
            struct h1_rec *r = h1_rec_new(rows[i].request, NULL);
            size_t used = 0;
            print_message("%s, step %zu\n", rows[i].name, step);
            assert_int_equal(h1_rec_feed(r, in, hl + sizeof(raw) - 1, step, &used), H1_PAUSED);
            assert_int_equal(used, hl); /* the rest is the caller's, raw */
            assert_string_equal(r->trace, rows[i].trace);
            size_t c = 99;
            assert_int_equal(h1_parse(r->p, in + used, sizeof(raw) - 1, &c), H1_PAUSED);
            assert_int_equal(c, 0);
            assert_int_equal(h1_parse_eof(r->p), H1_OK);
            h1_rec_free(r);
        }
}

/* The server refused the upgrade (no 101): the caller resumes and the
 * connection goes on as HTTP. */
static void refused_upgrade_resumes_as_http(void **state)
{
    static const char in[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
                             "upgrade\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n";
    struct h1_rec *r = h1_rec_new(true, NULL);
    size_t c = 0, c2 = 0;
    assert_int_equal(h1_parse(r->p, in, sizeof(in) - 1, &c), H1_PAUSED);
    h1_parser_resume(r->p);
    assert_int_equal(h1_parse(r->p, in + c, sizeof(in) - 1 - c, &c2), H1_OK);
    assert_int_equal(c + c2, sizeof(in) - 1);
    assert_string_equal(r->trace, "<GET /ws 1.1 none upgrade>$<GET /next 1.1 none>$");
    h1_rec_free(r);
}

/* What answers a CONNECT: a 2xx opens the tunnel (no body, the rest is
 * raw); a refusal is an ordinary response and the next one is not marked. */
static void connect_responses_open_the_tunnel_on_2xx(void **state)
{
    static const struct {
        const char *name, *in;
        int rc;
        size_t used; /* 0: all */
        const char *trace;
    } rows[] = {
        {"200 opens it", "HTTP/1.1 200 Connection Established\r\n\r\n\x16\x03\x01raw", H1_PAUSED,
         sizeof("HTTP/1.1 200 Connection Established\r\n\r\n") - 1,
         "<200 Connection Established 1.1 none upgrade>$"},
        {"100 then 200", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nraw", H1_PAUSED,
         sizeof("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n") - 1,
         "<100 Continue 1.1 none>$<200 OK 1.1 none upgrade>$"},
        {"407 is a response",
         "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 2\r\n\r\nnoHTTP/1.1 200 "
         "OK\r\nContent-Length: 1\r\n\r\nx",
         H1_OK, 0, "<407 Proxy Authentication Required 1.1 len:2>no$<200 OK 1.1 len:1>x$"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        for (size_t step = 0; step <= 1; step++) {
            struct h1_rec *r = h1_rec_new(false, NULL);
            size_t used = 0, n = strlen(rows[i].in);
            print_message("%s, step %zu\n", rows[i].name, step);
            h1_parser_next_is_connect_response(r->p, true);
            assert_int_equal(h1_rec_feed(r, rows[i].in, n, step, &used), rows[i].rc);
            assert_int_equal(used, rows[i].used ? rows[i].used : n);
            assert_string_equal(r->trace, rows[i].trace);
            h1_rec_free(r);
        }
}

/* A large head, then small ones: the large buffer is let go when the next
 * message begins, and every head still reads whole. */
static void a_large_head_then_small_ones(void **state)
{
    size_t big = 20000;
    char *in = malloc(big + 256);
    assert_non_null(in);
    int o = sprintf(in, "GET /big HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(in + o, 'b', big);
    o += (int)big;
    o += sprintf(in + o, "\r\n\r\nGET /small HTTP/1.1\r\nHost: y\r\nX-S: 1\r\n\r\n");
    for (size_t step = 0; step <= 1; step++) {
        struct h1_rec *r = h1_rec_new(true, NULL);
        assert_int_equal(h1_rec_feed(r, in, (size_t)o, step ? 1000 : 0, NULL), H1_OK);
        assert_string_equal(r->trace, "<GET /big 1.1 none>$<GET /small 1.1 none>$");
        assert_string_equal(r->hdrs, "Host=y|X-S=1");
        h1_rec_free(r);
    }
    free(in);
}

/* --- callbacks that fail ----------------------------------------------------- */

static void a_failing_callback_cancels_the_parser(void **state)
{
    static const char in[] = REQ_BODY "hello" REQ_BODY "world";
    struct h1_rec *r = h1_rec_new(true, NULL);
    r->fail_head = true;
    size_t c = 7;
    assert_int_equal(h1_parse(r->p, in, sizeof(in) - 1, &c), -ECANCELED);
    assert_int_equal(c, 0);
    assert_int_equal(h1_parse(r->p, in, sizeof(in) - 1, &c), -ECANCELED);
    assert_string_equal(r->trace, "<POST /p 1.1 len:5>");
    assert_int_equal(r->heads, 1);
    h1_rec_free(r);
}

/* A refused parser stays refused and calls nothing again. */
static void a_refused_parser_stays_dead(void **state)
{
    static const char bad[] = "GET / HTTP/1.1\nHost: x\n\n", good[] = GOOD_REQ;
    struct h1_rec *r = h1_rec_new(true, NULL);
    size_t c;
    assert_int_equal(h1_parse(r->p, bad, sizeof(bad) - 1, &c), -EBADMSG);
    assert_int_equal(h1_parse(r->p, good, sizeof(good) - 1, &c), -EBADMSG);
    assert_int_equal(h1_parse_eof(r->p), -EBADMSG);
    int status = 0;
    assert_string_equal(h1_parser_error(r->p, &status), "bare LF as a line end");
    assert_int_equal(status, 400);
    assert_string_equal(r->trace, "");
    h1_rec_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(requests_parse_the_same_in_every_split),
        cmocka_unit_test(responses_parse_the_same_in_every_split),
        cmocka_unit_test(header_fields_are_kept_in_order_and_trimmed),
        cmocka_unit_test(head_get_is_case_insensitive_first_value),
        cmocka_unit_test(pause_stops_after_the_callback),
        cmocka_unit_test(pause_and_resume_in_every_split),
        cmocka_unit_test(no_empty_body_pieces_after_a_resume),
        cmocka_unit_test(idle_and_in_body_follow_the_message),
        cmocka_unit_test(eof_completes_only_a_body_until_close),
        cmocka_unit_test(head_responses_have_no_body),
        cmocka_unit_test(keep_alive_follows_version_and_connection),
        cmocka_unit_test(nothing_is_delivered_after_connection_close),
        cmocka_unit_test(upgrade_stops_at_the_message_end),
        cmocka_unit_test(refused_upgrade_resumes_as_http),
        cmocka_unit_test(connect_responses_open_the_tunnel_on_2xx),
        cmocka_unit_test(a_large_head_then_small_ones),
        cmocka_unit_test(a_failing_callback_cancels_the_parser),
        cmocka_unit_test(a_refused_parser_stays_dead),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
