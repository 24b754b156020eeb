/* The admin/metrics HTTP request parser (agent/admin/http.c): what it
 * accepts and the status it answers to everything else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "admin/http.h"

static void request_parser_table(void **state)
{
    static const struct {
        const char *head;
        int status;
        const char *path, *query;
    } rows[] = {
        {"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 0, "/metrics", ""},
        {"GET /stats/prometheus HTTP/1.0\r\n\r\n", 0, "/stats/prometheus", ""},
        {"POST /logging?level=debug HTTP/1.1\r\n\r\n", 0, "/logging", "level=debug"},
        {"HEAD /healthz/ready HTTP/1.1\r\n\r\n", 0, "/healthz/ready", ""},
        {"DELETE /config_dump HTTP/1.1\r\n\r\n", 405, NULL, NULL},
        {"BREW /pot HTTP/1.1\r\n\r\n", 405, NULL, NULL},
        {"GET metrics HTTP/1.1\r\n\r\n", 400, NULL, NULL},
        {"GET /metrics\r\n\r\n", 400, NULL, NULL},
        {"GET /metrics SPDY/3\r\n\r\n", 400, NULL, NULL},
        {"GET /a\x01b HTTP/1.1\r\n\r\n", 400, NULL, NULL},
        {"\r\n\r\n", 400, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char m[8], p[64], q[64];
        int st = http_parse_request(rows[i].head, strlen(rows[i].head), m, sizeof(m), p, sizeof(p),
                                    q, sizeof(q));
        assert_int_equal(st, rows[i].status);
        if (st == 0) {
            assert_string_equal(p, rows[i].path);
            assert_string_equal(q, rows[i].query);
        }
    }
}

static void overlong_targets_and_heads_are_refused(void **state)
{
    char head[HTTP_MAX_HEAD + 64], m[8], p[64], q[64];
    snprintf(head, sizeof(head), "GET /%0100d HTTP/1.1\r\n\r\n", 0);
    assert_int_equal(
        http_parse_request(head, strlen(head), m, sizeof(m), p, sizeof(p), q, sizeof(q)), 414);
    memset(head, 'A', HTTP_MAX_HEAD);
    assert_int_equal(
        http_parse_request(head, HTTP_MAX_HEAD, m, sizeof(m), p, sizeof(p), q, sizeof(q)), 431);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_parser_table),
        cmocka_unit_test(overlong_targets_and_heads_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
