/* meshctl dashboard jaeger's collector store (tools/meshctl/traces.c):
 * OTLP/HTTP JSON exports validated span by span (malformed documents
 * refused whole, invalid spans rejected and counted, the rest kept), the
 * store's bound (the oldest evicted and counted), and the queries: search
 * by service, minimum duration and latest N; one trace's spans in order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../tools/meshctl/traces.h"

#define TRACE_A "4bf92f3577b34da6a3ce929d0e0e4736"
#define TRACE_B "0af7651916cd43dd8448eb211c80319c"

/* One export of one span of `service` (start and end in ns, as strings). */
static char *export1(const char *service, const char *trace, const char *span, const char *parent,
                     const char *start, const char *end, const char *extra)
{
    char *out;
    int n = asprintf(&out,
                     "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
                     "\"value\":{\"stringValue\":\"%s\"}}]},\"scopeSpans\":[{\"spans\":[{"
                     "\"traceId\":\"%s\",\"spanId\":\"%s\",\"parentSpanId\":\"%s\",\"name\":\"op\","
                     "\"kind\":2,\"startTimeUnixNano\":%s,\"endTimeUnixNano\":%s%s}]}]}]}",
                     service, trace, span, parent, start, end, extra);
    assert_true(n > 0);
    return out;
}

static int ingest(struct trace_store *s, const char *body, size_t *rejected)
{
    char err[256];
    return trace_store_ingest(s, body, strlen(body), rejected, err, sizeof(err));
}

static void span_is_kept_with_its_attributes(void **state)
{
    struct trace_store *s;
    assert_int_equal(trace_store_new(10, &s), 0);
    char *body = export1("gateway", TRACE_A, "B7AD6B7169203331", "", "\"1000\"", "\"5000\"",
                         ",\"status\":{\"code\":2},\"attributes\":["
                         "{\"key\":\"http.method\",\"value\":{\"stringValue\":\"GET\"}},"
                         "{\"key\":\"http.status_code\",\"value\":{\"intValue\":\"503\"}},"
                         "{\"key\":\"sampled\",\"value\":{\"boolValue\":true}},"
                         "{\"key\":\"ratio\",\"value\":{\"doubleValue\":0.5}},"
                         "{\"key\":\"array\",\"value\":{\"arrayValue\":{}}}]");
    size_t rejected;
    assert_int_equal(ingest(s, body, &rejected), 1);
    assert_int_equal(rejected, 0);
    json_t *t = trace_store_get(s, TRACE_A);
    json_t *sp = json_array_get(json_object_get(t, "spans"), 0);
    assert_string_equal(json_string_value(json_object_get(sp, "spanId")), "b7ad6b7169203331");
    assert_string_equal(json_string_value(json_object_get(sp, "service")), "gateway");
    assert_string_equal(json_string_value(json_object_get(sp, "startUnixNano")), "1000");
    assert_float_equal(json_real_value(json_object_get(sp, "durationUs")), 4.0, 1e-9);
    assert_true(json_is_true(json_object_get(sp, "error")));
    json_t *a = json_object_get(sp, "attributes");
    assert_string_equal(json_string_value(json_object_get(a, "http.method")), "GET");
    assert_int_equal(json_integer_value(json_object_get(a, "http.status_code")), 503);
    assert_true(json_is_true(json_object_get(a, "sampled")));
    assert_float_equal(json_real_value(json_object_get(a, "ratio")), 0.5, 0);
    assert_null(json_object_get(a, "array")); /* a kind the page does not show */
    json_decref(t);
    free(body);
    trace_store_free(s);
}

struct bad_span {
    const char *name, *trace, *span, *parent, *start, *end;
};

static const struct bad_span bad_spans[] = {
    {"an all-zero trace id", "00000000000000000000000000000000", "b7ad6b7169203331", "", "\"1\"",
     "\"2\""},
    {"a trace id of 31 digits", "4bf92f3577b34da6a3ce929d0e0e473", "b7ad6b7169203331", "", "\"1\"",
     "\"2\""},
    {"a span id that is not hex", TRACE_A, "b7ad6b716920333z", "", "\"1\"", "\"2\""},
    {"a parent id of the wrong length", TRACE_A, "b7ad6b7169203331", "abc", "\"1\"", "\"2\""},
    {"an end before the start", TRACE_A, "b7ad6b7169203331", "", "\"5\"", "\"2\""},
    {"a time that is not a number", TRACE_A, "b7ad6b7169203331", "", "\"12x\"", "\"20\""},
    {"a time past uint64", TRACE_A, "b7ad6b7169203331", "", "\"99999999999999999999\"",
     "\"99999999999999999999\""},
    {"a negative time", TRACE_A, "b7ad6b7169203331", "", "-1", "2"},
};

static void invalid_spans_are_rejected_and_counted(void **state)
{
    struct trace_store *s;
    assert_int_equal(trace_store_new(10, &s), 0);
    for (size_t i = 0; i < sizeof(bad_spans) / sizeof(bad_spans[0]); i++) {
        const struct bad_span *b = &bad_spans[i];
        print_message("  %s\n", b->name);
        char *body = export1("svc", b->trace, b->span, b->parent, b->start, b->end, "");
        size_t rejected;
        assert_int_equal(ingest(s, body, &rejected), 0);
        assert_int_equal(rejected, 1);
        free(body);
    }
    struct trace_stats st;
    trace_store_stats(s, &st);
    assert_int_equal(st.rejected, sizeof(bad_spans) / sizeof(bad_spans[0]));
    assert_int_equal(st.stored, 0);
    /* Numbers are accepted for times too (not only OTLP JSON's strings). */
    char *ok = export1("svc", TRACE_A, "b7ad6b7169203331", "", "1", "2", "");
    size_t rejected;
    assert_int_equal(ingest(s, ok, &rejected), 1);
    free(ok);
    trace_store_free(s);
}

static void malformed_documents_are_refused_whole(void **state)
{
    static const char *const docs[] = {
        "",
        "not json",
        "[]",
        "{\"resourceSpans\": 5}",
        "{\"resourceSpans\": [], \"resourceSpans\": []}", /* duplicate keys */
    };
    struct trace_store *s;
    assert_int_equal(trace_store_new(10, &s), 0);
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        size_t rejected;
        assert_int_equal(ingest(s, docs[i], &rejected), -EINVAL);
    }
    /* Shapes inside that are not spans: nothing kept, nothing crashes. */
    size_t rejected;
    assert_int_equal(
        ingest(s, "{\"resourceSpans\":[5,{\"scopeSpans\":[{\"spans\":[7]}]}]}", &rejected), 0);
    assert_int_equal(rejected, 1);
    trace_store_free(s);
}

static void an_export_past_the_span_bound_is_refused(void **state)
{
    size_t n = TRACE_MAX_SPANS_EXPORT + 1, cap = n * 8 + 256;
    char *body = malloc(cap), *p = body;
    p += sprintf(p, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s{}", i ? "," : "");
    sprintf(p, "]}]}]}");
    struct trace_store *s;
    assert_int_equal(trace_store_new(10, &s), 0);
    size_t rejected;
    assert_int_equal(ingest(s, body, &rejected), -E2BIG);
    struct trace_stats st;
    trace_store_stats(s, &st);
    assert_int_equal(st.received, 0);
    free(body);
    trace_store_free(s);
}

static void the_oldest_spans_are_evicted_past_capacity(void **state)
{
    struct trace_store *s;
    assert_int_equal(trace_store_new(3, &s), 0);
    for (int i = 0; i < 5; i++) {
        char trace[33], start[16], end[16];
        snprintf(trace, sizeof(trace), "%032x", i + 1);
        snprintf(start, sizeof(start), "\"%d\"", (i + 1) * 1000);
        snprintf(end, sizeof(end), "\"%d\"", (i + 1) * 1000 + 500);
        char *body = export1("svc", trace, "b7ad6b7169203331", "", start, end, "");
        size_t rejected;
        assert_int_equal(ingest(s, body, &rejected), 1);
        free(body);
    }
    struct trace_stats st;
    trace_store_stats(s, &st);
    assert_int_equal(st.stored, 5);
    assert_int_equal(st.evicted, 2);
    assert_null(trace_store_get(s, "00000000000000000000000000000001"));
    json_t *r = trace_store_search(s, NULL, 0, 10);
    assert_int_equal(json_array_size(r), 3);
    /* Newest first. */
    assert_string_equal(json_string_value(json_object_get(json_array_get(r, 0), "traceId")),
                        "00000000000000000000000000000005");
    json_decref(r);
    r = trace_store_search(s, NULL, 0, 1); /* latest N */
    assert_int_equal(json_array_size(r), 1);
    json_decref(r);
    trace_store_free(s);
}

/* gateway -> A -> B, sent child first, plus another trace of service c. */
static struct trace_store *three_services(void)
{
    struct trace_store *s;
    assert_int_equal(trace_store_new(100, &s), 0);
    char *bodies[4] = {
        export1("b", TRACE_A, "00f067aa0ba902b9", "53995c3f42cd8ad8", "\"3000\"", "\"4000\"", ""),
        export1("gateway", TRACE_A, "b7ad6b7169203331", "", "\"1000\"", "\"9000\"", ""),
        export1("a", TRACE_A, "53995c3f42cd8ad8", "b7ad6b7169203331", "\"2000\"", "\"6000\"", ""),
        export1("c", TRACE_B, "1111111111111111", "", "\"20000\"", "\"21000\"", ""),
    };
    for (int i = 0; i < 4; i++) {
        size_t rejected;
        assert_int_equal(ingest(s, bodies[i], &rejected), 1);
        free(bodies[i]);
    }
    return s;
}

static void a_trace_comes_back_in_start_order(void **state)
{
    struct trace_store *s = three_services();
    json_t *t = trace_store_get(s, TRACE_A);
    json_t *spans = json_object_get(t, "spans");
    assert_int_equal(json_array_size(spans), 3);
    const char *order[3] = {"gateway", "a", "b"};
    for (int i = 0; i < 3; i++)
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(spans, (size_t)i), "service")),
            order[i]);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(spans, 1), "parentSpanId")),
        "b7ad6b7169203331");
    json_decref(t);
    trace_store_free(s);
}

struct search_case {
    const char *name, *service;
    uint64_t min_us;
    size_t n;
    const char *first;
};

static const struct search_case searches[] = {
    {"any service: both, newest first", NULL, 0, 2, TRACE_B},
    {"a service inside a trace finds the whole trace", "b", 0, 1, TRACE_A},
    {"an unknown service: none", "nope", 0, 0, NULL},
    {"min duration: only the 8 us trace", NULL, 5, 1, TRACE_A},
    {"min duration past every trace: none", NULL, 9, 0, NULL},
};

static void search_by_service_and_duration(void **state)
{
    struct trace_store *s = three_services();
    for (size_t i = 0; i < sizeof(searches) / sizeof(searches[0]); i++) {
        const struct search_case *c = &searches[i];
        print_message("  %s\n", c->name);
        json_t *r = trace_store_search(s, c->service, c->min_us, 20);
        assert_int_equal(json_array_size(r), c->n);
        if (c->first) {
            json_t *t = json_array_get(r, 0);
            assert_string_equal(json_string_value(json_object_get(t, "traceId")), c->first);
        }
        json_decref(r);
    }
    json_t *r = trace_store_search(s, "a", 0, 20);
    json_t *t = json_array_get(r, 0);
    assert_string_equal(json_string_value(json_object_get(t, "service")), "gateway"); /* root */
    assert_int_equal(json_integer_value(json_object_get(t, "spans")), 3);
    assert_float_equal(json_real_value(json_object_get(t, "durationUs")), 8.0, 1e-9);
    json_decref(r);
    json_t *svcs = trace_store_services(s);
    assert_int_equal(json_array_size(svcs), 4);
    json_decref(svcs);
    trace_store_free(s);
}

static void capacity_is_bounded(void **state)
{
    struct trace_store *s = NULL;
    assert_int_equal(trace_store_new(0, &s), -EINVAL);
    assert_int_equal(trace_store_new(2000000, &s), -EINVAL);
    trace_store_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(span_is_kept_with_its_attributes),
        cmocka_unit_test(invalid_spans_are_rejected_and_counted),
        cmocka_unit_test(malformed_documents_are_refused_whole),
        cmocka_unit_test(an_export_past_the_span_bound_is_refused),
        cmocka_unit_test(the_oldest_spans_are_evicted_past_capacity),
        cmocka_unit_test(a_trace_comes_back_in_start_order),
        cmocka_unit_test(search_by_service_and_duration),
        cmocka_unit_test(capacity_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
