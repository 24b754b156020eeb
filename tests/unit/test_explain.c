/* The configuration explained for one workload (agent/admin/explain.c),
 * as `meshctl proxy-config routes` and `meshctl authn tls-check` show it:
 * the seed's canary seen from a client (route, weights, subsets,
 * DestinationRule, ready endpoints), a sourceLabels route only its client
 * gets, the service filter, PeerAuthentication per port with the policy
 * and scope that decided it, and the errors for unknown workloads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "admin/explain.h"
#include "support/config_fixture.h"

static const char *yaml =
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: "
    "{istio.io/dataplane-mode: ambient}}\n---\n"
    "apiVersion: v1\nkind: Service\nmetadata: {name: payments}\n"
    "spec: {clusterIP: 10.96.0.10, selector: {app: payments}, ports: [{port: 80, targetPort: "
    "8080}]}\n---\n"
    "apiVersion: v1\nkind: Service\nmetadata: {name: ledger}\n"
    "spec: {selector: {app: ledger}, ports: [{port: 7000}]}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: client, labels: {app: client}}\n"
    "spec: {serviceAccountName: shopper, containers: [{name: c, ports: [{containerPort: "
    "9000}]}]}\nstatus: {podIP: 10.1.0.9}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: canary-tester, labels: {app: tester}}\n"
    "status: {podIP: 10.1.0.8}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: pay-v1, labels: {app: payments, version: v1}}\n"
    "spec: {containers: [{name: p, ports: [{containerPort: 8080}]}]}\n"
    "status: {podIP: 10.1.0.1}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: pay-v1b, labels: {app: payments, version: "
    "v1}}\nstatus: {podIP: 10.1.0.3, conditions: [{type: Ready, status: 'False'}]}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: pay-v2, labels: {app: payments, version: v2}}\n"
    "status: {podIP: 10.1.0.2}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: legacy, namespace: old, labels: {app: l}}\n"
    "status: {podIP: 10.1.0.7}\n---\n"
    "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata: {name: "
    "payments}\n"
    "spec:\n  host: payments\n  trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}\n"
    "  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]\n---\n"
    "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata: {name: payments}\n"
    "spec:\n  hosts: [payments]\n  http:\n"
    "  - name: testers\n    match: [{sourceLabels: {app: tester}}]\n"
    "    route: [{destination: {host: payments, subset: v2}}]\n"
    "  - route:\n    - {destination: {host: payments, subset: v1}, weight: 99}\n"
    "    - {destination: {host: payments, subset: v2}, weight: 1}\n---\n"
    "apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {name: default}\n"
    "spec: {mtls: {mode: STRICT}}\n---\n"
    "apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {name: client}\n"
    "spec:\n  selector: {matchLabels: {app: client}}\n"
    "  portLevelMtls: {9000: {mode: PERMISSIVE}}\n---\n"
    "apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {name: old, "
    "namespace: old}\nspec: {mtls: {mode: STRICT}}\n";

static const json_t *route_for(const json_t *res, const char *service)
{
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(res, "routes"), i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "service")), service) == 0)
            return r;
    }
    fail_msg("no route for %s", service);
    return NULL;
}

static const char *s_of(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static long long i_of(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static void canary_seen_from_a_client(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f, yaml);
    char err[200];
    json_t *res = explain_routes(f.snap, "client.default", NULL, err, sizeof(err));
    assert_non_null(res);
    const json_t *r = route_for(res, "payments.default.svc.cluster.local");
    assert_string_equal(s_of(r, "vip"), "10.96.0.10:80");
    assert_string_equal(s_of(r, "virtual_service"), "default/payments");
    assert_string_equal(s_of(r, "route"), "http[1]"); /* the testers route is not theirs */
    const json_t *d = json_object_get(r, "destinations");
    assert_int_equal(json_array_size(d), 2);
    const json_t *v1 = json_array_get(d, 0), *v2 = json_array_get(d, 1);
    assert_string_equal(s_of(v1, "subset"), "v1");
    assert_int_equal(i_of(v1, "weight"), 99);
    assert_int_equal(i_of(v1, "ready_endpoints"), 1); /* pay-v1b is not ready */
    assert_string_equal(s_of(v1, "destination_rule"), "default/payments");
    assert_string_equal(s_of(v1, "load_balancer"), "LEAST_REQUEST");
    assert_string_equal(s_of(v2, "subset"), "v2");
    assert_int_equal(i_of(v2, "weight"), 1);
    /* Per request on an HTTP port: every http[] route, in order. */
    const json_t *http = json_object_get(r, "http_routes");
    assert_int_equal(json_array_size(http), 2);
    assert_string_equal(json_string_value(json_array_get(http, 0)),
                        "testers: source app=tester -> payments/v2 100%");
    assert_string_equal(json_string_value(json_array_get(http, 1)),
                        "http[1]: * -> payments/v1 99%, payments/v2 1%");
    /* A service without a clusterIP: shown, with no VIP to capture. */
    const json_t *l = route_for(res, "ledger.default.svc.cluster.local");
    assert_true(json_is_null(json_object_get(l, "vip")));
    assert_true(json_is_null(json_object_get(l, "virtual_service")));
    assert_int_equal(i_of(json_array_get(json_object_get(l, "destinations"), 0), "weight"), 100);
    json_decref(res);

    /* The tester's own route, by name; the filter keeps one service. */
    res = explain_routes(f.snap, "default/canary-tester", "payments", err, sizeof(err));
    assert_non_null(res);
    assert_int_equal(json_array_size(json_object_get(res, "routes")), 1);
    r = route_for(res, "payments.default.svc.cluster.local");
    assert_string_equal(s_of(r, "route"), "testers");
    d = json_object_get(r, "destinations");
    assert_int_equal(json_array_size(d), 1);
    assert_int_equal(i_of(json_array_get(d, 0), "weight"), 100);
    json_decref(res);

    /* On the command line a service is found as DNS would find it, while
     * YAML hosts with a dot are taken as written. */
    static const char *const forms[] = {"payments.default", "payments.default.svc",
                                        "payments.default.svc.cluster.local"};
    for (size_t k = 0; k < 3; k++) {
        res = explain_routes(f.snap, "default/canary-tester", forms[k], err, sizeof(err));
        assert_non_null(res);
        assert_int_equal(json_array_size(json_object_get(res, "routes")), 1);
        json_decref(res);
    }

    assert_null(explain_routes(f.snap, "default/nobody", NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "no Pod or WorkloadEntry default/nobody"));
    assert_null(explain_routes(f.snap, "/x", NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "is not a workload"));
    cfg_fixture_free(&f);
}

/* The DestinationRule policy each destination gets, merged (subset over
 * top level), in Istio's field names: connectionPool.http and the two
 * outlier counts apart; a destination without a policy shows none. */
static void destination_policy_merged_per_subset(void **state)
{
    static const char *policy_yaml =
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: "
        "{istio.io/dataplane-mode: ambient}}\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: payments}\n"
        "spec: {clusterIP: 10.96.0.10, selector: {app: payments}, ports: [{port: 80}]}\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: ledger}\n"
        "spec: {clusterIP: 10.96.0.11, selector: {app: ledger}, ports: [{port: 80}]}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: client, labels: {app: client}}\n"
        "status: {podIP: 10.1.0.9}\n---\n"
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: payments}\n"
        "spec:\n  host: payments\n  trafficPolicy:\n"
        "    connectionPool:\n      tcp: {maxConnections: 100, connectTimeout: 250ms}\n"
        "      http: {http1MaxPendingRequests: 10, http2MaxRequests: 50, "
        "maxRequestsPerConnection: 1, maxRetries: 3, idleTimeout: 1500ms, "
        "h2UpgradePolicy: DO_NOT_UPGRADE}\n"
        "    outlierDetection: {consecutiveGatewayErrors: 3, interval: 5s}\n"
        "  subsets:\n  - name: v1\n    labels: {version: v1}\n"
        "  - name: v2\n    labels: {version: v2}\n"
        "    trafficPolicy: {connectionPool: {http: {http2MaxRequests: 7}}}\n---\n"
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: payments}\n"
        "spec:\n  hosts: [payments]\n  http:\n  - route:\n"
        "    - {destination: {host: payments, subset: v1}, weight: 50}\n"
        "    - {destination: {host: payments, subset: v2}, weight: 50}\n";
    struct cfg_fixture f;
    cfg_fixture_load(&f, policy_yaml);
    char err[200];
    json_t *res = explain_routes(f.snap, "client.default", NULL, err, sizeof(err));
    assert_non_null(res);
    const json_t *d =
        json_object_get(route_for(res, "payments.default.svc.cluster.local"), "destinations");
    assert_int_equal(json_array_size(d), 2);
    const json_t *v1 = json_array_get(d, 0), *v2 = json_array_get(d, 1);
    char *pool = json_dumps(json_object_get(v1, "connection_pool"), JSON_COMPACT);
    assert_string_equal(pool,
                        "{\"tcp\":{\"maxConnections\":100,\"connectTimeout\":\"250ms\"},"
                        "\"http\":{\"http1MaxPendingRequests\":10,\"http2MaxRequests\":50,"
                        "\"maxRequestsPerConnection\":1,\"maxRetries\":3,"
                        "\"idleTimeout\":\"1500ms\",\"h2UpgradePolicy\":\"DO_NOT_UPGRADE\"}}");
    free(pool);
    char *od = json_dumps(json_object_get(v1, "outlier_detection"), JSON_COMPACT);
    assert_string_equal(od, "{\"consecutive5xxErrors\":5,\"consecutiveGatewayErrors\":3,"
                            "\"interval\":\"5s\"}");
    free(od);
    /* v2's connectionPool replaces the top level's whole (tcp included),
     * as Istio merges; the top level's outlierDetection stays. */
    pool = json_dumps(json_object_get(v2, "connection_pool"), JSON_COMPACT);
    assert_string_equal(pool, "{\"http\":{\"http2MaxRequests\":7}}");
    free(pool);
    assert_non_null(json_object_get(v2, "outlier_detection"));
    /* No DestinationRule: no policy shown. */
    const json_t *l = json_array_get(
        json_object_get(route_for(res, "ledger.default.svc.cluster.local"), "destinations"), 0);
    assert_null(json_object_get(l, "connection_pool"));
    assert_null(json_object_get(l, "outlier_detection"));
    json_decref(res);
    cfg_fixture_free(&f);
}

static void tls_modes_per_port(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f, yaml);
    char err[200];
    json_t *res = explain_tls(f.snap, "example.org", "client.default", err, sizeof(err));
    assert_non_null(res);
    assert_string_equal(s_of(res, "identity"), "spiffe://example.org/ns/default/sa/shopper");
    assert_true(json_is_true(json_object_get(res, "in_mesh")));
    assert_string_equal(s_of(res, "status"), "OK");
    const json_t *ports = json_object_get(res, "ports");
    assert_int_equal(json_array_size(ports), 2);
    const json_t *any = json_array_get(ports, 0), *p9000 = json_array_get(ports, 1);
    /* The workload policy leaves the mode UNSET: the namespace's STRICT. */
    assert_string_equal(s_of(any, "port"), "*");
    assert_string_equal(s_of(any, "mode"), "STRICT");
    assert_string_equal(s_of(any, "policy"), "default/default");
    assert_string_equal(s_of(any, "scope"), "namespace");
    /* Its portLevelMtls for 9000. */
    assert_int_equal(i_of(p9000, "port"), 9000);
    assert_string_equal(s_of(p9000, "mode"), "PERMISSIVE");
    assert_string_equal(s_of(p9000, "policy"), "default/client");
    assert_string_equal(s_of(p9000, "scope"), "workload");
    json_decref(res);

    /* STRICT for a workload outside the mesh: nobody enforces it. */
    res = explain_tls(f.snap, "cluster.local", "legacy.old", err, sizeof(err));
    assert_non_null(res);
    assert_true(json_is_false(json_object_get(res, "in_mesh")));
    assert_string_equal(s_of(res, "clients"), "plain TCP");
    assert_non_null(strstr(s_of(res, "status"), "CONFLICT"));
    json_decref(res);

    assert_null(explain_tls(f.snap, "cluster.local", "nobody", err, sizeof(err)));
    assert_non_null(strstr(err, "default/nobody"));
    cfg_fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(canary_seen_from_a_client),
        cmocka_unit_test(destination_policy_merged_per_subset),
        cmocka_unit_test(tls_modes_per_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
