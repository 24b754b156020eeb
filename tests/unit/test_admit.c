/* Admission to an enrolled pod (agent/policy/admit.c): one table for the
 * three entry points, plaintext on 15006, an HBONE stream on 15008 with
 * the peer's verified identity, and the revalidation of an open plaintext
 * connection after a reload. Each row names the behaviour it checks. The
 * pod is shop/pay-1 (labels app=pay, 10.244.1.11) on node n1, port 8080;
 * its Pod object is in the row's YAML unless the row says it is pending. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/addr.h"
#include "enroll/pod_source.h"
#include "policy/admit.h"
#include "support/config_fixture.h"

#define POD_ON(node)                                                                               \
    "apiVersion: v1\nkind: Pod\nmetadata: {name: pay-1, namespace: shop, labels: {app: pay}}\n"    \
    "spec: {nodeName: " node                                                                       \
    ", serviceAccountName: payments, containers: [{name: a, image: i}]}\n"                         \
    "status: {podIPs: [{ip: 10.244.1.11}]}\n---\n"
#define POD POD_ON("n1")

#define PA(ns, name, spec)                                                                         \
    "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: " name           \
    ", namespace: " ns "}\nspec: " spec "\n---\n"
#define AP(ns, name, spec)                                                                         \
    "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: " name          \
    ", namespace: " ns "}\nspec: " spec "\n---\n"

#define STRICT     PA("shop", "strict", "{mtls: {mode: STRICT}}")
#define PERMISSIVE PA("shop", "permissive", "{mtls: {mode: PERMISSIVE}}")
#define ALLOW_FRONT                                                                                \
    AP("shop", "allow-front",                                                                      \
       "{selector: {matchLabels: {app: pay}}, action: ALLOW, rules: [{from: [{source: "            \
       "{namespaces: [front]}}]}]}")
#define DENY_EVIL                                                                                  \
    AP("shop", "deny-evil",                                                                        \
       "{action: DENY, rules: [{from: [{source: {principals: [cluster.local/ns/evil/*]}}]}]}")
#define ALLOW_OTHER_APP                                                                            \
    AP("shop", "allow-other",                                                                      \
       "{selector: {matchLabels: {app: other}}, action: ALLOW, rules: [{from: [{source: "          \
       "{namespaces: [nobody]}}]}]}")
#define MESH_DENY_OUTSIDERS                                                                        \
    AP("istio-system", "outsiders",                                                                \
       "{action: DENY, rules: [{from: [{source: {notNamespaces: [front]}}]}]}")

#define FRONT "spiffe://cluster.local/ns/front/sa/web"
#define EVIL  "spiffe://cluster.local/ns/evil/sa/x"

enum { P = ADMIT_PLAINTEXT, H = ADMIT_HBONE, R = ADMIT_REVALIDATE };

static const struct admit_case {
    const char *behaviour;
    const char *yaml; /* NULL: no configuration served */
    int entry;
    const char *peer; /* hbone rows: the verified SPIFFE id */
    bool allow;
    enum admit_reason reason;
    const char *by; /* the deciding policy, or NULL */
} cases[] = {
    {"no configuration served: plaintext is refused (fail closed)", NULL, P, NULL, false,
     ADMIT_NO_CONFIG, NULL},
    {"no configuration served: an authenticated peer is refused too", NULL, H, FRONT, false,
     ADMIT_NO_CONFIG, NULL},
    {"no configuration served: open connections are closed", NULL, R, NULL, false, ADMIT_NO_CONFIG,
     NULL},
    {"a pending pod (no Pod object, no account) takes no plaintext", ALLOW_FRONT, P, NULL, false,
     ADMIT_POD_UNBOUND, NULL},
    {"a pending pod takes nothing over HBONE, whatever the policy", ALLOW_FRONT, H, FRONT, false,
     ADMIT_POD_UNBOUND, NULL},
    {"a pending pod keeps no open connection", "", R, NULL, false, ADMIT_POD_UNBOUND, NULL},
    {"a pod in conflict (Pod object on another node) is refused", POD_ON("n2"), H, FRONT, false,
     ADMIT_POD_UNBOUND, NULL},
    {"no policy: plaintext is allowed (PERMISSIVE by default)", POD, P, NULL, true, ADMIT_NO_POLICY,
     NULL},
    {"no policy: an HBONE peer is allowed", POD, H, EVIL, true, ADMIT_NO_POLICY, NULL},
    {"no policy: an open plaintext connection stays", POD, R, NULL, true, ADMIT_NO_POLICY, NULL},
    {"STRICT refuses plaintext", POD STRICT, P, NULL, false, ADMIT_MTLS_STRICT, NULL},
    {"STRICT admits an HBONE peer", POD STRICT, H, FRONT, true, ADMIT_NO_POLICY, NULL},
    {"revalidation judges authorization, not the mTLS mode (as Istio)", POD STRICT, R, NULL, true,
     ADMIT_NO_POLICY, NULL},
    {"PERMISSIVE admits plaintext", POD PERMISSIVE, P, NULL, true, ADMIT_NO_POLICY, NULL},
    {"ALLOW from a namespace admits a peer of that namespace", POD ALLOW_FRONT, H, FRONT, true,
     ADMIT_POLICY_ALLOWED, "shop/allow-front"},
    {"ALLOW from a namespace refuses a peer of another", POD ALLOW_FRONT, H, EVIL, false,
     ADMIT_POLICY_DENIED, NULL},
    {"ALLOW from a namespace refuses plaintext (no identity, no namespace)", POD ALLOW_FRONT, P,
     NULL, false, ADMIT_POLICY_DENIED, NULL},
    {"ALLOW from a namespace closes an open plaintext connection", POD ALLOW_FRONT, R, NULL, false,
     ADMIT_POLICY_DENIED, NULL},
    {"a SPIFFE id that is not a workload id has no namespace", POD ALLOW_FRONT, H,
     "spiffe://cluster.local/ns/front/sa/web/extra", false, ADMIT_POLICY_DENIED, NULL},
    {"DENY by principal refuses that peer", POD DENY_EVIL, H, EVIL, false, ADMIT_POLICY_DENIED,
     "shop/deny-evil"},
    {"DENY by principal lets another peer in", POD DENY_EVIL, H, FRONT, true, ADMIT_POLICY_ALLOWED,
     NULL},
    {"DENY by principal never matches plaintext", POD DENY_EVIL, P, NULL, true,
     ADMIT_POLICY_ALLOWED, NULL},
    {"a policy selecting other labels does not apply", POD ALLOW_OTHER_APP, H, EVIL, true,
     ADMIT_NO_POLICY, NULL},
    {"a root-namespace DENY notNamespaces refuses plaintext", POD MESH_DENY_OUTSIDERS, P, NULL,
     false, ADMIT_POLICY_DENIED, "istio-system/outsiders"},
    {"a root-namespace DENY notNamespaces admits the named namespace", POD MESH_DENY_OUTSIDERS, H,
     FRONT, true, ADMIT_POLICY_ALLOWED, NULL},
};

static void addr(const char *s, struct meshd_addr *out)
{
    assert_int_equal(addr_parse(s, out), 0);
}

static void decides_every_entry_point_from_one_table(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct admit_case *c = &cases[i];
        struct cfg_fixture f = {0};
        if (c->yaml) {
            cfg_fixture_load(&f, c->yaml);
            if (f.diags.n)
                cfg_fixture_dump(&f);
            assert_int_equal(f.diags.n, 0);
        }
        struct pod pod = {.ns = "shop", .name = "pay-1"};
        pod_source_bind(f.snap, "n1", &pod);
        struct admit_request req = {.entry = (enum admit_entry)c->entry, .peer_id = c->peer};
        addr("10.244.2.7:40000", &req.src);
        addr("10.244.1.11:8080", &req.dst);
        struct admit_decision d;
        policy_admit(f.snap, &pod, &req, &d);
        if (d.allow != c->allow || d.reason != c->reason ||
            (c->by ? !d.by || strcmp(d.by, c->by) != 0 : d.by != NULL))
            fail_msg("%s: got %s (%s) by %s", c->behaviour, d.allow ? "allow" : "deny",
                     admit_reason_name(d.reason), d.by ? d.by : "(none)");
        /* The identity policies saw: Istio's principal, the id's namespace. */
        if (c->peer)
            assert_string_equal(d.principal, c->peer + strlen("spiffe://"));
        else
            assert_null(d.principal);
        const char *want_ns = !c->peer                      ? ""
                              : strcmp(c->peer, FRONT) == 0 ? "front"
                              : strcmp(c->peer, EVIL) == 0  ? "evil"
                                                            : ""; /* not a workload id */
        assert_string_equal(d.ns, want_ns);
        if (c->yaml)
            cfg_fixture_free(&f);
    }
}

static void the_mtls_mode_fails_closed(void **state)
{
    struct pod pod = {.ns = "shop", .name = "pay-1"};
    assert_int_equal(policy_mtls_mode(NULL, &pod, 8080), CFG_MTLS_STRICT);
    struct cfg_fixture f;
    cfg_fixture_load(&f, "");
    pod_source_bind(f.snap, "n1", &pod); /* pending: no Pod object */
    assert_int_equal(policy_mtls_mode(f.snap, &pod, 8080), CFG_MTLS_STRICT);
    cfg_fixture_free(&f);
    cfg_fixture_load(&f, POD PERMISSIVE);
    pod_source_bind(f.snap, "n1", &pod);
    assert_int_equal(policy_mtls_mode(f.snap, &pod, 8080), CFG_MTLS_PERMISSIVE);
    cfg_fixture_free(&f);
}

/* ---- one HTTP request at a time (policy_admit_request) ---------------- */

#define DENY_ADMIN                                                                                 \
    AP("shop", "deny-admin",                                                                       \
       "{action: DENY, rules: [{to: [{operation: {paths: [/admin, /admin/*]}}]}]}")
#define ALLOW_READS                                                                                \
    AP("shop", "reads",                                                                            \
       "{selector: {matchLabels: {app: pay}}, rules: ["                                            \
       "{from: [{source: {namespaces: [front]}}], to: [{operation: {methods: [GET, HEAD], "        \
       "paths: [\"/api/{*}/items\", /public*]}}]}, "                                               \
       "{to: [{operation: {hosts: [pay.shop.svc.cluster.local]}}], "                               \
       "when: [{key: \"request.headers[x-role]\", values: [ops]}]}]}")
#define HOST "pay.shop.svc.cluster.local:8080"

static const struct request_case {
    const char *behaviour;
    const char *peer; /* NULL: plaintext */
    const char *method, *path, *role;
    bool allow;
    enum admit_reason reason;
    const char *by, *forward; /* the deciding policy; the path the app gets */
} requests[] = {
    {"ALLOW paths prefix admits a GET from front", FRONT, "GET", "/public/index.html", NULL, true,
     ADMIT_POLICY_ALLOWED, "shop/reads", "/public/index.html"},
    {"ALLOW path template admits one segment", FRONT, "GET", "/api/42/items", NULL, true,
     ADMIT_POLICY_ALLOWED, "shop/reads", "/api/42/items"},
    {"ALLOW methods refuses a POST", FRONT, "POST", "/api/42/items", NULL, false,
     ADMIT_POLICY_DENIED, NULL, "/api/42/items"},
    {"ALLOW from front refuses another namespace", EVIL, "GET", "/public/x", NULL, false,
     ADMIT_POLICY_DENIED, NULL, "/public/x"},
    {"ALLOW hosts + request.headers admits any peer with the header", EVIL, "DELETE", "/x", "ops",
     true, ADMIT_POLICY_ALLOWED, "shop/reads", "/x"},
    {"the header rule is refused with another value", EVIL, "DELETE", "/x", "dev", false,
     ADMIT_POLICY_DENIED, NULL, "/x"},
    {"ALLOW from front refuses plaintext (no identity)", NULL, "GET", "/public/x", NULL, false,
     ADMIT_POLICY_DENIED, NULL, "/public/x"},
    {"DENY paths denies /admin", FRONT, "GET", "/admin", NULL, false, ADMIT_POLICY_DENIED,
     "shop/deny-admin", "/admin"},
    {"dot segments cannot slip past a DENY", FRONT, "GET", "/public/../admin", NULL, false,
     ADMIT_POLICY_DENIED, "shop/deny-admin", "/admin"},
    {"encoded dots cannot slip past a DENY", FRONT, "GET", "/public/%2e%2E/admin/keys", NULL, false,
     ADMIT_POLICY_DENIED, "shop/deny-admin", "/admin/keys"},
    {"encoded letters cannot slip past a DENY", FRONT, "GET", "/%61dmin/users", NULL, false,
     ADMIT_POLICY_DENIED, "shop/deny-admin", "/admin/users"},
    {"backslashes cannot slip past a DENY", FRONT, "GET", "/public\\..\\admin", NULL, false,
     ADMIT_POLICY_DENIED, "shop/deny-admin", "/admin"},
    {"the app gets the normalized path", FRONT, "GET", "/admin/../public/%7Ea", NULL, true,
     ADMIT_POLICY_ALLOWED, "shop/reads", "/public/~a"},
    {"an encoded slash stays encoded (Istio BASE): one segment under /public", FRONT, "GET",
     "/public/..%2fadmin", NULL, true, ADMIT_POLICY_ALLOWED, "shop/reads", "/public/..%2Fadmin"},
    {"%00 is refused (400)", FRONT, "GET", "/public/a%00", NULL, false, ADMIT_BAD_PATH, NULL, ""},
    {"a broken escape is refused (400)", FRONT, "GET", "/public/%zz", NULL, false, ADMIT_BAD_PATH,
     NULL, ""},
};

static void decides_each_http_request_on_its_normalized_path(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f, POD DENY_ADMIN ALLOW_READS);
    if (f.diags.n)
        cfg_fixture_dump(&f);
    assert_int_equal(f.diags.n, 0);
    struct pod pod = {.ns = "shop", .name = "pay-1"};
    pod_source_bind(f.snap, "n1", &pod);
    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        const struct request_case *c = &requests[i];
        struct http_field h[3] = {{"Host", HOST, 4, sizeof(HOST) - 1}};
        size_t nh = 1;
        if (c->role)
            h[nh++] = (struct http_field){"X-Role", c->role, 6, (uint32_t)strlen(c->role)};
        struct http_request_view v = {.method = c->method,
                                      .path = c->path,
                                      .query = "",
                                      .authority = HOST,
                                      .scheme = "http",
                                      .headers = h,
                                      .nheaders = nh};
        struct admit_request req = {.peer_id = c->peer};
        addr("10.244.2.7:40000", &req.src);
        addr("10.244.1.11:8080", &req.dst);
        char path[256];
        struct admit_decision d;
        policy_admit_request(f.snap, &pod, &req, &v, path, sizeof(path), &d);
        if (d.allow != c->allow || d.reason != c->reason ||
            (c->by ? !d.by || strcmp(d.by, c->by) != 0 : d.by != NULL) ||
            strcmp(path, c->forward) != 0)
            fail_msg("%s: got %s (%s) by %s, path %s", c->behaviour, d.allow ? "allow" : "deny",
                     admit_reason_name(d.reason), d.by ? d.by : "(none)", path);
    }
    cfg_fixture_free(&f);
}

/* The request entry point fails closed like the others, and a connection
 * whose requests are decided one by one is not refused for their fields. */
static void request_entry_fails_closed_and_connections_defer(void **state)
{
    struct http_request_view v = {
        .method = "GET", .path = "/public", .query = "", .authority = HOST, .scheme = "http"};
    struct admit_request req = {.peer_id = FRONT};
    addr("10.244.2.7:40000", &req.src);
    addr("10.244.1.11:8080", &req.dst);
    struct pod pod = {.ns = "shop", .name = "pay-1"};
    char path[64] = "stale";
    struct admit_decision d;
    policy_admit_request(NULL, &pod, &req, &v, path, sizeof(path), &d);
    assert_false(d.allow);
    assert_int_equal(d.reason, ADMIT_NO_CONFIG);
    assert_string_equal(path, "");
    policy_admit_request(NULL, &pod, &req, &v, path, 4, &d); /* too small: refused, not cut */
    assert_int_equal(d.reason, ADMIT_NO_CONFIG);

    struct cfg_fixture f;
    cfg_fixture_load(&f, POD STRICT DENY_ADMIN ALLOW_READS);
    pod_source_bind(f.snap, "n1", &pod);
    policy_admit_request(f.snap, &pod, &req, &v, path, 4, &d);
    assert_int_equal(d.reason, ADMIT_BAD_PATH);
    /* L4, the same policies: the ALLOW's HTTP fields never match, the
     * DENY's paths are dropped (deny all), as before. */
    req.entry = ADMIT_HBONE;
    policy_admit(f.snap, &pod, &req, &d);
    assert_false(d.allow);
    assert_string_equal(d.by, "shop/deny-admin");
    /* Served as HTTP: the requests decide; PeerAuthentication still holds. */
    req.per_request = true;
    policy_admit(f.snap, &pod, &req, &d);
    assert_true(d.allow);
    assert_int_equal(d.reason, ADMIT_PER_REQUEST);
    req.entry = ADMIT_PLAINTEXT;
    req.peer_id = NULL;
    policy_admit(f.snap, &pod, &req, &d);
    assert_false(d.allow);
    assert_int_equal(d.reason, ADMIT_MTLS_STRICT);
    cfg_fixture_free(&f);
    /* A pending pod takes no request. */
    cfg_fixture_load(&f, DENY_ADMIN);
    pod_source_bind(f.snap, "n1", &pod);
    req.peer_id = FRONT;
    policy_admit_request(f.snap, &pod, &req, &v, path, sizeof(path), &d);
    assert_int_equal(d.reason, ADMIT_POD_UNBOUND);
    cfg_fixture_free(&f);
}

/* The app gets the query as sent after the normalized path; the policy
 * judged the path alone; no room for the query refuses, never cuts. */
static void the_query_follows_the_normalized_path(void **state)
{
    (void)state;
    struct cfg_fixture f;
    cfg_fixture_load(&f, POD DENY_ADMIN ALLOW_READS);
    struct pod pod = {.ns = "shop", .name = "pay-1"};
    pod_source_bind(f.snap, "n1", &pod);
    struct http_request_view v = {.method = "GET",
                                  .path = "/public/./a",
                                  .query = "x=1&y=/admin%2e",
                                  .authority = HOST,
                                  .scheme = "http"};
    struct admit_request req = {.peer_id = FRONT};
    addr("10.244.2.7:40000", &req.src);
    addr("10.244.1.11:8080", &req.dst);
    char path[64];
    struct admit_decision d;
    policy_admit_request(f.snap, &pod, &req, &v, path, sizeof(path), &d);
    assert_true(d.allow);
    assert_string_equal(path, "/public/a?x=1&y=/admin%2e");
    policy_admit_request(f.snap, &pod, &req, &v, path, 20, &d); /* the path fits, the query not */
    assert_false(d.allow);
    assert_int_equal(d.reason, ADMIT_BAD_PATH);
    assert_string_equal(path, "");
    assert_string_equal(d.ns, "front");
    v.path = "/admin";
    policy_admit_request(f.snap, &pod, &req, &v, path, sizeof(path), &d);
    assert_false(d.allow);
    assert_string_equal(d.by, "shop/deny-admin");
    cfg_fixture_free(&f);
}

/* A port of unnamed protocol served per request (l4_first): the
 * connection first gets what no request can change, refused as on L4;
 * the fields only a request has wait for the requests. */
static const struct l4_first_case {
    const char *behaviour;
    const char *yaml;
    const char *peer; /* NULL: plaintext */
    bool allow;
    enum admit_reason reason;
    const char *by;
} l4_first[] = {
    {"no configuration served: refused (fail closed)", NULL, FRONT, false, ADMIT_NO_CONFIG, NULL},
    {"a pending pod: refused", ALLOW_FRONT, FRONT, false, ADMIT_POD_UNBOUND, NULL},
    {"STRICT still refuses plaintext", POD STRICT, NULL, false, ADMIT_MTLS_STRICT, NULL},
    {"no policy: admitted", POD, EVIL, true, ADMIT_NO_POLICY, NULL},
    {"an L4 DENY by principal refuses its peer, as on L4", POD DENY_EVIL, EVIL, false,
     ADMIT_POLICY_DENIED, "shop/deny-evil"},
    {"an L4 DENY by principal admits another", POD DENY_EVIL, FRONT, true, ADMIT_POLICY_ALLOWED,
     NULL},
    {"an L4 ALLOW refuses a peer it does not name, as on L4", POD ALLOW_FRONT, EVIL, false,
     ADMIT_POLICY_DENIED, NULL},
    {"DENY paths and an HTTP ALLOW are left to the requests", POD DENY_ADMIN ALLOW_READS, FRONT,
     true, ADMIT_POLICY_ALLOWED, "shop/reads"},
    {"the HTTP ALLOW's header rule may admit any peer: left to the requests",
     POD DENY_ADMIN ALLOW_READS, EVIL, true, ADMIT_POLICY_ALLOWED, "shop/reads"},
    {"an L4 DENY beside the HTTP policies still refuses", POD DENY_ADMIN ALLOW_READS DENY_EVIL,
     EVIL, false, ADMIT_POLICY_DENIED, "shop/deny-evil"},
};

static void unnamed_ports_refuse_on_the_l4_part_first(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(l4_first) / sizeof(l4_first[0]); i++) {
        const struct l4_first_case *c = &l4_first[i];
        struct cfg_fixture f = {0};
        if (c->yaml) {
            cfg_fixture_load(&f, c->yaml);
            assert_int_equal(f.diags.n, 0);
        }
        struct pod pod = {.ns = "shop", .name = "pay-1"};
        pod_source_bind(f.snap, "n1", &pod);
        struct admit_request req = {.entry = c->peer ? ADMIT_HBONE : ADMIT_PLAINTEXT,
                                    .peer_id = c->peer,
                                    .per_request = true,
                                    .l4_first = true};
        addr("10.244.2.7:40000", &req.src);
        addr("10.244.1.11:8080", &req.dst);
        struct admit_decision d;
        policy_admit(f.snap, &pod, &req, &d);
        if (d.allow != c->allow || d.reason != c->reason ||
            (c->by ? !d.by || strcmp(d.by, c->by) != 0 : d.by != NULL))
            fail_msg("%s: got %s (%s) by %s", c->behaviour, d.allow ? "allow" : "deny",
                     admit_reason_name(d.reason), d.by ? d.by : "(none)");
        /* l4_first is read only with per_request: alone it is L4. */
        req.per_request = false;
        struct admit_decision l4;
        policy_admit(f.snap, &pod, &req, &l4);
        if (c->yaml && c->reason != ADMIT_POLICY_ALLOWED && l4.allow != d.allow)
            fail_msg("%s: L4 decides otherwise", c->behaviour);
        if (c->yaml)
            cfg_fixture_free(&f);
    }
}

/* The policies selecting a pod are kept between decisions (admit.c): a
 * decision always uses its own snapshot's, whichever was asked before,
 * including one whose snapshot was let go meanwhile, and each pod its own. */
static void each_peer_gets_its_own_principal_and_namespace(void **state)
{
    /* The last peer's namespace is kept between decisions: alternating,
     * repeated and malformed ids each get what parsing them gives, and
     * the namespace decides (ALLOW_FRONT lets only ns front in). */
    (void)state;
    struct cfg_fixture a = {0};
    cfg_fixture_load(&a, POD ALLOW_FRONT);
    struct pod pod = {.ns = "shop", .name = "pay-1"};
    pod_source_bind(a.snap, "n1", &pod);
    static char long_id[400];
    memset(long_id, 'f', sizeof(long_id) - 1);
    memcpy(long_id, "spiffe://cluster.local/ns/front/sa/", 35);
    static const struct {
        const char *id, *ns;
        bool allow;
    } steps[] = {
        {FRONT, "front", true},
        {FRONT, "front", true},
        {EVIL, "evil", false},
        {FRONT, "front", true},
        {"spiffe://cluster.local/ns/front", "", false}, /* not a workload id */
        {"spiffe://cluster.local/ns/front", "", false},
        {FRONT, "front", true},
        {long_id, "", false}, /* past the id's bound: no workload id (and never kept) */
        {"spiffe://cluster.local/ns/fronT/sa/x", "", false}, /* not a DNS label */
        {EVIL, "evil", false},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct admit_request req = {.entry = ADMIT_HBONE, .peer_id = steps[i].id};
        addr("10.244.2.7:40000", &req.src);
        addr("10.244.1.11:8080", &req.dst);
        struct admit_decision d;
        policy_admit(a.snap, &pod, &req, &d);
        if (strcmp(d.ns, steps[i].ns) != 0 || d.allow != steps[i].allow || !d.principal ||
            strcmp(d.principal, steps[i].id + strlen("spiffe://")) != 0)
            fail_msg("step %zu: ns '%s', %s", i, d.ns, d.allow ? "allowed" : "denied");
    }
    cfg_fixture_free(&a);
}

static void kept_selection_follows_snapshot_and_pod(void **state)
{
    (void)state;
    struct cfg_fixture a = {0}, b = {0};
    cfg_fixture_load(&a, POD ALLOW_FRONT);
    cfg_fixture_load(&b, POD); /* no policy */
    struct pod pod = {.ns = "shop", .name = "pay-1"};
    struct admit_request req = {.entry = ADMIT_HBONE, .peer_id = EVIL};
    addr("10.244.2.7:40000", &req.src);
    addr("10.244.1.11:8080", &req.dst);
    static const struct {
        int snap; /* 0: a, 1: b */
        bool allow;
        enum admit_reason reason;
    } steps[] = {
        {0, false, ADMIT_POLICY_DENIED}, {0, false, ADMIT_POLICY_DENIED},
        {1, true, ADMIT_NO_POLICY},      {0, false, ADMIT_POLICY_DENIED},
        {1, true, ADMIT_NO_POLICY},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        const struct cfg_snapshot *snap = steps[i].snap ? b.snap : a.snap;
        pod_source_bind(snap, "n1", &pod);
        struct admit_decision d;
        policy_admit(snap, &pod, &req, &d);
        if (d.allow != steps[i].allow || d.reason != steps[i].reason)
            fail_msg("step %zu: got %s", i, admit_reason_name(d.reason));
    }
    /* Snapshot b let go; in c, a pod the policy does not select (app=web)
     * has none, then pay-1 has its own again. */
    cfg_fixture_free(&b);
    struct pod other = {.ns = "shop", .name = "pay-2"};
    struct admit_decision d;
    struct cfg_fixture c = {0};
    cfg_fixture_load(&c, POD "apiVersion: v1\nkind: Pod\nmetadata: {name: pay-2, namespace: shop, "
                             "labels: {app: web}}\nspec: {nodeName: n1, serviceAccountName: web, "
                             "containers: [{name: a, image: i}]}\n"
                             "status: {podIPs: [{ip: 10.244.1.12}]}\n---\n" ALLOW_FRONT);
    pod_source_bind(c.snap, "n1", &other);
    policy_admit(c.snap, &other, &req, &d);
    assert_true(d.allow);
    assert_int_equal(d.reason, ADMIT_NO_POLICY);
    pod_source_bind(c.snap, "n1", &pod);
    policy_admit(c.snap, &pod, &req, &d);
    assert_int_equal(d.reason, ADMIT_POLICY_DENIED);
    /* The first snapshot let go while it may be the one kept. */
    cfg_fixture_free(&a);
    policy_admit(c.snap, &other, &req, &d);
    assert_int_equal(d.reason, ADMIT_NO_POLICY);
    cfg_fixture_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decides_every_entry_point_from_one_table),
        cmocka_unit_test(the_mtls_mode_fails_closed),
        cmocka_unit_test(decides_each_http_request_on_its_normalized_path),
        cmocka_unit_test(request_entry_fails_closed_and_connections_defer),
        cmocka_unit_test(unnamed_ports_refuse_on_the_l4_part_first),
        cmocka_unit_test(the_query_follows_the_normalized_path),
        cmocka_unit_test(kept_selection_follows_snapshot_and_pod),
        cmocka_unit_test(each_peer_gets_its_own_principal_and_namespace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
