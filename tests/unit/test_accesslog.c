/* Access-log lines (agent/telemetry/accesslog.c): the JSON form parses
 * and carries every field, the text form is one line, hostile values
 * cannot break either format, and a line never overflows its buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "core/addr.h"
#include "proxy/records.h"
#include "telemetry/accesslog.h"

static struct conn_record sample(void)
{
    struct conn_record r = {.id = 7,
                            .bytes_sent = 78,
                            .bytes_received = 1056,
                            .duration_ms = 12,
                            .start_unix_ms = 1795500000000ull,
                            .state = CONN_CLOSED};
    strcpy(r.direction, "outbound");
    strcpy(r.pod, "default/pod-1-1");
    r.response_flag = RESP_FLAG_NONE;
    addr_parse("127.0.0.1:40000", &r.src);
    addr_parse("10.244.2.11:8080", &r.orig_dst);
    addr_parse("10.244.2.11:15008", &r.hbone);
    strcpy(r.peer_identity, "spiffe://cluster.local/ns/default/sa/sa-2-1");
    return r;
}

static void json_line_parses_with_every_field(void **state)
{
    struct conn_record r = sample();
    char buf[2048];
    size_t n = accesslog_format(&r, ACCESSLOG_JSON, buf, sizeof(buf));
    assert_true(n > 0 && buf[n - 1] == '\n');
    json_error_t err;
    json_t *o = json_loads(buf, 0, &err);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "dst.addr")), "10.244.2.11:8080");
    assert_string_equal(json_string_value(json_object_get(o, "dst.hbone_addr")),
                        "10.244.2.11:15008");
    assert_string_equal(json_string_value(json_object_get(o, "peer.identity")),
                        "spiffe://cluster.local/ns/default/sa/sa-2-1");
    assert_int_equal(json_integer_value(json_object_get(o, "bytes_recv")), 1056);
    assert_true(json_is_null(json_object_get(o, "error")));
    json_decref(o);
}

static void hostile_values_stay_inside_their_fields(void **state)
{
    struct conn_record r = sample();
    strcpy(r.pod, "ns/x\"},\"admin\":true,\n{\"a");
    char buf[2048];
    accesslog_format(&r, ACCESSLOG_JSON, buf, sizeof(buf));
    /* The newline inside the value is escaped: the line ends once. */
    assert_ptr_equal(strchr(buf, '\n'), buf + strlen(buf) - 1);
    json_t *o = json_loads(buf, 0, NULL);
    assert_non_null(o);
    assert_null(json_object_get(o, "admin"));
    assert_string_equal(json_string_value(json_object_get(o, "pod")), r.pod);
    json_decref(o);
}

static void text_line_is_one_line_with_the_error(void **state)
{
    struct conn_record r = sample();
    r.error = 111; /* ECONNREFUSED */
    r.response_flag = RESP_FLAG_UF;
    char buf[2048];
    size_t n = accesslog_format(&r, ACCESSLOG_TEXT, buf, sizeof(buf));
    assert_true(n > 0);
    assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);
    assert_non_null(strstr(buf, "response_flags=UF error=\"Connection refused\""));
    assert_non_null(strstr(buf, "dst.hbone_addr=10.244.2.11:15008"));
}

static void a_small_buffer_is_never_overrun(void **state)
{
    struct conn_record r = sample();
    char buf[40];
    memset(buf, 'x', sizeof(buf));
    size_t n = accesslog_format(&r, ACCESSLOG_TEXT, buf, sizeof(buf));
    assert_true(n < sizeof(buf));
    assert_int_equal(buf[n], '\0');
    n = accesslog_format(&r, ACCESSLOG_JSON, buf, sizeof(buf));
    assert_true(n < sizeof(buf));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_line_parses_with_every_field),
        cmocka_unit_test(hostile_values_stay_inside_their_fields),
        cmocka_unit_test(text_line_is_one_line_with_the_error),
        cmocka_unit_test(a_small_buffer_is_never_overrun),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
