/* AuthorizationPolicy at L4 (agent/policy/authz.c): one row per Istio
 * behaviour — precedence, every L4 field and its not-form, the matching
 * forms, L7 handling, empty-rule edge cases, and every negative field with
 * a plaintext peer (no identity: "not X" for every X) and an mTLS one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/pattern.h"
#include "policy/authz.h"
#include "support/authz_build.h"

#define POLICY(act, ...)                                                                           \
    {                                                                                              \
        .name = #act, .action = AUTHZ_##act, __VA_ARGS__                                           \
    }

static struct cidr cidr(const char *s)
{
    struct cidr c;
    assert_int_equal(cidr_parse(s, &c), 0);
    return c;
}

static struct meshd_addr addr(const char *ip, uint16_t port)
{
    struct cidr c = cidr(ip);
    c.addr.port = htons(port);
    return c.addr;
}

enum peer { MTLS, PLAIN };

struct row {
    const char *behaviour;
    struct authz_policy p[3];
    size_t n;
    enum peer peer;
    bool allow;
};

static void run_rows(const struct row *rows, size_t n)
{
    struct authz_request mtls = {.principal = "cluster.local/ns/foo/sa/client",
                                 .namespace_ = "foo",
                                 .source = addr("10.244.1.11", 40000),
                                 .destination = addr("10.244.2.11", 8080)};
    struct authz_request plain = mtls;
    plain.principal = plain.namespace_ = NULL;
    for (size_t i = 0; i < n; i++) {
        struct authz_decision d;
        authz_evaluate(rows[i].p, rows[i].n, rows[i].peer == MTLS ? &mtls : &plain, &d);
        if (d.allow != rows[i].allow)
            fail_msg("%s: expected %s", rows[i].behaviour, rows[i].allow ? "allow" : "deny");
    }
}

static void istio_behaviours(void **state)
{
    /* ipBlocks built here: compound literals of structs need values. */
    static struct cidr pod_net[1], other_net[1], one_ip[1], v6_net[1];
    pod_net[0] = cidr("10.244.0.0/16");
    other_net[0] = cidr("192.0.2.0/24");
    one_ip[0] = cidr("10.244.1.11");
    v6_net[0] = cidr("fd00::/8");
    const struct authz_cidrs POD_NET = {pod_net, 1}, OTHER_NET = {other_net, 1},
                             ONE_IP = {one_ip, 1}, V6_NET = {v6_net, 1};

    const struct row rows[] = {
        {"no policies: allow", {{0}}, 0, MTLS, true},
        {"ALLOW with an empty rule allows everything", {POLICY(ALLOW, RULES({0}))}, 1, MTLS, true},
        {"ALLOW with no rules allows nothing", {POLICY(ALLOW, .nrules = 0)}, 1, MTLS, false},
        {"DENY with no rules denies nothing", {POLICY(DENY, .nrules = 0)}, 1, MTLS, true},
        {"DENY with an empty rule denies everything", {POLICY(DENY, RULES({0}))}, 1, MTLS, false},
        {"DENY wins over a matching ALLOW",
         {POLICY(ALLOW, RULES({0})), POLICY(DENY, RULES({0}))},
         2,
         MTLS,
         false},
        {"ALLOW present but not matching denies",
         {POLICY(ALLOW, RULES({FROM({.principals = STRS("cluster.local/ns/bar/sa/x")})}))},
         1,
         MTLS,
         false},
        {"any matching ALLOW among several allows",
         {POLICY(ALLOW, RULES({FROM({.namespaces = STRS("bar")})})),
          POLICY(ALLOW, RULES({FROM({.namespaces = STRS("foo")})}))},
         2,
         MTLS,
         true},
        {"AUDIT alone does not deny", {POLICY(AUDIT, RULES({0}))}, 1, MTLS, true},
        {"AUDIT does not count as an ALLOW",
         {POLICY(AUDIT, RULES({0})), POLICY(ALLOW, .nrules = 0)},
         2,
         MTLS,
         false},
        {"principals: exact match",
         {POLICY(ALLOW, RULES({FROM({.principals = STRS("cluster.local/ns/foo/sa/client")})}))},
         1,
         MTLS,
         true},
        {"principals: prefix match",
         {POLICY(ALLOW, RULES({FROM({.principals = STRS("cluster.local/ns/foo/*")})}))},
         1,
         MTLS,
         true},
        {"principals: suffix match",
         {POLICY(ALLOW, RULES({FROM({.principals = STRS("*/sa/client")})}))},
         1,
         MTLS,
         true},
        {"principals: presence match",
         {POLICY(ALLOW, RULES({FROM({.principals = STRS("*")})}))},
         1,
         MTLS,
         true},
        {"principals: presence does not match plaintext",
         {POLICY(ALLOW, RULES({FROM({.principals = STRS("*")})}))},
         1,
         PLAIN,
         false},
        {"principals: any of the list",
         {POLICY(ALLOW,
                 RULES({FROM({.principals = STRS("a", "cluster.local/ns/foo/sa/client")})}))},
         1,
         MTLS,
         true},
        {"notPrincipals excludes the peer",
         {POLICY(ALLOW, RULES({FROM({.not_principals = STRS("*/sa/client")})}))},
         1,
         MTLS,
         false},
        {"notPrincipals lets others through",
         {POLICY(ALLOW, RULES({FROM({.not_principals = STRS("*/sa/admin")})}))},
         1,
         MTLS,
         true},
        {"notPrincipals matches plaintext (no principal is not admin)",
         {POLICY(ALLOW, RULES({FROM({.not_principals = STRS("*/sa/admin")})}))},
         1,
         PLAIN,
         true},
        {"namespaces: match",
         {POLICY(ALLOW, RULES({FROM({.namespaces = STRS("foo")})}))},
         1,
         MTLS,
         true},
        {"namespaces: no match",
         {POLICY(ALLOW, RULES({FROM({.namespaces = STRS("bar")})}))},
         1,
         MTLS,
         false},
        {"namespaces: plaintext has none",
         {POLICY(ALLOW, RULES({FROM({.namespaces = STRS("*")})}))},
         1,
         PLAIN,
         false},
        {"deny by namespace",
         {POLICY(DENY, RULES({FROM({.namespaces = STRS("foo")})}))},
         1,
         MTLS,
         false},
        {"deny by namespace spares plaintext (no namespace to match)",
         {POLICY(DENY, RULES({FROM({.namespaces = STRS("foo")})}))},
         1,
         PLAIN,
         true},
        {"notNamespaces excludes",
         {POLICY(ALLOW, RULES({FROM({.not_namespaces = STRS("foo")})}))},
         1,
         MTLS,
         false},
        {"ipBlocks: CIDR match",
         {POLICY(ALLOW, RULES({FROM({.ip_blocks = POD_NET})}))},
         1,
         PLAIN,
         true},
        {"ipBlocks: single address",
         {POLICY(ALLOW, RULES({FROM({.ip_blocks = ONE_IP})}))},
         1,
         MTLS,
         true},
        {"ipBlocks: no match",
         {POLICY(ALLOW, RULES({FROM({.ip_blocks = OTHER_NET})}))},
         1,
         MTLS,
         false},
        {"ipBlocks: other family never matches",
         {POLICY(ALLOW, RULES({FROM({.ip_blocks = V6_NET})}))},
         1,
         MTLS,
         false},
        {"notIpBlocks excludes",
         {POLICY(ALLOW, RULES({FROM({.not_ip_blocks = POD_NET})}))},
         1,
         MTLS,
         false},
        {"fields inside a source are ANDed",
         {POLICY(ALLOW, RULES({FROM({.namespaces = STRS("foo"), .ip_blocks = OTHER_NET})}))},
         1,
         MTLS,
         false},
        {"sources are ORed",
         {POLICY(ALLOW, RULES({FROM({.namespaces = STRS("bar")}, {.ip_blocks = POD_NET})}))},
         1,
         MTLS,
         true},
        {"ports: match", {POLICY(ALLOW, RULES({TO({.ports = PORTS(80, 8080)})}))}, 1, MTLS, true},
        {"ports: no match", {POLICY(ALLOW, RULES({TO({.ports = PORTS(9090)})}))}, 1, MTLS, false},
        {"notPorts excludes",
         {POLICY(ALLOW, RULES({TO({.not_ports = PORTS(8080)})}))},
         1,
         MTLS,
         false},
        {"deny a port, allow the rest",
         {POLICY(DENY, RULES({TO({.ports = PORTS(8080)})})), POLICY(ALLOW, RULES({0}))},
         2,
         MTLS,
         false},
        {"from and to are ANDed",
         {POLICY(ALLOW, RULES({FROM({.namespaces = STRS("foo")}), TO({.ports = PORTS(9090)})}))},
         1,
         MTLS,
         false},
        {"rules are ORed",
         {POLICY(ALLOW, RULES({TO({.ports = PORTS(9090)})}, {FROM({.namespaces = STRS("foo")})}))},
         1,
         MTLS,
         true},
        {"L7 operation in ALLOW never matches",
         {POLICY(ALLOW, RULES({TO({.ports = PORTS(8080), .methods = STRS("GET")})}))},
         1,
         MTLS,
         false},
        {"L7 operation in DENY is dropped: matches more broadly",
         {POLICY(DENY, RULES({TO({.paths = STRS("/admin")})}))},
         1,
         MTLS,
         false},
        {"L7 source field in ALLOW never matches",
         {POLICY(ALLOW, RULES({FROM({.namespaces = STRS("foo"), .has_l7 = true})}))},
         1,
         MTLS,
         false},
        {"L7 source field in DENY is dropped",
         {POLICY(DENY, RULES({FROM({.namespaces = STRS("foo"), .has_l7 = true})}))},
         1,
         MTLS,
         false},
        {"when source.ip matches",
         {POLICY(ALLOW,
                 RULES({WHEN({.key = AUTHZ_KEY_SOURCE_IP, .values = STRS("10.244.1.0/24")})}))},
         1,
         MTLS,
         true},
        {"when source.ip notValues excludes",
         {POLICY(ALLOW,
                 RULES({WHEN({.key = AUTHZ_KEY_SOURCE_IP, .not_values = STRS("10.244.1.11")})}))},
         1,
         MTLS,
         false},
        {"when source.namespace",
         {POLICY(ALLOW, RULES({WHEN({.key = AUTHZ_KEY_SOURCE_NAMESPACE, .values = STRS("fo*")})}))},
         1,
         MTLS,
         true},
        {"when source.principal on plaintext never matches",
         {POLICY(ALLOW, RULES({WHEN({.key = AUTHZ_KEY_SOURCE_PRINCIPAL, .values = STRS("*")})}))},
         1,
         PLAIN,
         false},
        {"when destination.port",
         {POLICY(ALLOW,
                 RULES({WHEN({.key = AUTHZ_KEY_DESTINATION_PORT, .values = STRS("8080")})}))},
         1,
         MTLS,
         true},
        {"when destination.ip",
         {POLICY(ALLOW, RULES({WHEN(
                            {.key = AUTHZ_KEY_DESTINATION_IP, .values = STRS("10.244.2.0/24")})}))},
         1,
         MTLS,
         true},
        {"when conditions are ANDed",
         {POLICY(ALLOW, RULES({WHEN({.key = AUTHZ_KEY_DESTINATION_PORT, .values = STRS("8080")},
                                    {.key = AUTHZ_KEY_SOURCE_NAMESPACE, .values = STRS("bar")})}))},
         1,
         MTLS,
         false},
        {"L7 when key in ALLOW never matches",
         {POLICY(ALLOW, RULES({WHEN({.key = AUTHZ_KEY_L7, .values = STRS("x")})}))},
         1,
         MTLS,
         false},
        {"L7 when key in DENY is dropped",
         {POLICY(DENY, RULES({WHEN({.key = AUTHZ_KEY_L7, .values = STRS("x")})}))},
         1,
         MTLS,
         false},
        {"mesh-wide deny-all with a namespace exception (deny wins)",
         {POLICY(DENY, RULES({FROM({.not_namespaces = STRS("foo")})}))},
         1,
         MTLS,
         true},
    };
    run_rows(rows, LEN(rows));
    assert_true(LEN(rows) >= 40);
}

static void string_matching_forms(void **state)
{
    static const struct {
        const char *pattern, *value;
        bool match;
    } rows[] = {
        {"abc", "abc", true},  {"abc", "abcd", false}, {"ab*", "abcd", true}, {"ab*", "a", false},
        {"*cd", "abcd", true}, {"*cd", "abce", false}, {"*", "", false},      {"*", "x", true},
        {"", "", true},        {"", "x", false},       {"a*", "a", true},     {"*a", "a", true},
    };
    for (size_t i = 0; i < LEN(rows); i++)
        assert_int_equal(pattern_match(rows[i].pattern, rows[i].value), rows[i].match);
    assert_false(pattern_match("*", NULL));
}

/* Every negative field, with a plaintext peer (no identity) and an mTLS
 * peer (cluster.local/ns/foo/sa/client from 10.244.1.11 to port 8080),
 * under ALLOW and under DENY. The absent identity is "not X" for every X,
 * so a DENY on a not-form catches plaintext, as in ztunnel and Istio. */
static void negative_fields_with_and_without_identity(void **state)
{
    static struct cidr pod_net[1], other_net[1];
    pod_net[0] = cidr("10.244.0.0/16");
    other_net[0] = cidr("192.0.2.0/24");
    const struct authz_cidrs POD_NET = {pod_net, 1}, OTHER_NET = {other_net, 1};
    static const struct authz_service_account foo_client[] = {{"foo", "client"}};
    static const struct authz_service_account default_sleep[] = {{"default", "sleep"}};
    static const struct authz_service_account bar_client[] = {{"bar", "client"}};
    const struct authz_service_accounts FOO_CLIENT = {foo_client, 1},
                                        DEFAULT_SLEEP = {default_sleep, 1},
                                        BAR_CLIENT = {bar_client, 1};

    const struct row rows[] = {
        /* notNamespaces: the reported bypass. */
        {"DENY notNamespaces [default] denies plaintext",
         {POLICY(DENY, RULES({FROM({.not_namespaces = STRS("default")})}))},
         1,
         PLAIN,
         false},
        {"DENY notNamespaces [default] denies mTLS from foo",
         {POLICY(DENY, RULES({FROM({.not_namespaces = STRS("default")})}))},
         1,
         MTLS,
         false},
        {"DENY notNamespaces [foo] spares mTLS from foo",
         {POLICY(DENY, RULES({FROM({.not_namespaces = STRS("foo")})}))},
         1,
         MTLS,
         true},
        {"DENY notNamespaces [*] denies plaintext (no namespace at all)",
         {POLICY(DENY, RULES({FROM({.not_namespaces = STRS("*")})}))},
         1,
         PLAIN,
         false},
        {"DENY notNamespaces [*] spares any mTLS peer",
         {POLICY(DENY, RULES({FROM({.not_namespaces = STRS("*")})}))},
         1,
         MTLS,
         true},
        {"ALLOW notNamespaces [default] admits plaintext",
         {POLICY(ALLOW, RULES({FROM({.not_namespaces = STRS("default")})}))},
         1,
         PLAIN,
         true},
        {"ALLOW notNamespaces [default] admits mTLS from foo",
         {POLICY(ALLOW, RULES({FROM({.not_namespaces = STRS("default")})}))},
         1,
         MTLS,
         true},
        {"ALLOW notNamespaces [foo] refuses mTLS from foo",
         {POLICY(ALLOW, RULES({FROM({.not_namespaces = STRS("fo*")})}))},
         1,
         MTLS,
         false},
        {"ALLOW namespaces [*] refuses plaintext",
         {POLICY(ALLOW, RULES({FROM({.namespaces = STRS("*")})}))},
         1,
         PLAIN,
         false},
        /* notPrincipals. */
        {"DENY notPrincipals [*] denies plaintext (Istio's require-mTLS idiom)",
         {POLICY(DENY, RULES({FROM({.not_principals = STRS("*")})}))},
         1,
         PLAIN,
         false},
        {"DENY notPrincipals [*] spares mTLS",
         {POLICY(DENY, RULES({FROM({.not_principals = STRS("*")})}))},
         1,
         MTLS,
         true},
        {"DENY notPrincipals [admin] denies plaintext",
         {POLICY(DENY, RULES({FROM({.not_principals = STRS("cluster.local/ns/x/sa/admin")})}))},
         1,
         PLAIN,
         false},
        {"DENY notPrincipals [admin] denies mTLS client",
         {POLICY(DENY, RULES({FROM({.not_principals = STRS("cluster.local/ns/x/sa/admin")})}))},
         1,
         MTLS,
         false},
        {"DENY notPrincipals [client] spares mTLS client",
         {POLICY(DENY, RULES({FROM({.not_principals = STRS("*/sa/client")})}))},
         1,
         MTLS,
         true},
        {"ALLOW notPrincipals [client] refuses mTLS client",
         {POLICY(ALLOW, RULES({FROM({.not_principals = STRS("*/sa/client")})}))},
         1,
         MTLS,
         false},
        {"ALLOW notPrincipals [*] admits plaintext only",
         {POLICY(ALLOW, RULES({FROM({.not_principals = STRS("*")})}))},
         1,
         PLAIN,
         true},
        {"ALLOW notPrincipals [*] refuses mTLS",
         {POLICY(ALLOW, RULES({FROM({.not_principals = STRS("*")})}))},
         1,
         MTLS,
         false},
        /* serviceAccounts (exact, trust domain not compared). */
        {"ALLOW serviceAccounts [foo/client] admits mTLS client",
         {POLICY(ALLOW, RULES({FROM({.service_accounts = FOO_CLIENT})}))},
         1,
         MTLS,
         true},
        {"ALLOW serviceAccounts [bar/client] refuses foo/client",
         {POLICY(ALLOW, RULES({FROM({.service_accounts = BAR_CLIENT})}))},
         1,
         MTLS,
         false},
        {"ALLOW serviceAccounts refuses plaintext",
         {POLICY(ALLOW, RULES({FROM({.service_accounts = FOO_CLIENT})}))},
         1,
         PLAIN,
         false},
        {"DENY notServiceAccounts [default/sleep] denies plaintext",
         {POLICY(DENY, RULES({FROM({.not_service_accounts = DEFAULT_SLEEP})}))},
         1,
         PLAIN,
         false},
        {"DENY notServiceAccounts [default/sleep] denies foo/client",
         {POLICY(DENY, RULES({FROM({.not_service_accounts = DEFAULT_SLEEP})}))},
         1,
         MTLS,
         false},
        {"DENY notServiceAccounts [foo/client] spares foo/client",
         {POLICY(DENY, RULES({FROM({.not_service_accounts = FOO_CLIENT})}))},
         1,
         MTLS,
         true},
        {"ALLOW notServiceAccounts [foo/client] refuses foo/client",
         {POLICY(ALLOW, RULES({FROM({.not_service_accounts = FOO_CLIENT})}))},
         1,
         MTLS,
         false},
        {"ALLOW notServiceAccounts [default/sleep] admits plaintext",
         {POLICY(ALLOW, RULES({FROM({.not_service_accounts = DEFAULT_SLEEP})}))},
         1,
         PLAIN,
         true},
        /* trustDomains: the principal's first segment; none for plaintext. */
        {"DENY notTrustDomains [other.local] denies plaintext",
         {POLICY(DENY, RULES({FROM({.not_trust_domains = STRS("other.local")})}))},
         1,
         PLAIN,
         false},
        {"DENY notTrustDomains [cluster.local] spares foo/client",
         {POLICY(DENY, RULES({FROM({.not_trust_domains = STRS("cluster.local")})}))},
         1,
         MTLS,
         true},
        {"ALLOW trustDomains [cluster.local] admits foo/client",
         {POLICY(ALLOW, RULES({FROM({.trust_domains = STRS("cluster.local")})}))},
         1,
         MTLS,
         true},
        {"ALLOW trustDomains [*] refuses plaintext",
         {POLICY(ALLOW, RULES({FROM({.trust_domains = STRS("*")})}))},
         1,
         PLAIN,
         false},
        /* notIpBlocks: the address is known for both kinds of peer. */
        {"DENY notIpBlocks [pod net] spares plaintext from the pod net",
         {POLICY(DENY, RULES({FROM({.not_ip_blocks = POD_NET})}))},
         1,
         PLAIN,
         true},
        {"DENY notIpBlocks [other net] denies plaintext from the pod net",
         {POLICY(DENY, RULES({FROM({.not_ip_blocks = OTHER_NET})}))},
         1,
         PLAIN,
         false},
        {"DENY notIpBlocks [other net] denies mTLS from the pod net",
         {POLICY(DENY, RULES({FROM({.not_ip_blocks = OTHER_NET})}))},
         1,
         MTLS,
         false},
        {"ALLOW notIpBlocks [pod net] refuses plaintext from the pod net",
         {POLICY(ALLOW, RULES({FROM({.not_ip_blocks = POD_NET})}))},
         1,
         PLAIN,
         false},
        {"ALLOW notIpBlocks [other net] admits mTLS from the pod net",
         {POLICY(ALLOW, RULES({FROM({.not_ip_blocks = OTHER_NET})}))},
         1,
         MTLS,
         true},
        /* notRemoteIpBlocks is L7 in ambient (istiod drops it). */
        {"ALLOW with notRemoteIpBlocks (L7) refuses plaintext",
         {POLICY(ALLOW, RULES({FROM({.has_l7 = true})}))},
         1,
         PLAIN,
         false},
        {"DENY with notRemoteIpBlocks (L7) denies plaintext (dropped: broader)",
         {POLICY(DENY, RULES({FROM({.has_l7 = true})}))},
         1,
         PLAIN,
         false},
        /* notPorts. */
        {"DENY notPorts [9090] denies plaintext to 8080",
         {POLICY(DENY, RULES({TO({.not_ports = PORTS(9090)})}))},
         1,
         PLAIN,
         false},
        {"DENY notPorts [8080] spares mTLS to 8080",
         {POLICY(DENY, RULES({TO({.not_ports = PORTS(8080)})}))},
         1,
         MTLS,
         true},
        {"ALLOW notPorts [8080] refuses plaintext to 8080",
         {POLICY(ALLOW, RULES({TO({.not_ports = PORTS(8080)})}))},
         1,
         PLAIN,
         false},
        {"ALLOW notPorts [9090] admits mTLS to 8080",
         {POLICY(ALLOW, RULES({TO({.not_ports = PORTS(9090)})}))},
         1,
         MTLS,
         true},
        /* when notValues on identity keys. */
        {"DENY when source.namespace notValues [default] denies plaintext",
         {POLICY(DENY, RULES({WHEN(
                           {.key = AUTHZ_KEY_SOURCE_NAMESPACE, .not_values = STRS("default")})}))},
         1,
         PLAIN,
         false},
        {"DENY when source.namespace notValues [foo] spares mTLS from foo",
         {POLICY(DENY,
                 RULES({WHEN({.key = AUTHZ_KEY_SOURCE_NAMESPACE, .not_values = STRS("foo")})}))},
         1,
         MTLS,
         true},
        {"DENY when source.namespace notValues [default] denies mTLS from foo",
         {POLICY(DENY, RULES({WHEN(
                           {.key = AUTHZ_KEY_SOURCE_NAMESPACE, .not_values = STRS("default")})}))},
         1,
         MTLS,
         false},
        {"DENY when source.principal notValues [*] denies plaintext",
         {POLICY(DENY,
                 RULES({WHEN({.key = AUTHZ_KEY_SOURCE_PRINCIPAL, .not_values = STRS("*")})}))},
         1,
         PLAIN,
         false},
        {"DENY when source.principal notValues [*] spares mTLS",
         {POLICY(DENY,
                 RULES({WHEN({.key = AUTHZ_KEY_SOURCE_PRINCIPAL, .not_values = STRS("*")})}))},
         1,
         MTLS,
         true},
        {"ALLOW when source.principal notValues [client] admits plaintext",
         {POLICY(ALLOW, RULES({WHEN({.key = AUTHZ_KEY_SOURCE_PRINCIPAL,
                                     .not_values = STRS("*/sa/client")})}))},
         1,
         PLAIN,
         true},
        {"ALLOW when source.principal notValues [client] refuses mTLS client",
         {POLICY(ALLOW, RULES({WHEN({.key = AUTHZ_KEY_SOURCE_PRINCIPAL,
                                     .not_values = STRS("*/sa/client")})}))},
         1,
         MTLS,
         false},
        {"ALLOW when source.namespace values [*] refuses plaintext",
         {POLICY(ALLOW, RULES({WHEN({.key = AUTHZ_KEY_SOURCE_NAMESPACE, .values = STRS("*")})}))},
         1,
         PLAIN,
         false},
        {"ALLOW when source.namespace notValues [foo] admits plaintext",
         {POLICY(ALLOW,
                 RULES({WHEN({.key = AUTHZ_KEY_SOURCE_NAMESPACE, .not_values = STRS("foo")})}))},
         1,
         PLAIN,
         true},
        /* Positive and negative together, and a negative among sources. */
        {"DENY namespaces [default] + notPrincipals spares plaintext (positive fails)",
         {POLICY(DENY,
                 RULES({FROM({.namespaces = STRS("default"), .not_principals = STRS("*")})}))},
         1,
         PLAIN,
         true},
        {"DENY sources ORed: a notNamespaces entry catches plaintext",
         {POLICY(DENY,
                 RULES({FROM({.namespaces = STRS("bar")}, {.not_namespaces = STRS("default")})}))},
         1,
         PLAIN,
         false},
        {"DENY notNamespaces + ALLOW all: plaintext denied, DENY wins",
         {POLICY(ALLOW, RULES({0})), POLICY(DENY, RULES({FROM({.not_namespaces = STRS("foo")})}))},
         2,
         PLAIN,
         false},
    };
    run_rows(rows, LEN(rows));
}

/* The service account is read from the principal exactly: no prefix of a
 * namespace or name, whatever the trust domain. */
static void service_account_match_is_exact(void **state)
{
    static const struct authz_service_account fo_client[] = {{"fo", "client"}};
    static const struct authz_service_account foo_cli[] = {{"foo", "cli"}};
    static const struct authz_service_account foo_client[] = {{"foo", "client"}};
    const struct authz_source prefix_ns = {.service_accounts = {fo_client, 1}},
                              prefix_sa = {.service_accounts = {foo_cli, 1}},
                              exact = {.service_accounts = {foo_client, 1}};
    const struct authz_rule r1 = {.from = &prefix_ns, .nfrom = 1},
                            r2 = {.from = &prefix_sa, .nfrom = 1},
                            r3 = {.from = &exact, .nfrom = 1};
    const struct authz_policy p[] = {
        {.name = "a", .action = AUTHZ_ALLOW, .rules = &r1, .nrules = 1},
        {.name = "b", .action = AUTHZ_ALLOW, .rules = &r2, .nrules = 1},
        {.name = "c", .action = AUTHZ_ALLOW, .rules = &r3, .nrules = 1}};
    struct authz_request req = {.principal = "other.domain/ns/foo/sa/client", .namespace_ = "foo"};
    struct authz_decision d;
    authz_evaluate(&p[0], 1, &req, &d);
    assert_false(d.allow);
    authz_evaluate(&p[1], 1, &req, &d);
    assert_false(d.allow);
    authz_evaluate(&p[2], 1, &req, &d);
    assert_true(d.allow);
    assert_ptr_equal(d.by, &p[2]);
    req.principal = "cluster.local/ns/foo/sa/client2";
    authz_evaluate(&p[2], 1, &req, &d);
    assert_false(d.allow);
}

static void cidr_parsing_and_containment(void **state)
{
    struct cidr c;
    static const char *const bad[] = {"",         "10.0.0.0/33", "fd00::/129", "10.0.0.0/",
                                      "10.0.0/8", "10.0.0.0/-1", "x",          "10.0.0.0/8x"};
    for (size_t i = 0; i < LEN(bad); i++)
        assert_int_equal(cidr_parse(bad[i], &c), -EINVAL);
    assert_int_equal(cidr_parse("10.244.0.0/14", &c), 0);
    struct meshd_addr in = addr("10.247.255.1", 1), out = addr("10.248.0.1", 1);
    assert_true(cidr_contains(&c, &in));
    assert_false(cidr_contains(&c, &out));
    /* An IPv4 peer seen as IPv4-mapped IPv6 still matches IPv4 blocks. */
    struct meshd_addr mapped = addr("::ffff:10.244.1.1", 1);
    assert_true(cidr_contains(&c, &mapped));
    assert_int_equal(cidr_parse("0.0.0.0/0", &c), 0);
    assert_true(cidr_contains(&c, &out));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(istio_behaviours),
        cmocka_unit_test(string_matching_forms),
        cmocka_unit_test(negative_fields_with_and_without_identity),
        cmocka_unit_test(service_account_match_is_exact),
        cmocka_unit_test(cidr_parsing_and_containment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
