/* Endpoint choice and outlier ejection (agent/route/): one test per Istio
 * behaviour, table-driven where the behaviour is a table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "route/lb.h"

#define SEC 1000000000ull

static struct lb_endpoint ep(int last_octet)
{
    struct lb_endpoint e = {.addr = {.family = MESHD_AF_INET, .port = 0x901f}};
    e.addr.addr[0] = 10, e.addr.addr[1] = 244, e.addr.addr[2] = 2;
    e.addr.addr[3] = (uint8_t)last_octet;
    return e;
}

static struct meshd_addr src_ip(int a, int b)
{
    struct meshd_addr s = {.family = MESHD_AF_INET};
    s.addr[0] = 10, s.addr[1] = 244, s.addr[2] = (uint8_t)a, s.addr[3] = (uint8_t)b;
    return s;
}

/* The seed's canary: 99/1 over 20,000 connections lands within the 99.9%
 * two-sided binomial bound (z = 3.29) around the expected 200. */
static void canary_99_1_split_is_within_the_binomial_bound(void **state)
{
    uint32_t w[2] = {99, 1};
    static const uint64_t seeds[] = {1, 42, 0xdeadbeef, 7777777};
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        struct lb_state st;
        lb_state_init(&st, seeds[s]);
        int v2 = 0;
        for (int i = 0; i < 20000; i++)
            v2 += lb_weighted_pick(w, 2, &st) == 1;
        double sd = sqrt(20000 * 0.01 * 0.99);
        assert_true(fabs(v2 - 200.0) <= 3.29 * sd);
    }
}

static void weighted_choice_table(void **state)
{
    static const struct {
        const char *what;
        uint32_t w[3];
        size_t n;
        int expect_only; /* -2: a distribution check below */
    } rows[] = {
        {"a single destination is 100 whatever its weight", {0}, 1, 0},
        {"a zero weight is never chosen", {100, 0}, 2, 0},
        {"a zero weight first is never chosen", {0, 100}, 2, 1},
        {"all zero weights choose nothing", {0, 0, 0}, 3, -1},
    };
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        struct lb_state st;
        lb_state_init(&st, r + 1);
        for (int i = 0; i < 1000; i++)
            assert_int_equal(lb_weighted_pick(rows[r].w, rows[r].n, &st), rows[r].expect_only);
    }
    /* 70/20/10 within 1% over 100k. */
    uint32_t w[3] = {70, 20, 10};
    int count[3] = {0};
    struct lb_state st;
    lb_state_init(&st, 9);
    for (int i = 0; i < 100000; i++)
        count[lb_weighted_pick(w, 3, &st)]++;
    assert_in_range(count[0], 69000, 71000);
    assert_in_range(count[1], 19000, 21000);
    assert_in_range(count[2], 9000, 11000);
}

static void round_robin_spreads_evenly(void **state)
{
    struct lb_endpoint eps[3] = {ep(1), ep(2), ep(3)};
    struct lb_state st;
    lb_state_init(&st, 1);
    int count[3] = {0};
    struct meshd_addr s = src_ip(1, 1);
    for (int i = 0; i < 300; i++)
        count[lb_pick(LB_ROUND_ROBIN, &st, eps, 3, &s, NULL, 0, -1)]++;
    assert_int_equal(count[0], 100);
    assert_int_equal(count[1], 100);
    assert_int_equal(count[2], 100);
}

static void least_request_follows_load(void **state)
{
    struct lb_endpoint eps[3] = {ep(1), ep(2), ep(3)};
    eps[0].active = 5, eps[1].active = 0, eps[2].active = 3;
    struct lb_state st;
    lb_state_init(&st, 3);
    struct meshd_addr s = src_ip(1, 1);
    /* Each pick opens a connection: the idle endpoint fills up first. */
    for (int i = 0; i < 3; i++) {
        int k = lb_pick(LB_LEAST_REQUEST, &st, eps, 3, &s, NULL, 0, -1);
        assert_int_equal(k, 1);
        eps[k].active++;
    }
    /* 3,3 tie with 5: both of the tied are used, never the loaded one. */
    int seen[3] = {0};
    for (int i = 0; i < 200; i++) {
        int k = lb_pick(LB_LEAST_REQUEST, &st, eps, 3, &s, NULL, 0, -1);
        seen[k]++;
    }
    assert_int_equal(seen[0], 0);
    assert_true(seen[1] > 50 && seen[2] > 50);
}

static void random_is_roughly_uniform(void **state)
{
    struct lb_endpoint eps[4] = {ep(1), ep(2), ep(3), ep(4)};
    struct lb_state st;
    lb_state_init(&st, 5);
    int count[4] = {0};
    struct meshd_addr s = src_ip(1, 1);
    for (int i = 0; i < 40000; i++)
        count[lb_pick(LB_RANDOM, &st, eps, 4, &s, NULL, 0, -1)]++;
    for (int i = 0; i < 4; i++)
        assert_in_range(count[i], 9400, 10600);
}

static void consistent_hash_pins_a_client(void **state)
{
    struct lb_endpoint eps[5] = {ep(1), ep(2), ep(3), ep(4), ep(5)};
    struct lb_state st;
    lb_state_init(&st, 1);
    struct meshd_addr s = src_ip(1, 11);
    int first = lb_pick(LB_CONSISTENT_HASH_SOURCE_IP, &st, eps, 5, &s, NULL, 0, -1);
    for (int i = 0; i < 100; i++) {
        s.port = (uint16_t)(40000 + i); /* the client's port does not matter */
        assert_int_equal(lb_pick(LB_CONSISTENT_HASH_SOURCE_IP, &st, eps, 5, &s, NULL, 0, -1),
                         first);
    }
    /* Different clients spread over the endpoints. */
    int used[5] = {0};
    for (int c = 0; c < 200; c++) {
        struct meshd_addr o = src_ip(c / 100 + 1, c % 100 + 10);
        used[lb_pick(LB_CONSISTENT_HASH_SOURCE_IP, &st, eps, 5, &o, NULL, 0, -1)]++;
    }
    for (int i = 0; i < 5; i++)
        assert_true(used[i] > 10);
    /* Removing another endpoint does not move this client. */
    struct lb_endpoint fewer[4];
    size_t k = 0;
    for (int i = 0; i < 5; i++)
        if (i != (first + 1) % 5)
            fewer[k++] = eps[i];
    int again = lb_pick(LB_CONSISTENT_HASH_SOURCE_IP, &st, fewer, 4, &s, NULL, 0, -1);
    assert_memory_equal(&fewer[again].addr, &eps[first].addr, sizeof(struct meshd_addr));
}

static void passthrough_and_empty_clusters_pick_nothing(void **state)
{
    struct lb_endpoint eps[1] = {ep(1)};
    struct lb_state st;
    lb_state_init(&st, 1);
    struct meshd_addr s = src_ip(1, 1);
    assert_int_equal(lb_pick(LB_PASSTHROUGH, &st, eps, 1, &s, NULL, 0, -1), -1);
    assert_int_equal(lb_pick(LB_ROUND_ROBIN, &st, eps, 0, &s, NULL, 0, -1), -1);
}

static void retry_avoids_the_failed_endpoint_when_it_can(void **state)
{
    struct lb_endpoint eps[2] = {ep(1), ep(2)};
    struct lb_state st;
    lb_state_init(&st, 1);
    struct meshd_addr s = src_ip(1, 1);
    static const enum lb_policy policies[] = {LB_ROUND_ROBIN, LB_LEAST_REQUEST, LB_RANDOM,
                                              LB_CONSISTENT_HASH_SOURCE_IP};
    for (size_t p = 0; p < 4; p++)
        for (int i = 0; i < 50; i++)
            assert_int_equal(lb_pick(policies[p], &st, eps, 2, &s, NULL, 0, 0), 1);
    /* The only endpoint is still tried again. */
    assert_int_equal(lb_pick(LB_ROUND_ROBIN, &st, eps, 1, &s, NULL, 0, 0), 0);
}

static void consecutive_errors_eject_and_a_success_resets(void **state)
{
    struct outlier_config oc;
    outlier_config_defaults(&oc);
    oc.consecutive_errors = 3;
    oc.base_ejection_ns = 10 * SEC;
    oc.max_ejection_percent = 100;
    struct outlier_state s = {0};
    assert_false(outlier_report(&s, &oc, false, 3, 0, 0));
    assert_false(outlier_report(&s, &oc, false, 3, 0, 0));
    assert_false(outlier_report(&s, &oc, true, 3, 0, 0)); /* the run is broken */
    assert_false(outlier_report(&s, &oc, false, 3, 0, 0));
    assert_false(outlier_report(&s, &oc, false, 3, 0, 0));
    assert_true(outlier_report(&s, &oc, false, 3, 0, 1 * SEC));
    assert_true(outlier_is_ejected(&s, 10 * SEC));
    assert_false(outlier_is_ejected(&s, 11 * SEC));
}

static void ejection_time_grows_with_repeated_ejections(void **state)
{
    struct outlier_config oc;
    outlier_config_defaults(&oc);
    oc.consecutive_errors = 1;
    oc.base_ejection_ns = 10 * SEC;
    oc.max_ejection_percent = 100;
    struct outlier_state s = {0};
    uint64_t t = 0;
    for (uint32_t k = 1; k <= 3; k++) {
        assert_true(outlier_report(&s, &oc, false, 2, 0, t));
        assert_int_equal(s.ejected_until_ns - t, k * 10 * SEC);
        t = s.ejected_until_ns;
    }
}

static void max_ejection_percent_caps_ejections_but_one_may_go(void **state)
{
    struct outlier_config oc;
    outlier_config_defaults(&oc); /* 10% */
    oc.consecutive_errors = 1;
    struct outlier_state a = {0}, b = {0};
    /* 3 endpoints, 10%: the first still goes (Envoy ejects at least one). */
    assert_true(outlier_report(&a, &oc, false, 3, 0, 0));
    assert_false(outlier_report(&b, &oc, false, 3, 1, 0));
    assert_false(outlier_is_ejected(&b, 1));
    /* 50% of 4 allows two. */
    oc.max_ejection_percent = 50;
    assert_true(outlier_report(&b, &oc, false, 4, 1, 0));
}

static void ejected_endpoints_are_skipped_and_come_back(void **state)
{
    struct lb_endpoint eps[3] = {ep(1), ep(2), ep(3)};
    struct outlier_config oc;
    outlier_config_defaults(&oc);
    eps[1].outlier.ejected_until_ns = 5 * SEC;
    struct lb_state st;
    lb_state_init(&st, 1);
    struct meshd_addr s = src_ip(1, 1);
    for (int i = 0; i < 30; i++)
        assert_int_not_equal(lb_pick(LB_ROUND_ROBIN, &st, eps, 3, &s, &oc, 1 * SEC, -1), 1);
    int seen = 0;
    for (int i = 0; i < 30; i++)
        seen += lb_pick(LB_ROUND_ROBIN, &st, eps, 3, &s, &oc, 6 * SEC, -1) == 1;
    assert_int_equal(seen, 10);
}

static void min_health_percent_suspends_ejection(void **state)
{
    struct lb_endpoint eps[2] = {ep(1), ep(2)};
    struct outlier_config oc;
    outlier_config_defaults(&oc);
    eps[0].outlier.ejected_until_ns = 5 * SEC;
    eps[1].outlier.ejected_until_ns = 5 * SEC;
    struct lb_state st;
    lb_state_init(&st, 1);
    struct meshd_addr s = src_ip(1, 1);
    /* minHealthPercent 0: detection stays on, nothing is available. */
    assert_int_equal(lb_pick(LB_ROUND_ROBIN, &st, eps, 2, &s, &oc, 1 * SEC, -1), -1);
    /* minHealthPercent 50 with 0% healthy: suspended, all are used. */
    oc.min_health_percent = 50;
    assert_int_not_equal(lb_pick(LB_ROUND_ROBIN, &st, eps, 2, &s, &oc, 1 * SEC, -1), -1);
}

static void disabled_detection_never_ejects(void **state)
{
    struct outlier_config oc = {0};
    struct outlier_state s = {0};
    for (int i = 0; i < 100; i++)
        assert_false(outlier_report(&s, &oc, false, 1, 0, 0));
    assert_false(outlier_report(&s, NULL, false, 1, 0, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(canary_99_1_split_is_within_the_binomial_bound),
        cmocka_unit_test(weighted_choice_table),
        cmocka_unit_test(round_robin_spreads_evenly),
        cmocka_unit_test(least_request_follows_load),
        cmocka_unit_test(random_is_roughly_uniform),
        cmocka_unit_test(consistent_hash_pins_a_client),
        cmocka_unit_test(passthrough_and_empty_clusters_pick_nothing),
        cmocka_unit_test(retry_avoids_the_failed_endpoint_when_it_can),
        cmocka_unit_test(consecutive_errors_eject_and_a_success_resets),
        cmocka_unit_test(ejection_time_grows_with_repeated_ejections),
        cmocka_unit_test(max_ejection_percent_caps_ejections_but_one_may_go),
        cmocka_unit_test(ejected_endpoints_are_skipped_and_come_back),
        cmocka_unit_test(min_health_percent_suspends_ejection),
        cmocka_unit_test(disabled_detection_never_ejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
