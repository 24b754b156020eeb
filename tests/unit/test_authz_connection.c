/* The connection's part of AuthorizationPolicy (authz_evaluate_connection,
 * agent/policy/authz.c): what a port of unnamed protocol served per
 * request decides before its first request. One table; each row's
 * policies decided three ways for an mTLS peer of namespace foo on port
 * 8080: the connection's part, the L4 decision (authz_evaluate, http
 * NULL) and two requests on that connection (GET /public/a, GET
 * /admin/x). Every row also checks the contract: a connection refused
 * here is one each of its requests would be refused (or, requestPrincipals
 * aside, L4 refuses too), and with no HTTP field in any policy the
 * connection's part is the L4 decision. */
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

#define POLICY(act, nm, ...)                                                                       \
    {                                                                                              \
        .name = nm, .action = AUTHZ_##act, __VA_ARGS__                                             \
    }
#define HEADER(name, ...)                                                                          \
    {                                                                                              \
        .key = AUTHZ_KEY_REQUEST_HEADER, .header = name, __VA_ARGS__                               \
    }

struct row {
    const char *behaviour;
    struct authz_policy p[3];
    size_t n;
    bool conn;        /* authz_evaluate_connection */
    const char *by;   /* the policy that refused the connection, or NULL */
    bool l4;          /* authz_evaluate on the connection (http NULL) */
    bool pub, admin;  /* GET /public/a, GET /admin/x on it */
    bool l4_stricter; /* requestPrincipals: the connection refused on L4's word */
};

static struct meshd_addr addr(const char *ip, uint16_t port)
{
    struct meshd_addr a = {.family = MESHD_AF_INET, .port = htons(port)};
    assert_int_equal(inet_pton(AF_INET, ip, a.addr), 1);
    return a;
}

static bool request_allowed(const struct row *r, const struct authz_request *conn, const char *path)
{
    struct http_field h[] = {{"Host", "shop", 4, 4}, {"X-Team", "blue", 6, 4}};
    struct http_request_view v = {.method = "GET",
                                  .path = path,
                                  .query = "",
                                  .authority = "shop",
                                  .scheme = "http",
                                  .headers = h,
                                  .nheaders = LEN(h)};
    struct authz_request req = *conn;
    req.http = &v;
    struct authz_decision d;
    authz_evaluate(r->p, r->n, &req, &d);
    return d.allow;
}

static bool has_http_field(const struct row *r)
{
    for (size_t i = 0; i < r->n; i++)
        for (size_t j = 0; j < r->p[i].nrules; j++) {
            const struct authz_rule *rule = &r->p[i].rules[j];
            for (size_t k = 0; k < rule->nto; k++)
                if (rule->to[k].paths.n || rule->to[k].methods.n || rule->to[k].hosts.n)
                    return true;
            for (size_t k = 0; k < rule->nwhen; k++)
                if (rule->when[k].key == AUTHZ_KEY_REQUEST_HEADER)
                    return true;
        }
    return false;
}

static void connection_part_refuses_only_what_no_request_changes(void **state)
{
    (void)state;
    const struct row rows[] = {
        {"no policy: the connection is admitted", {{0}}, 0, true, NULL, true, true, true, false},
        {"an L4 DENY that matches refuses the connection, as on L4",
         {POLICY(DENY, "deny-foo", RULES({FROM({.namespaces = STRS("foo")})}))},
         1,
         false,
         "deny-foo",
         false,
         false,
         false,
         false},
        {"an L4 DENY that does not match admits it",
         {POLICY(DENY, "deny-bar", RULES({FROM({.namespaces = STRS("bar")})}))},
         1,
         true,
         NULL,
         true,
         true,
         true,
         false},
        {"an L4 DENY on another port admits it",
         {POLICY(DENY, "deny-9090", RULES({TO({.ports = PORTS(9090)})}))},
         1,
         true,
         NULL,
         true,
         true,
         true,
         false},
        {"an L4 ALLOW that matches admits it",
         {POLICY(ALLOW, "allow-foo", RULES({FROM({.namespaces = STRS("foo")})}))},
         1,
         true,
         NULL,
         true,
         true,
         true,
         false},
        {"an L4 ALLOW of another namespace refuses it, as on L4",
         {POLICY(ALLOW, "allow-bar", RULES({FROM({.namespaces = STRS("bar")})}))},
         1,
         false,
         NULL,
         false,
         false,
         false,
         false},
        {"a DENY on a path is left to the requests (L4 would refuse all)",
         {POLICY(DENY, "deny-admin", RULES({TO({.paths = STRS("/admin*")})}))},
         1,
         true,
         NULL,
         false,
         true,
         false,
         false},
        {"a DENY on a path and the peer's namespace is left to the requests",
         {POLICY(DENY, "deny-admin-foo",
                 RULES({FROM({.namespaces = STRS("foo")}), TO({.paths = STRS("/admin*")})}))},
         1,
         true,
         NULL,
         false,
         true,
         false,
         false},
        {"a DENY on a path for another namespace cannot match: admitted",
         {POLICY(DENY, "deny-admin-bar",
                 RULES({FROM({.namespaces = STRS("bar")}), TO({.paths = STRS("/admin*")})}))},
         1,
         true,
         NULL,
         true,
         true,
         true,
         false},
        {"a DENY whose operations are ORed refuses on its L4 one",
         {POLICY(DENY, "deny-or", RULES({TO({.paths = STRS("/admin*")}, {.ports = PORTS(8080)})}))},
         1,
         false,
         "deny-or",
         false,
         false,
         false,
         false},
        {"a DENY on a request header is left to the requests",
         {POLICY(DENY, "deny-red", RULES({WHEN(HEADER("x-team", .values = STRS("red")))}))},
         1,
         true,
         NULL,
         false,
         true,
         true,
         false},
        {"a DENY on a header and a matching L4 condition is still left to the requests",
         {POLICY(DENY, "deny-red-8080",
                 RULES({WHEN(HEADER("x-team", .values = STRS("red")),
                             {.key = AUTHZ_KEY_DESTINATION_PORT, .values = STRS("8080")})}))},
         1,
         true,
         NULL,
         false,
         true,
         true,
         false},
        {"an ALLOW on a path may match: admitted, the requests decide (L4 refuses)",
         {POLICY(ALLOW, "allow-public", RULES({TO({.paths = STRS("/public*")})}))},
         1,
         true,
         NULL,
         false,
         true,
         false,
         false},
        {"an ALLOW on a path for another namespace can match no request: refused",
         {POLICY(ALLOW, "allow-public-bar",
                 RULES({FROM({.namespaces = STRS("bar")}), TO({.paths = STRS("/public*")})}))},
         1,
         false,
         NULL,
         false,
         false,
         false,
         false},
        {"an ALLOW on a path of another port can match no request: refused",
         {POLICY(ALLOW, "allow-public-9090",
                 RULES({TO({.ports = PORTS(9090), .paths = STRS("/public*")})}))},
         1,
         false,
         NULL,
         false,
         false,
         false,
         false},
        {"an ALLOW on a header may match: admitted",
         {POLICY(ALLOW, "allow-blue", RULES({WHEN(HEADER("x-team", .values = STRS("blue")))}))},
         1,
         true,
         NULL,
         false,
         true,
         true,
         false},
        {"an L4 DENY beside an L7 one: the L4 one refuses the connection",
         {POLICY(DENY, "deny-admin", RULES({TO({.paths = STRS("/admin*")})})),
          POLICY(DENY, "deny-foo", RULES({FROM({.namespaces = STRS("foo")})}))},
         2,
         false,
         "deny-foo",
         false,
         false,
         false,
         false},
        {"an L7 ALLOW and an L4 DENY of another namespace: admitted, the requests decide",
         {POLICY(ALLOW, "allow-public", RULES({TO({.paths = STRS("/public*")})})),
          POLICY(DENY, "deny-bar", RULES({FROM({.namespaces = STRS("bar")})}))},
         2,
         true,
         NULL,
         false,
         true,
         false,
         false},
        {"remoteIpBlocks keep L4's treatment: an ALLOW on them never matches",
         {POLICY(ALLOW, "allow-remote", RULES({FROM({.has_l7 = true})}))},
         1,
         false,
         NULL,
         false,
         false,
         false,
         false},
        {"requestPrincipals keep L4's treatment: a DENY on them refuses",
         {POLICY(DENY, "deny-jwt", RULES({FROM({.request_principals = true})}))},
         1,
         false,
         "deny-jwt",
         false,
         true,
         true,
         true},
        {"notRequestPrincipals keep L4's treatment: an ALLOW on them refuses",
         {POLICY(ALLOW, "allow-nojwt", RULES({FROM({.not_request_principals = true})}))},
         1,
         false,
         NULL,
         false,
         true,
         true,
         true},
    };
    for (size_t i = 0; i < LEN(rows); i++) {
        const struct row *r = &rows[i];
        struct authz_request conn = {.principal = "cluster.local/ns/foo/sa/client",
                                     .namespace_ = "foo",
                                     .source = addr("10.244.1.11", 40000),
                                     .destination = addr("10.244.2.11", 8080)};
        struct authz_decision d, l4;
        authz_evaluate_connection(r->p, r->n, &conn, &d);
        authz_evaluate(r->p, r->n, &conn, &l4);
        bool pub = request_allowed(r, &conn, "/public/a");
        bool admin = request_allowed(r, &conn, "/admin/x");
        const char *by = !d.allow && d.by ? d.by->name : NULL;
        if (d.allow != r->conn || (r->by ? !by || strcmp(by, r->by) != 0 : by != NULL))
            fail_msg("%s: connection %s by %s", r->behaviour, d.allow ? "admitted" : "refused",
                     by ? by : "(none)");
        if (l4.allow != r->l4 || pub != r->pub || admin != r->admin)
            fail_msg("%s: L4 %d, /public %d, /admin %d", r->behaviour, l4.allow, pub, admin);
        /* The contract, whatever the row says. */
        if (!d.allow && (pub || admin) && !(r->l4_stricter && !l4.allow))
            fail_msg("%s: refused a connection a request of which is allowed", r->behaviour);
        if (!has_http_field(r) && d.allow != l4.allow)
            fail_msg("%s: no HTTP field, yet not the L4 decision", r->behaviour);
        if (d.allow && r->n && !pub && !admin && !has_http_field(r))
            fail_msg("%s: admitted what L4 refuses", r->behaviour);
    }
}

/* The caller's request is not changed: a view passed in is ignored and
 * the flag is the function's own. */
static void the_callers_request_is_left_alone(void **state)
{
    (void)state;
    const struct authz_policy p[] = {
        POLICY(DENY, "deny-admin", RULES({TO({.paths = STRS("/admin*")})}))};
    struct http_request_view v = {
        .method = "GET", .path = "/admin/x", .query = "", .authority = "shop", .scheme = "http"};
    struct authz_request req = {.principal = "cluster.local/ns/foo/sa/client",
                                .namespace_ = "foo",
                                .source = addr("10.244.1.11", 40000),
                                .destination = addr("10.244.2.11", 8080),
                                .http = &v};
    struct authz_decision d;
    authz_evaluate_connection(p, LEN(p), &req, &d);
    assert_true(d.allow); /* the connection's part: /admin is for the request */
    assert_ptr_equal(req.http, &v);
    assert_false(req.http_later);
    authz_evaluate(p, LEN(p), &req, &d);
    assert_false(d.allow); /* the request itself */
    assert_string_equal(d.by->name, "deny-admin");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(connection_part_refuses_only_what_no_request_changes),
        cmocka_unit_test(the_callers_request_is_left_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
