/* The Gateway API's refusals (config/decode_gateway_api.c,
 * decode_httproute.c, gateway_api.c): binding rules (allowedRoutes,
 * sectionName, hostnames, ReferenceGrants for Secrets and Services, other
 * classes), references refused fail closed, invalid or hostile input
 * refused with the field named (one row per rule), bounds on many routes,
 * and meshctl analyze naming the route. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/analyze.h"
#include "config/config.h"
#include "route/gateway_route.h"
#include "support/gwapi_fixture.h"

/* Binding: which listeners take a route, and what a refused reference
 * becomes. `yaml` follows NS_AND_PODS BACKENDS. */
static const struct bind_case {
    const char *what, *yaml;
    const char *host, *want; /* the outcome at app.example.com:8443 */
    const char *says;        /* a warning or info, or NULL */
} binds[] = {
    {"a route of another namespace: Same refuses it",
     GATEWAY
     "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: "
     "shop}\nspec: {parentRefs: [{name: gw, namespace: default}], rules: [{backendRefs: [{name: "
     "v1, port: 8000}]}]}\n",
     "app.example.com", "404", "allowedRoutes.namespaces refuses"},
    {"a Selector admitting the namespace's label; a backend of another namespace needs a grant",
     "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: "
     "default}\nspec:\n  gatewayClassName: istio\n  listeners:\n  - {name: https, port: 8443, "
     "protocol: HTTPS, tls: {certificateRefs: [{name: app-tls}]},\n     allowedRoutes: "
     "{namespaces: {from: Selector, selector: {matchLabels: {team: shop}}}}}\n---\n"
     "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: "
     "shop}\nspec: {parentRefs: [{name: gw, namespace: default}], rules: [{backendRefs: [{name: "
     "v1, namespace: default, port: 8000}]}]}\n",
     "app.example.com", "dests", "no ReferenceGrant in default allows it"},
    {"All, and a ReferenceGrant for the backend",
     "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: "
     "default}\nspec:\n  gatewayClassName: istio\n  listeners:\n  - {name: https, port: 8443, "
     "protocol: HTTPS, tls: {certificateRefs: [{name: app-tls}]},\n     allowedRoutes: "
     "{namespaces: {from: All}}}\n---\n"
     "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g, "
     "namespace: default}\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, "
     "namespace: shop}]\n  to: [{group: '', kind: Service}]\n---\n"
     "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: "
     "shop}\nspec: {parentRefs: [{name: gw, namespace: default}], rules: [{backendRefs: [{name: "
     "v1, namespace: default, port: 8000}]}]}\n",
     "app.example.com", "dests v1:100", NULL},
    {"a sectionName no listener has",
     GATEWAY
     "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: "
     "default}\nspec: {parentRefs: [{name: gw, sectionName: nope}], rules: [{backendRefs: [{name: "
     "v1, port: 8000}]}]}\n",
     "app.example.com", "404", "no listener of that sectionName"},
    {"hostnames that miss the listener's",
     GATEWAY
     "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: "
     "default}\nspec: {parentRefs: [{name: gw, sectionName: https}], hostnames: [app.other.org], "
     "rules: [{backendRefs: [{name: v1, port: 8000}]}]}\n",
     "app.example.com", "404", "NoMatchingListenerHostname"},
    {"a parent Gateway that does not exist",
     GATEWAY
     "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: "
     "default}\nspec: {parentRefs: [{name: ghost}], rules: [{backendRefs: [{name: v1, port: "
     "8000}]}]}\n",
     "app.example.com", "404", "parentRef Gateway default/ghost not found"},
    {"weights all 0: the API's 500",
     GATEWAY
     "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: "
     "default}\nspec: {parentRefs: [{name: gw}], rules: [{backendRefs: [{name: v1, port: 8000, "
     "weight: 0}]}]}\n",
     "app.example.com", "dests", NULL},
    {"another gatewayClassName is not served",
     "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: "
     "default}\nspec: {gatewayClassName: nginx, listeners: [{name: http, port: 8443, protocol: "
     "HTTP}]}\n---\n"
     "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: "
     "default}\nspec: {parentRefs: [{name: gw}], rules: [{backendRefs: [{name: v1, port: "
     "8000}]}]}\n",
     "app.example.com", "404 no server", "gatewayClassName nginx is not istio"},
};

static void test_binding_rules(void **state)
{
    for (size_t i = 0; i < sizeof(binds) / sizeof(binds[0]); i++) {
        const struct bind_case *c = &binds[i];
        char yaml[8192], got[300];
        snprintf(yaml, sizeof(yaml), "%s%s%s", NS_AND_PODS, BACKENDS, c->yaml);
        struct cfg_diags d;
        struct cfg_snapshot *s = gwapi_load(yaml, &d);
        gwapi_outcome(s, c->host, "/", NULL, 0, got, sizeof(got));
        bool said = !c->says || gwapi_find_diag(&d, CFG_WARNING, c->says) ||
                    gwapi_find_diag(&d, CFG_INFO, c->says);
        if (d.counts[CFG_ERROR] || strcmp(got, c->want) != 0 || !said) {
            fprintf(stderr, "%s: want \"%s\" and \"%s\", got \"%s\"\n", c->what, c->want,
                    c->says ? c->says : "", got);
            gwapi_dump(&d);
            fail();
        }
        cfg_snapshot_unref(s);
        cfg_diags_fini(&d);
    }
}

/* The 500 of a rule without a usable backend, and a certificate of
 * another namespace with and without a grant. */
static void test_refused_references_fail_closed(void **state)
{
    struct cfg_diags d;
    char yaml[8192];
    snprintf(yaml, sizeof(yaml), "%s%s%s", NS_AND_PODS, BACKENDS, binds[1].yaml);
    struct cfg_snapshot *s = gwapi_load(yaml, &d);
    struct gw_server gs[8];
    size_t n = gw_pod_servers(s, cfg_find(s, CFG_POD, "default", "gw-istio-1"), gs, 8);
    struct route_source src = {.ns = "default"};
    struct http_request_view req = {.method = "GET",
                                    .path = "/",
                                    .query = "",
                                    .authority = "app.example.com",
                                    .scheme = "https"};
    struct gw_http_result r;
    gw_route_http(s, gw_server_for(gs, n, 8443, req.authority), &src, &req, &r);
    assert_non_null(r.route);
    assert_int_equal(r.route->ndest, 0);
    assert_true(r.route->http_ext->direct.set);
    assert_int_equal(r.route->http_ext->direct.status, 500);
    cfg_snapshot_unref(s);
    cfg_diags_fini(&d);

    static const char *cert_other_ns =
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, "
        "namespace: default}\nspec:\n  gatewayClassName: istio\n  listeners:\n  - {name: https, "
        "port: 8443, protocol: HTTPS, tls: {certificateRefs: [{name: shop-tls, namespace: "
        "shop}]}}\n";
    static const char *grant =
        "---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: "
        "{name: g, namespace: shop}\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: "
        "Gateway, namespace: default}]\n  to: [{group: '', kind: Secret, name: shop-tls}]\n";
    for (int with_grant = 0; with_grant < 2; with_grant++) {
        snprintf(yaml, sizeof(yaml), "%s%s%s", NS_AND_PODS, cert_other_ns, with_grant ? grant : "");
        s = gwapi_load(yaml, &d);
        const struct cfg_gateway *g =
            cfg_find(s, CFG_GATEWAY, "default", "gw~istio-autogenerated-k8s-gateway~https");
        assert_non_null(g);
        assert_string_equal(g->servers[0].credential_name, "shop/shop-tls");
        /* The Secret the edge looks up in the gateway's namespace. */
        const struct cfg_secret *sec = cfg_find(s, CFG_SECRET, "default", "shop/shop-tls");
        if (with_grant) {
            assert_non_null(sec);
            assert_string_equal(sec->tls_crt, "x");
        } else {
            assert_null(sec);
            assert_non_null(gwapi_find_diag(&d, CFG_WARNING, "RefNotPermitted"));
        }
        cfg_snapshot_unref(s);
        cfg_diags_fini(&d);
    }
}

/* Invalid and hostile input: the resource is refused (an error naming the
 * field), nothing of it is served. */
#define GW_HEAD                                                                                    \
    "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n"
#define RT_HEAD                                                                                    \
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n"      \
    "  parentRefs: [{name: g}]\n"

static const struct bad_case {
    const char *what, *yaml, *says;
    enum cfg_kind kind;
} bads[] = {
    {"gatewayClassName is required", GW_HEAD "  listeners: [{name: a, port: 80, protocol: HTTP}]\n",
     "gatewayClassName is required", CFG_K8S_GATEWAY},
    {"listener names are unique",
     GW_HEAD "  gatewayClassName: istio\n  listeners: [{name: a, port: 80, protocol: HTTP}, {name: "
             "a, port: 81, protocol: HTTP}]\n",
     "must be unique", CFG_K8S_GATEWAY},
    {"HTTPS needs tls",
     GW_HEAD "  gatewayClassName: istio\n  listeners: [{name: a, port: 443, protocol: HTTPS}]\n",
     "tls must be specified", CFG_K8S_GATEWAY},
    {"Terminate needs certificateRefs",
     GW_HEAD "  gatewayClassName: istio\n  listeners: [{name: a, port: 443, protocol: HTTPS, tls: "
             "{mode: Terminate}}]\n",
     "certificateRefs or options must be specified", CFG_K8S_GATEWAY},
    {"a bare * is not a hostname",
     GW_HEAD "  gatewayClassName: istio\n  listeners: [{name: a, port: 80, protocol: HTTP, "
             "hostname: '*'}]\n",
     "is not a valid hostname", CFG_K8S_GATEWAY},
    {"an upper-case hostname",
     GW_HEAD "  gatewayClassName: istio\n  listeners: [{name: a, port: 80, protocol: HTTP, "
             "hostname: App.example.com}]\n",
     "is not a valid hostname", CFG_K8S_GATEWAY},
    {"a port out of range",
     GW_HEAD "  gatewayClassName: istio\n  listeners: [{name: a, port: 70000, protocol: HTTP}]\n",
     "expected", CFG_K8S_GATEWAY},
    {"listeners must be a list", GW_HEAD "  gatewayClassName: istio\n  listeners: oops\n",
     "expected a list", CFG_K8S_GATEWAY},
    {"a path must be absolute", RT_HEAD "  rules: [{matches: [{path: {value: foo}}]}]\n",
     "must be an absolute path", CFG_HTTP_ROUTE},
    {"no // in a path", RT_HEAD "  rules: [{matches: [{path: {type: Exact, value: /a//b}}]}]\n",
     "must not contain", CFG_HTTP_ROUTE},
    {"a regex RE2 lacks",
     RT_HEAD "  rules: [{matches: [{path: {type: RegularExpression, value: '(a)\\1'}}]}]\n",
     "not RE2 syntax", CFG_HTTP_ROUTE},
    {"an unknown method", RT_HEAD "  rules: [{matches: [{method: BREW}]}]\n", "BREW",
     CFG_HTTP_ROUTE},
    {"a header name with a space",
     RT_HEAD "  rules: [{matches: [{headers: [{name: 'x y', value: v}]}]}]\n",
     "is not a valid header name", CFG_HTTP_ROUTE},
    {"a filter without its field", RT_HEAD "  rules: [{filters: [{type: RequestRedirect}]}]\n",
     "requestRedirect must be specified", CFG_HTTP_ROUTE},
    {"a filter with another type's field",
     RT_HEAD "  rules: [{filters: [{type: URLRewrite, requestRedirect: {scheme: https}}]}]\n",
     "must be nil", CFG_HTTP_ROUTE},
    {"a redirect with backends",
     RT_HEAD "  rules: [{filters: [{type: RequestRedirect, requestRedirect: {scheme: https}}], "
             "backendRefs: [{name: v1, port: 80}]}]\n",
     "must not be used together with backendRefs", CFG_HTTP_ROUTE},
    {"a redirect status other than 301 and 302",
     RT_HEAD
     "  rules: [{filters: [{type: RequestRedirect, requestRedirect: {statusCode: 303}}]}]\n",
     "supported values are 301, 302", CFG_HTTP_ROUTE},
    {"a prefix rewrite without a PathPrefix match",
     RT_HEAD "  rules: [{matches: [{path: {type: Exact, value: /a}}], filters: [{type: URLRewrite, "
             "urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}]}]\n",
     "exactly one PathPrefix match", CFG_HTTP_ROUTE},
    {"a Service backend without a port", RT_HEAD "  rules: [{backendRefs: [{name: v1}]}]\n",
     "port is required", CFG_HTTP_ROUTE},
    {"a weight over 1000000",
     RT_HEAD "  rules: [{backendRefs: [{name: v1, port: 80, weight: "
             "1000001}]}]\n",
     "expected an integer", CFG_HTTP_ROUTE},
    {"a duration not in the API's form", RT_HEAD "  rules: [{timeouts: {request: 1.5s}}]\n",
     "is not a Gateway API duration", CFG_HTTP_ROUTE},
    {"backendRequest longer than request",
     RT_HEAD "  rules: [{timeouts: {request: 1s, backendRequest: 2s}}]\n",
     "cannot be longer than request", CFG_HTTP_ROUTE},
    {"a CRLF in a header value",
     RT_HEAD "  rules: [{filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: "
             "[{name: x-a, value: \"v\\r\\nSet-Cookie: x\"}]}}]}]\n",
     "without CR or LF", CFG_HTTP_ROUTE},
    {"percent and fraction both in a mirror",
     RT_HEAD "  rules: [{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: m, "
             "port: 80}, percent: 5, fraction: {numerator: 1}}}]}]\n",
     "only one of percent or fraction", CFG_HTTP_ROUTE},
    {"a CRLF in a redirect path",
     RT_HEAD "  rules: [{filters: [{type: RequestRedirect, requestRedirect: {path: {type: "
             "ReplaceFullPath, replaceFullPath: \"/a\\r\\nSet-Cookie: x\"}}}]}]\n",
     "must be an absolute path", CFG_HTTP_ROUTE},
    {"an invalid route hostname", RT_HEAD "  hostnames: ['foo.*.com']\n", "is not a valid hostname",
     CFG_HTTP_ROUTE},
    {"two parentRefs to one parent without sections",
     "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n"
     "  parentRefs: [{name: g}, {name: g}]\n",
     "must be unique", CFG_HTTP_ROUTE},
    {"a ReferenceGrant without to",
     "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: x}\n"
     "spec: {from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: a}]}\n",
     "spec.to", CFG_REFERENCE_GRANT},
    {"a TCPRoute without rules",
     "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\nmetadata: {name: t}\n"
     "spec: {parentRefs: [{name: g}]}\n",
     "at least one rule", CFG_TCP_ROUTE},
};

static void test_invalid_input_is_refused(void **state)
{
    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
        const struct bad_case *c = &bads[i];
        struct cfg_diags d;
        struct cfg_snapshot *s = gwapi_load(c->yaml, &d);
        if (!gwapi_find_diag(&d, CFG_ERROR, c->says) || cfg_count(s, c->kind) != 0) {
            fprintf(stderr, "%s: want an error \"%s\" and the resource refused\n", c->what,
                    c->says);
            gwapi_dump(&d);
            fail();
        }
        cfg_snapshot_unref(s);
        cfg_diags_fini(&d);
    }
}

/* Many routes and hostnames: bounded, and every one routed. */
static void test_many_routes_stay_bounded(void **state)
{
    size_t cap = 1 << 20, o = 0;
    char *yaml = malloc(cap);
    assert_non_null(yaml);
    o += (size_t)snprintf(yaml + o, cap - o, "%s%s%s", NS_AND_PODS, GATEWAY, BACKENDS);
    for (int i = 0; i < 300; i++)
        o += (size_t)snprintf(yaml + o, cap - o,
                              "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
                              "metadata: {name: r%d, namespace: default}\nspec:\n"
                              "  parentRefs: [{name: gw}]\n  hostnames: [h%d.example.com, "
                              "app.example.com]\n  rules: [{matches: [{path: {value: /r%d}}], "
                              "backendRefs: [{name: v1, port: 8000}]}]\n",
                              i, i, i);
    struct cfg_diags d;
    struct cfg_snapshot *s = gwapi_load(yaml, &d);
    assert_int_equal(d.counts[CFG_ERROR], 0);
    char got[300];
    gwapi_outcome(s, "h299.example.com", "/r299/x", NULL, 0, got, sizeof(got));
    assert_string_equal(got, "dests v1:100");
    gwapi_outcome(s, "app.example.com", "/r150", NULL, 0, got, sizeof(got));
    assert_string_equal(got, "dests v1:100");
    gwapi_outcome(s, "h1.example.com", "/r2", NULL, 0, got, sizeof(got));
    assert_string_equal(got, "404");
    cfg_snapshot_unref(s);
    cfg_diags_fini(&d);

    /* 300 routes of 16 hostnames: past 4096 listener and host pairs the
     * rest is not served, said once; the first ones are. */
    o = (size_t)snprintf(yaml, cap, "%s%s%s", NS_AND_PODS, GATEWAY, BACKENDS);
    for (int i = 0; i < 300; i++) {
        o += (size_t)snprintf(yaml + o, cap - o,
                              "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
                              "metadata: {name: r%03d, namespace: default}\nspec:\n"
                              "  parentRefs: [{name: gw}]\n  hostnames: [",
                              i);
        for (int h = 0; h < 16; h++)
            o += (size_t)snprintf(yaml + o, cap - o, "%sh%d-%d.example.com", h ? ", " : "", i, h);
        o += (size_t)snprintf(yaml + o, cap - o,
                              "]\n  rules: [{backendRefs: [{name: v1, port: 8000}]}]\n");
    }
    s = gwapi_load(yaml, &d);
    assert_int_equal(d.counts[CFG_ERROR], 0);
    assert_non_null(gwapi_find_diag(&d, CFG_WARNING, "more than 4096 listener and host pairs"));
    size_t said = 0;
    for (size_t i = 0; i < d.n; i++)
        said += strstr(d.v[i].message, "listener and host pairs") != NULL;
    assert_int_equal(said, 1);
    gwapi_outcome(s, "h0-0.example.com", "/", NULL, 0, got, sizeof(got));
    assert_string_equal(got, "dests v1:100");
    gwapi_outcome(s, "h299-15.example.com", "/", NULL, 0, got, sizeof(got));
    assert_string_equal(got, "404");
    cfg_snapshot_unref(s);
    cfg_diags_fini(&d);
    free(yaml);
}

/* meshctl analyze on Gateway API input: a missing backend is named on
 * the HTTPRoute and its backendRef (once, however many listeners and hosts
 * serve the rule), not on a generated VirtualService; a refused reference
 * once; a Gateway no pod serves yet is an Info. */
static void test_analyze_names_the_route(void **state)
{
    static const char *yaml = NS_AND_PODS BACKENDS
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: lonely, "
        "namespace: default}\nspec: {gatewayClassName: istio, listeners: [{name: a, port: 80, "
        "protocol: HTTP}, {name: b, port: 81, protocol: HTTP}]}\n---\n"
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, "
        "namespace: default}\nspec:\n  parentRefs: [{name: lonely}]\n  hostnames: [a.example.com, "
        "b.example.com]\n  rules:\n  - backendRefs: [{name: ghost, port: 80}, {name: v1, port: "
        "9}, {name: v2, namespace: shop, port: 8000}]\n";
    struct cfg_diags d;
    struct cfg_snapshot *s = gwapi_load(yaml, &d);
    cfg_analyze(s, &d);
    size_t ghost = 0, refused = 0, generated = 0;
    const struct cfg_diag *first = NULL;
    for (size_t i = 0; i < d.n; i++) {
        if (strstr(d.v[i].message, "ghost.default.svc.cluster.local")) {
            ghost++;
            first = &d.v[i];
        }
        refused += strstr(d.v[i].message, "RefNotPermitted") != NULL;
        generated += d.v[i].name && strstr(d.v[i].name, "istio-autogenerated") != NULL;
    }
    if (ghost != 1 || refused != 1 || generated != 0) {
        gwapi_dump(&d);
        fail();
    }
    assert_string_equal(first->kind, "HTTPRoute");
    assert_string_equal(first->name, "r");
    assert_string_equal(first->code, "IST0101");
    assert_non_null(
        gwapi_find_diag(&d, CFG_ERROR, "host:port not found: \"v1.default.svc.cluster.local:9\""));
    assert_non_null(gwapi_find_diag(&d, CFG_INFO, "nothing serves this Gateway yet"));
    cfg_snapshot_unref(s);
    cfg_diags_fini(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binding_rules),
        cmocka_unit_test(test_refused_references_fail_closed),
        cmocka_unit_test(test_invalid_input_is_refused),
        cmocka_unit_test(test_many_routes_stay_bounded),
        cmocka_unit_test(test_analyze_names_the_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
