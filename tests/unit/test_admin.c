/* The control socket's request dispatch (agent/admin/admin.c), including
 * hostile input: malformed JSON, wrong types, unknown commands. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "admin/admin.h"

static json_t *echo_pod(void *ctx, const json_t *req, char *err, size_t errlen)
{
    const char *pod = json_string_value(json_object_get(req, "pod"));
    if (!pod) {
        snprintf(err, errlen, "need pod");
        return NULL;
    }
    (*(int *)ctx)++;
    return json_pack("{s:s}", "pod", pod);
}

static int calls;
static const struct admin_command cmds[] = {{"echo", echo_pod, &calls}};

static json_t *run(const char *req)
{
    return admin_dispatch(cmds, 1, req, strlen(req));
}

static void dispatches_a_known_command(void **state)
{
    calls = 0;
    json_t *resp = run("{\"cmd\":\"echo\",\"pod\":\"default/a\"}");
    assert_true(json_is_true(json_object_get(resp, "ok")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(resp, "result"), "pod")),
                        "default/a");
    assert_int_equal(calls, 1);
    json_decref(resp);
}

static void handler_errors_are_reported(void **state)
{
    json_t *resp = run("{\"cmd\":\"echo\"}");
    assert_true(json_is_false(json_object_get(resp, "ok")));
    assert_string_equal(json_string_value(json_object_get(resp, "error")), "need pod");
    json_decref(resp);
}

static void bad_requests_get_clear_errors(void **state)
{
    static const struct {
        const char *req, *error_prefix;
    } cases[] = {
        {"", "bad request:"},
        {"{", "bad request:"},
        {"[1,2]", "bad request: want an object"},
        {"{\"cmd\":7}", "bad request: want an object"},
        {"{\"nocmd\":\"x\"}", "bad request: want an object"},
        {"{\"cmd\":\"echo\",\"cmd\":\"echo\"}", "bad request:"},
        {"{\"cmd\":\"reboot\"}", "unknown command \"reboot\""},
    };
    calls = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *resp = run(cases[i].req);
        assert_non_null(resp);
        assert_true(json_is_false(json_object_get(resp, "ok")));
        const char *err = json_string_value(json_object_get(resp, "error"));
        assert_non_null(err);
        assert_memory_equal(err, cases[i].error_prefix, strlen(cases[i].error_prefix));
        json_decref(resp);
    }
    assert_int_equal(calls, 0);
}

static void embedded_nul_is_not_a_valid_request(void **state)
{
    static const char req[] = "{\"cmd\":\"echo\",\"pod\":\"a\0b\"}";
    json_t *resp = admin_dispatch(cmds, 1, req, sizeof(req) - 1);
    assert_true(json_is_false(json_object_get(resp, "ok")));
    json_decref(resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dispatches_a_known_command),
        cmocka_unit_test(handler_errors_are_reported),
        cmocka_unit_test(bad_requests_get_clear_errors),
        cmocka_unit_test(embedded_nul_is_not_a_valid_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
