/* The ingress gateway's routing (route/gateway_route.c) and SNI selection
 * (gateway/edge_tls.c): Istio's host matching and Gateway host forms,
 * VirtualService binding by `gateways:`, the pod's listening ports from
 * the Service targetPort, the VirtualService and route a request gets,
 * tls[] routes by SNI; and real TLS handshakes in memory where the
 * ClientHello's SNI chooses the certificate, and a Secret's rotation gives
 * new handshakes the new one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config/config.h"
#include "gateway/edge_tls.h"
#include "route/gateway_route.h"

static const struct match_case {
    const char *pattern, *host;
    bool want;
} matches[] = {
    {"app.example.com", "app.example.com", true},
    {"app.example.com", "APP.example.com:8443", true},
    {"app.example.com", "api.example.com", false},
    {"*.example.com", "a.b.example.com", true},
    {"*.example.com", "example.com", false},
    {"*example.com", "myexample.com", true},
    {"*", "anything", true},
    {"app.example.com", "app.example.com.evil", false},
};

static void test_host_matching(void **state)
{
    for (size_t i = 0; i < sizeof(matches) / sizeof(matches[0]); i++)
        if (gw_host_matches(matches[i].pattern, matches[i].host) != matches[i].want) {
            fprintf(stderr, "%s vs %s: want %d\n", matches[i].pattern, matches[i].host,
                    matches[i].want);
            fail();
        }
}

static const struct admit_case {
    const char *gw_host, *vs_host, *vs_ns;
    bool want;
} admits[] = {
    {"app.example.com", "app.example.com", "default", true},
    {"default/app.example.com", "app.example.com", "default", true},
    {"shop/app.example.com", "app.example.com", "default", false},
    {"./app.example.com", "app.example.com", "istio-system", true}, /* the Gateway's namespace */
    {"./app.example.com", "app.example.com", "default", false},
    {"*/app.example.com", "app.example.com", "anywhere", true},
    {"*.example.com", "app.example.com", "default", true},
    {"app.example.com", "*.example.com", "default", true}, /* the hosts intersect */
    {"*.example.com", "*.shop.example.com", "default", true},
    {"*.shop.example.com", "*.example.com", "default", true},
    {"*.example.com", "other.org", "default", false},
};

static void test_gateway_host_forms(void **state)
{
    for (size_t i = 0; i < sizeof(admits) / sizeof(admits[0]); i++)
        if (gw_host_admits(admits[i].gw_host, "istio-system", admits[i].vs_host, admits[i].vs_ns) !=
            admits[i].want) {
            fprintf(stderr, "%s admits %s/%s: want %d\n", admits[i].gw_host, admits[i].vs_ns,
                    admits[i].vs_host, admits[i].want);
            fail();
        }
}

static const struct bind_case {
    const char *ref, *vs_ns;
    bool want;
} binds[] = {
    {"istio-system/my-gateway", "default", true},
    {"my-gateway", "istio-system", true}, /* a name in the VirtualService's namespace */
    {"my-gateway", "default", false},
    {"my-gateway.istio-system.svc.cluster.local", "default", true},
    {"mesh", "istio-system", false},
    {"other/my-gateway", "default", false},
    {"istio-system/my-gateway2", "default", false},
};

static void test_binding(void **state)
{
    struct cfg_gateway gw = {.meta = {.name = "my-gateway", .ns = "istio-system"}};
    for (size_t i = 0; i < sizeof(binds) / sizeof(binds[0]); i++) {
        const char *v[] = {binds[i].ref};
        struct cfg_strs refs = {v, 1};
        if (gw_binds(&refs, binds[i].vs_ns, &gw) != binds[i].want) {
            fprintf(stderr, "%s from %s: want %d\n", binds[i].ref, binds[i].vs_ns, binds[i].want);
            fail();
        }
    }
}

/* The seed's resources, a second VirtualService with a wildcard host and
 * a match-level binding, a PASSTHROUGH server with tls[] routes. */
static const char *seed =
    "apiVersion: v1\nkind: Service\nmetadata: {name: istio-ingressgateway, namespace: "
    "istio-system}\n"
    "spec:\n  selector: {istio: ingressgateway}\n  ports:\n"
    "  - {name: http2, port: 80, targetPort: 8080}\n  - {name: https, port: 443, targetPort: "
    "8443}\n"
    "---\napiVersion: v1\nkind: Pod\nmetadata: {name: gw, namespace: istio-system, labels: {istio: "
    "ingressgateway}}\nspec: {nodeName: n1}\nstatus: {podIP: 10.1.0.9}\n"
    "---\napiVersion: v1\nkind: Pod\nmetadata: {name: gw2, namespace: edge, labels: {istio: "
    "ingressgateway}}\nspec: {nodeName: n1}\nstatus: {podIP: 10.1.0.10}\n"
    "---\napiVersion: v1\nkind: Pod\nmetadata: {name: app, namespace: default, labels: {app: "
    "payments}}\nspec: {nodeName: n1}\nstatus: {podIP: 10.1.0.11}\n"
    "---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: hijack, namespace: "
    "default}\nspec:\n  selector: {app: payments}\n  servers:\n"
    "  - port: {number: 8080, name: http, protocol: HTTP}\n    hosts: ['*']\n"
    "---\napiVersion: networking.istio.io/v1beta1\nkind: Gateway\nmetadata: {name: my-gateway, "
    "namespace: istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n"
    "  - port: {number: 443, name: https, protocol: HTTPS}\n"
    "    tls: {mode: SIMPLE, credentialName: app-tls}\n"
    "    hosts: [app.example.com, '*.shop.example.com']\n"
    "  - port: {number: 9443, name: tls, protocol: TLS}\n    tls: {mode: PASSTHROUGH}\n"
    "    hosts: ['*.pt.example.com']\n"
    "---\napiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata: {name: "
    "my-service, namespace: default}\n"
    "spec:\n  hosts: [app.example.com]\n  gateways: [istio-system/my-gateway]\n"
    "  http:\n  - match: [{uri: {prefix: /}}]\n"
    "    route: [{destination: {host: my-service.default.svc.cluster.local, port: {number: 80}}}]\n"
    "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: shop, "
    "namespace: default}\n"
    "spec:\n  hosts: ['*.shop.example.com']\n  gateways: [mesh, istio-system/my-gateway]\n"
    "  http:\n  - name: mesh-only\n    match: [{gateways: [mesh], uri: {prefix: /}}]\n"
    "    route: [{destination: {host: a}}]\n"
    "  - name: edge\n    match: [{gateways: [istio-system/my-gateway], uri: {prefix: /}}]\n"
    "    route: [{destination: {host: b}}]\n"
    "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: pt, "
    "namespace: default}\n"
    "spec:\n  hosts: ['*.pt.example.com']\n  gateways: [istio-system/my-gateway]\n  tls:\n"
    "  - match: [{sniHosts: [a.pt.example.com]}]\n    route: [{destination: {host: a}}]\n"
    "  - match: [{sniHosts: [b.pt.example.com], port: 9443}]\n"
    "    route: [{destination: {host: b}}]\n";

static struct cfg_snapshot *load(const char *yaml)
{
    struct cfg_diags diags;
    cfg_diags_init(&diags);
    struct cfg_snapshot *s = NULL;
    assert_int_equal(cfg_load_buffer("gw.yaml", yaml, strlen(yaml), NULL, &diags, &s), 0);
    for (size_t i = 0; i < diags.n; i++)
        if (diags.v[i].level == CFG_ERROR)
            fprintf(stderr, "%s\n", diags.v[i].message);
    assert_int_equal(diags.counts[CFG_ERROR], 0);
    cfg_diags_fini(&diags);
    return s;
}

static void test_pod_servers_and_ports(void **state)
{
    struct cfg_snapshot *s = load(seed);
    struct gw_server gs[8];
    const struct cfg_pod *gw = cfg_find(s, CFG_POD, "istio-system", "gw");
    assert_int_equal(gw_pod_servers(s, gw, gs, 8), 2);
    assert_int_equal(gs[0].listen_port, 8443); /* the Service maps 443 -> 8443 */
    assert_int_equal(gs[1].listen_port, 9443); /* no Service port 9443: the port itself */
    assert_string_equal(gs[0].gw->meta.name, "my-gateway");
    /* A pod of another namespace with the labels: selected too (Istio's
     * default scope), and no Service of its namespace maps the port. */
    const struct cfg_pod *gw2 = cfg_find(s, CFG_POD, "edge", "gw2");
    assert_int_equal(gw_pod_servers(s, gw2, gs, 8), 2);
    assert_int_equal(gs[0].listen_port, 443);
    assert_ptr_equal(gw_server_for(gs, 2, 443, "x.shop.example.com"), &gs[0]);
    assert_null(gw_server_for(gs, 2, 443, "other.example.com"));
    assert_null(gw_server_for(gs, 2, 8443, "app.example.com"));
    /* An ordinary workload a Gateway's selector matches is not a gateway:
     * its ports are never taken over. */
    const struct cfg_pod *app = cfg_find(s, CFG_POD, "default", "app");
    assert_false(gw_pod_is_gateway(app));
    assert_int_equal(gw_pod_servers(s, app, gs, 8), 0);
    cfg_snapshot_unref(s);
}

static const struct request_case {
    const char *what, *host;
    const char *vs, *route; /* NULL: none */
} requests[] = {
    {"the seed's host", "app.example.com", "my-service", ""},
    {"a port in Host", "app.example.com:8443", "my-service", ""},
    {"a host no VirtualService binds", "unbound.example.com", NULL, NULL},
    {"match-level gateways: the edge route, not the mesh's", "x.shop.example.com", "shop", "edge"},
};

static void test_request_routing(void **state)
{
    struct cfg_snapshot *s = load(seed);
    struct gw_server gs[8];
    size_t n = gw_pod_servers(s, cfg_find(s, CFG_POD, "istio-system", "gw"), gs, 8);
    struct route_source src = {.ns = "istio-system"};
    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        const struct request_case *c = &requests[i];
        struct http_request_view req = {.method = "GET",
                                        .path = "/any/path",
                                        .query = "",
                                        .authority = c->host,
                                        .scheme = "https"};
        struct gw_http_result r;
        gw_route_http(s, &gs[0], &src, &req, &r);
        const char *vs = r.vs ? r.vs->meta.name : NULL;
        const char *route = r.route ? (r.route->name ? r.route->name : "") : NULL;
        if ((vs == NULL) != (c->vs == NULL) || (vs && strcmp(vs, c->vs)) ||
            (route == NULL) != (c->route == NULL) || (route && strcmp(route, c->route))) {
            fprintf(stderr, "%s: want %s/%s, got %s/%s\n", c->what, c->vs ? c->vs : "-",
                    c->route ? c->route : "-", vs ? vs : "-", route ? route : "-");
            fail();
        }
    }
    /* PASSTHROUGH: SNI chooses the tls[] route; port-limited matches too. */
    const struct cfg_virtual_service *vs;
    assert_string_equal(gw_route_sni(s, &gs[1], "a.pt.example.com", &vs)->dest[0].dest.host, "a");
    assert_string_equal(vs->meta.name, "pt");
    assert_string_equal(gw_route_sni(s, &gs[1], "b.pt.example.com", &vs)->dest[0].dest.host, "b");
    assert_null(gw_route_sni(s, &gs[1], "c.pt.example.com", &vs));
    assert_int_equal(n, 2);
    cfg_snapshot_unref(s);
}

/* --- SNI selection in real handshakes ------------------------------------ */

/* A self-signed P-256 certificate for `cn` with serial `serial`, as PEM
 * texts indented for a YAML block scalar. */
static void make_cert(const char *cn, long serial, char *crt, char *key, size_t len)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_sign(x, k, EVP_sha256());
    char *out[2] = {crt, key};
    for (int i = 0; i < 2; i++) {
        BIO *b = BIO_new(BIO_s_mem());
        if (i == 0)
            PEM_write_bio_X509(b, x);
        else
            PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
        char *p;
        long n = BIO_get_mem_data(b, &p);
        size_t o = 0;
        for (long j = 0; j < n && o + 8 < len; j++) {
            if (j == 0 || p[j - 1] == '\n')
                o += (size_t)snprintf(out[i] + o, len - o, "    ");
            out[i][o++] = p[j];
        }
        out[i][o] = '\0';
        BIO_free(b);
    }
    X509_free(x);
    EVP_PKEY_free(k);
}

static char *tls_config(long app_serial)
{
    static char crt[2][4096], key[2][4096];
    make_cert("app.example.com", app_serial, crt[0], key[0], sizeof(crt[0]));
    make_cert("shop", 77, crt[1], key[1], sizeof(crt[1]));
    size_t len = strlen(seed) + 20000;
    char *y = malloc(len);
    int n = snprintf(y, len, "%s", seed);
    /* app.example.com has its own Secret; *.shop.example.com another
     * server (port 443 too) with its own. */
    n += snprintf(y + n, len - n,
                  "---\napiVersion: v1\nkind: Secret\nmetadata: {name: app-tls, namespace: "
                  "istio-system}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n%s"
                  "  tls.key: |\n%s",
                  crt[0], key[0]);
    n += snprintf(
        y + n, len - n,
        "---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: shop, "
        "namespace: istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n"
        "  - port: {number: 443, name: https-shop, protocol: HTTPS}\n"
        "    tls: {mode: SIMPLE, credentialName: shop-tls}\n    hosts: [shop.example.org]\n"
        "---\napiVersion: v1\nkind: Secret\nmetadata: {name: shop-tls, namespace: "
        "istio-system}\nstringData:\n  tls.crt: |\n%s  tls.key: |\n%s",
        crt[1], key[1]);
    return y;
}

/* A handshake in memory with SNI `sni`: the serial the client saw, or -1
 * when it failed. */
static long handshake(struct edge_tls *set, const char *sni)
{
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *c = SSL_new(cctx), *s = SSL_new(edge_tls_first_ctx(set, 8443));
    assert_int_equal(edge_tls_attach(set, s, 8443), 0);
    BIO *cb, *sb;
    BIO_new_bio_pair(&cb, 0, &sb, 0);
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    if (sni)
        SSL_set_tlsext_host_name(c, sni);
    int rc = 0, sc = 0;
    for (int i = 0; i < 20 && (rc != 1 || sc != 1); i++) {
        if (rc != 1)
            rc = SSL_do_handshake(c);
        if (sc != 1)
            sc = SSL_do_handshake(s);
        if ((rc <= 0 && SSL_get_error(c, rc) == SSL_ERROR_SSL) ||
            (sc <= 0 && SSL_get_error(s, sc) == SSL_ERROR_SSL))
            break;
    }
    long serial = -1;
    X509 *peer = rc == 1 ? SSL_get1_peer_certificate(c) : NULL;
    if (peer)
        serial = ASN1_INTEGER_get(X509_get_serialNumber(peer));
    X509_free(peer);
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    return serial;
}

static void test_sni_selects_the_certificate(void **state)
{
    char *y = tls_config(4097);
    struct cfg_snapshot *s = load(y);
    struct gw_server gs[8];
    size_t n = gw_pod_servers(s, cfg_find(s, CFG_POD, "istio-system", "gw"), gs, 8);
    struct edge_tls *set;
    assert_int_equal(edge_tls_build(s, "istio-system", gs, n, &set), 0);
    assert_int_equal(edge_tls_count(set), 2); /* the PASSTHROUGH server terminates nothing */
    assert_string_equal(edge_tls_select(set, 8443, "x.shop.example.com")->name,
                        "istio-system/my-gateway:https");
    assert_string_equal(edge_tls_select(set, 8443, "shop.example.org")->name,
                        "istio-system/shop:https-shop");
    assert_null(edge_tls_select(set, 8443, NULL)); /* no SNI and no "*" host */
    assert_int_equal(handshake(set, "app.example.com"), 4097);
    assert_int_equal(handshake(set, "shop.example.org"), 77);
    assert_int_equal(handshake(set, "unknown.example.com"), -1);
    assert_int_equal(handshake(set, NULL), -1);
    /* A new Secret: a new set for new handshakes; the old one still works
     * for whoever holds it. */
    struct edge_tls *old = set;
    char *y2 = tls_config(8194);
    struct cfg_snapshot *s2 = load(y2);
    n = gw_pod_servers(s2, cfg_find(s2, CFG_POD, "istio-system", "gw"), gs, 8);
    assert_int_equal(edge_tls_build(s2, "istio-system", gs, n, &set), 0);
    assert_int_equal(handshake(set, "app.example.com"), 8194);
    assert_int_equal(handshake(old, "app.example.com"), 4097);
    edge_tls_unref(old);
    edge_tls_unref(set);
    cfg_snapshot_unref(s);
    cfg_snapshot_unref(s2);
    free(y);
    free(y2);
}

static void test_missing_secret_leaves_the_server_out(void **state)
{
    struct cfg_snapshot *s = load(seed); /* app-tls is not there */
    struct gw_server gs[8];
    size_t n = gw_pod_servers(s, cfg_find(s, CFG_POD, "istio-system", "gw"), gs, 8);
    struct edge_tls *set;
    assert_int_equal(edge_tls_build(s, "istio-system", gs, n, &set), 0);
    assert_int_equal(edge_tls_count(set), 0);
    assert_null(edge_tls_first_ctx(set, 8443)); /* the port fails closed */
    edge_tls_unref(set);
    cfg_snapshot_unref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_matching),
        cmocka_unit_test(test_gateway_host_forms),
        cmocka_unit_test(test_binding),
        cmocka_unit_test(test_pod_servers_and_ports),
        cmocka_unit_test(test_request_routing),
        cmocka_unit_test(test_sni_selects_the_certificate),
        cmocka_unit_test(test_missing_secret_leaves_the_server_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
