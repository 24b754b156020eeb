/* The access-log line of one request (agent/telemetry/http_accesslog.c):
 * Envoy's default text format field by field, Istio's JSON keys, hostile
 * values (quotes, newlines, control bytes, non-ASCII, invalid UTF-8, very
 * long) kept inside their field and the line inside PIPE_BUF, one write
 * that is whole or nothing, and the x-request-id format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "telemetry/http_metrics.h"

#define MS 1000000ull

/* 2026-11-21T10:00:00.123Z */
#define START_NS (1795255200123ull * MS)

static struct http_request_record sample(void)
{
    return (struct http_request_record){
        .response_code = 418,
        .grpc_status = -1,
        .request_bytes = 0,
        .response_bytes = 135,
        .duration_ns = 4 * MS + 700000,
        .start_realtime_ns = START_NS,
        .method = "GET",
        .path = "/status/418",
        .protocol = "HTTP/1.1",
        .authority = "httpbin:8000",
        .user_agent = "curl/8.5.0",
        .request_id = "84961386-6d84-929d-98bd-c5aee93b5c88",
        .upstream_host = "10.44.1.27:80",
        .upstream_cluster = "outbound|8000||httpbin.foo.svc.cluster.local",
        .response_flags = "-",
        .upstream_service_time_ms = 4,
    };
}

static void text_line_is_envoys_default_format(void **state)
{
    struct http_request_record r = sample();
    char buf[HTTP_ACCESSLOG_LINE_MAX];
    size_t n = http_accesslog_format(&r, ACCESSLOG_TEXT, buf, sizeof(buf));
    assert_string_equal(buf, "[2026-11-21T10:00:00.123Z] \"GET /status/418 HTTP/1.1\" 418 - - - "
                             "\"-\" 0 135 4 4 \"-\" \"curl/8.5.0\" "
                             "\"84961386-6d84-929d-98bd-c5aee93b5c88\" \"httpbin:8000\" "
                             "\"10.44.1.27:80\" outbound|8000||httpbin.foo.svc.cluster.local "
                             "- - - - -\n");
    assert_int_equal(n, strlen(buf));
}

static void absent_values_are_dashes_in_text(void **state)
{
    struct http_request_record r = {.grpc_status = -1, .start_realtime_ns = START_NS};
    char buf[HTTP_ACCESSLOG_LINE_MAX];
    http_accesslog_format(&r, ACCESSLOG_TEXT, buf, sizeof(buf));
    /* A reset with nothing known: code 0, no service time. */
    assert_string_equal(buf, "[2026-11-21T10:00:00.123Z] \"- - -\" 0 - - - \"-\" 0 0 0 - \"-\" "
                             "\"-\" \"-\" \"-\" \"-\" - - - - - -\n");
}

static json_t *parse(const char *line)
{
    size_t n = strlen(line);
    assert_true(n > 0 && line[n - 1] == '\n');
    assert_ptr_equal(strchr(line, '\n'), line + n - 1); /* one line */
    json_error_t err;
    json_t *o = json_loads(line, 0, &err);
    if (!o)
        fail_msg("not JSON (%s): %s", err.text, line);
    return o;
}

static void json_line_has_istios_keys(void **state)
{
    struct http_request_record r = sample();
    char buf[HTTP_ACCESSLOG_LINE_MAX];
    http_accesslog_format(&r, ACCESSLOG_JSON, buf, sizeof(buf));
    json_t *o = parse(buf);
    static const struct {
        const char *key, *value; /* NULL: null */
    } strings[] = {
        {"start_time", "2026-11-21T10:00:00.123Z"},
        {"method", "GET"},
        {"path", "/status/418"},
        {"protocol", "HTTP/1.1"},
        {"response_flags", "-"},
        {"upstream_service_time", "4"},
        {"x_forwarded_for", NULL},
        {"user_agent", "curl/8.5.0"},
        {"request_id", "84961386-6d84-929d-98bd-c5aee93b5c88"},
        {"authority", "httpbin:8000"},
        {"upstream_host", "10.44.1.27:80"},
        {"upstream_cluster", "outbound|8000||httpbin.foo.svc.cluster.local"},
        {"response_code_details", NULL},
        {"connection_termination_details", NULL},
        {"upstream_transport_failure_reason", NULL},
        {"upstream_local_address", NULL},
        {"downstream_local_address", NULL},
        {"downstream_remote_address", NULL},
        {"requested_server_name", NULL},
        {"route_name", NULL},
    };
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        json_t *v = json_object_get(o, strings[i].key);
        if (!v)
            fail_msg("no key %s in %s", strings[i].key, buf);
        if (!strings[i].value)
            assert_true(json_is_null(v));
        else
            assert_string_equal(json_string_value(v), strings[i].value);
    }
    assert_int_equal(json_integer_value(json_object_get(o, "response_code")), 418);
    assert_int_equal(json_integer_value(json_object_get(o, "bytes_received")), 0);
    assert_int_equal(json_integer_value(json_object_get(o, "bytes_sent")), 135);
    assert_int_equal(json_integer_value(json_object_get(o, "duration")), 4);
    assert_int_equal(json_object_size(o), 24);
    json_decref(o);
}

/* Each row: a hostile value in the user agent, how text writes it, and
 * what a JSON reader gets back. */
static void hostile_values_stay_inside_their_field(void **state)
{
    static const struct {
        const char *behaviour, *ua, *text, *json;
    } rows[] = {
        {"quotes cannot close the field", "x\" \"forged", "\"x\\\" \\\"forged\"", "x\" \"forged"},
        {"newlines cannot start a line", "a\r\n[2026-01-01] \"GET /",
         "\"a\\x0d\\x0a[2026-01-01] "
         "\\\"GET /\"",
         "a\r\n[2026-01-01] \"GET /"},
        {"terminal escapes are inert", "\x1b[31mred\x7f", "\"\\x1b[31mred\\x7f\"", "\x1b[31mred?"},
        {"backslashes are doubled", "c:\\x41", "\"c:\\\\x41\"", "c:\\x41"},
        {"UTF-8 is kept in JSON, hex in text", "caf\xc3\xa9", "\"caf\\xc3\\xa9\"", "caf\xc3\xa9"},
        {"invalid UTF-8 is '?' in JSON", "a\xff\xc3(b\xed\xa0\x80",
         "\"a\\xff\\xc3(b\\xed\\xa0\\x80\"",
         "a?"
         "?(b???"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct http_request_record r = sample();
        r.user_agent = rows[i].ua;
        char buf[HTTP_ACCESSLOG_LINE_MAX];
        size_t n = http_accesslog_format(&r, ACCESSLOG_TEXT, buf, sizeof(buf));
        assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);
        for (size_t k = 0; k + 1 < n; k++)
            if ((unsigned char)buf[k] < 0x20 || (unsigned char)buf[k] >= 0x7f)
                fail_msg("%s: raw byte 0x%02x in the text line", rows[i].behaviour,
                         (unsigned char)buf[k]);
        if (!strstr(buf, rows[i].text))
            fail_msg("%s: no %s in %s", rows[i].behaviour, rows[i].text, buf);
        /* The fields after it are where they belong. */
        assert_non_null(
            strstr(buf, "\" \"84961386-6d84-929d-98bd-c5aee93b5c88\" \"httpbin:8000\""));
        n = http_accesslog_format(&r, ACCESSLOG_JSON, buf, sizeof(buf));
        for (size_t k = 0; k + 1 < n; k++)
            if ((unsigned char)buf[k] < 0x20 || (unsigned char)buf[k] >= 0x7f)
                fail_msg("%s: raw byte 0x%02x in the JSON line", rows[i].behaviour,
                         (unsigned char)buf[k]);
        json_t *o = parse(buf);
        assert_string_equal(json_string_value(json_object_get(o, "user_agent")), rows[i].json);
        assert_string_equal(json_string_value(json_object_get(o, "authority")), "httpbin:8000");
        json_decref(o);
    }
}

static void unquoted_fields_cannot_grow_columns(void **state)
{
    struct http_request_record r = sample();
    r.response_flags = "UO extra";
    r.upstream_cluster = "outbound|80||a b";
    char buf[HTTP_ACCESSLOG_LINE_MAX];
    http_accesslog_format(&r, ACCESSLOG_TEXT, buf, sizeof(buf));
    assert_non_null(strstr(buf, "\" 418 UO\\x20extra - - "));
    assert_non_null(strstr(buf, " outbound|80||a\\x20b - - - - -\n"));
}

/* 64 KiB of hostile bytes in every field: the line still fits PIPE_BUF,
 * cut values end "...", and JSON still parses. */
static void very_long_values_are_cut_to_fit_one_write(void **state)
{
    size_t big = 64 * 1024;
    char *quotes = malloc(big + 1), *text = malloc(big + 1), *utf8 = malloc(big + 1);
    assert_non_null(quotes);
    assert_non_null(text);
    assert_non_null(utf8);
    memset(quotes, '"', big);
    memset(text, 'a', big);
    for (size_t i = 0; i + 1 < big; i += 2) {
        utf8[i] = (char)0xc3;
        utf8[i + 1] = (char)0xa9;
    }
    quotes[big] = text[big] = utf8[big] = '\0';
    struct http_request_record r = sample();
    r.method = r.path = r.protocol = r.forwarded_for = quotes;
    r.user_agent = r.request_id = r.authority = r.upstream_host = quotes;
    r.upstream_cluster = r.response_flags = quotes;
    char buf[HTTP_ACCESSLOG_LINE_MAX + 1];
    size_t n = http_accesslog_format(&r, ACCESSLOG_TEXT, buf, sizeof(buf));
    assert_true(n < HTTP_ACCESSLOG_LINE_MAX);
    assert_int_equal(buf[n - 1], '\n');
    assert_non_null(strstr(buf, "\\\"...\""));
    const char *sets[] = {quotes, text, utf8};
    for (size_t s = 0; s < 3; s++) {
        const char *v = sets[s];
        r.method = r.path = r.protocol = r.forwarded_for = v;
        r.user_agent = r.request_id = r.authority = r.upstream_host = v;
        r.upstream_cluster = r.response_flags = v;
        n = http_accesslog_format(&r, ACCESSLOG_JSON, buf, sizeof(buf));
        assert_true(n < HTTP_ACCESSLOG_LINE_MAX);
        json_t *o = parse(buf);
        const char *path = json_string_value(json_object_get(o, "path"));
        assert_non_null(path);
        assert_true(strlen(path) > 0 && strlen(path) <= 1024);
        assert_int_equal(strncmp(path, v, strlen(path)), 0); /* a prefix, whole characters */
        json_decref(o);
        n = http_accesslog_format(&r, ACCESSLOG_TEXT, buf, sizeof(buf));
        assert_true(n < HTTP_ACCESSLOG_LINE_MAX);
        assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);
    }
    free(quotes);
    free(text);
    free(utf8);
}

static void a_small_buffer_is_never_overrun(void **state)
{
    struct http_request_record r = sample();
    for (int fmt = ACCESSLOG_TEXT; fmt <= ACCESSLOG_JSON; fmt++) {
        char buf[48];
        memset(buf, 'x', sizeof(buf));
        size_t n = http_accesslog_format(&r, (enum accesslog_format)fmt, buf, 40);
        assert_int_equal(n, 39);
        assert_int_equal(buf[39], '\0');
        assert_int_equal(buf[40], 'x');
        assert_int_equal(http_accesslog_format(&r, (enum accesslog_format)fmt, buf, 0), 0);
    }
}

/* A full non-blocking pipe refuses the line whole: never half a line. */
static void a_line_is_written_whole_or_not_at_all(void **state)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
    struct http_request_record r = sample();
    assert_true(http_accesslog_write(p[1], &r, ACCESSLOG_TEXT));
    char buf[HTTP_ACCESSLOG_LINE_MAX];
    ssize_t n = read(p[0], buf, sizeof(buf));
    char want[HTTP_ACCESSLOG_LINE_MAX];
    assert_int_equal(n, (ssize_t)http_accesslog_format(&r, ACCESSLOG_TEXT, want, sizeof(want)));
    assert_memory_equal(buf, want, (size_t)n);
    /* Fill the pipe to less than one line of room. */
    char fill[1024];
    memset(fill, 'f', sizeof(fill));
    while (write(p[1], fill, sizeof(fill)) == (ssize_t)sizeof(fill))
        ;
    while (write(p[1], fill, 1) == 1)
        ;
    assert_int_equal(errno, EAGAIN);
    assert_false(http_accesslog_write(p[1], &r, ACCESSLOG_JSON));
    /* Nothing of the line went in: the pipe holds only the filler. */
    assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    size_t total = 0;
    for (ssize_t got; (got = read(p[0], fill, sizeof(fill))) > 0; total += (size_t)got)
        assert_null(memchr(fill, '{', (size_t)got));
    assert_true(total > 0);
    close(p[0]);
    close(p[1]);
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void request_ids_are_random_uuid_v4(void **state)
{
    char prev[37] = "";
    for (int i = 0; i < 64; i++) {
        char id[37];
        memset(id, 'x', sizeof(id));
        http_request_id(id);
        assert_int_equal(strlen(id), 36);
        for (int k = 0; k < 36; k++) {
            if (k == 8 || k == 13 || k == 18 || k == 23)
                assert_int_equal(id[k], '-');
            else if (!is_hex(id[k]))
                fail_msg("not lowercase hex at %d: %s", k, id);
        }
        assert_int_equal(id[14], '4');           /* version 4 */
        assert_non_null(strchr("89ab", id[19])); /* RFC 4122 variant */
        assert_string_not_equal(id, prev);
        memcpy(prev, id, sizeof(id));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_line_is_envoys_default_format),
        cmocka_unit_test(absent_values_are_dashes_in_text),
        cmocka_unit_test(json_line_has_istios_keys),
        cmocka_unit_test(hostile_values_stay_inside_their_field),
        cmocka_unit_test(unquoted_fields_cannot_grow_columns),
        cmocka_unit_test(very_long_values_are_cut_to_fit_one_write),
        cmocka_unit_test(a_small_buffer_is_never_overrun),
        cmocka_unit_test(a_line_is_written_whole_or_not_at_all),
        cmocka_unit_test(request_ids_are_random_uuid_v4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
