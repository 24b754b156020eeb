/* The HTTP carrier at the destination (http_session_start_inbound, on
 * tests/unit/support/hp_fixture.h's loop, the scripted upstream as the
 * app): the source's routing policy is not applied a second time. An
 * app's own retriable status (503, Istio's default retriable status; a
 * 5xx under a route's retries) reaches the client as the app sent it, on
 * the same app connection, with no response flag, and the next request
 * on the connection is served; a route's timeout does not cut a slow app
 * (the source's, or a waypoint's, timeouts govern). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "support/hp_fixture.h"

#define REQ(path) "GET " path " HTTP/1.1\r\nHost: svc\r\nx-request-id: r1\r\n\r\n"
#define R200      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
#define R503      "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"
#define R500      "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\n\r\nerr"
#define R502      "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 2\r\n\r\ngw"
#define MS        1000000ull

static void app_status_passed_through_not_retried(void **state)
{
    (void)state;
    static const struct cfg_http_route retry_5xx = {
        .retries = {.set = true, .attempts = 3, .retry_on = CFG_RETRY_5XX}};
    static const struct cfg_http_route retry_gw = {
        .retries = {.set = true, .attempts = 3, .retry_on = CFG_RETRY_GATEWAY_ERROR}};
    static const struct {
        const char *name;
        const struct cfg_http_route *actions; /* NULL: Istio's default policy */
        const char *resp;
        int status;
    } rows[] = {
        {"default policy, 503", NULL, R503, 503},
        {"retries on 5xx, 500", &retry_5xx, R500, 500},
        {"retries on gateway-error, 502", &retry_gw, R502, 502},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("row: %s\n", rows[i].name);
        struct hpf *f = hpf_new(0);
        hpf_plan(f, (struct hpf_plan[]){{.kind = HPF_FORWARD, .actions = rows[i].actions}}, 1);
        hpf_script(f, (struct hpf_step[]){{.send = rows[i].resp}, {.send = R200}}, 2);
        assert_int_equal(hpf_session_inbound(f, 0), 0);
        hpf_send(f, REQ("/status/x"));
        hpf_expect(f, rows[i].resp); /* the app's bytes, not a local reply */
        hpf_send(f, REQ("/ok"));
        hpf_expect(f, R200);
        /* One app connection, asked each request once. */
        assert_int_equal(f->accepts, 1);
        assert_string_equal(hpf_up_rx(f, 0), REQ("/status/x") REQ("/ok"));
        assert_int_equal(f->routes, 2);
        assert_int_equal(f->nreports, 2);
        assert_int_equal(f->reports[0].status, rows[i].status);
        assert_string_equal(f->reports[0].flags, "-");
        assert_int_equal(f->reports[1].status, 200);
        assert_string_equal(f->reports[1].flags, "-");
        close(f->client);
        f->client = -1;
        hpf_wait_count(f, &f->nclosed, 1);
        assert_int_equal(f->nclosed, 1);
        hpf_free(f);
    }
}

/* A route's timeout is the source's to apply: a slow app is waited for. */
static void route_timeout_not_applied(void **state)
{
    (void)state;
    static const struct cfg_http_route t = {
        .timeout_ns = 100 * MS,
        .retries = {.set = true, .attempts = 2, .per_try_timeout_ns = 50 * MS}};
    struct hpf *f = hpf_new(0);
    hpf_plan(f, (struct hpf_plan[]){{.kind = HPF_FORWARD, .actions = &t}}, 1);
    hpf_script(f, (struct hpf_step[]){{.send = NULL}}, 1); /* the app takes its time */
    assert_int_equal(hpf_session_inbound(f, 0), 0);
    hpf_send(f, REQ("/slow"));
    hpf_spin(f, 300);
    assert_int_equal(f->cli_len, 0); /* no local 504 */
    assert_false(f->cli_eof);
    assert_int_equal(f->accepts, 1);
    assert_int_equal(f->routes, 1);
    assert_int_equal(f->nreports, 0);
    hpf_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(app_status_passed_through_not_retried),
        cmocka_unit_test(route_timeout_not_applied),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
