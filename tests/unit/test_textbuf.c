/* core/textbuf: appends, growth past the first allocation, the limit and
 * the sticky failure that makes a caller answer an error, not half a page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/textbuf.h"

static void appends_formatted_text_in_order(void **state)
{
    (void)state;
    struct textbuf b = {0};
    assert_string_equal(textbuf_str(&b), ""); /* nothing yet: "", not NULL */
    textbuf_printf(&b, "%s_total{k=\"%d\"} ", "x", 7);
    textbuf_printf(&b, "%llu\n", 12345678901ull);
    assert_false(b.oom);
    assert_string_equal(textbuf_str(&b), "x_total{k=\"7\"} 12345678901\n");
    assert_int_equal(b.len, strlen("x_total{k=\"7\"} 12345678901\n"));
    textbuf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void grows_past_the_first_allocation(void **state)
{
    (void)state;
    struct textbuf b = {0};
    char line[101];
    memset(line, 'a', 100);
    line[100] = '\0';
    for (int i = 0; i < 200; i++) /* 20000 bytes: several doublings of 4096 */
        textbuf_printf(&b, "%s", line);
    assert_false(b.oom);
    assert_int_equal(b.len, 20000);
    assert_true(b.cap > b.len);
    assert_int_equal(strspn(b.data, "a"), 20000);
    assert_int_equal(b.data[20000], '\0');
    textbuf_free(&b);
}

static const struct {
    const char *behaviour;
    size_t limit;
    const char *first, *second;
    bool oom;
    const char *text; /* what the buffer holds after both appends */
} limits[] = {
    {"text up to the limit fits exactly", 8, "abcd", "efgh", false, "abcdefgh"},
    {"one byte past the limit fails", 8, "abcd", "efghi", true, "abcd"},
    {"a first append past the limit fails", 4, "abcde", "", true, ""},
    {"after a failure, appends are no-ops", 6, "abcdefg", "ab", true, ""},
};

static void the_limit_fails_and_sticks(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        struct textbuf b = {.limit = limits[i].limit};
        textbuf_printf(&b, "%s", limits[i].first);
        textbuf_printf(&b, "%s", limits[i].second);
        if (b.oom != limits[i].oom || strcmp(textbuf_str(&b), limits[i].text) != 0)
            fail_msg("%s: oom %d, text \"%s\"", limits[i].behaviour, b.oom, textbuf_str(&b));
        assert_true(b.len <= limits[i].limit);
        textbuf_free(&b);
        assert_int_equal(b.limit, limits[i].limit); /* kept for reuse */
        assert_false(b.oom);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(appends_formatted_text_in_order),
        cmocka_unit_test(grows_past_the_first_allocation),
        cmocka_unit_test(the_limit_fails_and_sticks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
