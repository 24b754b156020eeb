/* AuthorizationPolicy source.serviceAccounts / notServiceAccounts and
 * trustDomains / notTrustDomains, from the YAML a user writes through the
 * loader, the compiler (config/authz) and the evaluator (policy/authz):
 * serviceAccounts are L4 as ztunnel enforces them ("sa" in the policy's
 * namespace, "ns/sa" as written; matched on the mTLS peer's SPIFFE id),
 * trust domains are the id's first segment with Istio's patterns. A
 * plaintext peer has no identity: such a source never matches it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/addr.h"
#include "policy/authz.h"
#include "support/config_fixture.h"

static const struct row {
    const char *behaviour;
    const char *spec;      /* the policy's spec, in namespace foo */
    const char *principal; /* NULL: a plaintext peer */
    bool allow;
} rows[] = {
    {"ALLOW serviceAccounts: a short name is in the policy's namespace",
     "rules: [{from: [{source: {serviceAccounts: [client]}}]}]", "cluster.local/ns/foo/sa/client",
     true},
    {"ALLOW serviceAccounts: the same name in another namespace is not it",
     "rules: [{from: [{source: {serviceAccounts: [client]}}]}]", "cluster.local/ns/bar/sa/client",
     false},
    {"ALLOW serviceAccounts: ns/sa names another namespace",
     "rules: [{from: [{source: {serviceAccounts: [bar/client]}}]}]",
     "cluster.local/ns/bar/sa/client", true},
    {"ALLOW serviceAccounts: a longer name is not a prefix match",
     "rules: [{from: [{source: {serviceAccounts: [bar/client]}}]}]",
     "cluster.local/ns/bar/sa/client-2", false},
    {"ALLOW serviceAccounts: any trust domain",
     "rules: [{from: [{source: {serviceAccounts: [client]}}]}]", "other.example/ns/foo/sa/client",
     true},
    {"ALLOW serviceAccounts: one of several",
     "rules: [{from: [{source: {serviceAccounts: [a, "
     "bar/b, client]}}]}]",
     "cluster.local/ns/foo/sa/client", true},
    {"ALLOW serviceAccounts: a plaintext peer has none",
     "rules: [{from: [{source: {serviceAccounts: [client]}}]}]", NULL, false},
    {"ALLOW serviceAccounts AND ports",
     "rules: [{from: [{source: {serviceAccounts: [client]}}], "
     "to: [{operation: {ports: ['9090']}}]}]",
     "cluster.local/ns/foo/sa/client", false},
    {"DENY notServiceAccounts: everyone else is denied",
     "action: DENY\n  rules: [{from: [{source: {notServiceAccounts: [client]}}]}]",
     "cluster.local/ns/foo/sa/intruder", false},
    {"DENY notServiceAccounts: the named account passes",
     "action: DENY\n  rules: [{from: [{source: {notServiceAccounts: [client]}}]}]",
     "cluster.local/ns/foo/sa/client", true},
    {"DENY serviceAccounts: the named account is denied",
     "action: DENY\n  rules: [{from: [{source: {serviceAccounts: [foo/client]}}]}]",
     "cluster.local/ns/foo/sa/client", false},
    {"ALLOW trustDomains: exact", "rules: [{from: [{source: {trustDomains: [cluster.local]}}]}]",
     "cluster.local/ns/foo/sa/client", true},
    {"ALLOW trustDomains: another domain is not it",
     "rules: [{from: [{source: {trustDomains: [cluster.local]}}]}]",
     "cluster.local.evil/ns/foo/sa/client", false},
    {"ALLOW trustDomains: suffix pattern",
     "rules: [{from: [{source: {trustDomains: ['*-west']}}]}]", "cluster-west/ns/foo/sa/client",
     true},
    {"ALLOW trustDomains: prefix pattern",
     "rules: [{from: [{source: {trustDomains: ['cluster-*']}}]}]", "other/ns/foo/sa/client", false},
    {"ALLOW trustDomains '*': any mTLS peer", "rules: [{from: [{source: {trustDomains: ['*']}}]}]",
     "x.y/ns/foo/sa/client", true},
    {"ALLOW trustDomains '*': not a plaintext peer",
     "rules: [{from: [{source: {trustDomains: ['*']}}]}]", NULL, false},
    {"DENY notTrustDomains: a foreign domain is denied",
     "action: DENY\n  rules: [{from: [{source: {notTrustDomains: [cluster.local]}}]}]",
     "partner.example/ns/foo/sa/client", false},
    {"DENY notTrustDomains: the local domain passes",
     "action: DENY\n  rules: [{from: [{source: {notTrustDomains: [cluster.local]}}]}]",
     "cluster.local/ns/foo/sa/client", true},
    {"ALLOW trustDomains AND serviceAccounts",
     "rules: [{from: [{source: {trustDomains: [cluster.local], serviceAccounts: [client]}}]}]",
     "partner.example/ns/foo/sa/client", false},
};

/* An AuthorizationPolicy p in namespace foo with this spec. */
static void load_policy(struct cfg_fixture *f, const char *spec)
{
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
             "metadata: {name: p, namespace: foo}\nspec:\n  %s\n",
             spec);
    cfg_fixture_load(f, yaml);
}

static void test_service_accounts_and_trust_domains_at_l4(void **state)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct cfg_fixture f;
        load_policy(&f, rows[i].spec);
        struct authz_policy pols[4];
        size_t n = cfg_authz_select(f.snap, "foo", NULL, pols, 4);
        if (f.diags.counts[CFG_ERROR] || n != 1) {
            cfg_fixture_dump(&f);
            fail_msg("%s: the policy did not load", rows[i].behaviour);
        }
        struct authz_request req = {.principal = rows[i].principal,
                                    .namespace_ = rows[i].principal ? "foo" : NULL};
        assert_int_equal(addr_parse("10.244.1.11:40000", &req.source), 0);
        assert_int_equal(addr_parse("10.244.2.11:8080", &req.destination), 0);
        struct authz_decision d;
        authz_evaluate(pols, n, &req, &d);
        if (d.allow != rows[i].allow)
            fail_msg("%s: expected %s", rows[i].behaviour, rows[i].allow ? "allow" : "deny");
        cfg_fixture_free(&f);
    }
}

/* Istio's ValidateAuthorizationPolicy rules for these fields. */
static const struct invalid {
    const char *what, *spec, *says;
} invalid[] = {
    {"serviceAccounts with namespaces",
     "rules: [{from: [{source: {serviceAccounts: [bar/sa], namespaces: [bar]}}]}]",
     "cannot set serviceAccounts with namespaces or principals"},
    {"notServiceAccounts with principals",
     "rules: [{from: [{source: {notServiceAccounts: [sa], principals: [x]}}]}]",
     "cannot set serviceAccounts with namespaces or principals"},
    {"a wildcard service account", "rules: [{from: [{source: {serviceAccounts: ['client-*']}}]}]",
     "without wildcards"},
    {"two slashes", "rules: [{from: [{source: {serviceAccounts: [a/b/c]}}]}]", "namespace/"},
    {"an empty namespace", "rules: [{from: [{source: {serviceAccounts: [/sa]}}]}]", "namespace/"},
    {"a trust domain with a slash", "rules: [{from: [{source: {trustDomains: [a/b]}}]}]",
     "is not a trust domain"},
    {"a wildcard in the middle", "rules: [{from: [{source: {trustDomains: ['a*b']}}]}]",
     "is not a trust domain"},
};

static void test_invalid_identity_fields_are_refused(void **state)
{
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        struct cfg_fixture f;
        load_policy(&f, invalid[i].spec);
        const struct cfg_diag *g = cfg_fixture_diag(&f, "IST0106");
        if (!g || !strstr(g->message, invalid[i].says) ||
            cfg_count(f.snap, CFG_AUTHORIZATION_POLICY) != 0) {
            cfg_fixture_dump(&f);
            fail_msg("%s: want IST0106 saying \"%s\"", invalid[i].what, invalid[i].says);
        }
        cfg_fixture_free(&f);
    }
}

/* istio.io's "Authorization for TCP traffic" task, its policies as
 * written (tests/config/corpus/istio.io) and the outcomes the page shows:
 * methods in an ALLOW rule make it match nothing; in a DENY rule they are
 * dropped and the rule matches more. */
static const struct task_row {
    const char *snip;
    uint16_t port;
    bool allow;
} task_rows[] = {
    {"allow_authorization_policy_for_a_tcp_workload_1", 9000, true},
    {"allow_authorization_policy_for_a_tcp_workload_1", 9001, true},
    {"allow_authorization_policy_for_a_tcp_workload_1", 9002, false},
    {"allow_authorization_policy_for_a_tcp_workload_5", 9000, false},
    {"allow_authorization_policy_for_a_tcp_workload_5", 9001, false},
    {"deny_authorization_policy_for_a_tcp_workload_1", 9000, false},
    {"deny_authorization_policy_for_a_tcp_workload_1", 9001, false},
    {"deny_authorization_policy_for_a_tcp_workload_4", 9000, false},
    {"deny_authorization_policy_for_a_tcp_workload_4", 9001, true},
};

static void test_istio_io_tcp_task_outcomes(void **state)
{
    for (size_t i = 0; i < sizeof(task_rows) / sizeof(task_rows[0]); i++) {
        char path[300];
        snprintf(path, sizeof(path),
                 "tests/config/corpus/istio.io/content/en/docs/tasks/security/authorization/"
                 "authz-tcp/snip_configure_%s.yaml",
                 task_rows[i].snip);
        const char *paths[] = {path};
        struct cfg_diags d;
        cfg_diags_init(&d);
        struct cfg_snapshot *s = NULL;
        assert_int_equal(cfg_load(paths, 1, NULL, &d, &s), 0);
        assert_int_equal(d.counts[CFG_ERROR], 0);
        static const struct cfg_kv kv[] = {{"app", "tcp-echo"}};
        const struct cfg_labels labels = {kv, 1};
        struct authz_policy pols[4];
        size_t n = cfg_authz_select(s, "foo", &labels, pols, 4);
        assert_int_equal(n, 1);
        struct authz_request req = {.principal = "cluster.local/ns/foo/sa/sleep",
                                    .namespace_ = "foo"};
        char dst[64];
        snprintf(dst, sizeof(dst), "10.244.2.11:%u", task_rows[i].port);
        assert_int_equal(addr_parse("10.244.1.11:40000", &req.source), 0);
        assert_int_equal(addr_parse(dst, &req.destination), 0);
        struct authz_decision dec;
        authz_evaluate(pols, n, &req, &dec);
        if (dec.allow != task_rows[i].allow)
            fail_msg("%s, port %u: the page says %s", task_rows[i].snip, task_rows[i].port,
                     task_rows[i].allow ? "connection succeeded" : "connection rejected");
        cfg_snapshot_unref(s);
        cfg_diags_fini(&d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_accounts_and_trust_domains_at_l4),
        cmocka_unit_test(test_invalid_identity_fields_are_refused),
        cmocka_unit_test(test_istio_io_tcp_task_outcomes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
