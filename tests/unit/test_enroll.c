/* Pod references and the records ring: the enrollment-side logic that needs
 * no kernel (agent/enroll/pods.c, agent/proxy/records.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "enroll/pods.h"
#include "proxy/records.h"

static void pod_ref_accepts_kubernetes_names(void **state)
{
    char ns[POD_NS_MAX + 1], name[POD_NAME_MAX + 1];
    assert_int_equal(pods_parse_ref("default/payments-v1-7d9f", ns, name), 0);
    assert_string_equal(ns, "default");
    assert_string_equal(name, "payments-v1-7d9f");
    assert_int_equal(pods_parse_ref("istio-system/ztunnel.abc", ns, name), 0);
    assert_string_equal(name, "ztunnel.abc");
}

static void pod_ref_rejects_bad_names(void **state)
{
    char ns[POD_NS_MAX + 1], name[POD_NAME_MAX + 1];
    char long_ns[80], long_name[300];
    memset(long_ns, 'a', sizeof(long_ns) - 1);
    long_ns[sizeof(long_ns) - 1] = '\0';
    memset(long_name, 'b', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    char ref1[400], ref2[400];
    snprintf(ref1, sizeof(ref1), "%s/pod", long_ns);
    snprintf(ref2, sizeof(ref2), "ns/%s", long_name);
    const char *bad[] = {"",        "/",           "default",     "default/",
                         "/pod",    "Default/pod", "default/Pod", "-ns/pod",
                         "ns-/pod", "ns/pod-",     "ns/.pod",     "ns.x/pod",
                         "ns/po d", "ns/pod/x",    "../etc/pod",  "ns/p\xc3\xa9",
                         ref1,      ref2};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pods_parse_ref(bad[i], ns, name), -EINVAL);
}

static void records_ring_keeps_the_newest(void **state)
{
    struct records *r;
    assert_int_equal(records_new(3, &r), 0);
    assert_null(records_get(r, 0));
    for (uint64_t id = 1; id <= 5; id++) {
        struct conn_record rec = {.id = id};
        records_push(r, &rec);
    }
    assert_int_equal(records_count(r), 3);
    assert_int_equal(records_get(r, 0)->id, 3);
    assert_int_equal(records_get(r, 2)->id, 5);
    assert_null(records_get(r, 3));
    records_free(r);
}

static void records_reject_zero_capacity(void **state)
{
    struct records *r = NULL;
    assert_int_equal(records_new(0, &r), -EINVAL);
    assert_null(r);
    records_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pod_ref_accepts_kubernetes_names),
        cmocka_unit_test(pod_ref_rejects_bad_names),
        cmocka_unit_test(records_ring_keeps_the_newest),
        cmocka_unit_test(records_reject_zero_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
