/* The socket-cookie index (agent/proxy/cookies.c): what is put is found
 * until it is removed, a removal names the record it expects (a stale one
 * leaves a newer mapping alone), cookie 0 is never indexed, and thousands
 * of puts and deletes in a pseudo-random order (growth, probe runs that
 * wrap, backward-shift deletion) agree with a plain array at every step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "proxy/cookies.h"
#include "proxy/records.h"

static struct conn_record recs[4];

static void put_get_replace_delete(void **state)
{
    (void)state;
    struct cookie_index *ci;
    assert_int_equal(cookie_index_new(&ci), 0);
    static const struct {
        const char *what;
        char op; /* p: put, d: delete */
        uint64_t cookie;
        int rec;        /* index into recs */
        int want;       /* cookie's record afterwards, -1: none */
        size_t entries; /* afterwards */
    } rows[] = {
        {"a put is found", 'p', 42, 0, 0, 1},
        {"another cookie, another record", 'p', 43, 1, 1, 2},
        {"a put on an indexed cookie replaces its record", 'p', 42, 2, 2, 2},
        {"a delete naming another record leaves it", 'd', 42, 0, 2, 2},
        {"a delete naming its record removes it", 'd', 42, 2, -1, 1},
        {"deleting what is gone changes nothing", 'd', 42, 2, -1, 1},
        {"cookie 0 is never indexed", 'p', 0, 3, -1, 1},
        {"nor deleted", 'd', 0, 3, -1, 1},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("  %s\n", rows[i].what);
        if (rows[i].op == 'p')
            assert_int_equal(cookie_index_put(ci, rows[i].cookie, &recs[rows[i].rec]), 0);
        else
            cookie_index_del(ci, rows[i].cookie, &recs[rows[i].rec]);
        struct conn_record *got = cookie_index_get(ci, rows[i].cookie);
        if (rows[i].want < 0)
            assert_null(got);
        else
            assert_ptr_equal(got, &recs[rows[i].want]);
        assert_int_equal(cookie_index_count(ci), rows[i].entries);
    }
    assert_ptr_equal(cookie_index_get(ci, 43), &recs[1]); /* untouched throughout */
    cookie_index_free(ci);
    cookie_index_free(NULL);
}

/* Sequential cookies (as the kernel hands them out) and random deletes,
 * checked against a reference array after every operation. */
static void agrees_with_an_array_under_churn(void **state)
{
    (void)state;
    enum { N = 3000 };
    static struct conn_record r[N];
    static bool in[N];
    memset(in, 0, sizeof(in));
    struct cookie_index *ci;
    assert_int_equal(cookie_index_new(&ci), 0);
    uint64_t x = 88172645463325252ull;
    size_t live = 0;
    for (int step = 0; step < 20000; step++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t k = (size_t)(x % N);
        if (x & (1ull << 40)) {
            if (!in[k])
                live++;
            in[k] = true;
            assert_int_equal(cookie_index_put(ci, 1000 + k, &r[k]), 0);
        } else {
            if (in[k])
                live--;
            in[k] = false;
            cookie_index_del(ci, 1000 + k, &r[k]);
        }
        assert_int_equal(cookie_index_count(ci), live);
        if (step % 97 == 0)
            for (size_t j = 0; j < N; j++)
                assert_ptr_equal(cookie_index_get(ci, 1000 + j), in[j] ? &r[j] : NULL);
    }
    for (size_t j = 0; j < N; j++)
        assert_ptr_equal(cookie_index_get(ci, 1000 + j), in[j] ? &r[j] : NULL);
    cookie_index_free(ci);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_get_replace_delete),
        cmocka_unit_test(agrees_with_an_array_under_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
