/* The ingress gateway's configuration (config/decode_gateway.c): the
 * seed's Gateway decoded field by field, Istio's Gateway validation one
 * row per rule (errors reject, warnings keep the Gateway), Secrets' PEM
 * texts from data (base64) and stringData, tls[] routes, and the
 * analyzers' messages for a missing credentialName and an unknown gateway. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "config/gateway.h"
#include "support/config_fixture.h"

#define GW_HEAD                                                                                    \
    "apiVersion: networking.istio.io/v1beta1\nkind: Gateway\n"                                     \
    "metadata: {name: my-gateway, namespace: istio-system}\nspec:\n"                               \
    "  selector: {istio: ingressgateway}\n  servers:\n"

static void test_seed_gateway_decodes(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f, GW_HEAD "  - port: {number: 443, name: https, protocol: HTTPS}\n"
                                 "    tls:\n      mode: SIMPLE\n      credentialName: app-tls\n"
                                 "      minProtocolVersion: TLSV1_2\n"
                                 "      maxProtocolVersion: TLSV1_3\n"
                                 "      cipherSuites: [ECDHE-RSA-AES128-GCM-SHA256]\n"
                                 "      subjectAltNames: [client.example.com]\n"
                                 "    hosts: [app.example.com, 'default/*.shop.example.com']\n"
                                 "  - port: {number: 80, name: http, protocol: HTTP}\n"
                                 "    tls: {httpsRedirect: true}\n    hosts: ['*']\n");
    assert_int_equal(f.diags.n, 0);
    const struct cfg_gateway *g = cfg_find(f.snap, CFG_GATEWAY, "istio-system", "my-gateway");
    assert_non_null(g);
    assert_int_equal(g->nservers, 2);
    const struct cfg_gateway_server *s = &g->servers[0];
    assert_int_equal(s->port, 443);
    assert_string_equal(s->port_name, "https");
    assert_string_equal(s->protocol, "HTTPS");
    assert_true(s->has_tls);
    assert_string_equal(s->tls_mode, "SIMPLE");
    assert_string_equal(s->credential_name, "app-tls");
    assert_string_equal(s->min_protocol, "TLSV1_2");
    assert_string_equal(s->max_protocol, "TLSV1_3");
    assert_int_equal(s->cipher_suites.n, 1);
    assert_string_equal(s->subject_alt_names.v[0], "client.example.com");
    assert_string_equal(s->hosts.v[1], "default/*.shop.example.com");
    assert_true(g->servers[1].https_redirect);
    assert_string_equal(g->servers[1].tls_mode, "PASSTHROUGH"); /* the zero mode */
    assert_false(g->servers[0].https_redirect);
    cfg_fixture_free(&f);
}

/* Istio's ValidateGateway, one row per rule: an error rejects it. */
static const struct gw_rule {
    const char *rule, *servers, *says;
} rules[] = {
    {"port name must be set", "  - port: {number: 80, protocol: HTTP}\n    hosts: ['*']\n",
     "port name must be set"},
    {"invalid protocol", "  - port: {number: 80, name: h, protocol: HTTPX}\n    hosts: ['*']\n",
     "invalid protocol \"HTTPX\""},
    {"server config must contain at least one host",
     "  - port: {number: 80, name: h, protocol: HTTP}\n", "must contain at least one host"},
    {"wildcard only in the first label",
     "  - port: {number: 80, name: h, protocol: HTTP}\n    hosts: ['foo.*.com']\n",
     "is not a valid (wildcard) domain name"},
    {"namespace part must be a DNS label",
     "  - port: {number: 80, name: h, protocol: HTTP}\n    hosts: ['Bad_NS/foo.com']\n",
     "namespace must be"},
    {"HTTPS requires TLS settings",
     "  - port: {number: 443, name: s, protocol: HTTPS}\n"
     "    hosts: ['*']\n",
     "server must have TLS settings for HTTPS/TLS protocols"},
    {"HTTP cannot terminate TLS",
     "  - port: {number: 80, name: h, protocol: HTTP}\n    hosts: ['*']\n"
     "    tls: {mode: SIMPLE, credentialName: x}\n",
     "server cannot have TLS settings for plain text HTTP ports"},
    {"TCP cannot have TLS",
     "  - port: {number: 90, name: t, protocol: TCP}\n    hosts: ['*']\n    tls: {mode: SIMPLE, "
     "credentialName: x}\n",
     "server cannot have TLS settings for non HTTPS/TLS ports"},
    {"SIMPLE without credentialName needs a certificate",
     "  - port: {number: 443, name: s, protocol: HTTPS}\n    hosts: ['*']\n    tls: {mode: "
     "SIMPLE}\n",
     "SIMPLE TLS requires a server certificate"},
    {"MUTUAL files need a client CA bundle",
     "  - port: {number: 443, name: s, protocol: HTTPS}\n    hosts: ['*']\n"
     "    tls: {mode: MUTUAL, serverCertificate: /c, privateKey: /k}\n",
     "MUTUAL TLS requires a client CA bundle"},
    {"ISTIO_MUTUAL cannot have a credentialName",
     "  - port: {number: 443, name: s, protocol: HTTPS}\n    hosts: ['*']\n"
     "    tls: {mode: ISTIO_MUTUAL, credentialName: x}\n",
     "ISTIO_MUTUAL TLS cannot have"},
    {"one certificate source only",
     "  - port: {number: 443, name: s, protocol: HTTPS}\n    hosts: ['*']\n"
     "    tls: {mode: SIMPLE, credentialName: x, serverCertificate: /c, privateKey: /k}\n",
     "only one of credential_name"},
    {"mode is an enum",
     "  - port: {number: 443, name: s, protocol: HTTPS}\n    hosts: ['*']\n    tls: {mode: "
     "SIMPEL}\n",
     "expected one of PASSTHROUGH|SIMPLE|MUTUAL"},
    {"minProtocolVersion is an enum",
     "  - port: {number: 443, name: s, protocol: HTTPS}\n    hosts: ['*']\n"
     "    tls: {mode: SIMPLE, credentialName: x, minProtocolVersion: TLS1_2}\n",
     "expected one of TLS_AUTO|TLSV1_0"},
};

static void test_istio_gateway_rules(void **state)
{
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        char yaml[2048];
        snprintf(yaml, sizeof(yaml), "%s%s", GW_HEAD, rules[i].servers);
        struct cfg_fixture f;
        cfg_fixture_load(&f, yaml);
        bool found = false;
        for (size_t d = 0; d < f.diags.n; d++)
            found |= f.diags.v[d].level == CFG_ERROR && strcmp(f.diags.v[d].code, "IST0106") == 0 &&
                     strstr(f.diags.v[d].message, rules[i].says) != NULL;
        if (!found || cfg_count(f.snap, CFG_GATEWAY) != 0) {
            fprintf(stderr, "rule \"%s\": want IST0106 \"%s\", Gateway rejected; got:\n",
                    rules[i].rule, rules[i].says);
            cfg_fixture_dump(&f);
            fail();
        }
        cfg_fixture_free(&f);
    }
}

/* Istio's warnings: the Gateway still applies. */
static const struct gw_rule warnings[] = {
    {"targetPort has no impact",
     "  - port: {number: 80, name: h, protocol: HTTP, targetPort: 8080}\n    hosts: ['*']\n",
     "targetPort has no impact on Gateways"},
    {"httpsRedirect only on HTTP servers",
     "  - port: {number: 443, name: s, protocol: HTTPS}\n    hosts: ['*']\n"
     "    tls: {mode: SIMPLE, credentialName: x, httpsRedirect: true}\n",
     "tls.httpsRedirect should only be used with http servers"},
    {"PASSTHROUGH ignores certificates",
     "  - port: {number: 443, name: s, protocol: TLS}\n    hosts: ['*']\n"
     "    tls: {mode: PASSTHROUGH, credentialName: x}\n",
     "PASSTHROUGH mode does not use certificates"},
    {"invalid cipher suites are ignored",
     "  - port: {number: 443, name: s, protocol: HTTPS}\n    hosts: ['*']\n"
     "    tls: {mode: SIMPLE, credentialName: x, cipherSuites: [NOT-A-CIPHER]}\n",
     "ignoring invalid cipher suites: [NOT-A-CIPHER]"},
    {"TLS 1.0 needs ciphers",
     "  - port: {number: 443, name: s, protocol: HTTPS}\n    hosts: ['*']\n"
     "    tls: {mode: SIMPLE, credentialName: x, minProtocolVersion: TLSV1_0}\n",
     "TLS version below TLSV1_2 require setting compatible ciphers"},
    {"port names in servers must be unique",
     "  - port: {number: 80, name: h, protocol: HTTP}\n    hosts: ['*']\n"
     "  - port: {number: 81, name: h, protocol: HTTP}\n    hosts: ['*']\n",
     "port names in servers must be unique: duplicate name h"},
};

static void test_istio_gateway_warnings(void **state)
{
    for (size_t i = 0; i < sizeof(warnings) / sizeof(warnings[0]); i++) {
        char yaml[2048];
        snprintf(yaml, sizeof(yaml), "%s%s", GW_HEAD, warnings[i].servers);
        struct cfg_fixture f;
        cfg_fixture_load(&f, yaml);
        bool found = false;
        for (size_t d = 0; d < f.diags.n; d++)
            found |= f.diags.v[d].level == CFG_WARNING &&
                     strstr(f.diags.v[d].message, warnings[i].says) != NULL;
        if (!found || cfg_count(f.snap, CFG_GATEWAY) != 1) {
            fprintf(stderr, "warning \"%s\": want \"%s\", Gateway kept; got:\n", warnings[i].rule,
                    warnings[i].says);
            cfg_fixture_dump(&f);
            fail();
        }
        cfg_fixture_free(&f);
    }
}

static const struct host_case {
    const char *host;
    bool valid;
} hosts[] = {
    {"app.example.com", true},  {"*.example.com", true}, {"*", true},
    {"*foo.example.com", true}, {"foo.*.com", false},    {"foo..com", false},
    {"foo.com.", false},        {"-a.com", false},       {"", false},
};

static void test_wildcard_hosts(void **state)
{
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
        if (cfg_valid_wildcard_host(hosts[i].host) != hosts[i].valid) {
            fprintf(stderr, "host \"%s\": want %s\n", hosts[i].host,
                    hosts[i].valid ? "valid" : "invalid");
            fail();
        }
}

/* "-----BEGIN X-----\n" base64-encoded. */
#define PEM_B64 "LS0tLS1CRUdJTiBYLS0tLS0K"

static const struct secret_case {
    const char *what, *body;
    const char *crt, *key, *ca; /* NULL: absent */
    bool rejected;
} secrets[] = {
    {"kubernetes.io/tls from data (base64)",
     "type: kubernetes.io/tls\ndata: {tls.crt: " PEM_B64 ", tls.key: " PEM_B64 "}\n",
     "-----BEGIN X-----\n", "-----BEGIN X-----\n", NULL, false},
    {"generic with ca.crt from stringData",
     "type: Opaque\nstringData: {tls.crt: c, tls.key: k, ca.crt: a}\n", "c", "k", "a", false},
    {"the cacert variant's key", "stringData: {cacert: a}\n", NULL, NULL, "a", false},
    {"cert/key names", "stringData: {cert: c, key: k}\n", "c", "k", NULL, false},
    {"data that is not base64", "data: {tls.crt: '!!!'}\n", NULL, NULL, NULL, true},
};

static void test_secret_pem(void **state)
{
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        const struct secret_case *c = &secrets[i];
        char yaml[1024];
        snprintf(yaml, sizeof(yaml),
                 "apiVersion: v1\nkind: Secret\nmetadata: {name: app-tls, namespace: "
                 "istio-system}\n%s",
                 c->body);
        struct cfg_fixture f;
        cfg_fixture_load(&f, yaml);
        const struct cfg_secret *s = cfg_find(f.snap, CFG_SECRET, "istio-system", "app-tls");
        if (c->rejected) {
            assert_null(s);
            assert_non_null(cfg_fixture_diag(&f, "IST0106"));
            cfg_fixture_free(&f);
            continue;
        }
        assert_non_null(s);
        const char *want[3] = {c->crt, c->key, c->ca},
                   *got[3] = {s->tls_crt, s->tls_key, s->ca_crt};
        for (int k = 0; k < 3; k++) {
            if (!want[k])
                assert_null(got[k]);
            else
                assert_string_equal(got[k], want[k]);
        }
        cfg_fixture_free(&f);
    }
}

static void test_tls_routes_decode(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f, "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                         "metadata: {name: sni}\nspec:\n  hosts: [a.example.com, b.example.com]\n"
                         "  gateways: [istio-system/pt]\n  tls:\n"
                         "  - match: [{port: 443, sniHosts: [a.example.com]}]\n"
                         "    route: [{destination: {host: a, port: {number: 443}}}]\n"
                         "  - match: [{sniHosts: [b.example.com]}]\n"
                         "    route: [{destination: {host: b}}]\n");
    assert_int_equal(f.diags.n, 0);
    const struct cfg_virtual_service *vs = cfg_find(f.snap, CFG_VIRTUAL_SERVICE, "default", "sni");
    assert_non_null(vs);
    assert_int_equal(vs->ntls, 2);
    assert_int_equal(vs->tls_routes[0].match[0].port, 443);
    assert_string_equal(vs->tls_routes[0].match[0].sni_hosts.v[0], "a.example.com");
    assert_string_equal(vs->tls_routes[1].dest[0].dest.host, "b");
    cfg_fixture_free(&f);
    cfg_fixture_load(&f, "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                         "metadata: {name: sni}\nspec:\n  hosts: [a.example.com]\n  tls:\n"
                         "  - match: [{port: 443}]\n    route: [{destination: {host: a}}]\n");
    assert_non_null(cfg_fixture_diag(&f, "IST0106"));
    assert_null(cfg_find(f.snap, CFG_VIRTUAL_SERVICE, "default", "sni"));
    cfg_fixture_free(&f);
}

/* istioctl analyze's messages: a credentialName with no Secret in the
 * gateway pod's namespace; a VirtualService bound to no Gateway. */
static void test_analyze_messages(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_analyze(&f, GW_HEAD "  - port: {number: 443, name: https, protocol: HTTPS}\n"
                                    "    tls: {mode: SIMPLE, credentialName: app-tls}\n"
                                    "    hosts: [app.example.com]\n---\n"
                                    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: gw\n"
                                    "  namespace: istio-system\n  labels: {istio: ingressgateway}\n"
                                    "spec: {nodeName: n1}\nstatus: {podIP: 10.1.0.9}\n---\n"
                                    "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                                    "metadata: {name: v}\nspec:\n  hosts: [app.example.com]\n"
                                    "  gateways: [istio-system/other]\n"
                                    "  http: [{route: [{destination: {host: x}}]}]\n");
    bool cred = false, gw = false;
    for (size_t d = 0; d < f.diags.n; d++) {
        cred |= strstr(f.diags.v[d].message, "Referenced credentialName not found: \"app-tls\"") !=
                NULL;
        gw |= strstr(f.diags.v[d].message,
                     "Referenced gateway not found: \"istio-system/other\"") != NULL;
    }
    if (!cred || !gw) {
        cfg_fixture_dump(&f);
        fail();
    }
    cfg_fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_gateway_decodes),
        cmocka_unit_test(test_istio_gateway_rules),
        cmocka_unit_test(test_istio_gateway_warnings),
        cmocka_unit_test(test_wildcard_hosts),
        cmocka_unit_test(test_secret_pem),
        cmocka_unit_test(test_tls_routes_decode),
        cmocka_unit_test(test_analyze_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
