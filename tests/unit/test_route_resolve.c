/* Route resolution from the configuration (agent/route/resolve.c): VIPs,
 * VirtualService precedence and matches, weighted subsets, targetPort by
 * number and name, DestinationRule policy precedence, workloads by IP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/addr.h"
#include "route/resolve.h"
#include "support/config_fixture.h"

static const char *mesh_yaml =
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio.io/dataplane-mode: "
    "ambient}}\n---\n"
    "apiVersion: v1\nkind: Service\nmetadata: {name: payments, namespace: shop}\n"
    "spec:\n  clusterIP: 10.96.0.10\n  selector: {app: payments}\n"
    "  ports:\n  - {name: http, port: 80, targetPort: web}\n  - {name: grpc, port: 9090, "
    "targetPort: 9091}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: p1, namespace: shop, labels: {app: payments, "
    "version: v1}}\n"
    "spec:\n  serviceAccountName: pay\n  containers: [{name: a, ports: [{name: web, containerPort: "
    "8080}]}]\n"
    "status: {podIP: 10.1.0.1}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: p2, namespace: shop, labels: {app: payments, "
    "version: v2}}\n"
    "spec:\n  containers: [{name: a, ports: [{name: web, containerPort: 8081}]}]\n"
    "status: {podIP: 10.1.0.2}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: p3, namespace: shop, labels: {app: payments, "
    "version: v1}}\n"
    "spec:\n  containers: [{name: a, ports: [{name: web, containerPort: 8080}]}]\n"
    "status:\n  podIP: 10.1.0.3\n  conditions: [{type: Ready, status: 'False'}]\n---\n"
    "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: payments, "
    "namespace: shop}\n"
    "spec:\n  host: payments\n  trafficPolicy:\n    loadBalancer: {simple: RANDOM}\n"
    "    connectionPool: {tcp: {maxConnections: 100}}\n"
    "    portLevelSettings:\n    - port: {number: 9090}\n      loadBalancer: {simple: "
    "LEAST_REQUEST}\n"
    "  subsets:\n  - name: v1\n    labels: {version: v1}\n"
    "  - name: v2\n    labels: {version: v2}\n    trafficPolicy:\n"
    "      connectionPool: {tcp: {maxConnections: 5}}\n"
    "      portLevelSettings:\n      - port: {number: 9090}\n        outlierDetection: "
    "{consecutiveGatewayErrors: 2}\n"
    "---\n"
    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: payments, "
    "namespace: shop}\n"
    "spec:\n  hosts: [payments]\n  http:\n"
    "  - match: [{headers: {x: {exact: y}}}]\n    route: [{destination: {host: payments, subset: "
    "v2}}]\n"
    "  - match: [{sourceLabels: {app: checkout}}]\n    route: [{destination: {host: payments, "
    "subset: v2}}]\n"
    "  - match: [{port: 9090}]\n    route: [{destination: {host: payments, subset: v2}}]\n"
    "  - route:\n    - {destination: {host: payments, subset: v1}, weight: 99}\n"
    "    - {destination: {host: payments, subset: v2}, weight: 1}\n";

static struct meshd_addr A(const char *s) {
    struct meshd_addr a;
    assert_int_equal(addr_parse(s, &a), 0);
    return a;
}

static void
resolve(struct cfg_fixture *f, const struct route_source *src, const char *dst,
        struct route_cluster *c, struct route_result *r)
{
    static struct lb_state rng;
    if (!rng.rng)
        lb_state_init(&rng, 42);
    struct meshd_addr d = A(dst);
    route_resolve(f->snap, src, &d, &rng, c, r);
}

static void test_canary_split_within_binomial_bound(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f, mesh_yaml);
    assert_int_equal(f.diags.counts[CFG_ERROR], 0);
    struct route_source src = {.ns = "shop"};
    static struct route_cluster c;
    struct route_result r;
    int v2 = 0, n = 20000;
    for (int i = 0; i < n; i++) {
        resolve(&f, &src, "10.96.0.10:80", &c, &r);
        assert_int_equal(r.kind, ROUTE_SERVICE);
        v2 += c.subset && strcmp(c.subset, "v2") == 0;
    }
    /* 99.9% two-sided bound: |X - np| <= 3.29 sqrt(np(1-p)). */
    double mean = n * 0.01, bound = 3.29 * sqrt(n * 0.01 * 0.99);
    if (fabs(v2 - mean) > bound)
        fail_msg("v2 got %d of %d connections; expected %.0f +- %.1f", v2, n, mean, bound);
    cfg_fixture_free(&f);
}

static void test_route_precedence_and_matches(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f, mesh_yaml);
    static struct route_cluster c;
    struct route_result r;
    /* sourceLabels: the checkout client always gets v2 (second route; the
     * first has an L7 match that never matches at L4). */
    struct cfg_kv kv[] = {{"app", "checkout"}};
    struct route_source checkout = {.ns = "shop", .labels = {kv, 1}};
    for (int i = 0; i < 50; i++) {
        resolve(&f, &checkout, "10.96.0.10:80", &c, &r);
        assert_string_equal(c.subset, "v2");
        assert_ptr_equal(c.route, &c.vs->routes[1]);
    }
    /* port match: 9090 -> third route. */
    struct route_source other = {.ns = "shop"};
    resolve(&f, &other, "10.96.0.10:9090", &c, &r);
    assert_ptr_equal(c.route, &c.vs->routes[2]);
    assert_string_equal(c.subset, "v2");
    assert_int_equal(c.port, 9090);
    assert_int_equal(c.nendpoints, 1);
    assert_int_equal(c.target_ports[0], 9091); /* numeric targetPort */
    cfg_fixture_free(&f);
}

static void test_subsets_readiness_and_named_ports(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f, mesh_yaml);
    static struct route_cluster c;
    struct route_result r;
    struct route_source src = {.ns = "shop"};
    int seen_v1 = 0;
    for (int i = 0; i < 200 && !seen_v1; i++) {
        resolve(&f, &src, "10.96.0.10:80", &c, &r);
        if (strcmp(c.subset, "v1") != 0)
            continue;
        seen_v1 = 1;
        /* p3 is v1 but not ready: only p1. */
        assert_int_equal(c.nendpoints, 1);
        assert_string_equal(c.endpoints[0]->name, "p1");
        assert_int_equal(c.target_ports[0], 8080); /* targetPort "web" on p1 */
    }
    assert_true(seen_v1);
    cfg_fixture_free(&f);
}

static void test_policy_precedence(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f, mesh_yaml);
    const struct cfg_destination_rule *dr =
        cfg_find(f.snap, CFG_DESTINATION_RULE, "shop", "payments");
    struct cfg_policy_level p;
    route_policy(dr, NULL, 80, &p);
    assert_int_equal(p.lb, CFG_LB_RANDOM);
    assert_int_equal(p.pool.max_connections, 100);
    assert_false(p.outlier.set);
    route_policy(dr, NULL, 9090, &p); /* port level replaces loadBalancer only */
    assert_int_equal(p.lb, CFG_LB_LEAST_REQUEST);
    assert_int_equal(p.pool.max_connections, 100);
    route_policy(dr, "v2", 80, &p); /* subset replaces connectionPool */
    assert_int_equal(p.lb, CFG_LB_RANDOM);
    assert_int_equal(p.pool.max_connections, 5);
    route_policy(dr, "v2", 9090, &p); /* and its own port level adds outlier */
    assert_int_equal(p.lb, CFG_LB_LEAST_REQUEST);
    assert_int_equal(p.outlier.consecutive_errors, 2);
    route_policy(NULL, "v2", 80, &p);
    assert_int_equal(p.lb, CFG_LB_UNSET);
    assert_int_equal(route_lb_policy(p.lb), LB_ROUND_ROBIN);
    cfg_fixture_free(&f);
}

static void test_workloads_passthrough_and_no_route(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(
        &f, "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n"
            "spec: {clusterIP: 10.96.1.1, selector: {app: a}, ports: [{port: 80}]}\n---\n"
            "apiVersion: v1\nkind: Pod\nmetadata: {name: a1, labels: {app: a}}\n"
            "status: {podIP: 10.2.0.1}\n---\n"
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\n"
            "spec:\n  hosts: [a]\n  tcp:\n  - match: [{sourceNamespace: other}]\n"
            "    route: [{destination: {host: nowhere}}]\n"
            "  - route: [{destination: {host: a, port: {number: 81}}}]\n---\n"
            "apiVersion: v1\nkind: Service\nmetadata: {name: b}\n"
            "spec: {clusterIP: 10.96.1.2, selector: {app: b}, ports: [{port: 80}]}\n");
    static struct route_cluster c;
    struct route_result r;
    struct route_source src = {.ns = "default"}, other = {.ns = "other"};
    resolve(&f, &src, "10.2.0.1:8080", &c, &r);
    assert_int_equal(r.kind, ROUTE_WORKLOAD);
    assert_string_equal(r.workload->name, "a1");
    assert_false(route_in_mesh(f.snap, r.workload)); /* default is not ambient */
    resolve(&f, &src, "192.0.2.9:80", &c, &r);
    assert_int_equal(r.kind, ROUTE_PASSTHROUGH);
    resolve(&f, &other, "10.96.1.1:80", &c, &r);
    assert_int_equal(r.kind, ROUTE_NO_ROUTE); /* host "nowhere" */
    resolve(&f, &src, "10.96.1.1:80", &c, &r);
    assert_int_equal(r.kind, ROUTE_NO_ROUTE); /* port 81 is not a port of a */
    /* A service without a VirtualService, selecting nothing: no endpoints. */
    resolve(&f, &src, "10.96.1.2:80", &c, &r);
    assert_int_equal(r.kind, ROUTE_SERVICE);
    assert_int_equal(c.nendpoints, 0);
    assert_null(c.vs);
    cfg_fixture_free(&f);
}

/* Istio's host matching: the exact host before wildcards, the closest
 * wildcard first ("*.shop.svc.cluster.local" before "*"); exportTo hides
 * a VirtualService or DestinationRule from other namespaces; among the
 * DestinationRules a client sees, its own namespace's first, then the
 * service's, then the root namespace's. */
static void test_wildcard_hosts_and_export_to(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(
        &f,
        "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: shop}\n"
        "spec: {clusterIP: 10.96.2.1, selector: {app: a}, ports: [{port: 80}]}\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: shop}\n"
        "spec: {clusterIP: 10.96.2.2, selector: {app: b}, ports: [{port: 80}]}\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: c, namespace: web}\n"
        "spec: {clusterIP: 10.96.2.3, selector: {app: c}, ports: [{port: 80}]}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a1, namespace: shop, labels: {app: a}}\n"
        "status: {podIP: 10.3.0.1}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: b1, namespace: shop, labels: {app: b}}\n"
        "status: {podIP: 10.3.0.2}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: c1, namespace: web, labels: {app: c}}\n"
        "status: {podIP: 10.3.0.3}\n---\n"
        /* every host: to c, with a timeout to tell it apart */
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: all, "
        "namespace: web}\n"
        "spec:\n  hosts: ['*']\n  http: [{route: [{destination: {host: c.web.svc.cluster.local}}], "
        "timeout: 3s}]\n---\n"
        /* closer: the shop namespace's services, to b */
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: shop-wide, "
        "namespace: shop}\n"
        "spec:\n  hosts: ['*.shop.svc.cluster.local']\n  exportTo: ['.', web]\n"
        "  tcp: [{route: [{destination: {host: b}}]}]\n---\n"
        /* exact for a, but only for its own namespace */
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a, "
        "namespace: shop}\n"
        "spec:\n  hosts: [a]\n  exportTo: ['.']\n  tcp: [{route: [{destination: {host: a}}]}]\n"
        "---\n"
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: mesh-wide, "
        "namespace: istio-system}\n"
        "spec: {host: '*.local', trafficPolicy: {loadBalancer: {simple: RANDOM}}}\n---\n"
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: b, "
        "namespace: shop}\n"
        "spec: {host: b, exportTo: ['.'], trafficPolicy: {loadBalancer: {simple: "
        "LEAST_REQUEST}}}\n---\n"
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: b-for-web, "
        "namespace: web}\n"
        "spec: {host: b.shop.svc.cluster.local, trafficPolicy: {connectionPool: {tcp: "
        "{maxConnections: 7}}}}\n");
    static struct route_cluster c;
    struct route_result r;
    struct route_source shop = {.ns = "shop"}, web = {.ns = "web"}, other = {.ns = "other"};
    /* a from shop: its exact VirtualService. */
    resolve(&f, &shop, "10.96.2.1:80", &c, &r);
    assert_string_equal(c.vs->meta.name, "a");
    assert_string_equal(c.svc->name, "a");
    /* a from web: the exact one is not exported there; the closer
     * wildcard is (to b). */
    resolve(&f, &web, "10.96.2.1:80", &c, &r);
    assert_string_equal(c.vs->meta.name, "shop-wide");
    assert_string_equal(c.svc->name, "b");
    /* a from elsewhere: only "*" is visible (to c, with its timeout). */
    resolve(&f, &other, "10.96.2.1:80", &c, &r);
    assert_string_equal(c.vs->meta.name, "all");
    assert_string_equal(c.svc->name, "c");
    assert_int_equal(c.route->timeout_ns, 3000000000ull);
    /* b from shop: shop's own DestinationRule (exported to "." only). */
    resolve(&f, &shop, "10.96.2.2:80", &c, &r);
    assert_string_equal(c.dr->meta.name, "b");
    assert_int_equal(c.policy.lb, CFG_LB_LEAST_REQUEST);
    /* b from web: shop's is hidden; web's own rule for b wins. */
    resolve(&f, &web, "10.96.2.2:80", &c, &r);
    assert_string_equal(c.svc->name, "b");
    assert_string_equal(c.dr->meta.name, "b-for-web");
    assert_int_equal(c.policy.pool.max_connections, 7);
    /* c from shop: only the mesh-wide wildcard rule in the root namespace. */
    resolve(&f, &shop, "10.96.2.3:80", &c, &r);
    assert_string_equal(c.svc->name, "c");
    assert_string_equal(c.dr->meta.name, "mesh-wide");
    assert_int_equal(c.policy.lb, CFG_LB_RANDOM);
    cfg_fixture_free(&f);
}

/* A Service's networking.istio.io/exportTo annotation and a ServiceEntry's
 * exportTo: outside the namespaces listed, the address is no service. */
static void test_service_visibility(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(
        &f, "apiVersion: v1\nkind: Service\nmetadata:\n  name: private\n  namespace: shop\n"
            "  annotations: {networking.istio.io/exportTo: '., ops'}\n"
            "spec: {clusterIP: 10.96.3.1, selector: {app: p}, ports: [{port: 80}]}\n---\n"
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p1, namespace: shop, labels: {app: p}}\n"
            "status: {podIP: 10.4.0.1}\n---\n"
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: db, "
            "namespace: shop}\n"
            "spec:\n  hosts: [db.example.com]\n  addresses: [192.0.2.50]\n  exportTo: ['.']\n"
            "  ports: [{number: 5432, name: pg, protocol: TCP}]\n  resolution: STATIC\n"
            "  endpoints: [{address: 10.4.0.9}]\n");
    assert_int_equal(f.diags.counts[CFG_ERROR], 0);
    static struct route_cluster c;
    struct route_result r;
    struct route_source shop = {.ns = "shop"}, ops = {.ns = "ops"}, web = {.ns = "web"};
    resolve(&f, &shop, "10.96.3.1:80", &c, &r);
    assert_int_equal(r.kind, ROUTE_SERVICE);
    resolve(&f, &ops, "10.96.3.1:80", &c, &r);
    assert_int_equal(r.kind, ROUTE_SERVICE);
    resolve(&f, &web, "10.96.3.1:80", &c, &r);
    assert_int_equal(r.kind, ROUTE_PASSTHROUGH);
    resolve(&f, &shop, "192.0.2.50:5432", &c, &r);
    assert_int_equal(r.kind, ROUTE_SERVICE);
    assert_int_equal(c.nendpoints, 1);
    resolve(&f, &web, "192.0.2.50:5432", &c, &r);
    assert_int_equal(r.kind, ROUTE_PASSTHROUGH);
    cfg_fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canary_split_within_binomial_bound),
        cmocka_unit_test(test_route_precedence_and_matches),
        cmocka_unit_test(test_subsets_readiness_and_named_ports),
        cmocka_unit_test(test_policy_precedence),
        cmocka_unit_test(test_workloads_passthrough_and_no_route),
        cmocka_unit_test(test_wildcard_hosts_and_export_to),
        cmocka_unit_test(test_service_visibility),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
