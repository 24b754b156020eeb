/* The HTTP/1 writer (agent/http/h1_write.c): heads formatted and parsed
 * back by the codec's own parser give the head that was meant, framing
 * from `body` alone whatever headers the caller passed, no head written
 * that could inject a line, chunk framing, reason phrases and the
 * hop-by-hop list. */
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

#define F(n, v)                                                                                    \
    {                                                                                              \
        .name = n, .value = v, .name_len = sizeof(n) - 1, .value_len = sizeof(v) - 1               \
    }

static const struct http_field plain[] = {F("Host", "svc.ns:8080"), F("X-Id", "a b\tc")};
/* Every framing and hop-by-hop header a parsed message may carry. */
static const struct http_field hops[] = {
    F("Host", "svc"),
    F("Content-Length", "999"),
    F("transfer-encoding", "chunked"),
    F("Connection", "keep-alive, x-hop"),
    F("Keep-Alive", "timeout=5"),
    F("Proxy-Connection", "close"),
    F("TE", "trailers"),
    F("Trailer", "X-T"),
    F("Upgrade", "websocket"),
    F("X-Kept", "1"),
};

static void format_then_parse_gives_the_head_back(void **state)
{
    static const struct {
        const char *name;
        struct h1_out_head h;
        bool request;
        const char *trace, *hdrs;
    } rows[] = {
        {"GET",
         {.method = "GET", .target = "/a?b", .headers = plain, .nheaders = 2, .keep_alive = true},
         true,
         "<GET /a?b 1.1 none>$",
         "Host=svc.ns:8080|X-Id=a b\tc"},
        {"POST with length",
         {.method = "POST",
          .target = "/p",
          .headers = plain,
          .nheaders = 1,
          .body = H1_BODY_LENGTH,
          .content_length = 3,
          .keep_alive = true},
         true,
         "<POST /p 1.1 len:3>abc$",
         "Host=svc.ns:8080|Content-Length=3"},
        {"chunked, closing",
         {.method = "PUT",
          .target = "/c",
          .headers = plain,
          .nheaders = 1,
          .body = H1_BODY_CHUNKED},
         true,
         "<PUT /c 1.1 chunked close>abc$",
         "Host=svc.ns:8080|Transfer-Encoding=chunked|Connection=close"},
        {"hop-by-hop dropped",
         {.method = "GET", .target = "/", .headers = hops, .nheaders = 10, .keep_alive = true},
         true,
         "<GET / 1.1 none>$",
         "Host=svc|X-Kept=1"},
        {"upgrade",
         {.method = "GET",
          .target = "/ws",
          .headers = hops,
          .nheaders = 1,
          .keep_alive = true,
          .upgrade_proto = "websocket"},
         true,
         "<GET /ws 1.1 none upgrade>$",
         "Host=svc|Connection=upgrade|Upgrade=websocket"},
        {"200 with the standard reason",
         {.status = 200,
          .headers = hops,
          .nheaders = 10,
          .body = H1_BODY_LENGTH,
          .content_length = 3,
          .keep_alive = true},
         false,
         "<200 OK 1.1 len:3>abc$",
         "Host=svc|X-Kept=1|Content-Length=3"},
        {"the largest length meshd reads",
         {.method = "PUT",
          .target = "/big",
          .headers = plain,
          .nheaders = 1,
          .body = H1_BODY_LENGTH,
          .content_length = 9999999999999999999ull,
          .keep_alive = true},
         true,
         "<PUT /big 1.1 len:9999999999999999999>",
         "Host=svc.ns:8080|Content-Length=9999999999999999999"},
        {"own reason",
         {.status = 503, .reason = "Overflow", .body = H1_BODY_LENGTH, .keep_alive = true},
         false,
         "<503 Overflow 1.1 len:0>$",
         "Content-Length=0"},
        {"until close",
         {.status = 200, .body = H1_BODY_CLOSE, .keep_alive = true},
         false,
         "<200 OK 1.1 close close>abc$",
         "Connection=close"},
        {"unknown status",
         {.status = 299, .body = H1_BODY_LENGTH, .keep_alive = true},
         false,
         "<299  1.1 len:0>$",
         "Content-Length=0"},
        {"101",
         {.status = 101, .upgrade_proto = "websocket"},
         false,
         "<101 Switching Protocols 1.1 none upgrade>$",
         "Connection=upgrade|Upgrade=websocket"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char buf[1024];
        print_message("%s\n", rows[i].name);
        size_t n = h1_format_head(&rows[i].h, buf, sizeof(buf));
        assert_true(n > 0 && n < sizeof(buf));
        assert_int_equal(strlen(buf), n);
        /* The body, framed as the head says. */
        if (rows[i].h.body == H1_BODY_CHUNKED) {
            char ch[H1_CHUNK_HEAD_MAX];
            size_t cl = h1_format_chunk_head(3, ch);
            memcpy(buf + n, ch, cl);
            n += cl;
            n +=
                (size_t)snprintf(buf + n, sizeof(buf) - n, "abc%s%s", h1_chunk_tail, h1_last_chunk);
        } else if (rows[i].h.body == H1_BODY_CLOSE || rows[i].h.content_length == 3) {
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "abc");
        }
        struct h1_rec *r = h1_rec_new(rows[i].request, NULL);
        int rc = h1_rec_feed(r, buf, n, 0, NULL);
        if (rows[i].h.body == H1_BODY_CLOSE)
            assert_int_equal(h1_parse_eof(r->p), H1_OK);
        assert_int_equal(rc, rows[i].h.upgrade_proto ? H1_PAUSED : H1_OK);
        assert_string_equal(r->trace, rows[i].trace);
        assert_string_equal(r->hdrs, rows[i].hdrs);
        h1_rec_free(r);
    }
}

static void the_length_is_counted_when_the_buffer_is_short(void **state)
{
    struct h1_out_head h = {
        .method = "GET", .target = "/", .headers = plain, .nheaders = 2, .keep_alive = true};
    char big[512], small[16];
    size_t n = h1_format_head(&h, big, sizeof(big));
    assert_string_equal(big, "GET / HTTP/1.1\r\nHost: svc.ns:8080\r\nX-Id: a b\tc\r\n\r\n");
    memset(small, 'Z', sizeof(small));
    assert_int_equal(h1_format_head(&h, small, sizeof(small)), n);
    /* Nothing past the buffer; exactly n + 1 bytes is enough. */
    char *exact = malloc(n + 1);
    assert_non_null(exact);
    assert_int_equal(h1_format_head(&h, exact, n + 1), n);
    assert_string_equal(exact, big);
    free(exact);
}

static void heads_that_would_inject_a_line_are_not_written(void **state)
{
    static const struct http_field crlf_value[] = {F("X-A", "a\r\nX-Injected: 1")};
    static const struct http_field lf_value[] = {F("X-A", "a\nb")};
    static const struct http_field nul_value[] = {
        {.name = "X-A", .value = "a\0b", .name_len = 3, .value_len = 3}};
    static const struct http_field space_name[] = {F("X A", "1")};
    static const struct http_field colon_name[] = {F("X:A", "1")};
    static const struct http_field empty_name[] = {F("", "1")};
    static const struct {
        const char *name;
        struct h1_out_head h;
    } rows[] = {
        {"CRLF in a value", {.method = "GET", .target = "/", .headers = crlf_value, .nheaders = 1}},
        {"LF in a value", {.method = "GET", .target = "/", .headers = lf_value, .nheaders = 1}},
        {"NUL in a value", {.method = "GET", .target = "/", .headers = nul_value, .nheaders = 1}},
        {"space in a name", {.method = "GET", .target = "/", .headers = space_name, .nheaders = 1}},
        {"colon in a name", {.method = "GET", .target = "/", .headers = colon_name, .nheaders = 1}},
        {"empty name", {.method = "GET", .target = "/", .headers = empty_name, .nheaders = 1}},
        {"space in the target", {.method = "GET", .target = "/a b"}},
        {"CRLF in the target", {.method = "GET", .target = "/\r\nX: 1"}},
        {"empty target", {.method = "GET", .target = ""}},
        {"no target", {.method = "GET"}},
        {"space in the method", {.method = "G T", .target = "/"}},
        {"CRLF in the reason", {.status = 200, .reason = "OK\r\nX: 1"}},
        {"status 99", {.status = 99}},
        {"status 1000", {.status = 1000}},
        {"CRLF in the upgrade", {.status = 101, .upgrade_proto = "ws\r\nX: 1"}},
        {"empty upgrade", {.status = 101, .upgrade_proto = ""}},
        {"a request body until close", {.method = "POST", .target = "/", .body = H1_BODY_CLOSE}},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char buf[256] = "untouched";
        print_message("%s\n", rows[i].name);
        assert_int_equal(h1_format_head(&rows[i].h, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "untouched");
    }
}

/* The per-byte rule the writer applies to values (space_ok) and targets. */
static bool text_ok(unsigned char c, bool space_ok)
{
    if (c == ' ' || c == '\t')
        return space_ok;
    return (c >= 0x21 && c != 0x7f);
}

static void every_byte_at_every_offset_of_a_value_is_checked(void **state)
{
    /* Values and targets are checked eight bytes a step: each byte value
     * at each offset of strings 1..40 long, as a header value and as a
     * target, is refused exactly when the byte is not text. */
    char v[41], buf[256];
    size_t refused = 0, written = 0;
    for (size_t len = 1; len <= 40; len++)
        for (size_t at = 0; at < len; at++)
            for (int c = 0; c < 256; c++) {
                memset(v, 'a', len);
                v[0] = '/';
                if (at)
                    v[at] = (char)c;
                v[len] = '\0';
                bool value_ok = !at || text_ok((unsigned char)c, true);
                struct http_field f = {.name = "X-V", .name_len = 3, .value = v, .value_len = len};
                struct h1_out_head hv = {
                    .method = "GET", .target = "/", .headers = &f, .nheaders = 1};
                struct h1_out_head ht = {.method = "GET", .target = v};
                size_t nv = h1_format_head(&hv, buf, sizeof(buf));
                if (value_ok != (nv > 0))
                    fail_msg("value of %zu bytes, byte 0x%02x at %zu: %s", len, c, at,
                             nv ? "written" : "refused");
                size_t nt = h1_format_head(&ht, buf, sizeof(buf));
                /* A NUL ends a target (a C string) early: the rest is checked. */
                bool t_ok = !at || c == 0 || text_ok((unsigned char)c, false);
                if (t_ok != (nt > 0))
                    fail_msg("target of %zu bytes, byte 0x%02x at %zu: %s", len, c, at,
                             nt ? "written" : "refused");
                refused += !nv;
                written += nv > 0;
            }
    assert_true(refused > 0 && written > 0);
}

static void chunk_framing_is_hex_length_and_crlf(void **state)
{
    static const struct {
        size_t len;
        const char *want;
    } rows[] = {
        {1, "1\r\n"},
        {15, "f\r\n"},
        {16, "10\r\n"},
        {65536, "10000\r\n"},
        {SIZE_MAX, "ffffffffffffffff\r\n"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char buf[H1_CHUNK_HEAD_MAX];
        assert_int_equal(h1_format_chunk_head(rows[i].len, buf), strlen(rows[i].want));
        assert_memory_equal(buf, rows[i].want, strlen(rows[i].want));
    }
    assert_string_equal(h1_chunk_tail, "\r\n");
    assert_string_equal(h1_last_chunk, "0\r\n\r\n");
}

static void reasons_and_hop_by_hop_names(void **state)
{
    assert_string_equal(h1_reason(200), "OK");
    assert_string_equal(h1_reason(404), "Not Found");
    assert_string_equal(h1_reason(431), "Request Header Fields Too Large");
    assert_string_equal(h1_reason(503), "Service Unavailable");
    assert_string_equal(h1_reason(299), "");
    static const struct {
        const char *name;
        bool hop;
    } rows[] = {
        {"Connection", true},
        {"keep-alive", true},
        {"PROXY-CONNECTION", true},
        {"te", true},
        {"Trailer", true},
        {"upgrade", true},
        {"Transfer-Encoding", true},
        {"content-length", true},
        {"Host", false},
        {"Content-Type", false},
        {"Trailers", false},
        {"T", false},
        {"Connectio", false},
        {"TE", true},
        {"ta", false},
        {"Keep-Alive", true},
        {"connectiom", false},
        {"keep-alivf", false},
        {"xonnection", false},
        {"TRAILER", true},
        {"Upgrade", true},
        {"trailex", false},
        {"upgradx", false},
        {"xpgrade", false},
        {"content-lengtx", false},
        {"proxy-connectiox", false},
        {"transfer-encodinx", false},
        {"Content-Lengths", false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        assert_int_equal(h1_header_is_hop(rows[i].name, strlen(rows[i].name)), rows[i].hop);
}

static void connection_lists_name_their_tokens(void **state)
{
    static const struct http_field f[] = {F("Host", "x"), F("connection", "keep-alive, X-Hop ,x-b"),
                                          F("Connection", "upgrade")};
    struct h1_head h = {.headers = f, .nheaders = 3};
    static const struct {
        const char *token;
        bool listed;
    } rows[] = {
        {"x-hop", true}, {"X-B", true},   {"keep-alive", true}, {"upgrade", true},
        {"x", false},    {"x-ho", false}, {"host", false},      {"", false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        assert_int_equal(h1_head_connection_lists(&h, rows[i].token, strlen(rows[i].token)),
                         rows[i].listed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(format_then_parse_gives_the_head_back),
        cmocka_unit_test(the_length_is_counted_when_the_buffer_is_short),
        cmocka_unit_test(heads_that_would_inject_a_line_are_not_written),
        cmocka_unit_test(every_byte_at_every_offset_of_a_value_is_checked),
        cmocka_unit_test(chunk_framing_is_hex_length_and_crlf),
        cmocka_unit_test(reasons_and_hop_by_hop_names),
        cmocka_unit_test(connection_lists_name_their_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
