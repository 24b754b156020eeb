/* The control socket (agent/admin/admin.c): request dispatch, including
 * hostile input (malformed JSON, wrong types, unknown commands), and the
 * socket itself: clients holding every place idle do not lock meshctl
 * out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/reqserver.h"
#include "core/log.h"
#include "core/loop.h"

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

struct server {
    struct loop *loop;
    atomic_bool stop;
};

static void *serve(void *arg)
{
    struct server *s = arg;
    while (!atomic_load(&s->stop))
        loop_run_once(s->loop, 20);
    return NULL;
}

static int connect_unix(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    return fd;
}

static void idle_clients_do_not_lock_out_the_control_socket(void **state)
{
    char dir[] = "/tmp/meshd-test-admin-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/admin.sock", dir);
    struct server s = {0};
    struct admin *a;
    assert_int_equal(loop_new(&s.loop), 0);
    assert_int_equal(admin_new(s.loop, path, cmds, 1, &a), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, serve, &s), 0);
    /* More idle clients than places, never sending a byte. */
    int idle[ADMIN_MAX_CLIENTS + 8];
    for (size_t i = 0; i < sizeof(idle) / sizeof(idle[0]); i++)
        idle[i] = connect_unix(path);
    usleep(100 * 1000);
    int fd = connect_unix(path);
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    static const char req[] = "{\"cmd\":\"echo\",\"pod\":\"default/a\"}\n";
    assert_int_equal(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(req) - 1);
    char buf[256] = "";
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    atomic_store(&s.stop, true);
    pthread_join(t, NULL);
    struct reqserver_stats st;
    admin_get_stats(a, &st);
    admin_free(a);
    loop_run_once(s.loop, 0);
    loop_free(s.loop);
    for (size_t i = 0; i < sizeof(idle) / sizeof(idle[0]); i++)
        close(idle[i]);
    rmdir(dir);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "\"ok\":true"));
    /* The 8 over and the fresh client each evicted the oldest idle one. */
    assert_int_equal(st.rejected[REQSERVER_EVICTED], 8 + 1);
    assert_int_equal(st.served, 1);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dispatches_a_known_command),
        cmocka_unit_test(handler_errors_are_reported),
        cmocka_unit_test(bad_requests_get_clear_errors),
        cmocka_unit_test(embedded_nul_is_not_a_valid_request),
        cmocka_unit_test(idle_clients_do_not_lock_out_the_control_socket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
