/* The Kubernetes API's responses (agent/kube/stream.c) and the watchers'
 * backoff (agent/kube/backoff.c): a chunked watch stream cut anywhere
 * (every split of the bytes, one byte at a time) yields the same events;
 * a line past its bound, a list past its bound, an error body past 64 KiB
 * and bytes that are not HTTP fail with their errors; a stream cut
 * mid-chunk is told apart from one the server ended; events parse with
 * their type, resourceVersion and Status code, and every malformed event
 * is refused; the backoff doubles within [d/2, d] up to its cap and
 * resets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/backoff.h"
#include "kube/stream.h"

#define MAX_LINES 8

struct lines {
    size_t n;
    char v[MAX_LINES][256];
};

static void collect(void *ctx, const char *line, size_t len)
{
    struct lines *l = ctx;
    assert_true(l->n < MAX_LINES);
    assert_int_equal(strlen(line), len);
    snprintf(l->v[l->n++], sizeof(l->v[0]), "%s", line);
}

static const char watch_head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Transfer-Encoding: chunked\r\n\r\n";
/* Two events in two chunks, the second split across chunks, then the end. */
static const char watch_body[] = "17\r\n{\"type\":\"ADDED\",\"a\":1}\n\r\n"
                                 "f\r\n{\"type\":\"DELETE\r\n"
                                 "a\r\nD\",\"b\":2}\n\r\n"
                                 "0\r\n\r\n";

static void test_watch_lines_whatever_the_split(void **state)
{
    (void)state;
    char all[512];
    snprintf(all, sizeof(all), "%s%s", watch_head, watch_body);
    size_t n = strlen(all);
    for (size_t cut = 1; cut < n; cut++) {
        struct lines l = {0};
        struct kube_resp r;
        kube_resp_init(&r, true, 1024, collect, &l);
        assert_int_equal(kube_resp_feed(&r, all, cut), 0);
        assert_int_equal(kube_resp_feed(&r, all + cut, n - cut), 0);
        assert_true(r.complete);
        assert_int_equal(r.status, 200);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.v[0], "{\"type\":\"ADDED\",\"a\":1}");
        assert_string_equal(l.v[1], "{\"type\":\"DELETED\",\"b\":2}");
        assert_int_equal(kube_resp_eof(&r), 0);
        kube_resp_fini(&r);
    }
    struct lines l = {0};
    struct kube_resp r;
    kube_resp_init(&r, true, 1024, collect, &l);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(kube_resp_feed(&r, all + i, 1), 0);
    assert_int_equal(l.n, 2);
    kube_resp_fini(&r);
}

struct bad_case {
    const char *name;
    bool streaming;
    size_t max;
    const char *bytes;
    int feed_err; /* from kube_resp_feed */
    int eof_err;  /* from kube_resp_eof, when the feed succeeded */
};

static void test_responses_refused_or_cut(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"a watch line past its bound", true, 16,
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         "14\r\n01234567890123456789\r\n",
         -EMSGSIZE, 0},
        {"a list past its bound", false, 8,
         "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{\"items\":[]}", -EMSGSIZE, 0},
        {"not HTTP", false, 1024, "SSH-2.0-OpenSSH_9.2\r\n", -EBADMSG, 0},
        {"a bad chunk size", true, 1024,
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", -EBADMSG, 0},
        {"a watch cut mid-chunk", true, 1024,
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"type\":", 0, -EPIPE},
        {"a list cut short of its length", false, 1024,
         "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"items\":", 0, -EPIPE},
        {"no response at all", false, 1024, "", 0, -EPIPE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct bad_case *c = &cases[i];
        struct lines l = {0};
        struct kube_resp r;
        kube_resp_init(&r, c->streaming, c->max, collect, &l);
        int err = kube_resp_feed(&r, c->bytes, strlen(c->bytes));
        if (err != c->feed_err)
            fail_msg("%s: feed %d, want %d", c->name, err, c->feed_err);
        if (!err && kube_resp_eof(&r) != c->eof_err)
            fail_msg("%s: eof %d, want %d", c->name, kube_resp_eof(&r), c->eof_err);
        if (err) /* the error sticks */
            assert_int_equal(kube_resp_feed(&r, "x", 1), err);
        kube_resp_fini(&r);
    }
}

static void test_error_status_body_kept_and_bounded(void **state)
{
    (void)state;
    const char gone[] = "HTTP/1.1 410 Gone\r\nContent-Length: 17\r\n\r\n{\"reason\":\"Gone\"}";
    struct kube_resp r;
    kube_resp_init(&r, true, 1 << 20, collect, NULL);
    assert_int_equal(kube_resp_feed(&r, gone, strlen(gone)), 0);
    assert_true(r.complete);
    assert_int_equal(r.status, 410);
    size_t len;
    assert_string_equal(kube_resp_body(&r, &len), "{\"reason\":\"Gone\"}");
    assert_int_equal(len, 17);
    kube_resp_fini(&r);
    /* A 500 with a body past 64 KiB, even with a list's large bound. */
    char head[128];
    size_t big = KUBE_RESP_ERROR_BODY + 1;
    snprintf(head, sizeof(head), "HTTP/1.1 500 Oops\r\nContent-Length: %zu\r\n\r\n", big);
    char *body = malloc(big);
    assert_non_null(body);
    memset(body, 'x', big);
    kube_resp_init(&r, false, 64u << 20, NULL, NULL);
    assert_int_equal(kube_resp_feed(&r, head, strlen(head)), 0);
    assert_int_equal(kube_resp_feed(&r, body, big), -EMSGSIZE);
    kube_resp_fini(&r);
    free(body);
}

static void test_a_list_kept_whole(void **state)
{
    (void)state;
    const char list[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "5\r\n{\"a\":\r\n3\r\n[1]\r\n1\r\n}\r\n0\r\n\r\n";
    struct kube_resp r;
    kube_resp_init(&r, false, 64, collect, NULL);
    assert_int_equal(kube_resp_feed(&r, list, strlen(list)), 0);
    size_t len;
    assert_string_equal(kube_resp_body(&r, &len), "{\"a\":[1]}");
    kube_resp_fini(&r);
}

struct event_case {
    const char *line;
    int err;
    enum kube_event_type type;
    const char *rv;
    int code;
};

static void test_events_parsed_or_refused(void **state)
{
    (void)state;
    static const struct event_case cases[] = {
        {"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"12\"}}"
         "}",
         0, KUBE_ADDED, "12", 0},
        {"{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"resourceVersion\":\"13\"}}}", 0,
         KUBE_MODIFIED, "13", 0},
        {"{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"resourceVersion\":\"14\"}}}", 0,
         KUBE_DELETED, "14", 0},
        {"{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"resourceVersion\":"
         "\"99\"}}}",
         0, KUBE_BOOKMARK, "99", 0},
        {"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}"
         "}",
         0, KUBE_ERROR, "", 410},
        {"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\"}}", 0, KUBE_ERROR, "", 500},
        /* refused */
        {"not json", -EBADMSG, 0, "", 0},
        {"{\"type\":\"ADDED\"}", -EBADMSG, 0, "", 0},
        {"{\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}", -EBADMSG, 0, "", 0},
        {"{\"type\":\"RENAMED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}", -EBADMSG,
         0, "", 0},
        {"{\"type\":7,\"object\":{}}", -EBADMSG, 0, "", 0},
        {"{\"type\":\"ADDED\",\"object\":[]}", -EBADMSG, 0, "", 0},
        {"{\"type\":\"ADDED\",\"object\":{\"metadata\":{}}}", -EBADMSG, 0, "", 0},
        {"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1&watch=0\"}}}",
         -EBADMSG, 0, "", 0},
        {"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"\"}}}", -EBADMSG, 0,
         "", 0},
        {"{\"type\":\"ADDED\",\"type\":\"DELETED\",\"object\":{}}", -EBADMSG, 0, "", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct event_case *c = &cases[i];
        struct kube_event ev;
        int err = kube_event_parse(c->line, strlen(c->line), &ev);
        if (err != c->err)
            fail_msg("%s: %d, want %d", c->line, err, c->err);
        if (err) {
            assert_null(ev.object);
            continue;
        }
        assert_int_equal(ev.type, c->type);
        assert_string_equal(ev.rv, c->rv);
        assert_int_equal(ev.code, c->code);
        assert_true(json_is_object(ev.object));
        kube_event_clear(&ev);
    }
    assert_string_equal(kube_event_type_name(KUBE_BOOKMARK), "BOOKMARK");
}

static void test_resource_versions(void **state)
{
    (void)state;
    char longrv[KUBE_RV_MAX + 1];
    memset(longrv, '1', sizeof(longrv) - 1);
    longrv[sizeof(longrv) - 1] = '\0';
    assert_true(kube_rv_valid("123456"));
    assert_true(kube_rv_valid("a.b_c-9"));
    assert_false(kube_rv_valid(""));
    assert_false(kube_rv_valid("1 2"));
    assert_false(kube_rv_valid("1%0d%0a"));
    assert_false(kube_rv_valid(longrv));
}

static void test_backoff_doubles_with_jitter_up_to_its_cap(void **state)
{
    (void)state;
    struct kube_backoff b;
    kube_backoff_init(&b, 200, 8000, 42);
    static const uint32_t ceil[] = {200, 400, 800, 1600, 3200, 6400, 8000, 8000, 8000};
    for (size_t i = 0; i < sizeof(ceil) / sizeof(ceil[0]); i++) {
        uint32_t d = kube_backoff_next(&b);
        if (d < ceil[i] / 2 || d > ceil[i])
            fail_msg("attempt %zu: %u ms outside [%u, %u]", i, d, ceil[i] / 2, ceil[i]);
    }
    kube_backoff_reset(&b);
    uint32_t d = kube_backoff_next(&b);
    assert_true(d >= 100 && d <= 200);
    /* Jitter: two agents with other seeds do not retry in step. */
    struct kube_backoff x, y;
    kube_backoff_init(&x, 200, 8000, 1);
    kube_backoff_init(&y, 200, 8000, 2);
    int same = 0;
    for (int i = 0; i < 10; i++)
        same += kube_backoff_next(&x) == kube_backoff_next(&y);
    assert_true(same < 10);
    /* Degenerate settings stay sane. */
    kube_backoff_init(&b, 0, 0, 0);
    assert_true(kube_backoff_next(&b) <= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_lines_whatever_the_split),
        cmocka_unit_test(test_responses_refused_or_cut),
        cmocka_unit_test(test_error_status_body_kept_and_bounded),
        cmocka_unit_test(test_a_list_kept_whole),
        cmocka_unit_test(test_events_parsed_or_refused),
        cmocka_unit_test(test_resource_versions),
        cmocka_unit_test(test_backoff_doubles_with_jitter_up_to_its_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
