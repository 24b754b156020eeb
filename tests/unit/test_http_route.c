/* Per-request HTTP routing (agent/route/http_route.c, http_match.c):
 * VirtualService http[] matches as Istio evaluates them, first match
 * wins, weights per request, redirects and direct responses, 404 when no
 * http route matches and 503 when the destination leads nowhere; and
 * Istio's protocol selection for Service, ServiceEntry and workload ports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "core/addr.h"
#include "route/http_route.h"

/* The seed's payments service (an unnamed port 80) with a VirtualService
 * exercising every match, and its 99/1 canary as the catch-all. */
static const char *mesh_yaml =
    "apiVersion: v1\n"
    "kind: Namespace\n"
    "metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Service\n"
    "metadata: {name: payments, namespace: shop}\n"
    "spec:\n"
    "  clusterIP: 10.96.0.10\n"
    "  selector: {app: payments}\n"
    "  ports:\n"
    "  - {port: 80, targetPort: 8080}\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Service\n"
    "metadata: {name: catalog, namespace: shop}\n"
    "spec:\n"
    "  clusterIP: 10.96.0.11\n"
    "  selector: {app: payments}\n"
    "  ports: [{name: http, port: 80, targetPort: 8080}]\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Service\n"
    "metadata: {name: plain, namespace: shop}\n"
    "spec:\n"
    "  clusterIP: 10.96.0.12\n"
    "  selector: {app: payments}\n"
    "  ports: [{name: http, port: 80, targetPort: 8080}]\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Pod\n"
    "metadata: {name: p1, namespace: shop, labels: {app: payments, version: v1}}\n"
    "spec:\n"
    "  containers: [{name: a, ports: [{name: web, containerPort: 8080}]}]\n"
    "status: {podIP: 10.1.0.1}\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Pod\n"
    "metadata: {name: p2, namespace: shop, labels: {app: payments, version: v1}}\n"
    "spec:\n"
    "  containers: [{name: a, ports: [{name: web, containerPort: 8080}]}]\n"
    "status: {podIP: 10.1.0.2}\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Pod\n"
    "metadata: {name: p3, namespace: shop, labels: {app: payments, version: v2}}\n"
    "spec:\n"
    "  containers: [{name: a, ports: [{name: web, containerPort: 8080}]}]\n"
    "status: {podIP: 10.1.0.3}\n"
    "---\n"
    "apiVersion: networking.istio.io/v1\n"
    "kind: DestinationRule\n"
    "metadata: {name: payments, namespace: shop}\n"
    "spec:\n"
    "  host: payments\n"
    "  subsets:\n"
    "  - {name: v1, labels: {version: v1}}\n"
    "  - {name: v2, labels: {version: v2}}\n"
    "---\n"
    "apiVersion: networking.istio.io/v1\n"
    "kind: VirtualService\n"
    "metadata: {name: payments, namespace: shop}\n"
    "spec:\n"
    "  hosts: [payments]\n"
    "  http:\n"
    "  - name: header\n"
    "    match: [{headers: {x-canary: {exact: 'yes'}}}]\n"
    "    route: [{destination: {host: payments, subset: v2}}]\n"
    "  - name: path\n"
    "    match: [{uri: {prefix: /v2/}}]\n"
    "    route: [{destination: {host: payments, subset: v2}}]\n"
    "  - name: regex\n"
    "    match: [{uri: {regex: '/items/[0-9]+'}}]\n"
    "    route: [{destination: {host: payments, subset: v2}}]\n"
    "  - name: icase\n"
    "    match: [{uri: {exact: /Admin}, ignoreUriCase: true}]\n"
    "    route: [{destination: {host: payments, subset: v2}}]\n"
    "  - name: icase-regex\n"
    "    match: [{uri: {regex: '/Re[a-z]+'}, ignoreUriCase: true}]\n"
    "    route: [{destination: {host: payments, subset: v2}}]\n"
    "  - name: query\n"
    "    match: [{uri: {prefix: /q}, queryParams: {debug: {exact: '1'}, trace: {}}}]\n"
    "    route: [{destination: {host: payments, subset: v2}}]\n"
    "  - name: query-regex\n"
    "    match: [{queryParams: {id: {regex: '[0-9]{3}'}}}]\n"
    "    route: [{destination: {host: payments, subset: v2}}]\n"
    "  - name: without\n"
    "    match: [{uri: {prefix: /nocookie}, withoutHeaders: {cookie: {}}}]\n"
    "    route: [{destination: {host: payments, subset: v2}}]\n"
    "  - name: without-value\n"
    "    match: [{uri: {prefix: /wv}, withoutHeaders: {x-env: {exact: prod}}}]\n"
    "    route: [{destination: {host: payments, subset: v2}}]\n"
    "  - name: without-empty\n"
    "    match: [{uri: {prefix: /we}, withoutHeaders: {x-e: {exact: ''}}}]\n"
    "    route: [{destination: {host: payments, subset: v2}}]\n"
    "  - name: without-star\n"
    "    match: [{uri: {prefix: /ws}, withoutHeaders: {x-s: {regex: '*'}}}]\n"
    "    route: [{destination: {host: payments, subset: v2}}]\n"
    "  - name: source\n"
    "    match: [{sourceLabels: {app: checkout}}, {sourceNamespace: ops}]\n"
    "    route: [{destination: {host: payments, subset: v2}}]\n"
    "  - name: method-authority\n"
    "    match: [{method: {exact: DELETE}, authority: {exact: 'payments:80'}}]\n"
    "    route: [{destination: {host: payments, subset: v2}}]\n"
    "  - name: joined-headers\n"
    "    match: [{headers: {x-multi: {exact: 'a,b'}}}]\n"
    "    route: [{destination: {host: payments, subset: v2}}]\n"
    "  - name: scheme\n"
    "    match: [{uri: {prefix: /s}, scheme: {exact: https}}]\n"
    "    route: [{destination: {host: payments, subset: v2}}]\n"
    "  - name: redirect\n"
    "    match: [{uri: {exact: /old}}]\n"
    "    redirect: {uri: /new}\n"
    "  - name: direct\n"
    "    match: [{uri: {exact: /health}}]\n"
    "    directResponse: {status: 200, body: {string: ok}}\n"
    "  - name: first\n"
    "    match: [{uri: {prefix: /both}}]\n"
    "    route: [{destination: {host: payments, subset: v1}}]\n"
    "  - name: second\n"
    "    match: [{uri: {prefix: /both}}]\n"
    "    route: [{destination: {host: payments, subset: v2}}]\n"
    "  - name: nowhere\n"
    "    match: [{uri: {prefix: /nowhere}}]\n"
    "    route: [{destination: {host: ghost}}]\n"
    "  - name: canary\n"
    "    route:\n"
    "    - {destination: {host: payments, subset: v1}, weight: 99}\n"
    "    - {destination: {host: payments, subset: v2}, weight: 1}\n"
    "---\n"
    "apiVersion: networking.istio.io/v1\n"
    "kind: VirtualService\n"
    "metadata: {name: catalog, namespace: shop}\n"
    "spec:\n"
    "  hosts: [catalog]\n"
    "  http:\n"
    "  - match: [{uri: {prefix: /api}}]\n"
    "    route: [{destination: {host: catalog}}]\n";

static struct cfg_snapshot *snap;
static struct lb_state rng;

static int setup(void **state)
{
    (void)state;
    struct cfg_diags diags;
    cfg_diags_init(&diags);
    assert_int_equal(
        cfg_load_buffer("mesh.yaml", mesh_yaml, strlen(mesh_yaml), NULL, &diags, &snap), 0);
    for (size_t i = 0; i < diags.n; i++)
        if (diags.v[i].level == CFG_ERROR)
            fprintf(stderr, "%s\n", diags.v[i].message);
    assert_int_equal(diags.counts[CFG_ERROR], 0);
    cfg_diags_fini(&diags);
    lb_state_init(&rng, 42);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cfg_snapshot_unref(snap);
    return 0;
}

static struct meshd_addr A(const char *s) {
    struct meshd_addr a;
    assert_int_equal(addr_parse(s, &a), 0);
    return a;
}

struct req {
    const char *method, *path, *query, *authority, *scheme;
    const char *headers[4][2];
};

static size_t view_of(const struct req *q, struct http_request_view *v, struct http_field *f)
{
    size_t n = 0;
    for (; n < 4 && q->headers[n][0]; n++)
        f[n] = (struct http_field){q->headers[n][0], q->headers[n][1],
                                   (uint32_t)strlen(q->headers[n][0]),
                                   (uint32_t)strlen(q->headers[n][1])};
    *v = (struct http_request_view){
        .method = q->method ? q->method : "GET",
        .path = q->path ? q->path : "/",
        .query = q->query ? q->query : "",
        .authority = q->authority ? q->authority : "payments",
        .scheme = q->scheme ? q->scheme : "http",
        .headers = f,
        .nheaders = n,
    };
    return n;
}

static void route(const char *dst, const struct route_source *src, const struct req *q,
                  struct route_cluster *c, struct http_route_result *r)
{
    struct http_field f[4];
    struct http_request_view v;
    view_of(q, &v, f);
    struct meshd_addr d = A(dst);
    http_route_resolve(snap, src, &d, &v, &rng, c, r);
}

struct row {
    const char *name;
    const char *ns; /* the client's namespace */
    const char *app;
    struct req q;
    enum http_route_kind kind;
    const char *route;  /* the matched route's name; NULL: the canary or default */
    const char *subset; /* FORWARD */
    int status;         /* NO_ROUTE */
};

static const struct row rows[] = {
    {"a header match routes to its subset",
     "shop",
     NULL,
     {.headers = {{"X-Canary", "yes"}}},
     HTTP_ROUTE_FORWARD,
     "header",
     "v2",
     0},
    {"a header match needs the value",
     "shop",
     NULL,
     {.path = "/both", .headers = {{"x-canary", "no"}}},
     HTTP_ROUTE_FORWARD,
     "first",
     "v1",
     0},
    {"a path prefix match", "shop", NULL, {.path = "/v2/pay"}, HTTP_ROUTE_FORWARD, "path", "v2", 0},
    {"a prefix is not a substring",
     "shop",
     NULL,
     {.path = "/x/v2/", .headers = {{"x", "1"}}},
     HTTP_ROUTE_FORWARD,
     "canary",
     NULL,
     0},
    {"a regex is a full match",
     "shop",
     NULL,
     {.path = "/items/123"},
     HTTP_ROUTE_FORWARD,
     "regex",
     "v2",
     0},
    {"a regex does not match a longer path",
     "shop",
     NULL,
     {.path = "/items/123/x"},
     HTTP_ROUTE_FORWARD,
     "canary",
     NULL,
     0},
    {"ignoreUriCase on exact",
     "shop",
     NULL,
     {.path = "/aDMIN"},
     HTTP_ROUTE_FORWARD,
     "icase",
     "v2",
     0},
    {"ignoreUriCase does not apply to a regex",
     "shop",
     NULL,
     {.path = "/REad"},
     HTTP_ROUTE_FORWARD,
     "canary",
     NULL,
     0},
    {"a regex matching as written",
     "shop",
     NULL,
     {.path = "/Read"},
     HTTP_ROUTE_FORWARD,
     "icase-regex",
     "v2",
     0},
    {"query params: value and presence",
     "shop",
     NULL,
     {.path = "/q", .query = "a=b&debug=1&trace"},
     HTTP_ROUTE_FORWARD,
     "query",
     "v2",
     0},
    {"query params: a missing one fails",
     "shop",
     NULL,
     {.path = "/q", .query = "debug=1"},
     HTTP_ROUTE_FORWARD,
     "canary",
     NULL,
     0},
    {"query params are percent-decoded",
     "shop",
     NULL,
     {.path = "/q", .query = "d%65bug=%31&trace="},
     HTTP_ROUTE_FORWARD,
     "query",
     "v2",
     0},
    {"query param regex: the first value",
     "shop",
     NULL,
     {.query = "id=123&id=x"},
     HTTP_ROUTE_FORWARD,
     "query-regex",
     "v2",
     0},
    {"query param regex: a full match",
     "shop",
     NULL,
     {.query = "id=1234"},
     HTTP_ROUTE_FORWARD,
     "canary",
     NULL,
     0},
    {"withoutHeaders: absent matches",
     "shop",
     NULL,
     {.path = "/nocookie"},
     HTTP_ROUTE_FORWARD,
     "without",
     "v2",
     0},
    {"withoutHeaders: present does not",
     "shop",
     NULL,
     {.path = "/nocookie", .headers = {{"Cookie", "a=1"}}},
     HTTP_ROUTE_FORWARD,
     "canary",
     NULL,
     0},
    {"withoutHeaders: another value matches",
     "shop",
     NULL,
     {.path = "/wv", .headers = {{"x-env", "dev"}}},
     HTTP_ROUTE_FORWARD,
     "without-value",
     "v2",
     0},
    {"withoutHeaders: the excluded value does not",
     "shop",
     NULL,
     {.path = "/wv", .headers = {{"x-env", "prod"}}},
     HTTP_ROUTE_FORWARD,
     "canary",
     NULL,
     0},
    {"withoutHeaders: an absent field is the empty value",
     "shop",
     NULL,
     {.path = "/we"},
     HTTP_ROUTE_FORWARD,
     "canary",
     NULL,
     0},
    {"withoutHeaders: a non-empty value is not excluded",
     "shop",
     NULL,
     {.path = "/we", .headers = {{"x-e", "v"}}},
     HTTP_ROUTE_FORWARD,
     "without-empty",
     "v2",
     0},
    {"withoutHeaders regex '*': absent matches",
     "shop",
     NULL,
     {.path = "/ws"},
     HTTP_ROUTE_FORWARD,
     "without-star",
     "v2",
     0},
    {"withoutHeaders regex '*': any value excludes",
     "shop",
     NULL,
     {.path = "/ws", .headers = {{"x-s", ""}}},
     HTTP_ROUTE_FORWARD,
     "canary",
     NULL,
     0},
    {"sourceLabels", "shop", "checkout", {0}, HTTP_ROUTE_FORWARD, "source", "v2", 0},
    {"sourceNamespace (matches ORed)", "ops", NULL, {0}, HTTP_ROUTE_FORWARD, "source", "v2", 0},
    {"method and authority ANDed",
     "shop",
     NULL,
     {.method = "DELETE", .authority = "payments:80"},
     HTTP_ROUTE_FORWARD,
     "method-authority",
     "v2",
     0},
    {"authority as sent: no port, no match",
     "shop",
     NULL,
     {.method = "DELETE", .authority = "payments"},
     HTTP_ROUTE_FORWARD,
     "canary",
     NULL,
     0},
    {"several fields of a header are joined",
     "shop",
     NULL,
     {.headers = {{"x-multi", "a"}, {"X-Multi", "b"}}},
     HTTP_ROUTE_FORWARD,
     "joined-headers",
     "v2",
     0},
    {"scheme",
     "shop",
     NULL,
     {.path = "/s", .scheme = "https"},
     HTTP_ROUTE_FORWARD,
     "scheme",
     "v2",
     0},
    {"a redirect", "shop", NULL, {.path = "/old"}, HTTP_ROUTE_REDIRECT, "redirect", NULL, 0},
    {"a direct response", "shop", NULL, {.path = "/health"}, HTTP_ROUTE_DIRECT, "direct", NULL, 0},
    {"first match wins", "shop", NULL, {.path = "/both"}, HTTP_ROUTE_FORWARD, "first", "v1", 0},
    {"a destination that is not a service: 503",
     "shop",
     NULL,
     {.path = "/nowhere"},
     HTTP_ROUTE_NO_ROUTE,
     "nowhere",
     NULL,
     503},
};

static void test_http_matches_route_each_request(void **state)
{
    (void)state;
    static struct route_cluster c;
    int failures = 0;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *w = &rows[i];
        struct cfg_kv kv[] = {{"app", w->app}};
        struct route_source src = {.ns = w->ns, .labels = {kv, w->app ? 1 : 0}};
        struct http_route_result r;
        /* The canary's v1 draw is the common one; draw until it for rows
         * that expect the catch-all. */
        for (int tries = 0; tries < 20; tries++) {
            route("10.96.0.10:80", &src, &w->q, &c, &r);
            if (!(r.kind == HTTP_ROUTE_FORWARD && c.subset && strcmp(c.subset, "v2") == 0 &&
                  !w->subset))
                break;
        }
        const char *name = r.route ? r.route->name : NULL;
        bool ok = r.kind == w->kind &&
                  ((!name && !w->route) || (name && w->route && strcmp(name, w->route) == 0));
        if (ok && w->kind == HTTP_ROUTE_FORWARD) {
            const char *want = w->subset ? w->subset : "v1";
            ok = c.subset && strcmp(c.subset, want) == 0 && c.route == r.route &&
                 c.nendpoints == (strcmp(want, "v1") == 0 ? 2u : 1u) && c.port == 80 &&
                 c.target_ports[0] == 8080 && r.vs && strcmp(r.vs->meta.name, "payments") == 0 &&
                 strcmp(r.route->dest[r.dest_index].dest.subset, want) == 0;
        }
        if (ok && w->kind == HTTP_ROUTE_NO_ROUTE)
            ok = r.status == w->status && r.why;
        if (!ok) {
            fprintf(stderr, "row \"%s\": kind %d route %s subset %s status %d\n", w->name, r.kind,
                    name ? name : "-", c.subset ? c.subset : "-", r.status);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* The seed's canary, weighted per request: 20,000 requests, each routed
 * on its own, split 99/1 within a 99.9% binomial bound. */
static void test_canary_weights_apply_per_request(void **state)
{
    (void)state;
    static struct route_cluster c;
    struct route_source src = {.ns = "shop"};
    struct req q = {.path = "/pay"};
    int v2 = 0, n = 20000;
    for (int i = 0; i < n; i++) {
        struct http_route_result r;
        route("10.96.0.10:80", &src, &q, &c, &r);
        assert_int_equal(r.kind, HTTP_ROUTE_FORWARD);
        assert_string_equal(r.route->name, "canary");
        v2 += strcmp(c.subset, "v2") == 0;
        assert_int_equal(r.dest_index, strcmp(c.subset, "v2") == 0 ? 1 : 0);
    }
    double mean = n * 0.01, bound = 3.29 * sqrt(n * 0.01 * 0.99);
    if (fabs(v2 - mean) > bound)
        fail_msg("v2 got %d of %d requests; expected %.0f +- %.1f", v2, n, mean, bound);
}

static void test_no_http_route_matches_is_404(void **state)
{
    (void)state;
    static struct route_cluster c;
    struct route_source src = {.ns = "shop"};
    struct http_route_result r;
    struct req q = {.path = "/other"};
    route("10.96.0.11:80", &src, &q, &c, &r);
    assert_int_equal(r.kind, HTTP_ROUTE_NO_ROUTE);
    assert_int_equal(r.status, 404);
    assert_null(r.route);
    assert_string_equal(r.vs->meta.name, "catalog");
    q.path = "/api/x";
    route("10.96.0.11:80", &src, &q, &c, &r);
    assert_int_equal(r.kind, HTTP_ROUTE_FORWARD);
    assert_string_equal(c.svc->name, "catalog");
    assert_int_equal(c.nendpoints, 3);
}

/* No VirtualService: the service itself; a workload IP and an unknown
 * address as route_resolve has them. */
static void test_default_route_workload_and_passthrough(void **state)
{
    (void)state;
    static struct route_cluster c;
    struct route_source src = {.ns = "shop"};
    struct http_route_result r;
    struct req q = {0};
    route("10.96.0.12:80", &src, &q, &c, &r);
    assert_int_equal(r.kind, HTTP_ROUTE_FORWARD);
    assert_null(r.vs);
    assert_null(r.route);
    assert_null(c.subset);
    assert_int_equal(c.nendpoints, 3);
    route("10.1.0.3:8080", &src, &q, &c, &r);
    assert_int_equal(r.kind, HTTP_ROUTE_WORKLOAD);
    assert_string_equal(r.workload->name, "p3");
    route("192.0.2.1:80", &src, &q, &c, &r);
    assert_int_equal(r.kind, HTTP_ROUTE_PASSTHROUGH);
}

/* The L4 router still skips http routes with L7 matches and takes the
 * canary for a connection. */
static void test_l4_view_unchanged(void **state)
{
    (void)state;
    static struct route_cluster c;
    struct route_source src = {.ns = "shop"};
    struct route_result r;
    struct meshd_addr d = A("10.96.0.10:80");
    route_resolve(snap, &src, &d, &rng, &c, &r);
    assert_int_equal(r.kind, ROUTE_SERVICE);
    assert_string_equal(c.route->name, "canary");
}

static const struct cfg_route *named(const char *name);

static void test_str_match_kinds(void **state)
{
    (void)state;
    const struct cfg_route *rx = named("regex");
    const struct cfg_str_match *re = &rx->http_ext->match[0].uri;
    struct cfg_str_match exact = {.set = true, .kind = CFG_STR_EXACT, .value = "Ab"};
    struct cfg_str_match prefix = {.set = true, .kind = CFG_STR_PREFIX, .value = "/a"};
    struct cfg_str_match unset = {0};
    assert_true(http_str_match(&exact, "Ab", 2, false));
    assert_false(http_str_match(&exact, "ab", 2, false));
    assert_true(http_str_match(&exact, "ab", 2, true));
    assert_false(http_str_match(&exact, "Abc", 3, false));
    assert_true(http_str_match(&prefix, "/a/b", 4, false));
    assert_false(http_str_match(&prefix, "/", 1, false));
    assert_true(http_str_match(&prefix, "/A", 2, true));
    assert_true(http_str_match(&unset, "", 0, false));
    assert_true(http_str_match(re, "/items/7", 8, false));
    assert_false(http_str_match(re, "x/items/7", 9, false));
    /* `len` bounds the value, not a NUL. */
    assert_true(http_str_match(re, "/items/7/more", 8, false));
    /* Not UTF-8: no match, not an error. */
    assert_false(http_str_match(re, "/items/\xff", 8, false));
}

/* A pattern that backtracks exponentially on a long value is stopped by
 * PCRE2's limits and does not match, quickly. */
static void test_hostile_regex_is_bounded(void **state)
{
    (void)state;
    static const char yaml[] =
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r, namespace: "
        "shop}\nspec:\n  hosts: [x]\n  http:\n  - match: [{uri: {regex: "
        "'(a|aa)*(a|aa)*(a|aa)*[bc]'}}]\n"
        "    route: [{destination: {host: x}}]\n";
    struct cfg_diags diags;
    struct cfg_snapshot *s;
    cfg_diags_init(&diags);
    assert_int_equal(cfg_load_buffer("r.yaml", yaml, strlen(yaml), NULL, &diags, &s), 0);
    assert_int_equal(diags.counts[CFG_ERROR], 0);
    const struct cfg_virtual_service *vs = cfg_find(s, CFG_VIRTUAL_SERVICE, "shop", "r");
    const struct cfg_str_match *m = &vs->routes[0].http_ext->match[0].uri;
    char value[4096];
    memset(value, 'a', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 10; i++)
        assert_false(http_str_match(m, value, strlen(value), false));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    if (ms > 2000)
        fail_msg("10 bounded matches took %.0f ms", ms);
    cfg_snapshot_unref(s);
    cfg_diags_fini(&diags);
}

static const struct cfg_route *named(const char *name)
{
    const struct cfg_virtual_service *vs = cfg_find(snap, CFG_VIRTUAL_SERVICE, "shop", "payments");
    for (size_t i = 0; i < vs->nroutes; i++)
        if (vs->routes[i].name && strcmp(vs->routes[i].name, name) == 0)
            return &vs->routes[i];
    fail_msg("no route %s", name);
    return NULL;
}

/* `meshctl proxy-config routes` shows each http route as one line. */
static void test_route_summary_lines(void **state)
{
    (void)state;
    static const struct {
        const char *route, *line;
    } table[] = {
        {"header", "header x-canary exact yes -> payments/v2 100%"},
        {"icase", "uri(icase) exact /Admin -> payments/v2 100%"},
        {"query",
         "uri prefix /q && query debug exact 1 && query trace present -> payments/v2 100%"},
        {"without", "uri prefix /nocookie && !header cookie present -> payments/v2 100%"},
        {"source", "source app=checkout | sourceNamespace ops -> payments/v2 100%"},
        {"redirect", "uri exact /old -> redirect 301 uri=/new"},
        {"direct", "uri exact /health -> direct_response 200"},
        {"canary", "* -> payments/v1 99%, payments/v2 1%"},
    };
    char buf[256];
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        size_t n = http_route_summary(named(table[i].route), buf, sizeof(buf));
        assert_string_equal(buf, table[i].line);
        assert_int_equal(n, strlen(table[i].line));
    }
    /* Truncated to the buffer. */
    char small[12];
    assert_int_equal(http_route_summary(named("canary"), small, sizeof(small)), 11);
    assert_string_equal(small, "* -> paymen");
}

/* ---- protocol selection ---- */

static const char *proto_yaml =
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: proto, namespace: shop}\n"
    "spec:\n  clusterIP: 10.96.0.20\n  selector: {app: proto}\n  ports:\n"
    "  - {name: http, port: 1}\n"
    "  - {name: http-web, port: 2}\n"
    "  - {name: http2, port: 3}\n"
    "  - {name: grpc, port: 4}\n"
    "  - {name: grpc-web, port: 5}\n"
    "  - {name: tcp, port: 6}\n"
    "  - {name: tls-x, port: 7}\n"
    "  - {name: mongo, port: 8}\n"
    "  - {port: 9}\n"
    "  - {name: web, port: 10}\n"
    "  - {name: tcp-x, port: 11, appProtocol: http}\n"
    "  - {name: http, port: 12, appProtocol: tcp}\n"
    "  - {name: http, port: 13, protocol: UDP}\n"
    "  - {port: 3306}\n"
    "  - {name: x, port: 14, appProtocol: kubernetes.io/h2c}\n"
    "  - {name: GRPC-Admin, port: 15}\n"
    "  - {name: https, port: 16}\n"
    "  - {name: redis, port: 17}\n"
    "  - {name: t, port: 18, targetPort: 9000, appProtocol: grpc}\n"
    "---\napiVersion: v1\nkind: Pod\nmetadata: {name: w1, namespace: shop, labels: {app: proto}}\n"
    "spec: {containers: [{name: a}]}\nstatus: {podIP: 10.2.0.1}\n"
    "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ext, namespace: "
    "shop}\n"
    "spec:\n  hosts: [ext.example.com]\n  addresses: [240.0.0.1]\n  resolution: STATIC\n"
    "  endpoints: [{address: 192.0.2.10}]\n  ports:\n"
    "  - {number: 80, name: h, protocol: HTTP}\n"
    "  - {number: 81, name: g, protocol: GRPC}\n"
    "  - {number: 82, name: t, protocol: TCP}\n"
    "  - {number: 83, name: s, protocol: TLS}\n"
    "  - {number: 84, name: h2, protocol: HTTP2}\n"
    "  - {number: 85, name: n}\n";

static void test_protocol_selection(void **state)
{
    (void)state;
    static const struct {
        const char *dst;
        enum http_proto want;
        const char *why;
    } table[] = {
        {"10.96.0.20:1", PROTO_HTTP, "http"},
        {"10.96.0.20:2", PROTO_HTTP, "http-web: the prefix"},
        {"10.96.0.20:3", PROTO_HTTP2, "http2"},
        {"10.96.0.20:4", PROTO_GRPC, "grpc"},
        {"10.96.0.20:5", PROTO_GRPC, "grpc-web"},
        {"10.96.0.20:6", PROTO_TCP, "tcp"},
        {"10.96.0.20:7", PROTO_TCP, "tls-x"},
        {"10.96.0.20:8", PROTO_TCP, "mongo"},
        {"10.96.0.20:9", PROTO_AUTO, "unnamed: sniffed"},
        {"10.96.0.20:10", PROTO_AUTO, "an unknown name: sniffed"},
        {"10.96.0.20:11", PROTO_HTTP, "appProtocol http over the name tcp-x"},
        {"10.96.0.20:12", PROTO_TCP, "appProtocol tcp over the name http"},
        {"10.96.0.20:13", PROTO_TCP, "UDP: never parsed"},
        {"10.96.0.20:3306", PROTO_TCP, "unnamed well-known server-first port"},
        {"10.96.0.20:14", PROTO_HTTP2, "appProtocol kubernetes.io/h2c"},
        {"10.96.0.20:15", PROTO_GRPC, "names are case-insensitive"},
        {"10.96.0.20:16", PROTO_TCP, "https: TLS passes through"},
        {"10.96.0.20:17", PROTO_TCP, "redis"},
        {"10.96.0.20:99", PROTO_TCP, "not a port of the service: passthrough"},
        {"240.0.0.1:80", PROTO_HTTP, "ServiceEntry HTTP"},
        {"240.0.0.1:81", PROTO_GRPC, "ServiceEntry GRPC"},
        {"240.0.0.1:82", PROTO_TCP, "ServiceEntry TCP"},
        {"240.0.0.1:83", PROTO_TCP, "ServiceEntry TLS"},
        {"240.0.0.1:84", PROTO_HTTP2, "ServiceEntry HTTP2"},
        {"240.0.0.1:85", PROTO_AUTO, "ServiceEntry without protocol"},
        {"10.2.0.1:1", PROTO_HTTP, "a workload port: its service port's protocol"},
        {"10.2.0.1:9000", PROTO_GRPC, "a workload port by targetPort"},
        {"10.2.0.1:18", PROTO_AUTO, "a service port number is not the workload's port"},
        {"10.2.0.1:7777", PROTO_AUTO, "a workload port no service names"},
        {"192.0.2.99:80", PROTO_TCP, "unknown address: passthrough"},
    };
    struct cfg_diags diags;
    struct cfg_snapshot *s;
    cfg_diags_init(&diags);
    assert_int_equal(
        cfg_load_buffer("proto.yaml", proto_yaml, strlen(proto_yaml), NULL, &diags, &s), 0);
    assert_int_equal(diags.counts[CFG_ERROR], 0);
    int failures = 0;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        struct meshd_addr d = A(table[i].dst);
        enum http_proto got = http_dest_protocol(s, &d);
        if (got != table[i].want) {
            fprintf(stderr, "%s (%s): got %d, want %d\n", table[i].dst, table[i].why, got,
                    table[i].want);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
    struct meshd_addr ip = A("10.2.0.1:0");
    const struct cfg_workload *w = cfg_workload_by_ip(s, &ip);
    assert_non_null(w);
    assert_int_equal(http_workload_port_protocol(s, w, 3), PROTO_HTTP2);
    assert_int_equal(http_workload_port_protocol(s, w, 6), PROTO_TCP);
    cfg_snapshot_unref(s);
    cfg_diags_fini(&diags);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_matches_route_each_request),
        cmocka_unit_test(test_canary_weights_apply_per_request),
        cmocka_unit_test(test_no_http_route_matches_is_404),
        cmocka_unit_test(test_default_route_workload_and_passthrough),
        cmocka_unit_test(test_l4_view_unchanged),
        cmocka_unit_test(test_str_match_kinds),
        cmocka_unit_test(test_hostile_regex_is_bounded),
        cmocka_unit_test(test_route_summary_lines),
        cmocka_unit_test(test_protocol_selection),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
