/* core/str.h: bounded copies never overrun and say when they cut;
 * appends are whole or nothing; decimals as printf writes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/str.h"

static void copy_truncates_and_reports(void **state)
{
    (void)state;
    static const struct {
        const char *src;
        size_t cap;
        const char *want;
        size_t ret;
    } rows[] = {
        {"", 1, "", 0},       {"abc", 1, "", 3},     {"abc", 3, "ab", 3},
        {"abc", 4, "abc", 3}, {"abc", 16, "abc", 3},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char buf[17];
        memset(buf, 'x', sizeof(buf));
        assert_int_equal(str_copy(buf, rows[i].cap, rows[i].src), rows[i].ret);
        assert_string_equal(buf, rows[i].want);
        for (size_t k = rows[i].cap; k < sizeof(buf); k++)
            assert_int_equal(buf[k], 'x'); /* nothing written past cap */
    }
}

static void append_whole_or_nothing(void **state)
{
    (void)state;
    char buf[8] = "";
    size_t n = 0;
    assert_true(str_append(buf, sizeof(buf), &n, "abc"));
    assert_true(str_append(buf, sizeof(buf), &n, "defg"));
    assert_string_equal(buf, "abcdefg");
    assert_int_equal(n, 7);
    assert_false(str_append(buf, sizeof(buf), &n, "h")); /* no room for it and the NUL */
    assert_string_equal(buf, "abcdefg");
    assert_int_equal(n, 7);
    assert_true(str_append(buf, sizeof(buf), &n, ""));
}

static void decimals_as_printf(void **state)
{
    (void)state;
    static const unsigned long long v[] = {
        0, 7, 10, 99, 200, 65535, 1234567890123ull, 18446744073709551615ull};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char got[24], want[24];
        snprintf(want, sizeof(want), "%llu", v[i]);
        assert_int_equal(str_u64(got, v[i]), strlen(want));
        assert_string_equal(got, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(copy_truncates_and_reports),
        cmocka_unit_test(append_whole_or_nothing),
        cmocka_unit_test(decimals_as_printf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
