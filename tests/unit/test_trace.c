/* Trace context (agent/telemetry/trace.c): W3C traceparent accepted only
 * in its strict version-00 form, every malformed form refused; B3 single
 * and multi with 64- and 128-bit trace ids, sampling states and debug;
 * precedence between the forms; the decision honoured; the fields sent
 * upstream carry our span as the parent, in the form that came in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "trace/trace.h"

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define SID "00f067aa0ba902b7"

static void hex_of(const uint8_t *id, size_t n, char *out)
{
    trace_hex(id, n, out);
}

static void test_traceparent_valid_forms_give_ids_and_flag(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        int sampled;
    } rows[] = {
        {"00-" TID "-" SID "-01", 1},
        {"00-" TID "-" SID "-00", 0},
        {"00-" TID "-" SID "-09", 1}, /* other flag bits ignored */
        {"00-" TID "-" SID "-fe", 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct trace_incoming in;
        assert_int_equal(trace_parse_traceparent(rows[i].v, &in), 0);
        char t[33], s[17];
        hex_of(in.trace_id, 16, t);
        hex_of(in.span_id, 8, s);
        assert_string_equal(t, TID);
        assert_string_equal(s, SID);
        assert_int_equal(in.sampled, rows[i].sampled);
        assert_int_equal(in.format, TRACE_W3C);
    }
}

static void test_traceparent_every_malformed_form_is_refused(void **state)
{
    (void)state;
    static const char *const rows[] = {
        "",
        "00",
        "01-" TID "-" SID "-01",                           /* a version we do not speak */
        "ff-" TID "-" SID "-01",                           /* the forbidden version */
        "00-" TID "-" SID "-01-extra",                     /* version 00 has no more fields */
        "00-" TID "-" SID "-1",                            /* flags one digit */
        "00-" TID "-" SID "-001",                          /* flags three digits */
        "00-4bf92f3577b34da6a3ce929d0e0e473-" SID "-01",   /* trace id 31 */
        "00-4bf92f3577b34da6a3ce929d0e0e47366-" SID "-01", /* trace id 33 */
        "00-" TID "-00f067aa0ba902b-01",                   /* span id 15 */
        "00-00000000000000000000000000000000-" SID "-01",  /* zero trace id */
        "00-" TID "-0000000000000000-01",                  /* zero span id */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-" SID "-01",  /* upper-case hex */
        "00-" TID "-00F067AA0BA902B7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-" SID "-01", /* not hex */
        "00-" TID "-" SID "-0g",
        "00_" TID "-" SID "-01", /* wrong separators */
        "00-" TID "_" SID "-01",
        "00-" TID "-" SID "_01",
        " 00-" TID "-" SID "-0", /* padded */
        "0x-" TID "-" SID "-01",
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct trace_incoming in = {.format = TRACE_NONE};
        if (trace_parse_traceparent(rows[i], &in) != -EINVAL)
            fail_msg("accepted: \"%s\"", rows[i]);
    }
    assert_int_equal(trace_parse_traceparent(NULL, &(struct trace_incoming){0}), -EINVAL);
}

static void test_b3_single_forms(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        int rc, sampled;
        bool has_span, debug, id64;
        const char *tid;
    } rows[] = {
        {TID "-" SID, 0, -1, true, false, false, TID},
        {TID "-" SID "-1", 0, 1, true, false, false, TID},
        {TID "-" SID "-0", 0, 0, true, false, false, TID},
        {TID "-" SID "-d", 0, 1, true, true, false, TID},
        {TID "-" SID "-1-05e3ac9a4f6e3b90", 0, 1, true, false, false, TID},
        {"a3ce929d0e0e4736-" SID "-1", 0, 1, true, false, true, "0000000000000000a3ce929d0e0e4736"},
        {"1", 0, 1, false, false, false, NULL},
        {"0", 0, 0, false, false, false, NULL},
        {"d", 0, 1, false, true, false, NULL},
        {"2", -EINVAL, 0, false, false, false, NULL},
        {"true", -EINVAL, 0, false, false, false, NULL},
        {TID, -EINVAL, 0, false, false, false, NULL},              /* no span */
        {TID "-", -EINVAL, 0, false, false, false, NULL},          /* empty span */
        {TID "-" SID "-x", -EINVAL, 0, false, false, false, NULL}, /* bad sampling state */
        {TID "-" SID "-1-05e3ac9a4f6e3b9", -EINVAL, 0, false, false, false,
         NULL}, /* short parent */
        {TID "-" SID "-1-05e3ac9a4f6e3b90-x", -EINVAL, 0, false, false, false,
         NULL},                                                             /* a fifth part */
        {TID "-0000000000000000-1", -EINVAL, 0, false, false, false, NULL}, /* zero span */
        {"0000000000000000-" SID, -EINVAL, 0, false, false, false, NULL},   /* zero trace */
        {"a3ce929d0e0e473-" SID, -EINVAL, 0, false, false, false, NULL},    /* 15-hex trace */
        {"4BF92F3577B34DA6A3CE929D0E0E4736-" SID, -EINVAL, 0, false, false, false,
         NULL}, /* upper case */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct trace_incoming in;
        int rc = trace_parse_b3_single(rows[i].v, &in);
        if (rc != rows[i].rc)
            fail_msg("\"%s\": rc %d, want %d", rows[i].v, rc, rows[i].rc);
        if (rc)
            continue;
        assert_int_equal(in.sampled, rows[i].sampled);
        assert_int_equal(in.has_span, rows[i].has_span);
        assert_int_equal(in.debug, rows[i].debug);
        assert_int_equal(in.trace_id_64, rows[i].id64);
        if (rows[i].tid) {
            char t[33];
            hex_of(in.trace_id, 16, t);
            assert_string_equal(t, rows[i].tid);
        }
    }
}

#define F(n, v) http_field_of(n, v)

static void test_b3_multi_forms(void **state)
{
    (void)state;
    struct {
        struct http_field f[5];
        size_t n;
        int rc, sampled;
        bool debug;
    } rows[] = {
        {{F("X-B3-TraceId", TID), F("X-B3-SpanId", SID)}, 2, 0, -1, false},
        {{F("x-b3-traceid", TID), F("x-b3-spanid", SID), F("x-b3-sampled", "1")}, 3, 0, 1, false},
        {{F("x-b3-traceid", TID), F("x-b3-spanid", SID), F("x-b3-sampled", "0")}, 3, 0, 0, false},
        {{F("x-b3-traceid", TID), F("x-b3-spanid", SID), F("x-b3-sampled", "true")},
         3,
         0,
         1,
         false},
        {{F("x-b3-traceid", TID), F("x-b3-spanid", SID), F("x-b3-sampled", "false")},
         3,
         0,
         0,
         false},
        {{F("x-b3-traceid", TID), F("x-b3-spanid", SID), F("x-b3-flags", "1")}, 3, 0, 1, true},
        {{F("x-b3-traceid", "a3ce929d0e0e4736"), F("x-b3-spanid", SID),
          F("x-b3-parentspanid", "05e3ac9a4f6e3b90")},
         3,
         0,
         -1,
         false},
        {{F("x-b3-spanid", SID)}, 1, -ENOENT, 0, false},
        {{F("x-b3-traceid", TID)}, 1, -EINVAL, 0, false},                          /* no span */
        {{F("x-b3-traceid", TID), F("x-b3-spanid", "abc")}, 2, -EINVAL, 0, false}, /* short span */
        {{F("x-b3-traceid", "abc"), F("x-b3-spanid", SID)}, 2, -EINVAL, 0, false},
        {{F("x-b3-traceid", TID), F("x-b3-spanid", SID), F("x-b3-sampled", "d")},
         3,
         -EINVAL,
         0,
         false},
        {{F("x-b3-traceid", TID), F("x-b3-spanid", SID), F("x-b3-sampled", "yes")},
         3,
         -EINVAL,
         0,
         false},
        {{F("x-b3-traceid", TID), F("x-b3-spanid", SID), F("x-b3-parentspanid", "0")},
         3,
         -EINVAL,
         0,
         false},
        {{F("x-b3-traceid", "00000000000000000000000000000000"), F("x-b3-spanid", SID)},
         2,
         -EINVAL,
         0,
         false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct trace_incoming in;
        int rc = trace_parse_b3_multi(rows[i].f, rows[i].n, &in);
        if (rc != rows[i].rc)
            fail_msg("row %zu: rc %d, want %d", i, rc, rows[i].rc);
        if (rc)
            continue;
        assert_int_equal(in.sampled, rows[i].sampled);
        assert_int_equal(in.debug, rows[i].debug);
        char s[17];
        hex_of(in.span_id, 8, s);
        assert_string_equal(s, SID);
    }
}

static void test_extract_prefers_a_valid_traceparent_then_b3(void **state)
{
    (void)state;
    struct trace_incoming in;
    struct http_field both[] = {F("x-b3-traceid", "a3ce929d0e0e4736"), F("x-b3-spanid", SID),
                                F("traceparent", "00-" TID "-" SID "-01")};
    trace_extract(both, 3, &in);
    assert_int_equal(in.format, TRACE_W3C);
    struct http_field bad_w3c[] = {F("traceparent", "00-zz-" SID "-01"), F("b3", TID "-" SID "-0")};
    trace_extract(bad_w3c, 2, &in);
    assert_int_equal(in.format, TRACE_B3_SINGLE);
    assert_int_equal(in.sampled, 0);
    struct http_field bad_all[] = {F("traceparent", "junk"), F("b3", "junk"),
                                   F("x-b3-traceid", "junk")};
    trace_extract(bad_all, 3, &in);
    assert_int_equal(in.format, TRACE_NONE);
    assert_int_equal(in.sampled, -1);
    trace_extract(NULL, 0, &in);
    assert_int_equal(in.format, TRACE_NONE);
}

static void test_decision_in_context_is_honoured_else_percentage(void **state)
{
    (void)state;
    struct trace_incoming yes = {.sampled = 1}, no = {.sampled = 0}, none = {.sampled = -1};
    for (int i = 0; i < 100; i++) {
        assert_true(trace_decide(&yes, 0));
        assert_false(trace_decide(&no, 1000000));
        assert_true(trace_decide(&none, 1000000));
        assert_false(trace_decide(&none, 0));
    }
    int hits = 0;
    for (int i = 0; i < 10000; i++)
        hits += trace_decide(&none, 100000); /* 10% */
    assert_in_range(hits, 700, 1300);
}

static const char *field(const struct http_field *f, size_t n, const char *name)
{
    return http_field_get(f, n, name);
}

static void test_fields_upstream_carry_our_span_as_parent(void **state)
{
    (void)state;
    struct http_field f[16] = {F("host", "b"), F("traceparent", "00-" TID "-" SID "-01"),
                               F("tracestate", "vendor=x"), F("x-request-id", "rid")};
    struct trace_incoming in;
    trace_extract(f, 4, &in);
    struct trace_span s;
    trace_span_begin(&s, &in, trace_decide(&in, 0), false, 1);
    assert_true(s.has_parent);
    struct trace_out buf;
    size_t n = trace_fields(&s, f, 4, 16, &buf);
    assert_int_equal(n, 4);
    char sid[17], want[64];
    hex_of(s.span_id, 8, sid);
    assert_string_not_equal(sid, SID);
    snprintf(want, sizeof(want), "00-%s-%s-01", TID, sid);
    assert_string_equal(field(f, n, "traceparent"), want);
    assert_string_equal(field(f, n, "tracestate"), "vendor=x");
    assert_string_equal(field(f, n, "x-request-id"), "rid");
    assert_null(field(f, n, "x-b3-traceid"));
    assert_null(field(f, n, "b3"));
    char parent[17];
    hex_of(s.parent_id, 8, parent);
    assert_string_equal(parent, SID);
}

static void test_fields_rewrite_b3_multi_and_keep_64_bit_ids(void **state)
{
    (void)state;
    struct http_field f[16] = {F("x-b3-traceid", "a3ce929d0e0e4736"),
                               F("x-b3-spanid", SID),
                               F("x-b3-parentspanid", "05e3ac9a4f6e3b90"),
                               F("x-b3-sampled", "0"),
                               F("x-b3-flags", "0"),
                               F("tracestate", "stale=1")};
    struct trace_incoming in;
    trace_extract(f, 6, &in);
    assert_int_equal(in.format, TRACE_B3_MULTI);
    struct trace_span s;
    trace_span_begin(&s, &in, trace_decide(&in, 1000000), true, 1);
    assert_false(s.sampled); /* the incoming 0 wins over 100% */
    struct trace_out buf;
    size_t n = trace_fields(&s, f, 6, 16, &buf);
    char sid[17], want[64];
    hex_of(s.span_id, 8, sid);
    assert_string_equal(field(f, n, "x-b3-traceid"), "a3ce929d0e0e4736");
    assert_string_equal(field(f, n, "x-b3-spanid"), sid);
    assert_string_equal(field(f, n, "x-b3-parentspanid"), SID);
    assert_string_equal(field(f, n, "x-b3-sampled"), "0");
    assert_string_equal(field(f, n, "x-b3-flags"), "0");
    assert_null(field(f, n, "tracestate")); /* no valid traceparent: dropped */
    snprintf(want, sizeof(want), "00-0000000000000000a3ce929d0e0e4736-%s-00", sid);
    assert_string_equal(field(f, n, "traceparent"), want);
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += strcasecmp(f[i].name, "x-b3-spanid") == 0;
    assert_int_equal(count, 1);
}

static void test_both_forms_in_both_rewritten_out(void **state)
{
    (void)state;
    /* what a destination receives from a source that got B3: traceparent
     * (128-bit, zero-padded) and the x-b3-* of the same 64-bit trace */
    struct http_field f[16] = {F("traceparent", "00-0000000000000000a3ce929d0e0e4736-" SID "-01"),
                               F("x-b3-traceid", "a3ce929d0e0e4736"), F("x-b3-spanid", SID),
                               F("x-b3-sampled", "1")};
    struct trace_incoming in;
    trace_extract(f, 4, &in);
    assert_int_equal(in.format, TRACE_W3C);
    assert_true(in.b3_multi);
    assert_true(in.trace_id_64);
    struct trace_span s;
    trace_span_begin(&s, &in, trace_decide(&in, 0), true, 1);
    struct trace_out buf;
    size_t n = trace_fields(&s, f, 4, 16, &buf);
    char sid[17];
    hex_of(s.span_id, 8, sid);
    assert_string_equal(field(f, n, "x-b3-traceid"), "a3ce929d0e0e4736");
    assert_string_equal(field(f, n, "x-b3-spanid"), sid);
    assert_string_equal(field(f, n, "x-b3-sampled"), "1");
    assert_non_null(strstr(field(f, n, "traceparent"), sid));
    assert_int_equal(n, 5); /* traceparent + 4 x-b3-* (parent included) */
}

static void test_fields_rewrite_b3_single(void **state)
{
    (void)state;
    struct http_field f[8] = {F("b3", TID "-" SID "-1")};
    struct trace_incoming in;
    trace_extract(f, 1, &in);
    struct trace_span s;
    trace_span_begin(&s, &in, trace_decide(&in, 0), false, 1);
    struct trace_out buf;
    size_t n = trace_fields(&s, f, 1, 8, &buf);
    char sid[17], want[96];
    hex_of(s.span_id, 8, sid);
    snprintf(want, sizeof(want), "%s-%s-1-%s", TID, sid, SID);
    assert_string_equal(field(f, n, "b3"), want);
    assert_int_equal(n, 2);
}

static void test_new_trace_without_context_and_inactive_span_untouched(void **state)
{
    (void)state;
    struct http_field f[4] = {F("host", "a")};
    struct trace_span s;
    trace_span_begin(&s, NULL, true, false, 1);
    assert_false(s.has_parent);
    struct trace_out buf;
    size_t n = trace_fields(&s, f, 1, 4, &buf);
    assert_int_equal(n, 2);
    const char *tp = field(f, n, "traceparent");
    assert_non_null(tp);
    struct trace_incoming back;
    assert_int_equal(trace_parse_traceparent(tp, &back), 0);
    assert_memory_equal(back.trace_id, s.trace_id, 16);
    assert_int_equal(back.sampled, 1);
    /* inactive: nothing changes, even a client's traceparent passes */
    struct http_field g[4] = {F("traceparent", "junk")};
    struct trace_span off = {0};
    assert_int_equal(trace_fields(&off, g, 1, 4, &buf), 1);
    assert_string_equal(g[0].value, "junk");
    /* full list: no overflow past cap */
    struct http_field h[2] = {F("a", "1"), F("b", "2")};
    assert_int_equal(trace_fields(&s, h, 2, 2, &buf), 2);
}

static void test_custom_tags_bounded(void **state)
{
    (void)state;
    struct trace_span s;
    trace_span_begin(&s, NULL, true, false, 1);
    assert_true(trace_span_tag(&s, "k", "v"));
    char big[400];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_true(trace_span_tag(&s, "big", big));
    assert_false(trace_span_tag(&s, "big2", big)); /* past 512 bytes */
    assert_int_equal(s.ntags, 2);
    assert_string_equal(s.tags, "k");
    assert_string_equal(s.tags + 2, "v");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traceparent_valid_forms_give_ids_and_flag),
        cmocka_unit_test(test_traceparent_every_malformed_form_is_refused),
        cmocka_unit_test(test_b3_single_forms),
        cmocka_unit_test(test_b3_multi_forms),
        cmocka_unit_test(test_extract_prefers_a_valid_traceparent_then_b3),
        cmocka_unit_test(test_decision_in_context_is_honoured_else_percentage),
        cmocka_unit_test(test_fields_upstream_carry_our_span_as_parent),
        cmocka_unit_test(test_fields_rewrite_b3_multi_and_keep_64_bit_ids),
        cmocka_unit_test(test_both_forms_in_both_rewritten_out),
        cmocka_unit_test(test_fields_rewrite_b3_single),
        cmocka_unit_test(test_new_trace_without_context_and_inactive_span_untouched),
        cmocka_unit_test(test_custom_tags_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
