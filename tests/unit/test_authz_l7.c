/* AuthorizationPolicy on HTTP requests (agent/policy/authz.c): one table
 * of L7 behaviours, each row decided twice, for a request (its L7 fields
 * apply) and for the same policies on an L4 connection (decided exactly as
 * before); then the YAML fields through the decoder and the compiler, and
 * the values Istio refuses. The matchers themselves: test_authz_http.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "policy/authz.h"
#include "support/authz_build.h"
#include "support/config_fixture.h"

#define POLICY(act, ...)                                                                           \
    {                                                                                              \
        .name = #act, .action = AUTHZ_##act, __VA_ARGS__                                           \
    }
#define HEADER(name, ...)                                                                          \
    {                                                                                              \
        .key = AUTHZ_KEY_REQUEST_HEADER, .header = name, __VA_ARGS__                               \
    }

/* The request every row but those naming another sends: an mTLS peer of
 * namespace foo, GET shop.example.com/public/index.html, x-team: blue. */
struct req {
    const char *method, *path, *authority, *team;
};
#define GET_PUBLIC                                                                                 \
    {                                                                                              \
        "GET", "/public/index.html", "shop.example.com", "blue"                                    \
    }

struct row {
    const char *behaviour;
    struct authz_policy p[3];
    size_t n;
    struct req rq;
    bool allow;        /* the request */
    const char *by;    /* its deciding policy ("ALLOW", "DENY"), or NULL */
    const char *audit; /* an AUDIT policy that matched it, or NULL */
    bool l4_allow;     /* the same policies on an L4 connection */
};

static struct meshd_addr addr(const char *ip, uint16_t port)
{
    struct cidr c;
    assert_int_equal(cidr_parse(ip, &c), 0);
    c.addr.port = htons(port);
    return c.addr;
}

static struct http_field hf(const char *name, const char *value)
{
    return (struct http_field){name, value, (uint32_t)strlen(name), (uint32_t)strlen(value)};
}

static void check_name(const char *behaviour, const char *what, const struct authz_policy *got,
                       const char *want)
{
    if (want ? !got || strcmp(got->name, want) != 0 : got != NULL)
        fail_msg("%s: %s is %s, expected %s", behaviour, what, got ? got->name : "(none)",
                 want ? want : "(none)");
}

static void run_rows(const struct row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct row *r = &rows[i];
        struct http_field fields[3] = {hf("Host", r->rq.authority), hf("User-Agent", "curl/8")};
        size_t nf = 2;
        if (r->rq.team)
            fields[nf++] = hf("X-Team", r->rq.team);
        struct http_request_view v = {.method = r->rq.method,
                                      .path = r->rq.path,
                                      .query = "",
                                      .authority = r->rq.authority,
                                      .scheme = "http",
                                      .headers = fields,
                                      .nheaders = nf};
        struct authz_request req = {.principal = "cluster.local/ns/foo/sa/client",
                                    .namespace_ = "foo",
                                    .source = addr("10.244.1.11", 40000),
                                    .destination = addr("10.244.2.11", 8080),
                                    .http = &v};
        struct authz_decision d;
        authz_evaluate(r->p, r->n, &req, &d);
        if (d.allow != r->allow)
            fail_msg("%s: request expected %s", r->behaviour, r->allow ? "allow" : "deny");
        check_name(r->behaviour, "the deciding policy", d.by, r->by);
        check_name(r->behaviour, "the AUDIT match", d.audit, r->audit);
        req.http = NULL;
        authz_evaluate(r->p, r->n, &req, &d);
        if (d.allow != r->l4_allow)
            fail_msg("%s: L4 connection expected %s", r->behaviour, r->l4_allow ? "allow" : "deny");
    }
}

static void l7_fields_decide_requests_and_l4_stays_as_before(void **state)
{
    const struct row rows[] = {
        /* methods */
        {"ALLOW methods [GET] admits a GET",
         {POLICY(ALLOW, RULES({TO({.methods = STRS("GET")})}))},
         1,
         GET_PUBLIC,
         true,
         "ALLOW",
         NULL,
         false},
        {"ALLOW methods [POST] refuses a GET",
         {POLICY(ALLOW, RULES({TO({.methods = STRS("POST")})}))},
         1,
         GET_PUBLIC,
         false,
         NULL,
         NULL,
         false},
        {"methods are case-sensitive (get is not GET)",
         {POLICY(ALLOW, RULES({TO({.methods = STRS("get")})}))},
         1,
         GET_PUBLIC,
         false,
         NULL,
         NULL,
         false},
        {"DENY notMethods [GET, HEAD] spares a GET",
         {POLICY(DENY, RULES({TO({.not_methods = STRS("GET", "HEAD")})}))},
         1,
         GET_PUBLIC,
         true,
         NULL,
         NULL,
         false},
        {"DENY notMethods [GET] denies a DELETE",
         {POLICY(DENY, RULES({TO({.not_methods = STRS("GET")})}))},
         1,
         {"DELETE", "/public/index.html", "shop.example.com", "blue"},
         false,
         "DENY",
         NULL,
         false},
        /* paths */
        {"ALLOW paths exact admits that path",
         {POLICY(ALLOW, RULES({TO({.paths = STRS("/public/index.html")})}))},
         1,
         GET_PUBLIC,
         true,
         "ALLOW",
         NULL,
         false},
        {"ALLOW paths prefix admits below it",
         {POLICY(ALLOW, RULES({TO({.paths = STRS("/public/*")})}))},
         1,
         GET_PUBLIC,
         true,
         "ALLOW",
         NULL,
         false},
        {"ALLOW paths suffix admits by extension",
         {POLICY(ALLOW, RULES({TO({.paths = STRS("*.html")})}))},
         1,
         GET_PUBLIC,
         true,
         "ALLOW",
         NULL,
         false},
        {"ALLOW paths template {*} admits one segment",
         {POLICY(ALLOW, RULES({TO({.paths = STRS("/public/{*}")})}))},
         1,
         GET_PUBLIC,
         true,
         "ALLOW",
         NULL,
         false},
        {"ALLOW paths template {*} refuses two segments",
         {POLICY(ALLOW, RULES({TO({.paths = STRS("/{*}")})}))},
         1,
         GET_PUBLIC,
         false,
         NULL,
         NULL,
         false},
        {"ALLOW paths template {**} admits any depth",
         {POLICY(ALLOW, RULES({TO({.paths = STRS("/{**}")})}))},
         1,
         GET_PUBLIC,
         true,
         "ALLOW",
         NULL,
         false},
        {"DENY paths [/admin*] denies /admin/users",
         {POLICY(DENY, RULES({TO({.paths = STRS("/admin*")})}))},
         1,
         {"GET", "/admin/users", "shop.example.com", "blue"},
         false,
         "DENY",
         NULL,
         false},
        {"DENY paths [/admin*] spares /public",
         {POLICY(DENY, RULES({TO({.paths = STRS("/admin*")})}))},
         1,
         GET_PUBLIC,
         true,
         NULL,
         NULL,
         false},
        {"DENY notPaths [/public/*] denies /admin",
         {POLICY(DENY, RULES({TO({.not_paths = STRS("/public/*")})}))},
         1,
         {"GET", "/admin", "shop.example.com", "blue"},
         false,
         "DENY",
         NULL,
         false},
        {"DENY notPaths [/public/*] spares /public/index.html",
         {POLICY(DENY, RULES({TO({.not_paths = STRS("/public/*")})}))},
         1,
         GET_PUBLIC,
         true,
         NULL,
         NULL,
         false},
        {"paths and methods in one operation are ANDed",
         {POLICY(ALLOW,
                 RULES({TO({.methods = STRS("POST"), .paths = STRS("/public/index.html")})}))},
         1,
         GET_PUBLIC,
         false,
         NULL,
         NULL,
         false},
        {"operations of one rule are ORed",
         {POLICY(ALLOW, RULES({TO({.methods = STRS("POST")}, {.paths = STRS("/public/*")})}))},
         1,
         GET_PUBLIC,
         true,
         "ALLOW",
         NULL,
         false},
        {"ports and paths: both must match (8080 and /public/*)",
         {POLICY(ALLOW, RULES({TO({.ports = PORTS(9090), .paths = STRS("/public/*")})}))},
         1,
         GET_PUBLIC,
         false,
         NULL,
         NULL,
         false},
        /* hosts */
        {"ALLOW hosts matches the authority case-insensitively",
         {POLICY(ALLOW, RULES({TO({.hosts = STRS("SHOP.example.com")})}))},
         1,
         GET_PUBLIC,
         true,
         "ALLOW",
         NULL,
         false},
        {"ALLOW hosts matches the authority with its port",
         {POLICY(ALLOW, RULES({TO({.hosts = STRS("shop.example.com")})}))},
         1,
         {"GET", "/public/index.html", "shop.example.com:8080", "blue"},
         true,
         "ALLOW",
         NULL,
         false},
        {"DENY hosts [*.internal] spares shop.example.com",
         {POLICY(DENY, RULES({TO({.hosts = STRS("*.internal")})}))},
         1,
         GET_PUBLIC,
         true,
         NULL,
         NULL,
         false},
        {"DENY notHosts [shop.example.com] denies another host",
         {POLICY(DENY, RULES({TO({.not_hosts = STRS("shop.example.com")})}))},
         1,
         {"GET", "/", "evil.example.com", "blue"},
         false,
         "DENY",
         NULL,
         false},
        {"ALLOW hosts [*] refuses a request without an authority",
         {POLICY(ALLOW, RULES({TO({.hosts = STRS("*")})}))},
         1,
         {"GET", "/", "", NULL},
         false,
         NULL,
         NULL,
         false},
        /* when request.headers[...] */
        {"ALLOW when x-team [blue] admits blue",
         {POLICY(ALLOW, RULES({WHEN(HEADER("x-team", .values = STRS("blue")))}))},
         1,
         GET_PUBLIC,
         true,
         "ALLOW",
         NULL,
         false},
        {"ALLOW when x-team [red] refuses blue",
         {POLICY(ALLOW, RULES({WHEN(HEADER("x-team", .values = STRS("red")))}))},
         1,
         GET_PUBLIC,
         false,
         NULL,
         NULL,
         false},
        {"ALLOW when x-team [*] refuses a request without the header",
         {POLICY(ALLOW, RULES({WHEN(HEADER("x-team", .values = STRS("*")))}))},
         1,
         {"GET", "/", "shop.example.com", NULL},
         false,
         NULL,
         NULL,
         false},
        {"DENY when x-team notValues [blue] denies a request without the header",
         {POLICY(DENY, RULES({WHEN(HEADER("x-team", .not_values = STRS("blue")))}))},
         1,
         {"GET", "/", "shop.example.com", NULL},
         false,
         "DENY",
         NULL,
         false},
        {"DENY when x-team notValues [blue] spares blue",
         {POLICY(DENY, RULES({WHEN(HEADER("x-team", .not_values = STRS("blue")))}))},
         1,
         GET_PUBLIC,
         true,
         NULL,
         NULL,
         false},
        {"DENY when user-agent prefix curl/* denies curl (name case-insensitive)",
         {POLICY(DENY, RULES({WHEN(HEADER("user-agent", .values = STRS("curl/*")))}))},
         1,
         GET_PUBLIC,
         false,
         "DENY",
         NULL,
         false},
        /* requestPrincipals: no JWT is validated, a request has none. */
        {"ALLOW requestPrincipals [*] refuses every request",
         {POLICY(ALLOW, RULES({FROM({.request_principals = true})}))},
         1,
         GET_PUBLIC,
         false,
         NULL,
         NULL,
         false},
        {"ALLOW notRequestPrincipals [x] admits a request (it has no principal)",
         {POLICY(ALLOW, RULES({FROM({.not_request_principals = true})}))},
         1,
         GET_PUBLIC,
         true,
         "ALLOW",
         NULL,
         false},
        {"DENY notRequestPrincipals [*] denies every request (no JWT)",
         {POLICY(DENY, RULES({FROM({.not_request_principals = true})}))},
         1,
         GET_PUBLIC,
         false,
         "DENY",
         NULL,
         false},
        {"DENY requestPrincipals [x] denies no request",
         {POLICY(DENY, RULES({FROM({.request_principals = true})}))},
         1,
         GET_PUBLIC,
         true,
         NULL,
         NULL,
         false},
        /* Still undecidable on a request: remoteIpBlocks, request.auth.* */
        {"ALLOW with remoteIpBlocks never matches a request either",
         {POLICY(ALLOW, RULES({FROM({.has_l7 = true})}))},
         1,
         GET_PUBLIC,
         false,
         NULL,
         NULL,
         false},
        {"DENY with remoteIpBlocks is dropped for a request too",
         {POLICY(DENY, RULES({FROM({.namespaces = STRS("foo"), .has_l7 = true})}))},
         1,
         GET_PUBLIC,
         false,
         "DENY",
         NULL,
         false},
        {"ALLOW when request.auth.claims never matches a request",
         {POLICY(ALLOW, RULES({WHEN({.key = AUTHZ_KEY_L7, .values = STRS("x")})}))},
         1,
         GET_PUBLIC,
         false,
         NULL,
         NULL,
         false},
        /* Identity and L7 together, precedence, AUDIT. */
        {"ALLOW from foo to GET admits the foo client's GET",
         {POLICY(ALLOW, RULES({FROM({.namespaces = STRS("foo")}), TO({.methods = STRS("GET")})}))},
         1,
         GET_PUBLIC,
         true,
         "ALLOW",
         NULL,
         false},
        {"ALLOW from bar to GET refuses the foo client",
         {POLICY(ALLOW, RULES({FROM({.namespaces = STRS("bar")}), TO({.methods = STRS("GET")})}))},
         1,
         GET_PUBLIC,
         false,
         NULL,
         NULL,
         false},
        {"DENY on a path wins over ALLOW all",
         {POLICY(ALLOW, RULES({0})), POLICY(DENY, RULES({TO({.paths = STRS("/admin")})}))},
         2,
         {"GET", "/admin", "shop.example.com", "blue"},
         false,
         "DENY",
         NULL,
         false},
        {"DENY on a path lets the ALLOW all admit another path (and L4 is denied, DENY dropped)",
         {POLICY(ALLOW, RULES({0})), POLICY(DENY, RULES({TO({.paths = STRS("/admin")})}))},
         2,
         GET_PUBLIC,
         true,
         "ALLOW",
         NULL,
         false},
        {"AUDIT on a method reports a match and decides nothing",
         {POLICY(AUDIT, RULES({TO({.methods = STRS("GET")})}))},
         1,
         GET_PUBLIC,
         true,
         NULL,
         "AUDIT",
         true},
        {"AUDIT on another method does not report",
         {POLICY(AUDIT, RULES({TO({.methods = STRS("POST")})})), POLICY(ALLOW, RULES({0}))},
         2,
         GET_PUBLIC,
         true,
         "ALLOW",
         NULL,
         true},
        {"a DENY without L7 fields decides the same on both",
         {POLICY(DENY, RULES({FROM({.namespaces = STRS("foo")})}))},
         1,
         GET_PUBLIC,
         false,
         "DENY",
         NULL,
         false},
        {"ports-only ALLOW admits both",
         {POLICY(ALLOW, RULES({TO({.ports = PORTS(8080)})}))},
         1,
         GET_PUBLIC,
         true,
         "ALLOW",
         NULL,
         true},
    };
    run_rows(rows, LEN(rows));
}

#define AP(spec)                                                                                   \
    "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"                                \
    "metadata: {name: p, namespace: shop}\nspec: " spec "\n"

/* The YAML fields reach the evaluator with Istio's meaning. */
static void l7_fields_decode_and_compile(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f,
                     AP("{action: DENY, rules: [{from: [{source: {requestPrincipals: [\"*\"], "
                        "notRequestPrincipals: [a/b]}}, {source: {remoteIpBlocks: [1.2.3.4]}}], "
                        "to: [{operation: {hosts: [A.example], notHosts: [b.example], "
                        "methods: [GET], notMethods: [HEAD], paths: [\"/v1/{*}/x\", /a*], "
                        "notPaths: [/a/b]}}], "
                        "when: [{key: \"request.headers[X-Team]\", values: [blue], notValues: "
                        "[red]}, {key: \"request.auth.claims[iss]\", values: [x]}, "
                        "{key: \"request.headers.x[y]\", values: [z]}]}]}"));
    if (f.diags.n)
        cfg_fixture_dump(&f);
    assert_int_equal(f.diags.n, 0);
    struct authz_policy p[2];
    assert_int_equal(cfg_authz_select(f.snap, "shop", NULL, p, 2), 1);
    assert_int_equal(p[0].action, AUTHZ_DENY);
    const struct authz_rule *r = &p[0].rules[0];
    assert_int_equal(r->nfrom, 2);
    assert_true(r->from[0].request_principals);
    assert_true(r->from[0].not_request_principals);
    assert_false(r->from[0].has_l7);
    assert_true(r->from[1].has_l7); /* remoteIpBlocks: decided on no request */
    assert_false(r->from[1].request_principals);
    const struct authz_operation *o = &r->to[0];
    assert_int_equal(o->hosts.n, 1);
    assert_string_equal(o->hosts.v[0], "A.example");
    assert_string_equal(o->not_hosts.v[0], "b.example");
    assert_string_equal(o->methods.v[0], "GET");
    assert_string_equal(o->not_methods.v[0], "HEAD");
    assert_int_equal(o->paths.n, 2);
    assert_string_equal(o->paths.v[0], "/v1/{*}/x");
    assert_string_equal(o->not_paths.v[0], "/a/b");
    assert_int_equal(r->nwhen, 3);
    assert_int_equal(r->when[0].key, AUTHZ_KEY_REQUEST_HEADER);
    assert_string_equal(r->when[0].header, "X-Team");
    assert_string_equal(r->when[0].not_values.v[0], "red");
    assert_int_equal(r->when[1].key, AUTHZ_KEY_L7);
    assert_int_equal(r->when[2].key, AUTHZ_KEY_L7); /* not request.headers[...]: istiod skips it */
    assert_null(r->when[2].header);
    cfg_fixture_free(&f);
}

/* Istio refuses these; so does the loader (the last good configuration
 * stays), naming the field. */
static void invalid_l7_values_are_refused(void **state)
{
    static const struct {
        const char *yaml, *message;
    } rows[] = {
        {AP("{rules: [{to: [{operation: {paths: [\"/{**}/a/{*}\"]}}]}]}"),
         "paths[0]: \"/{**}/a/{*}\": {**} must be the last operator"},
        {AP("{rules: [{to: [{operation: {notPaths: [\"/a/{id}\"]}}]}]}"),
         "notPaths[0]: \"/a/{id}\": '{' and '}' are allowed only"},
        {AP("{rules: [{to: [{operation: {paths: [\"/a/{*}.txt\"]}}]}]}"), "'{' and '}'"},
        {AP("{rules: [{to: [{operation: {paths: [\"/a/*/{*}\"]}}]}]}"), "pchar literals"},
        {AP("{rules: [{to: [{operation: {methods: [\"\"]}}]}]}"),
         "methods[0]: empty value not allowed"},
        {AP("{rules: [{to: [{operation: {hosts: [\"\"]}}]}]}"), "hosts[0]: empty value"},
        {AP("{rules: [{from: [{source: {requestPrincipals: [\"\"]}}]}]}"),
         "requestPrincipals[0]: empty value"},
        {AP("{rules: [{when: [{key: \"request.headers[]\", values: [x]}]}]}"),
         "bad key request.headers[]"},
        {AP("{rules: [{when: [{key: request.headers, values: [x]}]}]}"), "bad key"},
    };
    for (size_t i = 0; i < LEN(rows); i++) {
        struct cfg_fixture f;
        cfg_fixture_load(&f, rows[i].yaml);
        bool found = false;
        for (size_t k = 0; k < f.diags.n; k++)
            found |=
                f.diags.v[k].level == CFG_ERROR && strstr(f.diags.v[k].message, rows[i].message);
        if (!found) {
            cfg_fixture_dump(&f);
            fail_msg("row %zu: no error containing \"%s\"", i, rows[i].message);
        }
        assert_int_equal(cfg_count(f.snap, CFG_AUTHORIZATION_POLICY), 0);
        cfg_fixture_free(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(l7_fields_decide_requests_and_l4_stays_as_before),
        cmocka_unit_test(l7_fields_decode_and_compile),
        cmocka_unit_test(invalid_l7_values_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
