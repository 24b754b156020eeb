/* Per-cluster state and its accounting (agent/route/clusters.c): one
 * cluster per (FQDN, subset, port) kept across lookups, a bounded table
 * whose overflow entry is shared and counted, endpoints tracked by address
 * up to a cap, and what an attempt counts and releases: open connections
 * per cluster and endpoint (never below zero) and the outlier reports that
 * eject an endpoint. Before the restructuring this accounting lived in the
 * mesh router and needed a whole agent to observe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/clusters.h"

#define SEC 1000000000ull

static struct meshd_addr ep_addr(uint32_t n)
{
    struct meshd_addr a = {.family = MESHD_AF_INET, .port = 0x901f};
    a.addr[0] = 10, a.addr[1] = (uint8_t)(n >> 16), a.addr[2] = (uint8_t)(n >> 8);
    a.addr[3] = (uint8_t)n;
    return a;
}

static void a_cluster_is_fqdn_subset_and_port(void **state)
{
    struct clusters *t;
    assert_int_equal(clusters_new(1, &t), 0);
    static const struct {
        const char *fqdn, *subset;
        uint16_t port;
    } keys[] = {
        {"reviews.default.svc.cluster.local", NULL, 9080},
        {"reviews.default.svc.cluster.local", "v1", 9080},
        {"reviews.default.svc.cluster.local", "v1", 9081},
        {"ratings.default.svc.cluster.local", "v1", 9080},
    };
    struct cluster_state *seen[4];
    for (size_t i = 0; i < 4; i++) {
        seen[i] = clusters_get(t, keys[i].fqdn, keys[i].subset, keys[i].port);
        assert_non_null(seen[i]);
        for (size_t j = 0; j < i; j++)
            assert_ptr_not_equal(seen[i], seen[j]);
    }
    /* The same key again: the same state (what survives a reload). */
    seen[1]->active = 7;
    struct cluster_state *again = clusters_get(t, keys[1].fqdn, keys[1].subset, keys[1].port);
    assert_ptr_equal(again, seen[1]);
    assert_int_equal(again->active, 7);
    /* No subset and an empty subset are one cluster. */
    assert_ptr_equal(clusters_get(t, keys[0].fqdn, "", 9080), seen[0]);
    assert_int_equal(clusters_count(t), 4);
    assert_int_equal(clusters_overflowed(t), 0);
    clusters_free(t);
}

static void the_last_cluster_asked_for_is_told_from_its_neighbours(void **state)
{
    /* Each key right after every other (the last one asked for is
     * compared before hashing): keys that are prefixes of each other, or
     * differ only in the subset or the port's digits,
     * are each their own cluster, found again whatever was asked before. */
    struct clusters *t;
    assert_int_equal(clusters_new(1, &t), 0);
    static const struct {
        const char *fqdn, *subset;
        uint16_t port;
    } keys[] = {
        {"a.svc", NULL, 80}, {"a.svc", NULL, 8},     {"a.svc", NULL, 800}, {"a.svc", "v1", 80},
        {"a.svc", "v", 80},  {"a.svc|v1", NULL, 80}, {"a.sv", NULL, 80},   {"a.svcx", NULL, 80},
        {"a.svc", "v1", 8},  {"b.svc", NULL, 80},    {"a.svc", "v10", 80}, {"a.svc", NULL, 0},
    };
    enum { N = sizeof(keys) / sizeof(keys[0]) };
    struct cluster_state *first[N];
    for (size_t i = 0; i < N; i++) {
        first[i] = clusters_get(t, keys[i].fqdn, keys[i].subset, keys[i].port);
        for (size_t j = 0; j < i; j++)
            if (first[i] == first[j])
                fail_msg("key %zu is key %zu's cluster", i, j);
    }
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++) {
            assert_ptr_equal(clusters_get(t, keys[i].fqdn, keys[i].subset, keys[i].port), first[i]);
            assert_ptr_equal(clusters_get(t, keys[j].fqdn, keys[j].subset, keys[j].port), first[j]);
            assert_ptr_equal(clusters_get(t, keys[j].fqdn, keys[j].subset, keys[j].port), first[j]);
        }
    assert_int_equal(clusters_count(t), N);
    clusters_free(t);
}

static void a_full_table_shares_one_counted_overflow_entry(void **state)
{
    struct clusters *t;
    assert_int_equal(clusters_new(2, &t), 0);
    char fqdn[64];
    for (unsigned i = 0; i < CLUSTERS_MAX; i++) {
        snprintf(fqdn, sizeof(fqdn), "svc-%u.default.svc.cluster.local", i);
        assert_non_null(clusters_get(t, fqdn, NULL, 80));
    }
    assert_int_equal(clusters_count(t), CLUSTERS_MAX);
    struct cluster_state *o1 = clusters_get(t, "one-more.default.svc.cluster.local", NULL, 80);
    struct cluster_state *o2 = clusters_get(t, "two-more.default.svc.cluster.local", NULL, 80);
    assert_ptr_equal(o1, o2);
    assert_int_equal(clusters_overflowed(t), 2);
    assert_int_equal(clusters_count(t), CLUSTERS_MAX);
    /* Known clusters are still found, not sent to the overflow entry. */
    struct cluster_state *first = clusters_get(t, "svc-0.default.svc.cluster.local", NULL, 80);
    assert_ptr_not_equal(first, o1);
    assert_int_equal(clusters_overflowed(t), 2);
    /* A key too long to build goes to the overflow entry too. */
    char huge[700];
    memset(huge, 'a', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    assert_ptr_equal(clusters_get(t, huge, NULL, 80), o1);
    clusters_free(t);
}

static void endpoints_are_kept_by_address_up_to_the_cap(void **state)
{
    struct cluster_state cs = {0};
    struct meshd_addr a = ep_addr(1), b = ep_addr(2);
    assert_int_equal(cluster_endpoint(&cs, &a), 0);
    assert_int_equal(cluster_endpoint(&cs, &b), 1);
    assert_int_equal(cluster_endpoint(&cs, &a), 0); /* known: its index */
    assert_int_equal(cs.neps, 2);
    for (uint32_t i = 3; cs.neps < CLUSTER_MAX_ENDPOINTS; i++) {
        struct meshd_addr x = ep_addr(i);
        uint32_t before = cs.neps;
        assert_int_equal(cluster_endpoint(&cs, &x), (int)before);
    }
    assert_int_equal(cs.neps, CLUSTER_MAX_ENDPOINTS);
    struct meshd_addr late = ep_addr(0xfffff);
    assert_int_equal(cluster_endpoint(&cs, &late), -1);
    assert_int_equal(cluster_endpoint(&cs, &b), 1); /* known ones still found */
    free(cs.eps);
}

/* What one attempt counts: acquire, then release, per cluster and per
 * endpoint, with out-of-range endpoints and extra releases harmless. */
static void an_attempt_is_counted_then_released(void **state)
{
    struct cluster_state cs = {0};
    struct meshd_addr a = ep_addr(1), b = ep_addr(2);
    int ia = cluster_endpoint(&cs, &a), ib = cluster_endpoint(&cs, &b);
    static const struct {
        const char *what;
        int32_t endpoint;
        uint32_t cluster_after, a_after, b_after;
    } acquire[] = {
        {"to a", 0, 1, 1, 0},
        {"to a again", 0, 2, 2, 0},
        {"to b", 1, 3, 2, 1},
        {"no endpoint (HBONE to a workload)", -1, 4, 2, 1},
        {"an endpoint not tracked", 9, 5, 2, 1},
    };
    for (size_t i = 0; i < sizeof(acquire) / sizeof(acquire[0]); i++) {
        cluster_acquire(&cs, acquire[i].endpoint);
        if (cs.active != acquire[i].cluster_after || cs.eps[ia].active != acquire[i].a_after ||
            cs.eps[ib].active != acquire[i].b_after)
            fail_msg("acquire %s: cluster %u a %u b %u", acquire[i].what, cs.active,
                     cs.eps[ia].active, cs.eps[ib].active);
    }
    for (size_t i = 0; i < sizeof(acquire) / sizeof(acquire[0]); i++)
        assert_false(cluster_release(&cs, acquire[i].endpoint, NULL, false, 0));
    assert_int_equal(cs.active, 0);
    assert_int_equal(cs.eps[ia].active, 0);
    assert_int_equal(cs.eps[ib].active, 0);
    /* A release with nothing open does not wrap around. */
    assert_false(cluster_release(&cs, 0, NULL, true, 0));
    assert_int_equal(cs.active, 0);
    assert_int_equal(cs.eps[ia].active, 0);
    free(cs.eps);
}

/* Releases that report to outlier detection: failures in a row eject the
 * endpoint once (counted in the cluster), a success breaks the run, a
 * disabled config reports nothing, and the max-ejection-percent cap
 * counts the endpoints ejected at that moment. */
static void failed_releases_eject_through_outlier_detection(void **state)
{
    struct outlier_config oc;
    outlier_config_defaults(&oc);
    oc.enabled = true;
    oc.consecutive_errors = 3;
    oc.base_ejection_ns = 10 * SEC;
    struct outlier_config off = oc;
    off.enabled = false;

    struct cluster_state cs = {0};
    for (uint32_t i = 0; i < 4; i++) {
        struct meshd_addr a = ep_addr(i + 1);
        assert_int_equal(cluster_endpoint(&cs, &a), (int)i);
    }
    static const struct {
        const char *what;
        int32_t endpoint;
        bool failed, enabled, ejects;
        uint64_t ejections_after;
    } steps[] = {
        {"0: first failure", 0, true, true, false, 0},
        {"0: second failure", 0, true, true, false, 0},
        {"0: a success breaks the run", 0, false, true, false, 0},
        {"0: failure 1 of a new run", 0, true, true, false, 0},
        {"0: failure 2", 0, true, true, false, 0},
        {"0: disabled: not counted", 0, true, false, false, 0},
        {"0: failure 3 ejects", 0, true, true, true, 1},
        {"1: failure 1", 1, true, true, false, 1},
        {"1: failure 2", 1, true, true, false, 1},
        /* 1 of 4 ejected; a second is over 10% (the first always may). */
        {"1: failure 3, over max_ejection_percent", 1, true, true, false, 1},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        cluster_acquire(&cs, steps[i].endpoint);
        bool ej = cluster_release(&cs, steps[i].endpoint, steps[i].enabled ? &oc : &off,
                                  steps[i].failed, 1 * SEC);
        if (ej != steps[i].ejects || cs.ejections != steps[i].ejections_after)
            fail_msg("%s: ejected %d, cluster ejections %llu", steps[i].what, ej,
                     (unsigned long long)cs.ejections);
    }
    assert_int_equal(cs.active, 0);
    assert_true(outlier_is_ejected(&cs.eps[0].outlier, 5 * SEC));
    assert_false(outlier_is_ejected(&cs.eps[1].outlier, 5 * SEC));
    assert_int_equal(cs.eps[0].outlier.ejections, 1);
    /* Once endpoint 0 is back (base ejection time passed), endpoint 1's
     * next failure may eject it. */
    cluster_acquire(&cs, 1);
    assert_true(cluster_release(&cs, 1, &oc, true, 20 * SEC));
    assert_int_equal(cs.ejections, 2);
    free(cs.eps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_cluster_is_fqdn_subset_and_port),
        cmocka_unit_test(the_last_cluster_asked_for_is_told_from_its_neighbours),
        cmocka_unit_test(a_full_table_shares_one_counted_overflow_entry),
        cmocka_unit_test(endpoints_are_kept_by_address_up_to_the_cap),
        cmocka_unit_test(an_attempt_is_counted_then_released),
        cmocka_unit_test(failed_releases_eject_through_outlier_detection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
