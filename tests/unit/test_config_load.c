/* The configuration loader (agent/config/): the seed's YAML as written, a
 * realistic multi-file tree and its lookups, YAML features, the content
 * version. Validation is in test_config_validation.c, the bounds on
 * hostile input in test_config_limits.c. */
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
        cmocka_unit_test(test_flow_scalars_ending_in_colon),
        cmocka_unit_test(test_service_entry_cidr_vips),
        cmocka_unit_test(test_authz_identity_fields_compile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
