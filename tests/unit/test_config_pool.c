/* DestinationRule connectionPool.http and outlierDetection's request
 * counts (agent/config/decode_pool.c, decode_istio.c): decoded as Istio
 * reads them, refused as Istio's validation refuses them (each error at
 * its field), and merged as Istio merges traffic policies (route_policy:
 * a connectionPool replaces the level above whole, tcp and http
 * together). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "route/resolve.h"
#include "support/config_fixture.h"

#define DR_HEAD                                                                                    \
    "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\n"             \
    "spec:\n  host: a\n  trafficPolicy:\n"

static const struct cfg_destination_rule *load_dr(struct cfg_fixture *f, const char *yaml)
{
    cfg_fixture_load(f, yaml);
    return f->snap ? cfg_find(f->snap, CFG_DESTINATION_RULE, "default", "d") : NULL;
}

static bool has_diag(const struct cfg_fixture *f, enum cfg_level level, const char *code,
                     const char *says)
{
    for (size_t i = 0; i < f->diags.n; i++)
        if (f->diags.v[i].level == level && strcmp(f->diags.v[i].code, code) == 0 &&
            strstr(f->diags.v[i].message, says))
            return true;
    return false;
}

static void test_http_pool_decoded_as_written(void **state)
{
    static const struct {
        const char *what, *http;
        struct cfg_http_pool want;
    } rows[] = {
        {"every count and the idle timeout",
         "{http1MaxPendingRequests: 10, http2MaxRequests: 100, maxRequestsPerConnection: 1, "
         "maxRetries: 3, idleTimeout: 1500ms, maxConcurrentStreams: 64}",
         {.set = true,
          .max_pending = 10,
          .max_requests = 100,
          .max_requests_per_conn = 1,
          .max_retries = 3,
          .idle_timeout_ns = 1500000000ULL,
          .max_concurrent_streams = 64}},
        {"quoted counts, as Kubernetes tooling writes them",
         "{http1MaxPendingRequests: '7', maxRetries: \"2147483647\"}",
         {.set = true, .max_pending = 7, .max_retries = INT32_MAX}},
        {"an empty http section is set, every limit Istio's default", "{}", {.set = true}},
        {"explicit zeros read as unset, as Istio applies only counts > 0",
         "{http1MaxPendingRequests: 0, http2MaxRequests: 0, maxRetries: 0}",
         {.set = true}},
        {"h2UpgradePolicy DO_NOT_UPGRADE",
         "{h2UpgradePolicy: DO_NOT_UPGRADE}",
         {.set = true, .h2_upgrade = CFG_H2_DO_NOT_UPGRADE}},
        {"h2UpgradePolicy UPGRADE",
         "{h2UpgradePolicy: UPGRADE}",
         {.set = true, .h2_upgrade = CFG_H2_UPGRADE}},
        {"useClientProtocol with the default upgrade policy",
         "{useClientProtocol: true, h2UpgradePolicy: DEFAULT}",
         {.set = true, .use_client_protocol = true}},
        {"http2KeepAlive is accepted (not applied to upstream HTTP/2 yet)",
         "{http2KeepAlive: {interval: 15s, timeout: 5s}, maxRetries: 1}",
         {.set = true, .max_retries = 1}},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char yaml[1024];
        snprintf(yaml, sizeof(yaml), DR_HEAD "    connectionPool:\n      http: %s\n", rows[i].http);
        struct cfg_fixture f;
        const struct cfg_destination_rule *dr = load_dr(&f, yaml);
        if (!dr) {
            fprintf(stderr, "row \"%s\": not loaded\n", rows[i].what);
            cfg_fixture_dump(&f);
            fail();
        }
        const struct cfg_http_pool *got = &dr->policy.top.pool.http, *want = &rows[i].want;
        assert_true(dr->policy.top.pool.set);
        assert_int_equal(got->set, want->set);
        assert_int_equal(got->max_pending, want->max_pending);
        assert_int_equal(got->max_requests, want->max_requests);
        assert_int_equal(got->max_requests_per_conn, want->max_requests_per_conn);
        assert_int_equal(got->max_retries, want->max_retries);
        assert_int_equal(got->idle_timeout_ns, want->idle_timeout_ns);
        assert_int_equal(got->h2_upgrade, want->h2_upgrade);
        assert_int_equal(got->use_client_protocol, want->use_client_protocol);
        assert_int_equal(got->max_concurrent_streams, want->max_concurrent_streams);
        /* No tcp section given: its fields stay unset. */
        assert_int_equal(dr->policy.top.pool.max_connections, 0);
        assert_false(has_diag(&f, CFG_WARNING, "MSH0103", "")); /* no unknown field */
        cfg_fixture_free(&f);
    }
}

/* Every connectionPool.http limit is applied by the carrier: none is
 * named as ignored. */
static void test_http_pool_loads_quietly(void **state)
{
    static const char *const pools[] = {
        "http: {http1MaxPendingRequests: 1}",
        "http: {maxRetries: 3}",
        "http: {idleTimeout: 1s, maxRequestsPerConnection: 2}",
        "tcp: {maxConnections: 1}",
    };
    for (size_t i = 0; i < sizeof(pools) / sizeof(pools[0]); i++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml), DR_HEAD "    connectionPool:\n      %s\n", pools[i]);
        struct cfg_fixture f;
        const struct cfg_destination_rule *dr = load_dr(&f, yaml);
        assert_non_null(dr);
        assert_false(has_diag(&f, CFG_WARNING, "MSH0201", ""));
        cfg_fixture_free(&f);
    }
}

static void test_http_pool_refused_as_istio_refuses(void **state)
{
    static const struct {
        const char *what, *http, *says;
    } rows[] = {
        {"negative http1MaxPendingRequests", "{http1MaxPendingRequests: -1}",
         "spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests: http1 max pending "
         "requests must be non-negative"},
        {"negative http2MaxRequests", "{http2MaxRequests: -5}",
         "http.http2MaxRequests: http2 max requests must be non-negative"},
        {"negative maxRequestsPerConnection", "{maxRequestsPerConnection: -1}",
         "http.maxRequestsPerConnection: max requests per connection must be non-negative"},
        {"negative maxRetries", "{maxRetries: '-3'}",
         "http.maxRetries: max retries must be non-negative"},
        {"negative maxConcurrentStreams", "{maxConcurrentStreams: -1}",
         "http.maxConcurrentStreams: max concurrent streams must be non-negative"},
        {"a count beyond int32", "{http2MaxRequests: 2147483648}",
         "http.http2MaxRequests: expected an integer from 0 to 2147483647"},
        {"a count that is no integer", "{maxRetries: 1.5}",
         "http.maxRetries: expected an integer from 0 to 2147483647"},
        {"an idle timeout under 1ms", "{idleTimeout: 500us}",
         "http.idleTimeout: duration must be greater than 1ms"},
        {"an idle timeout finer than ms", "{idleTimeout: 1.0005s}",
         "http.idleTimeout: only durations to ms precision are supported"},
        {"an idle timeout that is no duration", "{idleTimeout: soon}",
         "http.idleTimeout: expected a positive duration"},
        {"an unknown h2UpgradePolicy", "{h2UpgradePolicy: SOMETIMES}",
         "http.h2UpgradePolicy: expected one of DEFAULT|DO_NOT_UPGRADE|UPGRADE"},
        {"useClientProtocol with UPGRADE", "{h2UpgradePolicy: UPGRADE, useClientProtocol: true}",
         "use client protocol must not be true when H2UpgradePolicy is UPGRADE"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char yaml[1024];
        snprintf(yaml, sizeof(yaml), DR_HEAD "    connectionPool:\n      http: %s\n", rows[i].http);
        struct cfg_fixture f;
        const struct cfg_destination_rule *dr = load_dr(&f, yaml);
        if (dr || !has_diag(&f, CFG_ERROR, "IST0106", rows[i].says)) {
            fprintf(stderr, "row \"%s\": want the rule refused with \"%s\"; got:\n", rows[i].what,
                    rows[i].says);
            cfg_fixture_dump(&f);
            fail();
        }
        cfg_fixture_free(&f);
    }
}

/* consecutive_errors keeps its L4 meaning (a failed connect is both a
 * gateway error and a 5xx); the per-request counts follow Istio's
 * translation to Envoy. */
static void test_outlier_counts_kept_apart(void **state)
{
    static const struct {
        const char *what, *outlier;
        uint32_t l4, fivexx, gateway;
    } rows[] = {
        {"consecutive5xxErrors alone", "{consecutive5xxErrors: 7}", 7, 7, 0},
        {"consecutiveGatewayErrors alone: 5xx keeps Istio's default 5",
         "{consecutiveGatewayErrors: 3}", 3, 5, 3},
        {"both, apart", "{consecutive5xxErrors: 3, consecutiveGatewayErrors: 9}", 9, 3, 9},
        {"5xx given as 0 is off", "{consecutive5xxErrors: 0, consecutiveGatewayErrors: 2}", 2, 0,
         2},
        {"neither: 5xx at Istio's default, gateway off", "{interval: 1s}", 0, 5, 0},
        {"legacy consecutiveErrors counts gateway errors only", "{consecutiveErrors: 4}", 4, 0, 4},
        {"a newer field wins over the legacy one",
         "{consecutiveErrors: 4, consecutive5xxErrors: 6}", 6, 6, 4},
        {"quoted, as Kubernetes tooling writes it", "{consecutive5xxErrors: \"8\"}", 8, 8, 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char yaml[1024];
        snprintf(yaml, sizeof(yaml), DR_HEAD "    outlierDetection: %s\n", rows[i].outlier);
        struct cfg_fixture f;
        const struct cfg_destination_rule *dr = load_dr(&f, yaml);
        if (!dr) {
            fprintf(stderr, "row \"%s\": not loaded\n", rows[i].what);
            cfg_fixture_dump(&f);
            fail();
        }
        const struct cfg_outlier *o = &dr->policy.top.outlier;
        assert_true(o->set);
        if (o->consecutive_errors != rows[i].l4 || o->consecutive_5xx != rows[i].fivexx ||
            o->consecutive_gateway != rows[i].gateway) {
            fprintf(stderr, "row \"%s\": got l4 %u, 5xx %u, gateway %u\n", rows[i].what,
                    o->consecutive_errors, o->consecutive_5xx, o->consecutive_gateway);
            fail();
        }
        cfg_fixture_free(&f);
    }
    /* No outlierDetection: nothing counted at all. */
    struct cfg_fixture f;
    const struct cfg_destination_rule *dr =
        load_dr(&f, DR_HEAD "    loadBalancer: {simple: RANDOM}\n");
    assert_non_null(dr);
    assert_false(dr->policy.top.outlier.set);
    assert_int_equal(dr->policy.top.outlier.consecutive_5xx, 0);
    assert_int_equal(dr->policy.top.outlier.consecutive_gateway, 0);
    cfg_fixture_free(&f);
}

/* Istio's MergeTrafficPolicy: a set connectionPool replaces the one above
 * whole (tcp and http together: a subset's tcp-only pool drops the top
 * level's http limits), port level over its level, subset over the top. */
static void test_http_pool_merged_with_the_connection_pool(void **state)
{
    static const char *yaml =
        DR_HEAD "    connectionPool:\n"
                "      tcp: {maxConnections: 100}\n"
                "      http: {http1MaxPendingRequests: 10, maxRetries: 2}\n"
                "    outlierDetection: {consecutive5xxErrors: 4}\n"
                "    portLevelSettings:\n"
                "    - port: {number: 9090}\n"
                "      connectionPool: {http: {http2MaxRequests: 50}}\n"
                "  subsets:\n"
                "  - name: v2\n    labels: {version: v2}\n"
                "    trafficPolicy: {connectionPool: {tcp: {maxConnections: 5}}}\n"
                "  - name: v3\n    labels: {version: v3}\n"
                "    trafficPolicy: {outlierDetection: {consecutiveGatewayErrors: 1}}\n"
                "  - name: v4\n    labels: {version: v4}\n"
                "    trafficPolicy:\n"
                "      portLevelSettings:\n"
                "      - port: {number: 80}\n"
                "        connectionPool: {http: {maxRequestsPerConnection: 1}}\n";
    static const struct {
        const char *what, *subset;
        uint16_t port;
        uint32_t max_conns, pending, requests, retries, per_conn, fivexx, gateway;
        bool http_set;
    } rows[] = {
        {"the top level", NULL, 80, 100, 10, 0, 2, 0, 4, 0, true},
        {"the top level's port 9090 replaces the pool whole", NULL, 9090, 0, 0, 50, 0, 0, 4, 0,
         true},
        {"a subset's tcp-only pool drops the top level's http", "v2", 80, 5, 0, 0, 0, 0, 4, 0,
         false},
        {"a subset's tcp-only pool is over the top level's port level too", "v2", 9090, 5, 0, 0, 0,
         0, 4, 0, false},
        {"a subset with only outlierDetection keeps the top level's pool", "v3", 80, 100, 10, 0, 2,
         0, 5, 1, true},
        {"and the top level's port level", "v3", 9090, 0, 0, 50, 0, 0, 5, 1, true},
        {"a subset's own port level", "v4", 80, 0, 0, 0, 0, 1, 4, 0, true},
        {"an unknown subset gets the top level", "v9", 80, 100, 10, 0, 2, 0, 4, 0, true},
    };
    struct cfg_fixture f;
    const struct cfg_destination_rule *dr = load_dr(&f, yaml);
    if (!dr)
        cfg_fixture_dump(&f);
    assert_non_null(dr);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct cfg_policy_level p;
        route_policy(dr, rows[i].subset, rows[i].port, &p);
        const struct cfg_http_pool *h = &p.pool.http;
        if (p.pool.max_connections != rows[i].max_conns || h->set != rows[i].http_set ||
            h->max_pending != rows[i].pending || h->max_requests != rows[i].requests ||
            h->max_retries != rows[i].retries || h->max_requests_per_conn != rows[i].per_conn ||
            p.outlier.consecutive_5xx != rows[i].fivexx ||
            p.outlier.consecutive_gateway != rows[i].gateway) {
            fprintf(stderr,
                    "row \"%s\": got maxConnections %u, http %d {pending %u, requests %u, "
                    "retries %u, per connection %u}, 5xx %u, gateway %u\n",
                    rows[i].what, p.pool.max_connections, h->set, h->max_pending, h->max_requests,
                    h->max_retries, h->max_requests_per_conn, p.outlier.consecutive_5xx,
                    p.outlier.consecutive_gateway);
            fail();
        }
    }
    cfg_fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_pool_decoded_as_written),
        cmocka_unit_test(test_http_pool_loads_quietly),
        cmocka_unit_test(test_http_pool_refused_as_istio_refuses),
        cmocka_unit_test(test_outlier_counts_kept_apart),
        cmocka_unit_test(test_http_pool_merged_with_the_connection_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
