/* The configuration loader (agent/config/): the seed's YAML as written, a
 * realistic multi-file tree, YAML features, every error path with its
 * file:line:col, and the bounds that keep hostile input harmless. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "core/addr.h"
#include "policy/authz.h"
#include "support/config_fixture.h"

static struct cfg_snapshot *load_path(const char *path, struct cfg_diags *diags)
{
    struct cfg_snapshot *s = NULL;
    cfg_diags_init(diags);
    const char *paths[] = {path};
    assert_int_equal(cfg_load(paths, 1, NULL, diags, &s), 0);
    return s;
}

static void assert_no_diags(const struct cfg_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        char line[1200];
        cfg_diag_format(&d->v[i], line, sizeof(line));
        fprintf(stderr, "unexpected: %s\n", line);
    }
    assert_int_equal(d->n, 0);
}

/* The user's notes, as written (deploy/examples/ holds them verbatim). */
static void test_seed_payments_canary(void **state)
{
    struct cfg_diags d;
    struct cfg_snapshot *s = load_path("deploy/examples/payments-canary.yaml", &d);
    assert_no_diags(&d);
    assert_int_equal(cfg_count(s, CFG_SERVICE), 1);
    assert_int_equal(cfg_count(s, CFG_DEPLOYMENT), 2);
    const struct cfg_virtual_service *vs = cfg_find(s, CFG_VIRTUAL_SERVICE, "default", "payments");
    assert_non_null(vs);
    assert_int_equal(vs->nroutes, 1);
    assert_true(vs->routes[0].http);
    assert_int_equal(vs->routes[0].ndest, 2);
    assert_string_equal(vs->routes[0].dest[0].dest.subset, "v1");
    assert_int_equal(vs->routes[0].dest[0].weight, 99);
    assert_int_equal(vs->routes[0].dest[1].weight, 1);
    const struct cfg_destination_rule *dr =
        cfg_find(s, CFG_DESTINATION_RULE, "default", "payments");
    assert_non_null(dr);
    assert_int_equal(dr->nsubsets, 2);
    assert_string_equal(cfg_label(&dr->subsets[1].labels, "version"), "v2");
    const struct cfg_service *svc = cfg_find(s, CFG_SERVICE, "default", "payments");
    assert_int_equal(svc->ports[0].port, 80);
    assert_int_equal(svc->ports[0].target.number, 8080);
    const struct cfg_deployment *v2 = cfg_find(s, CFG_DEPLOYMENT, "default", "payments-v2");
    assert_int_equal(v2->replicas, 1);
    assert_string_equal(cfg_label(&v2->template_labels, "version"), "v2");
    /* The VirtualService's short host resolves in its namespace. */
    struct cfg_iter it = {0};
    assert_ptr_equal(cfg_next_vs_for_host(s, "payments.default.svc.cluster.local", &it), vs);
    cfg_snapshot_unref(s);
    cfg_diags_fini(&d);
}

static void test_seed_gateway_peerauth_telemetry(void **state)
{
    struct cfg_diags d;
    struct cfg_snapshot *s = load_path("deploy/examples", &d);
    assert_no_diags(&d);
    assert_int_equal(cfg_snapshot_files(s), 4);
    const struct cfg_gateway *gw = cfg_find(s, CFG_GATEWAY, "istio-system", "my-gateway");
    assert_non_null(gw);
    assert_int_equal(gw->servers[0].port, 443);
    assert_string_equal(gw->servers[0].credential_name, "app-tls");
    assert_string_equal(gw->servers[0].tls_mode, "SIMPLE");
    assert_string_equal(gw->servers[0].hosts.v[0], "app.example.com");
    const struct cfg_virtual_service *vs =
        cfg_find(s, CFG_VIRTUAL_SERVICE, "default", "my-service");
    assert_string_equal(vs->gateways.v[0], "istio-system/my-gateway");
    assert_null(vs->routes[0].match[0].l7); /* prefix "/" is decidable at L4 */
    const struct cfg_peer_authentication *pa =
        cfg_find(s, CFG_PEER_AUTHENTICATION, "default", "default");
    assert_int_equal(pa->mode, CFG_MTLS_STRICT);
    assert_false(pa->selector.set);
    const struct cfg_telemetry *t = cfg_find(s, CFG_TELEMETRY, "istio-system", "access-logs");
    assert_int_equal(t->naccess_logging, 1);
    assert_string_equal(t->access_logging[0].providers.v[0], "envoy");
    const struct cfg_service *ingress =
        cfg_find(s, CFG_SERVICE, "istio-system", "istio-ingressgateway");
    assert_string_equal(ingress->type, "LoadBalancer");
    assert_int_equal(ingress->nports, 2);
    assert_int_equal(ingress->ports[1].target.number, 8443);
    cfg_snapshot_unref(s);
    cfg_diags_fini(&d);
}

static void test_realistic_tree_and_lookups(void **state)
{
    struct cfg_diags d;
    struct cfg_snapshot *s = load_path("tests/unit/data/config/realistic", &d);
    assert_no_diags(&d);
    assert_int_equal(cfg_snapshot_files(s), 5); /* yaml, yml-less json, subdirectories */
    /* Host forms: short (in the caller's namespace) and FQDN; a dotted
     * "name.ns" is a host of its own, as in Istio (test_config_hosts). */
    const struct cfg_svc *svc = cfg_svc_by_host(s, "payments", "shop");
    assert_non_null(svc);
    assert_null(cfg_svc_by_host(s, "payments.shop", "other"));
    assert_ptr_equal(cfg_svc_by_host(s, "payments.shop.svc.cluster.local", NULL), svc);
    assert_null(cfg_svc_by_host(s, "payments", "default"));
    assert_int_equal(svc->nendpoints, 3); /* two pods and the WorkloadEntry */
    /* VIP:port, both families; ports written as strings. */
    struct meshd_addr a;
    assert_int_equal(addr_parse("10.96.0.10:9090", &a), 0);
    const struct cfg_vip *vip = cfg_vip_lookup(s, &a);
    assert_non_null(vip);
    assert_ptr_equal(vip->svc, svc);
    assert_int_equal(vip->port->target.number, 9091);
    assert_int_equal(addr_parse("[fd00:96::10]:80", &a), 0);
    vip = cfg_vip_lookup(s, &a);
    assert_non_null(vip);
    assert_string_equal(vip->port->target.name, "http-alt");
    assert_int_equal(addr_parse("10.96.0.10:81", &a), 0);
    assert_null(cfg_vip_lookup(s, &a));
    /* ServiceEntry address and host. */
    assert_int_equal(addr_parse("192.0.2.50:5432", &a), 0);
    vip = cfg_vip_lookup(s, &a);
    assert_non_null(vip);
    assert_string_equal(vip->svc->fqdn, "ledger.internal.example");
    assert_int_equal(vip->svc->nendpoints, 1);
    /* Workloads by IP (either family), pods by node. */
    assert_int_equal(addr_parse("[fd00:1:1::10]:0", &a), 0);
    const struct cfg_workload *w = cfg_workload_by_ip(s, &a);
    assert_non_null(w);
    assert_string_equal(w->name, "payments-v1-abc12");
    assert_string_equal(w->service_account, "payments");
    assert_true(w->ready);
    assert_int_equal(w->pod->nports, 2);
    assert_int_equal(addr_parse("192.0.2.60:0", &a), 0);
    assert_string_equal(cfg_workload_by_ip(s, &a)->name, "legacy-vm");
    struct cfg_iter it = {0};
    w = cfg_next_on_node(s, "node-b", &it);
    assert_string_equal(w->name, "payments-v2-def34");
    assert_null(cfg_next_on_node(s, "node-b", &it));
    assert_null(cfg_next_on_node(s, "node-b", &it));
    /* Durations, policies at every level. */
    const struct cfg_destination_rule *dr = cfg_find(s, CFG_DESTINATION_RULE, "shop", "payments");
    assert_int_equal(dr->policy.top.lb, CFG_LB_LEAST_REQUEST);
    assert_int_equal(dr->policy.top.pool.max_connections, 100);
    assert_int_equal(dr->policy.top.pool.connect_timeout_ns, 250000000ULL);
    assert_int_equal(dr->policy.top.pool.keepalive_time_s, 3600);
    assert_int_equal(dr->policy.top.pool.keepalive_interval_s, 75);
    assert_int_equal(dr->policy.top.outlier.consecutive_errors, 3);
    assert_int_equal(dr->policy.top.outlier.base_ejection_ns, 30000000000ULL);
    assert_int_equal(dr->policy.ports[0].port, 9090);
    assert_int_equal(dr->policy.ports[0].level.lb, CFG_LB_CONSISTENT_SOURCE_IP);
    assert_int_equal(dr->subsets[1].policy.top.pool.max_connections, 10);
    const struct cfg_virtual_service *vs = cfg_find(s, CFG_VIRTUAL_SERVICE, "shop", "payments");
    assert_int_equal(vs->nroutes, 3);
    assert_string_equal(vs->routes[0].name, "canary");
    assert_string_equal(cfg_label(&vs->routes[0].match[0].source_labels, "app"), "checkout");
    assert_int_equal(vs->routes[1].retries, 3);
    assert_int_equal(vs->routes[1].per_try_timeout_ns, 2000000000ULL);
    assert_int_equal(vs->routes[1].timeout_ns, 10000000000ULL);
    assert_false(vs->routes[2].http);
    assert_int_equal(vs->routes[2].match[0].port, 9090);
    const struct cfg_peer_authentication *pa =
        cfg_find(s, CFG_PEER_AUTHENTICATION, "shop", "payments-metrics");
    assert_int_equal(pa->nports, 1);
    assert_int_equal(pa->ports[0].port, 9091);
    assert_int_equal(pa->ports[0].mode, CFG_MTLS_PERMISSIVE);
    const struct cfg_authorization_policy *ap =
        cfg_find(s, CFG_AUTHORIZATION_POLICY, "shop", "payments-allow");
    assert_int_equal(ap->nrules, 1);
    assert_int_equal(ap->rules[0].nfrom, 2);
    assert_string_equal(ap->rules[0].from[1].not_ip_blocks.v[0], "10.66.0.0/16");
    assert_string_equal(ap->rules[0].to[0].ports.v[0], "8080");
    assert_string_equal(ap->rules[0].when[0].key, "source.ip");
    const struct cfg_telemetry *t = cfg_find(s, CFG_TELEMETRY, "shop", "quiet-payments");
    assert_true(t->access_logging[0].disabled);
    assert_true(cfg_namespace_in_mesh(s, "shop"));
    assert_false(cfg_namespace_in_mesh(s, "istio-system"));
    assert_false(cfg_namespace_in_mesh(s, "nowhere"));
    /* Namespace iteration. */
    size_t n = 0;
    it = (struct cfg_iter){0};
    while (cfg_next_in_ns(s, CFG_AUTHORIZATION_POLICY, "istio-system", &it))
        n++;
    assert_int_equal(n, 1);
    cfg_snapshot_unref(s);
    cfg_diags_fini(&d);
}

static void test_yaml_features(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(
        &f, "# comment first\n"
            "---\n"
            "apiVersion: v1\n"
            "kind: List\n"
            "items:\n"
            "- apiVersion: v1\n"
            "  kind: Namespace\n"
            "  metadata: {name: 'quoted', labels: {\"istio.io/dataplane-mode\": ambient}}\n"
            "---\n"
            "---\n"
            "apiVersion: networking.istio.io/v1beta1\n"
            "kind: DestinationRule\n"
            "metadata: {name: dr, namespace: quoted}\n"
            "spec:\n"
            "  host: x\n"
            "  trafficPolicy:\n"
            "    outlierDetection: &od\n"
            "      consecutive5xxErrors: \"7\"\n"
            "      interval: 1m30s\n"
            "  subsets:\n"
            "  - name: a\n"
            "    trafficPolicy: {outlierDetection: *od}\n"
            "  - name: b\n"
            "    labels:\n"
            "      <<: {version: b, tier: base}\n"
            "      tier: override\n"
            "...\n");
    assert_int_equal(f.diags.n, 0);
    assert_true(cfg_namespace_in_mesh(f.snap, "quoted"));
    const struct cfg_destination_rule *dr = cfg_find(f.snap, CFG_DESTINATION_RULE, "quoted", "dr");
    assert_non_null(dr);
    assert_int_equal(dr->policy.top.outlier.consecutive_errors, 7);
    assert_int_equal(dr->policy.top.outlier.interval_ns, 90000000000ULL);
    assert_int_equal(dr->subsets[0].policy.top.outlier.consecutive_errors, 7);
    assert_string_equal(cfg_label(&dr->subsets[1].labels, "tier"), "override");
    assert_string_equal(cfg_label(&dr->subsets[1].labels, "version"), "b");
    cfg_fixture_free(&f);
}

static void test_version_is_content_hash(void **state)
{
    struct cfg_fixture a, b, c;
    const char *yaml = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n";
    cfg_fixture_load(&a, yaml);
    cfg_fixture_load(&b, yaml);
    cfg_fixture_load(&c, "apiVersion: v1\nkind: Namespace\nmetadata: {name: y}\n");
    assert_int_equal(strlen(cfg_snapshot_version(a.snap)), 16);
    /* Same content in another directory: same version (a hash, not a path). */
    assert_string_equal(cfg_snapshot_version(a.snap), cfg_snapshot_version(b.snap));
    assert_string_not_equal(cfg_snapshot_version(a.snap), cfg_snapshot_version(c.snap));
    cfg_fixture_free(&a);
    cfg_fixture_free(&b);
    cfg_fixture_free(&c);
}

/* One broken manifest per error path: the code, where, and what it says. */
static const struct broken_case {
    const char *what;
    const char *yaml;
    enum cfg_level level;
    const char *code;
    uint32_t line, col;
    const char *says;
} broken[] = {
    {"syntax error", "apiVersion: v1\nkind: [Namespace\n", CFG_ERROR, "MSH0100", 3, 1, "YAML:"},
    {"tab indentation", "apiVersion: v1\nkind: Namespace\nmetadata:\n\tname: x\n", CFG_ERROR,
     "MSH0100", 4, 1, "YAML:"},
    {"another project's kind is an Info",
     "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n", CFG_INFO, "MSH0101", 2, 7,
     "Widget (example.com/v1) is not applied by meshd; 1 resource accepted"},
    {"Gateway API Gateway is an Info",
     "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\n", CFG_INFO,
     "MSH0101", 2, 7,
     "Gateway (gateway.networking.k8s.io/v1) is not applied by meshd (Gateway API"},
    {"unknown kind in an Istio group",
     "apiVersion: networking.istio.io/v1\nkind: VirtualServce\nmetadata: {name: w}\n", CFG_ERROR,
     "MSH0101", 2, 7, "unknown kind \"VirtualServce\""},
    {"unknown version",
     "apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata: {name: v}\n", CFG_ERROR,
     "MSH0101", 1, 13, "unknown apiVersion \"networking.istio.io/v2\""},
    {"wrong group for kind", "apiVersion: v1\nkind: Gateway\nmetadata: {name: g}\n", CFG_ERROR,
     "MSH0101", 1, 13, "unknown apiVersion"},
    {"not a mapping", "- apiVersion: v1\n", CFG_ERROR, "IST0106", 1, 1, "must be a mapping"},
    {"no kind", "apiVersion: v1\nmetadata: {name: x}\n", CFG_ERROR, "IST0106", 1, 1,
     "apiVersion and kind are required"},
    {"missing name", "apiVersion: v1\nkind: Namespace\nmetadata: {labels: {a: b}}\n", CFG_ERROR,
     "IST0106", 3, 11, "metadata: name is required"},
    {"invalid name", "apiVersion: v1\nkind: Service\nmetadata: {name: Payments_Svc}\n", CFG_ERROR,
     "IST0106", 3, 18, "not a valid name"},
    {"invalid namespace", "apiVersion: v1\nkind: Service\nmetadata: {name: p, namespace: a.b}\n",
     CFG_ERROR, "IST0106", 3, 32, "not a valid namespace"},
    {"weight of the wrong type",
     "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
     "spec:\n  hosts: [a]\n  http:\n  - route:\n    - destination: {host: a}\n"
     "      weight: {x: 1}\n",
     CFG_ERROR, "IST0106", 9, 15,
     "spec.http[0].route[0].weight: expected an integer, got a mapping"},
    {"negative weight",
     "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
     "spec:\n  hosts: [a]\n  tcp:\n  - route:\n    - destination: {host: a}\n      weight: -5\n",
     CFG_ERROR, "IST0106", 9, 15, "spec.tcp[0].route[0].weight: expected a non-negative integer"},
    {"port out of range",
     "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports:\n  - port: 70000\n",
     CFG_ERROR, "IST0106", 6, 11, "spec.ports[0].port: expected an integer from 0 to 65535"},
    {"targetPort neither number nor name",
     "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports:\n"
     "  - port: 80\n    targetPort: Not_A_Name\n",
     CFG_ERROR, "IST0106", 7, 17, "not a port number or an IANA port name"},
    {"bad duration",
     "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\n"
     "spec:\n  host: a\n  trafficPolicy:\n    connectionPool:\n      tcp:\n"
     "        connectTimeout: 5 seconds\n",
     CFG_ERROR, "IST0106", 9, 25, "spec.trafficPolicy.connectionPool.tcp.connectTimeout"},
    {"bad IP",
     "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  clusterIP: 10.0.0.300\n",
     CFG_ERROR, "IST0106", 5, 14, "not an IP address"},
    {"bad enum",
     "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p}\n"
     "spec:\n  mtls:\n    mode: STRICTT\n",
     CFG_ERROR, "IST0106", 6, 11, "expected one of UNSET|PERMISSIVE|STRICT|DISABLE"},
    {"delegate VirtualService with tcp routes",
     "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
     "spec:\n  tcp: [{route: [{destination: {host: a}}]}]\n",
     CFG_ERROR, "IST0106", 5, 3, "a delegate VirtualService (no hosts) must have no tcp routes"},
    {"missing destination host",
     "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
     "spec:\n  hosts: [a]\n  http:\n  - route:\n    - destination: {subset: v1}\n",
     CFG_ERROR, "IST0106", 8, 20, "destination: host is required"},
    {"missing spec where the CRD requires it",
     "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: a}\n", CFG_ERROR,
     "IST0106", 1, 1, "spec is required"},
    {"portLevelMtls without selector",
     "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p}\n"
     "spec:\n  portLevelMtls:\n    8080: {mode: DISABLE}\n",
     CFG_ERROR, "IST0106", 5, 3, "portLevelMtls requires a workload selector"},
    {"bad authz port",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
     "spec:\n  rules:\n  - to:\n    - operation: {ports: [\"http\"]}\n",
     CFG_ERROR, "IST0106", 7, 27, "not a port number: \"http\""},
    {"bad ipBlocks",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
     "spec:\n  rules:\n  - from: [{source: {ipBlocks: [10.0.0.0/8, 10.0.0.0/33]}}]\n",
     CFG_ERROR, "IST0106", 6, 45, "ipBlocks[1]: \"10.0.0.0/33\" is not an IP address or CIDR"},
    {"when without values",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
     "spec:\n  rules:\n  - when:\n    - key: source.ip\n",
     CFG_ERROR, "IST0106", 7, 7, "one of values or notValues is required"},
    {"empty notNamespaces value (Istio: empty value not allowed)",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
     "spec:\n  action: DENY\n  rules:\n  - from: [{source: {notNamespaces: [\"\"]}}]\n",
     CFG_ERROR, "IST0106", 7, 38, "notNamespaces[0]: empty value not allowed"},
    {"empty when notValues value",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
     "spec:\n  rules:\n  - when:\n    - {key: source.principal, notValues: [\"\"]}\n",
     CFG_ERROR, "IST0106", 7, 43, "notValues[0]: empty value not allowed"},
    {"serviceAccounts wildcard",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
     "spec:\n  rules:\n  - from: [{source: {serviceAccounts: [\"ns/*\"]}}]\n",
     CFG_ERROR, "IST0106", 6, 40,
     "serviceAccounts[0]: expected 'serviceAccount' or 'namespace/serviceAccount' without "
     "wildcards, got \"ns/*\""},
    {"notServiceAccounts with two slashes",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
     "spec:\n  rules:\n  - from: [{source: {notServiceAccounts: [a/b/c]}}]\n",
     CFG_ERROR, "IST0106", 6, 43,
     "notServiceAccounts[0]: expected 'serviceAccount' or 'namespace/serviceAccount' without "
     "wildcards, got \"a/b/c\""},
    {"serviceAccounts with namespaces",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
     "spec:\n  rules:\n  - from: [{source: {serviceAccounts: [a], namespaces: [b]}}]\n",
     CFG_ERROR, "IST0106", 6, 21, "cannot set serviceAccounts with namespaces or principals"},
    {"duplicate key", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\nkind: Service\n",
     CFG_ERROR, "MSH0100", 4, 1, "duplicate key \"kind\""},
    {"duplicate resource",
     "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n"
     "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
     CFG_ERROR, "MSH0102", 5, 1, "also defined at input.yaml:1"},
    {"unknown anchor", "apiVersion: v1\nkind: Namespace\nmetadata: *nothing\n", CFG_ERROR,
     "MSH0100", 3, 11, "unknown anchor \"nothing\""},
    {"self-referencing anchor", "apiVersion: v1\nkind: Namespace\nmetadata: &m {name: *m}\n",
     CFG_ERROR, "MSH0100", 3, 21, "unknown anchor"},
    {"mapping key not a string", "apiVersion: v1\nkind: Namespace\nmetadata:\n  ? [a]\n  : b\n",
     CFG_ERROR, "IST0106", 4, 5, "mapping key must be a string"},
    {"secret data not a string",
     "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  tls.crt: [1]\n", CFG_ERROR,
     "IST0106", 5, 12, "data: tls.crt: expected a string"},
    {"unknown field (typo) is a warning",
     "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
     "spec:\n  hosts: [a]\n  tcp:\n  - route:\n    - destination: {host: a}\n      wieght: 5\n",
     CFG_WARNING, "MSH0103", 9, 15, "spec.tcp[0].route[0].wieght: unknown field"},
    {"unapplied Istio kind is a warning",
     "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: s}\n", CFG_WARNING,
     "MSH0205", 1, 1, "Sidecar (networking.istio.io/v1) is not applied by meshd"},
    {"matchExpressions is a warning",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\n"
     "spec:\n  selector:\n    matchExpressions: []\n",
     CFG_WARNING, "MSH0205", 6, 23, "matchExpressions is not supported"},
};

static void test_broken_manifests(void **state)
{
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        const struct broken_case *c = &broken[i];
        struct cfg_fixture f;
        cfg_fixture_load(&f, c->yaml);
        const struct cfg_diag *g = cfg_fixture_diag(&f, c->code);
        if (!g || g->level != c->level || g->pos.line != c->line || g->pos.col != c->col ||
            !strstr(g->message, c->says) || strcmp(g->pos.file, "input.yaml") != 0) {
            fprintf(stderr, "case \"%s\": want %s %s at %u:%u saying \"%s\"; got:\n", c->what,
                    cfg_level_name(c->level), c->code, c->line, c->col, c->says);
            cfg_fixture_dump(&f);
            fail();
        }
        /* An error keeps the resource out of the snapshot; a warning does not. */
        size_t resources = 0;
        for (int k = 0; k < CFG_KIND_COUNT; k++)
            resources += cfg_count(f.snap, (enum cfg_kind)k);
        if (c->level == CFG_ERROR && strcmp(c->code, "MSH0102") != 0)
            assert_int_equal(resources, 0);
        cfg_fixture_free(&f);
    }
}

/* Plain flow scalars ending in ':' read as go-yaml (kubectl) and PyYAML
 * read them, in sequences and mappings, in several documents; the values
 * are the text as written, and a real error is still an error. */
static void test_flow_scalars_ending_in_colon(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f,
                     "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
                     "metadata: {name: a, labels: {zone: 'x:'}}\n"
                     "spec:\n  hosts: [a.example]\n"
                     "  addresses: [1.2.3.4, 2001:db8::, fd00::]\n"
                     "  ports: [{number: 80, name: http}]\n---\n"
                     "apiVersion: v1\nkind: Service\nmetadata: {name: s, labels: {v6: fd00::}}\n"
                     "spec: {clusterIPs: [fd00:96::]}\n");
    cfg_fixture_dump(&f);
    assert_int_equal(f.diags.n, 0);
    const struct cfg_service_entry *se = cfg_find(f.snap, CFG_SERVICE_ENTRY, "default", "a");
    assert_non_null(se);
    assert_int_equal(se->addresses.n, 3);
    char buf[64];
    assert_string_equal(addr_format(&se->addresses.v[1], buf, sizeof(buf)), "[2001:db8::]:0");
    const struct cfg_service *svc = cfg_find(f.snap, CFG_SERVICE, "default", "s");
    assert_string_equal(cfg_label(&svc->meta.labels, "v6"), "fd00::");
    assert_int_equal(svc->cluster_ips.n, 1);
    cfg_fixture_free(&f);
    /* Quoting a scalar does not make a broken document valid. */
    cfg_fixture_load(&f, "apiVersion: v1\nkind: Namespace\nmetadata: {name: [a::, b}\n");
    assert_non_null(cfg_fixture_diag(&f, "MSH0100"));
    cfg_fixture_free(&f);
}

/* Valid manifests that meshd once refused (issue 16): each loads with no
 * error and the resource it describes, and kinds meshd does not apply get
 * exactly one Info per kind. */
static const struct valid_case {
    const char *what;
    const char *yaml;
    enum cfg_kind kind; /* the resource that must be in the snapshot */
    size_t infos;       /* Info messages expected */
} valid[] = {
    {"ServiceEntry addresses as CIDRs (samples/external/github.yaml)",
     "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: github-tcp}\n"
     "spec:\n  hosts: [dummy.github.com]\n  addresses:\n  - 13.229.188.59/32\n"
     "  - 140.82.112.0/20\n  - fd00:10::/64\n  ports: [{name: tcp, number: 22, protocol: TCP}]\n"
     "  location: MESH_EXTERNAL\n  resolution: NONE\n",
     CFG_SERVICE_ENTRY, 0},
    {"unix:// endpoints, abstract and by path",
     "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: uds}\n"
     "spec:\n  hosts: [uds.example.com]\n  ports: [{name: http, number: 80, protocol: HTTP}]\n"
     "  resolution: STATIC\n  endpoints:\n  - address: unix://@foo\n"
     "  - address: unix:///var/run/example/socket\n",
     CFG_SERVICE_ENTRY, 0},
    {"WorkloadEntry with a network and no address",
     "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: remote}\n"
     "spec:\n  network: network-2\n  labels: {app: remote}\n",
     CFG_WORKLOAD_ENTRY, 0},
    {"WorkloadEntry on a unix socket",
     "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: uds}\n"
     "spec:\n  address: unix://@foo\n",
     CFG_WORKLOAD_ENTRY, 0},
    {"VirtualService without hosts (a delegate)",
     "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: productpage}\n"
     "spec:\n  http:\n  - match: [{uri: {prefix: /productpage}}]\n"
     "    route: [{destination: {host: productpage}}]\n",
     CFG_VIRTUAL_SERVICE, 0},
    {"AuthorizationPolicy without spec (deny all)",
     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny}\n",
     CFG_AUTHORIZATION_POLICY, 0},
    {"PeerAuthentication without spec",
     "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: d}\n",
     CFG_PEER_AUTHENTICATION, 0},
    {"Telemetry without spec",
     "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t}\n", CFG_TELEMETRY, 0},
    {"flow sequence holding an IPv6 address ending in ':'",
     "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: full}\n"
     "spec:\n  hosts: [\"example.com\"]\n  addresses: [1.2.3.4, 2001:db8::, 001:db8::]\n"
     "  ports: [{name: foo, protocol: HTTP, number: 1234}]\n  resolution: DNS\n",
     CFG_SERVICE_ENTRY, 0},
    {"other projects' kinds: one Info per kind",
     "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: a}\n---\n"
     "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: b}\n---\n"
     "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: a}\n---\n"
     "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\nmetadata: {name: a}\n---\n"
     "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TLSRoute\nmetadata: {name: a}\n---\n"
     "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: "
     "a}\n---\n"
     "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\n---\n"
     "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata: {name: a}\n---\n"
     "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nmetadata: {name: a}\n---\n"
     "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n---\n"
     "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: a}\n---\n"
     "apiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata: {name: a}\n---\n"
     "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
     CFG_NAMESPACE, 11},
};

static void test_valid_manifests_load(void **state)
{
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        struct cfg_fixture f;
        cfg_fixture_load(&f, valid[i].yaml);
        size_t infos = 0;
        for (size_t d = 0; d < f.diags.n; d++)
            infos += f.diags.v[d].level == CFG_INFO && f.diags.v[d].pos.line > 0;
        if (f.diags.counts[CFG_ERROR] || f.diags.counts[CFG_WARNING] || infos != valid[i].infos ||
            cfg_count(f.snap, valid[i].kind) != 1) {
            fprintf(stderr, "case \"%s\": want it loaded with %zu Info; got:\n", valid[i].what,
                    valid[i].infos);
            cfg_fixture_dump(&f);
            fail();
        }
        cfg_fixture_free(&f);
    }
}

/* Istio's validation, one row per rule (its CRD schema's
 * x-kubernetes-validations and pkg/config/validation/validation.go, named
 * in each row): refused with IST0106 and the resource left out. */
#define SE_HEAD                                                                                    \
    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: se}\nspec:\n"
#define WE_HEAD                                                                                    \
    "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: we}\nspec:\n"
#define DR_HEAD                                                                                    \
    "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: dr}\nspec:\n"     \
    "  host: a\n"
static const struct rule_case {
    const char *rule, *yaml, *says;
} istio_rules[] = {
    {"CRD: port must be between 1-65535",
     SE_HEAD "  hosts: [a.example]\n  ports: [{number: 70000, name: p}]\n", "from 0 to 65535"},
    {"CRD: port number 0", SE_HEAD "  hosts: [a.example]\n  ports: [{number: 0, name: p}]\n",
     "port must be 1-65535"},
    {"CRD: port number cannot be duplicated",
     SE_HEAD "  hosts: [a.example]\n  ports: [{number: 80, name: a}, {number: 80, name: b}]\n",
     "port number 80 is duplicated"},
    {"ValidateServiceEntry: port name already defined",
     SE_HEAD "  hosts: [a.example]\n  ports: [{number: 80, name: a}, {number: 81, name: a}]\n",
     "port name a is duplicated"},
    {"CRD: NONE mode cannot set endpoints",
     SE_HEAD "  hosts: [a.example]\n  ports: [{number: 80, name: a}]\n"
             "  endpoints: [{address: 10.0.0.1}]\n",
     "resolution NONE cannot set endpoints"},
    {"CRD: hostname cannot be wildcard", SE_HEAD "  hosts: ['*']\n  resolution: DNS\n",
     "a hostname cannot be \"*\""},
    {"CRD: CIDR addresses are allowed only for NONE/STATIC resolution",
     SE_HEAD "  hosts: [a.example]\n  addresses: [10.0.0.0/8]\n  resolution: DNS\n",
     "CIDR addresses are allowed only for NONE/STATIC"},
    {"CRD: DNS_ROUND_ROBIN mode cannot have multiple endpoints",
     SE_HEAD "  hosts: [a.example]\n  resolution: DNS_ROUND_ROBIN\n"
             "  endpoints: [{address: a.example}, {address: b.example}]\n",
     "DNS_ROUND_ROBIN cannot have more than one endpoint"},
    {"CRD: only one of WorkloadSelector or Endpoints can be set",
     SE_HEAD "  hosts: [a.example]\n  resolution: STATIC\n  workloadSelector: {labels: {a: b}}\n"
             "  endpoints: [{address: 10.0.0.1}]\n",
     "only one of workloadSelector or endpoints"},
    {"CRD: wildcard is not supported in selector",
     SE_HEAD "  hosts: [a.example]\n  workloadSelector: {labels: {a: 'b*'}}\n",
     "wildcard is not supported in selector"},
    {"resolution is an enum", SE_HEAD "  hosts: [a.example]\n  resolution: DNSS\n",
     "expected one of NONE|STATIC|DNS"},
    {"CRD: UDS must be an absolute path or abstract socket", WE_HEAD "  address: unix://foo\n",
     "UDS must be an absolute path or abstract socket"},
    {"CRD: UDS may not be a dir", WE_HEAD "  address: unix:///dir/\n", "may not be a directory"},
    {"CRD: UDS may not include ports", WE_HEAD "  address: unix:///sock\n  ports: {http: 80}\n",
     "a UDS endpoint may not include ports"},
    {"CRD: Address is required (no address, no network)", WE_HEAD "  labels: {a: b}\n",
     "address is required"},
    {"CRD: WorkloadEntry port must be between 1-65535",
     WE_HEAD "  address: 1.1.1.1\n  ports: {http: 99999}\n", "from 0 to 65535"},
    {"CRD: WorkloadEntry port name must be valid",
     WE_HEAD "  address: 1.1.1.1\n  ports: {'@': 80}\n", "is not a valid port name"},
    {"CRD: warmup.duration is required",
     DR_HEAD "  trafficPolicy: {loadBalancer: {warmup: {minimumPercent: 5}}}\n",
     "warmup: duration is required"},
    {"validateLoadBalancer: minimumPercent <= 100",
     DR_HEAD "  trafficPolicy: {loadBalancer: {warmup: {duration: 30s, minimumPercent: 150}}}\n",
     "must be from 0 to 100"},
    {"validateLoadBalancer: aggression > 0",
     DR_HEAD "  trafficPolicy: {loadBalancer: {warmup: {duration: 30s, aggression: -0.1}}}\n",
     "must be greater than 0"},
    {"CRD: portLevelMtls has at least one property",
     "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p}\nspec:\n"
     "  selector: {matchLabels: {a: b}}\n  portLevelMtls: {}\n",
     "must have at least one port"},
    {"CRD: provider name at least 1 character",
     "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t}\nspec:\n"
     "  accessLogging: [{providers: [{name: ''}]}]\n",
     "name is required"},
    {"CRD: metrics customMetric at least 1 character",
     "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t}\nspec:\n"
     "  metrics: [{overrides: [{match: {customMetric: ''}}]}]\n",
     "customMetric: must not be empty"},
    {"CRD: tag override value must be set when operation is UPSERT",
     "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t}\nspec:\n"
     "  metrics: [{overrides: [{tagOverrides: {foo: {operation: UPSERT}}}]}]\n",
     "value must be set when operation is UPSERT"},
    {"CRD: tag override value must not be set when operation is REMOVE",
     "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t}\nspec:\n"
     "  metrics: [{overrides: [{tagOverrides: {foo: {operation: REMOVE, value: x}}}]}]\n",
     "value must not be set when operation is REMOVE"},
    {"ValidateGateway: gateway must have at least one server",
     "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n"
     "  selector: {istio: ingressgateway}\n",
     "a Gateway must have at least one server"},
    {"ValidateVirtualService: delegate must have no gateways",
     "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n"
     "  gateways: [g]\n  http: [{route: [{destination: {host: a}}]}]\n",
     "a delegate VirtualService (no hosts) must have no gateways"},
};

static void test_istio_validation_rules(void **state)
{
    for (size_t i = 0; i < sizeof(istio_rules) / sizeof(istio_rules[0]); i++) {
        struct cfg_fixture f;
        cfg_fixture_load(&f, istio_rules[i].yaml);
        bool found = false;
        for (size_t d = 0; d < f.diags.n; d++)
            found |= f.diags.v[d].level == CFG_ERROR && strcmp(f.diags.v[d].code, "IST0106") == 0 &&
                     strstr(f.diags.v[d].message, istio_rules[i].says) != NULL &&
                     f.diags.v[d].pos.line > 0;
        size_t resources = 0;
        for (int k = 0; k < CFG_KIND_COUNT; k++)
            resources += cfg_count(f.snap, (enum cfg_kind)k);
        if (!found || resources) {
            fprintf(stderr, "rule \"%s\": want IST0106 saying \"%s\"; got:\n", istio_rules[i].rule,
                    istio_rules[i].says);
            cfg_fixture_dump(&f);
            fail();
        }
        cfg_fixture_free(&f);
    }
}

/* A ServiceEntry's CIDR block is looked up like its addresses, longest
 * prefix first, after exact VIPs. */
static void test_service_entry_cidr_vips(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f, "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
                         "metadata: {name: wide}\nspec:\n  hosts: [wide.example]\n"
                         "  addresses: [140.82.0.0/16]\n  ports: [{name: t, number: 22}]\n---\n"
                         "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
                         "metadata: {name: github}\nspec:\n  hosts: [github.com]\n"
                         "  addresses: [13.229.188.59/32, 140.82.112.0/20]\n"
                         "  ports: [{name: t, number: 22}]\n");
    assert_int_equal(f.diags.n, 0);
    static const struct {
        const char *addr, *host;
    } rows[] = {
        {"13.229.188.59:22", "github.com"},  /* a /32 is an address */
        {"140.82.112.1:22", "github.com"},   /* in the /20 */
        {"140.82.127.255:22", "github.com"}, /* its last address */
        {"140.82.128.1:22", "wide.example"}, /* only in the /16 */
        {"140.82.112.1:443", NULL},          /* not a port of the entry */
        {"13.229.188.60:22", NULL},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct meshd_addr a;
        assert_int_equal(addr_parse(rows[i].addr, &a), 0);
        const struct cfg_vip *v = cfg_vip_lookup(f.snap, &a);
        if ((v == NULL) != (rows[i].host == NULL) ||
            (v && strcmp(v->svc->fqdn, rows[i].host) != 0)) {
            fprintf(stderr, "%s: want %s, got %s\n", rows[i].addr,
                    rows[i].host ? rows[i].host : "none", v ? v->svc->fqdn : "none");
            fail();
        }
    }
    cfg_fixture_free(&f);
}

/* The message names the resource in istioctl's shape. */
static void test_message_format(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f, "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
                         "metadata: {name: payments, namespace: shop}\n"
                         "spec:\n  host: payments\n  trafficPolicy:\n"
                         "    loadBalancer: {simple: FASTEST}\n");
    assert_int_equal(f.diags.n, 1);
    char line[1200];
    cfg_diag_format(&f.diags.v[0], line, sizeof(line));
    assert_string_equal(line,
                        "Error [IST0106] (DestinationRule shop/payments input.yaml:7:28) "
                        "spec.trafficPolicy.loadBalancer.simple: expected one of "
                        "UNSPECIFIED|LEAST_CONN|RANDOM|PASSTHROUGH|ROUND_ROBIN|LEAST_REQUEST: "
                        "\"FASTEST\"");
    cfg_fixture_free(&f);
}

/* An alias bomb: each level doubles; the budget stops the walk. */
static void test_alias_bomb_is_bounded(void **state)
{
    char yaml[8192];
    size_t off = (size_t)snprintf(yaml, sizeof(yaml),
                                  "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                                  "metadata: {name: bomb}\nspec:\n  hosts: &h0 [a, a, a, a]\n");
    for (int i = 1; i < 30; i++)
        off += (size_t)snprintf(yaml + off, sizeof(yaml) - off,
                                "  x%d: &h%d [*h%d, *h%d, *h%d, *h%d]\n", i, i, i - 1, i - 1, i - 1,
                                i - 1);
    snprintf(yaml + off, sizeof(yaml) - off,
             "  http:\n  - route: [{destination: {host: a}}]\n    match: *h29\n");
    struct cfg_fixture f;
    cfg_fixture_load(&f, yaml);
    /* Decoding 4^30 matches would never end; the test finishing is the point. */
    assert_non_null(cfg_fixture_diag(&f, "IST0106"));
    assert_int_equal(cfg_count(f.snap, CFG_VIRTUAL_SERVICE), 0);
    cfg_fixture_free(&f);
}

static void test_nesting_and_size_limits(void **state)
{
    /* 100 levels of nesting: over the limit of 64. */
    char deep[1024];
    size_t off =
        (size_t)snprintf(deep, sizeof(deep), "apiVersion: v1\nkind: Namespace\nmetadata: ");
    for (int i = 0; i < 100; i++)
        deep[off++] = '[';
    deep[off] = '\0';
    struct cfg_fixture f;
    cfg_fixture_load(&f, deep);
    const struct cfg_diag *g = cfg_fixture_diag(&f, "MSH0100");
    assert_non_null(g);
    assert_non_null(strstr(g->message, "nesting deeper"));
    cfg_fixture_free(&f);

    /* A 3 MiB document: over the 2 MiB per-document limit. */
    size_t big = 3u << 20;
    char *huge = malloc(big + 200);
    assert_non_null(huge);
    off = (size_t)snprintf(huge, 200,
                           "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"
                           "data: \"");
    memset(huge + off, 'a', big);
    strcpy(huge + off + big, "\"\n");
    cfg_fixture_load(&f, huge);
    g = cfg_fixture_diag(&f, "MSH0100");
    assert_non_null(g);
    assert_non_null(strstr(g->message, "document larger"));
    free(huge);
    cfg_fixture_free(&f);
}

static void test_file_limits_and_missing(void **state)
{
    struct cfg_diags d;
    cfg_diags_init(&d);
    struct cfg_snapshot *s = NULL;
    struct cfg_load_opts o;
    cfg_load_opts_default(&o);
    o.max_file_bytes = 64;
    const char *paths[] = {"/nonexistent/meshd-config", "deploy/examples/payments-canary.yaml"};
    assert_int_equal(cfg_load(paths, 2, &o, &d, &s), 0);
    assert_int_equal(d.n, 2);
    assert_string_equal(d.v[0].code, "MSH0104");
    assert_non_null(strstr(d.v[0].message, "No such file"));
    assert_non_null(strstr(d.v[1].message, "file larger than 64 bytes"));
    assert_int_equal(cfg_count(s, CFG_SERVICE), 0);
    cfg_snapshot_unref(s);
    cfg_diags_fini(&d);
}

/* The identity fields survive compilation with Istio's meaning: a bare
 * serviceAccounts name is in the policy's namespace, and a DENY on
 * notNamespaces catches a plaintext peer (no identity) but not a peer of
 * the excepted namespace. */
static void test_authz_identity_fields_compile(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f, "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                         "metadata: {name: outsiders, namespace: prod}\n"
                         "spec:\n  action: DENY\n"
                         "  rules:\n  - from: [{source: {notNamespaces: [default, prod]}}]\n"
                         "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                         "metadata: {name: accounts, namespace: prod}\n"
                         "spec:\n  rules:\n"
                         "  - from: [{source: {serviceAccounts: [client, default/sleep]}}]\n");
    assert_no_diags(&f.diags);
    struct authz_policy p[4];
    size_t n = cfg_authz_select(f.snap, "prod", NULL, p, 4);
    assert_int_equal(n, 2);
    static const struct {
        const char *principal, *ns;
        bool allow;
    } rows[] = {
        {NULL, NULL, false},                               /* plaintext: not default/prod */
        {"cluster.local/ns/prod/sa/client", "prod", true}, /* "client" is prod/client */
        {"cluster.local/ns/default/sa/sleep", "default", true},
        {"cluster.local/ns/default/sa/client", "default", false}, /* not prod's account */
        {"cluster.local/ns/other/sa/sleep", "other", false},      /* DENY: other namespace */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct authz_request req = {.principal = rows[i].principal, .namespace_ = rows[i].ns};
        struct authz_decision d;
        authz_evaluate(p, n, &req, &d);
        if (d.allow != rows[i].allow)
            fail_msg("%s: expected %s", rows[i].principal ? rows[i].principal : "plaintext",
                     rows[i].allow ? "allow" : "deny");
    }
    cfg_fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_payments_canary),
        cmocka_unit_test(test_seed_gateway_peerauth_telemetry),
        cmocka_unit_test(test_realistic_tree_and_lookups),
        cmocka_unit_test(test_yaml_features),
        cmocka_unit_test(test_version_is_content_hash),
        cmocka_unit_test(test_broken_manifests),
        cmocka_unit_test(test_valid_manifests_load),
        cmocka_unit_test(test_flow_scalars_ending_in_colon),
        cmocka_unit_test(test_service_entry_cidr_vips),
        cmocka_unit_test(test_istio_validation_rules),
        cmocka_unit_test(test_message_format),
        cmocka_unit_test(test_alias_bomb_is_bounded),
        cmocka_unit_test(test_nesting_and_size_limits),
        cmocka_unit_test(test_file_limits_and_missing),
        cmocka_unit_test(test_authz_identity_fields_compile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
