/* Node names (`meshd --node`) and their bounded instance names
 * (agent/core/node_name.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/node_name.h"

/* A string of n bytes: labels of `label` 'a's joined by dots. */
static const char *dotted(char *buf, size_t n, size_t label)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (i % (label + 1) == label) ? '.' : 'a';
    if (n && buf[n - 1] == '.')
        buf[n - 1] = 'b';
    buf[n] = '\0';
    return buf;
}

static void accepts_and_refuses_as_kubernetes_does(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        bool valid;
    } cases[] = {
        {"n1", true},
        {"a", true},
        {"0", true},
        {"ip-10-0-0-1.ec2.internal", true},
        {"node-7.eu-west-1.compute.internal", true},
        {"a-b.c-d", true},
        {"1.2.3.4", true},
        {"", false},
        {"Node1", false}, /* upper case */
        {"ip-10-0-0-1.EC2.internal", false},
        {"-a", false}, /* label starts with '-' */
        {"a-", false}, /* label ends with '-' */
        {"a-.b", false},
        {"a.-b", false},
        {".a", false}, /* empty label */
        {"a.", false},
        {"a..b", false},
        {"..", false},
        {".", false},
        {"a/b", false}, /* a path */
        {"../etc", false},
        {"/", false},
        {"a_b", false},
        {"a b", false},
        {"a;rm -rf x", false}, /* shell characters */
        {"$(id)", false},
        {"a`b`", false},
        {"a|b", false},
        {"a*", false},
        {"a\nb", false},
        {"a%2Fb", false},     /* percent-encoding is not a name */
        {"a&b=c", false},     /* would extend the field selector */
        {"n\xc3\xa9", false}, /* non-ASCII */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (node_name_valid(cases[i].name) != cases[i].valid)
            fail_msg("\"%s\": want %s", cases[i].name, cases[i].valid ? "valid" : "invalid");
    }
    assert_false(node_name_valid(NULL));
}

static void bounds_labels_at_63_and_names_at_253(void **state)
{
    (void)state;
    char buf[400];
    static const struct {
        size_t len, label;
        bool valid;
    } cases[] = {
        {63, 63, true},   /* one label of 63 */
        {64, 64, false},  /* one label of 64 */
        {127, 63, true},  /* 63.63 */
        {129, 64, false}, /* 64.64 */
        {253, 63, true},  /* 63.63.63.61: the longest name */
        {254, 63, false}, {300, 63, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *s = dotted(buf, cases[i].len, cases[i].label);
        assert_int_equal(strlen(s), cases[i].len);
        if (node_name_valid(s) != cases[i].valid)
            fail_msg("len %zu label %zu: want %s", cases[i].len, cases[i].label,
                     cases[i].valid ? "valid" : "invalid");
    }
}

static void keeps_short_names_as_their_instance(void **state)
{
    (void)state;
    char out[NODE_INSTANCE_MAX + 1], buf[80];
    assert_int_equal(node_instance_name("node-1", out, sizeof(out)), 0);
    assert_string_equal(out, "node-1");
    /* bpffs refuses a '.' in a name: '_', which no node name has */
    assert_int_equal(node_instance_name("ip-10-0-0-1.ec2.internal", out, sizeof(out)), 0);
    assert_string_equal(out, "ip-10-0-0-1_ec2_internal");
    const char *s63 = dotted(buf, 63, 20);
    assert_int_equal(node_instance_name(s63, out, sizeof(out)), 0);
    assert_int_equal(strlen(out), 63);
    assert_null(strchr(out, '.'));
    assert_int_equal(out[20], '_');
}

static void bounds_long_names_with_a_readable_prefix_and_a_hash(void **state)
{
    (void)state;
    char a[300], b[300], ia[NODE_INSTANCE_MAX + 1], ib[NODE_INSTANCE_MAX + 1];
    dotted(a, 253, 63);
    memcpy(b, a, sizeof(a));
    b[200] = 'c'; /* same 46-byte prefix, different name */
    assert_int_equal(node_instance_name(a, ia, sizeof(ia)), 0);
    assert_int_equal(node_instance_name(b, ib, sizeof(ib)), 0);
    assert_int_equal(strlen(ia), NODE_INSTANCE_MAX);
    assert_int_equal(strlen(ib), NODE_INSTANCE_MAX);
    assert_memory_equal(ia, a, 46); /* labels of 63: no dot in the first 46 */
    assert_int_equal(ia[46], '-');
    assert_int_equal(strspn(ia + 47, "0123456789abcdef"), 16);
    assert_string_not_equal(ia, ib);
    /* stable: uninstall derives the same name as the agent */
    char again[NODE_INSTANCE_MAX + 1];
    assert_int_equal(node_instance_name(a, again, sizeof(again)), 0);
    assert_string_equal(again, ia);
    /* 64 bytes: the first length that is hashed */
    char c[80];
    dotted(c, 64, 30);
    assert_int_equal(node_instance_name(c, ia, sizeof(ia)), 0);
    assert_int_equal(strlen(ia), NODE_INSTANCE_MAX);
    assert_null(strchr(ia, '.'));
    assert_int_equal(ia[30], '_');
}

static void refuses_invalid_names_and_short_buffers(void **state)
{
    (void)state;
    char out[NODE_INSTANCE_MAX + 1] = "untouched";
    assert_int_equal(node_instance_name("../x", out, sizeof(out)), -EINVAL);
    assert_int_equal(node_instance_name(NULL, out, sizeof(out)), -EINVAL);
    assert_string_equal(out, "untouched");
    assert_int_equal(node_instance_name("n1", out, NODE_INSTANCE_MAX), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_and_refuses_as_kubernetes_does),
        cmocka_unit_test(bounds_labels_at_63_and_names_at_253),
        cmocka_unit_test(keeps_short_names_as_their_instance),
        cmocka_unit_test(bounds_long_names_with_a_readable_prefix_and_a_hash),
        cmocka_unit_test(refuses_invalid_names_and_short_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
