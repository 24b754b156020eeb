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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_accounts_and_trust_domains_at_l4),
        cmocka_unit_test(test_invalid_identity_fields_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
