/* Host resolution as Istio does it (pilot's ResolveShortnameToFQDN and
 * istioctl's GetDestinationHost): a name without a dot is short and
 * completes in the naming resource's namespace; anything else is taken as
 * written, so "github.com" is github.com (not github.com.svc.cluster.local)
 * and "httpbin.foo" is not Service httpbin in namespace foo. Then the same
 * rules end to end: a two-label external host routed through its
 * ServiceEntry and VirtualService by route/resolve, shown by
 * route_describe, and no false IST0101 from the analyzer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config/analyze.h"
#include "core/addr.h"
#include "route/resolve.h"
#include "support/config_fixture.h"

static const char *mesh_yaml =
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: foo, labels: {istio.io/dataplane-mode: "
    "ambient}}\n---\n"
    "apiVersion: v1\nkind: Service\nmetadata: {name: httpbin, namespace: foo}\n"
    "spec: {clusterIP: 10.96.1.1, selector: {app: httpbin}, ports: [{port: 8000, targetPort: "
    "80}]}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: httpbin-1, namespace: foo, labels: {app: "
    "httpbin}}\nstatus: {podIP: 10.1.1.1}\n---\n"
    "apiVersion: v1\nkind: Service\nmetadata: {name: egressgateway, namespace: istio-system}\n"
    "spec: {clusterIP: 10.96.9.9, selector: {istio: egressgateway}, ports: [{port: 443}]}\n---\n"
    "apiVersion: v1\nkind: Pod\nmetadata: {name: egress-1, namespace: istio-system, labels: "
    "{istio: egressgateway}}\nstatus: {podIP: 10.1.9.9}\n---\n"
    /* Two-label external hosts, as in Istio's samples/external. */
    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: github}\n"
    "spec:\n  hosts: [github.com]\n  addresses: [192.0.2.10]\n"
    "  ports: [{number: 443, name: tls, protocol: TLS}]\n  resolution: NONE\n---\n"
    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: pypi}\n"
    "spec:\n  hosts: [pypi.org]\n  addresses: [192.0.2.20]\n"
    "  ports: [{number: 443, name: tls, protocol: TLS}]\n  resolution: STATIC\n"
    "  endpoints:\n  - {address: 198.51.100.1, labels: {pool: a}}\n"
    "  - {address: 198.51.100.2, labels: {pool: b}}\n---\n"
    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: wild}\n"
    "spec:\n  hosts: ['*.example.com']\n  ports: [{number: 443, name: tls, protocol: TLS}]\n"
    "  resolution: NONE\n---\n"
    /* github.com leaves through the egress gateway (Istio's egress task). */
    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: github}\n"
    "spec:\n  hosts: [github.com]\n  tcp:\n  - route:\n"
    "    - destination: {host: egressgateway.istio-system.svc.cluster.local, port: {number: "
    "443}}\n---\n"
    "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: pypi}\n"
    "spec:\n  host: pypi.org\n  subsets: [{name: b, labels: {pool: b}}]\n---\n"
    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: pypi}\n"
    "spec:\n  hosts: [pypi.org]\n  tcp: [{route: [{destination: {host: pypi.org, subset: b}}]}]\n"
    "---\n"
    /* "httpbin.foo" is a host of its own, not foo's httpbin. */
    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: dotted, "
    "namespace: foo}\n"
    "spec:\n  hosts: [httpbin.foo]\n  tcp: [{route: [{destination: {host: egressgateway."
    "istio-system.svc.cluster.local}}]}]\n";

static const struct fqdn_case {
    const char *host, *ns, *want;
} fqdn_cases[] = {
    {"reviews", "shop", "reviews.shop.svc.cluster.local"}, /* short: the resource's namespace */
    {"reviews", NULL, "reviews.default.svc.cluster.local"},
    {"reviews.shop", "other", "reviews.shop"}, /* a dot: as written */
    {"reviews.shop.svc", "other", "reviews.shop.svc"},
    {"reviews.shop.svc.cluster.local", "other", "reviews.shop.svc.cluster.local"},
    {"github.com", "shop", "github.com"}, /* two labels: an external host */
    {"pypi.org", NULL, "pypi.org"},
    {"api.github.com", "shop", "api.github.com"},
    {"*.example.com", "shop", "*.example.com"},
    {"*", "shop", "*"},
    {"10.0.0.1", "shop", "10.0.0.1"},
    {"fd00::1", "shop", "fd00::1"}, /* an IP literal, though it has no dot */
};

static void test_fqdn_follows_istio(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f, "");
    for (size_t i = 0; i < sizeof(fqdn_cases) / sizeof(fqdn_cases[0]); i++) {
        const struct fqdn_case *c = &fqdn_cases[i];
        char buf[256];
        const char *got = cfg_fqdn(f.snap, c->host, c->ns, buf, sizeof(buf));
        if (!got || strcmp(got, c->want) != 0) {
            fprintf(stderr, "host %s in %s: want %s, got %s\n", c->host, c->ns ? c->ns : "-",
                    c->want, got ? got : "NULL");
            fail();
        }
    }
    cfg_fixture_free(&f);
}

static const struct lookup_case {
    const char *host, *ns;
    const char *want; /* the cfg_svc's fqdn, or NULL: no service */
} lookup_cases[] = {
    {"httpbin", "foo", "httpbin.foo.svc.cluster.local"},
    {"httpbin", "bar", NULL}, /* short names never cross namespaces */
    {"httpbin.foo", "bar", NULL},
    {"httpbin.foo", "foo", NULL}, /* not even from foo: Istio takes it literally */
    {"httpbin.foo.svc", "foo", NULL},
    {"httpbin.foo.svc.cluster.local", "bar", "httpbin.foo.svc.cluster.local"},
    {"github.com", "foo", "github.com"}, /* a ServiceEntry host, from any namespace */
    {"github.com", NULL, "github.com"},
    {"pypi.org", "istio-system", "pypi.org"},
    {"github", "default", NULL},
    {"github.com.default.svc.cluster.local", "default", NULL},
    {"api.example.com", "default", NULL}, /* wildcards are not services to route to */
};

static void test_service_lookup_table(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f, mesh_yaml);
    cfg_fixture_dump(&f);
    assert_int_equal(f.diags.counts[CFG_ERROR], 0);
    for (size_t i = 0; i < sizeof(lookup_cases) / sizeof(lookup_cases[0]); i++) {
        const struct lookup_case *c = &lookup_cases[i];
        const struct cfg_svc *v = cfg_svc_by_host(f.snap, c->host, c->ns);
        if ((v == NULL) != (c->want == NULL) || (v && strcmp(v->fqdn, c->want) != 0)) {
            fprintf(stderr, "host %s from %s: want %s, got %s\n", c->host, c->ns ? c->ns : "-",
                    c->want ? c->want : "none", v ? v->fqdn : "none");
            fail();
        }
    }
    assert_non_null(cfg_svc_by_fqdn(f.snap, "github.com"));
    assert_null(cfg_svc_by_fqdn(f.snap, "httpbin"));
    cfg_fixture_free(&f);
}

static void resolve(struct cfg_fixture *f, const char *ns, const char *dst, struct route_cluster *c,
                    struct route_result *r)
{
    static struct lb_state rng;
    if (!rng.rng)
        lb_state_init(&rng, 7);
    struct meshd_addr d;
    assert_int_equal(addr_parse(dst, &d), 0);
    struct route_source src = {.ns = ns};
    route_resolve(f->snap, &src, &d, &rng, c, r);
}

/* A connection to github.com's address takes its VirtualService (to the
 * egress gateway); pypi.org's goes to the subset its route names. */
static void test_two_label_hosts_route_through_their_service_entry(void **state)
{
    static struct route_cluster c;
    struct route_result r;
    struct cfg_fixture f;
    cfg_fixture_load(&f, mesh_yaml);
    resolve(&f, "foo", "192.0.2.10:443", &c, &r);
    assert_int_equal(r.kind, ROUTE_SERVICE);
    assert_non_null(c.vs);
    assert_string_equal(c.vs->meta.name, "github");
    assert_string_equal(c.svc->fqdn, "egressgateway.istio-system.svc.cluster.local");
    assert_int_equal(c.nendpoints, 1);
    assert_string_equal(c.endpoints[0]->name, "egress-1");

    for (int i = 0; i < 20; i++) {
        resolve(&f, "foo", "192.0.2.20:443", &c, &r);
        assert_int_equal(r.kind, ROUTE_SERVICE);
        assert_string_equal(c.vs->meta.name, "pypi");
        assert_string_equal(c.svc->fqdn, "pypi.org");
        assert_string_equal(c.subset, "b");
        assert_non_null(c.dr);
        assert_int_equal(c.nendpoints, 1);
        char ip[64];
        addr_format(&c.endpoints[0]->ips.v[0], ip, sizeof(ip));
        assert_non_null(strstr(ip, "198.51.100.2"));
    }

    /* What `proxy-config routes` shows for the ServiceEntry host. */
    struct route_view v;
    struct route_source src = {.ns = "foo"};
    route_describe(f.snap, &src, cfg_svc_by_fqdn(f.snap, "github.com"), 443, &c, &v);
    assert_non_null(v.vs);
    assert_int_equal(v.ndest, 1);
    assert_string_equal(v.dest[0].svc->fqdn, "egressgateway.istio-system.svc.cluster.local");
    assert_null(v.dest[0].why);
    cfg_fixture_free(&f);
}

/* The VirtualService for "httpbin.foo" does not capture foo's httpbin. */
static void test_dotted_host_is_not_name_dot_namespace(void **state)
{
    static struct route_cluster c;
    struct route_result r;
    struct cfg_fixture f;
    cfg_fixture_load(&f, mesh_yaml);
    resolve(&f, "foo", "10.96.1.1:8000", &c, &r);
    assert_int_equal(r.kind, ROUTE_SERVICE);
    assert_null(c.vs);
    assert_string_equal(c.svc->fqdn, "httpbin.foo.svc.cluster.local");
    struct cfg_iter it = {0};
    assert_non_null(cfg_next_vs_for_host(f.snap, "httpbin.foo", &it));
    it = (struct cfg_iter){0};
    assert_null(cfg_next_vs_for_host(f.snap, "httpbin.foo.svc.cluster.local", &it));
    cfg_fixture_free(&f);
}

/* istioctl's IST0101 on destinations: ServiceEntry hosts and wildcard
 * ServiceEntries are found; a dotted short form is not. */
static const struct ref_case {
    const char *dest;
    bool reported;
} ref_cases[] = {
    {"github.com", false},      {"pypi.org", false},
    {"api.example.com", false},                        /* under the *.example.com entry */
    {"*.example.com", false},   {"example.com", true}, /* "*.example.com" does not cover the apex */
    {"httpbin", false}, /* short, in the VirtualService's namespace foo */
    {"httpbin.foo", true},      {"httpbin.foo.svc.cluster.local", false},
    {"gitlab.com", true},
};

static void test_destination_hosts_as_istioctl(void **state)
{
    for (size_t i = 0; i < sizeof(ref_cases) / sizeof(ref_cases[0]); i++) {
        char yaml[4096];
        snprintf(yaml, sizeof(yaml),
                 "%s---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                 "metadata: {name: probe, namespace: foo}\nspec:\n  hosts: [probe.test]\n"
                 "  tcp: [{route: [{destination: {host: '%s'}}]}]\n",
                 mesh_yaml, ref_cases[i].dest);
        struct cfg_fixture f;
        cfg_fixture_analyze(&f, yaml);
        bool got = false;
        for (size_t d = 0; d < f.diags.n; d++)
            got |= strcmp(f.diags.v[d].code, "IST0101") == 0 &&
                   strcmp(f.diags.v[d].name, "probe") == 0;
        if (got != ref_cases[i].reported) {
            fprintf(stderr, "destination %s: IST0101 %s\n", ref_cases[i].dest,
                    got ? "reported, should not be" : "missing");
            cfg_fixture_dump(&f);
            fail();
        }
        cfg_fixture_free(&f);
    }
}

/* istio.io's egress task as a user applies it (tests/config/corpus):
 * httpbin.org's ServiceEntry and the VirtualService with its timeout load,
 * and the VirtualService finds its host. */
static void test_istio_io_egress_task_finds_its_hosts(void **state)
{
    static const char *const paths[] = {
        "tests/config/corpus/istio.io/content/en/docs/tasks/traffic-management/egress/"
        "egress-control/snip_access_an_external_http_service_1.yaml",
        "tests/config/corpus/istio.io/content/en/docs/tasks/traffic-management/egress/"
        "egress-control/snip_manage_traffic_to_external_services_2.yaml",
    };
    struct cfg_diags d;
    cfg_diags_init(&d);
    struct cfg_snapshot *s = NULL;
    assert_int_equal(cfg_load(paths, 2, NULL, &d, &s), 0);
    cfg_analyze(s, &d);
    for (size_t i = 0; i < d.n; i++)
        assert_string_not_equal(d.v[i].code, "IST0101");
    struct cfg_iter it = {0};
    const struct cfg_virtual_service *vs = cfg_next_vs_for_host(s, "httpbin.org", &it);
    assert_non_null(vs);
    assert_string_equal(vs->meta.name, "httpbin-ext");
    assert_non_null(cfg_svc_by_fqdn(s, "httpbin.org"));
    cfg_snapshot_unref(s);
    cfg_diags_fini(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fqdn_follows_istio),
        cmocka_unit_test(test_service_lookup_table),
        cmocka_unit_test(test_two_label_hosts_route_through_their_service_entry),
        cmocka_unit_test(test_dotted_host_is_not_name_dot_namespace),
        cmocka_unit_test(test_destination_hosts_as_istioctl),
        cmocka_unit_test(test_istio_io_egress_task_finds_its_hosts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
