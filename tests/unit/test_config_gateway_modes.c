/* The gateway's mesh modes in the configuration: ISTIO_MUTUAL and
 * AUTO_PASSTHROUGH servers as Istio validates them (one row per rule:
 * errors reject the Gateway with Istio's message, warnings keep it), the
 * east-west sample (istio/istio samples/multicluster/expose-services.yaml)
 * as written, and the analyzers' messages for their misuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "support/config_fixture.h"

#define GW_HEAD                                                                                    \
    "apiVersion: networking.istio.io/v1\nkind: Gateway\n"                                          \
    "metadata: {name: gw, namespace: istio-system}\nspec:\n"                                       \
    "  selector: {istio: eastwestgateway}\n  servers:\n"
#define SERVER(mode_and_more)                                                                      \
    "  - port: {number: 15443, name: tls, protocol: TLS}\n    hosts: ['*.local']\n"                \
    "    tls: {mode: " mode_and_more "}\n"

/* istio/istio samples/multicluster/expose-services.yaml, as written. */
static const char sample[] = "apiVersion: networking.istio.io/v1\n"
                             "kind: Gateway\n"
                             "metadata:\n"
                             "  name: cross-network-gateway\n"
                             "spec:\n"
                             "  selector:\n"
                             "    istio: eastwestgateway\n"
                             "  servers:\n"
                             "    - port:\n"
                             "        number: 15443\n"
                             "        name: tls\n"
                             "        protocol: TLS\n"
                             "      tls:\n"
                             "        mode: AUTO_PASSTHROUGH\n"
                             "      hosts:\n"
                             "        - \"*.local\"\n";

static void test_the_east_west_sample_decodes_as_written(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f, sample);
    assert_int_equal(f.diags.n, 0);
    const struct cfg_gateway *g = cfg_find(f.snap, CFG_GATEWAY, "default", "cross-network-gateway");
    assert_non_null(g);
    assert_int_equal(g->nservers, 1);
    assert_int_equal(g->servers[0].port, 15443);
    assert_string_equal(g->servers[0].protocol, "TLS");
    assert_string_equal(g->servers[0].tls_mode, "AUTO_PASSTHROUGH");
    assert_string_equal(g->servers[0].hosts.v[0], "*.local");
    assert_null(g->servers[0].credential_name);
    cfg_fixture_free(&f);
}

static void test_an_istio_mutual_server_decodes_without_certificates(void **state)
{
    struct cfg_fixture f;
    cfg_fixture_load(&f, GW_HEAD "  - port: {number: 443, name: https, protocol: HTTPS}\n"
                                 "    hosts: [mesh.example.com]\n"
                                 "    tls: {mode: ISTIO_MUTUAL, subjectAltNames: [spiffe://x]}\n");
    assert_int_equal(f.diags.n, 0);
    const struct cfg_gateway *g = cfg_find(f.snap, CFG_GATEWAY, "istio-system", "gw");
    assert_non_null(g);
    assert_string_equal(g->servers[0].tls_mode, "ISTIO_MUTUAL");
    assert_string_equal(g->servers[0].subject_alt_names.v[0], "spiffe://x");
    cfg_fixture_free(&f);
}

static const struct rule {
    const char *rule, *servers;
    enum cfg_level level; /* CFG_ERROR: the Gateway is rejected */
    const char *says;
} rules[] = {
    {"ISTIO_MUTUAL with a credentialName is Istio's error",
     SERVER("ISTIO_MUTUAL, credentialName: app"), CFG_ERROR,
     "ISTIO_MUTUAL TLS cannot have associated credentialName (ISTIO_MUTUAL presents the "
     "gateway's own mesh certificate"},
    {"ISTIO_MUTUAL with a server certificate", SERVER("ISTIO_MUTUAL, serverCertificate: /c"),
     CFG_ERROR, "ISTIO_MUTUAL TLS cannot have associated server certificate"},
    {"ISTIO_MUTUAL with a private key", SERVER("ISTIO_MUTUAL, privateKey: /k"), CFG_ERROR,
     "ISTIO_MUTUAL TLS cannot have associated private key"},
    {"ISTIO_MUTUAL with a CA bundle", SERVER("ISTIO_MUTUAL, caCertificates: /ca"), CFG_ERROR,
     "ISTIO_MUTUAL TLS cannot have associated CA bundle"},
    {"ISTIO_MUTUAL on a plain HTTP port",
     "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*']\n"
     "    tls: {mode: ISTIO_MUTUAL}\n",
     CFG_ERROR, "server cannot have TLS settings for plain text HTTP ports"},
    {"AUTO_PASSTHROUGH on a TCP port",
     "  - port: {number: 15443, name: tcp, protocol: TCP}\n    hosts: ['*.local']\n"
     "    tls: {mode: AUTO_PASSTHROUGH}\n",
     CFG_ERROR, "server cannot have TLS settings for non HTTPS/TLS ports"},
    {"AUTO_PASSTHROUGH ignores a credentialName (Istio's warning)",
     SERVER("AUTO_PASSTHROUGH, credentialName: app"), CFG_WARNING,
     "AUTO_PASSTHROUGH mode does not use certificates, they will be ignored"},
};

static void test_istio_validates_the_mesh_modes(void **state)
{
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        char yaml[2048];
        snprintf(yaml, sizeof(yaml), "%s%s", GW_HEAD, rules[i].servers);
        struct cfg_fixture f;
        cfg_fixture_load(&f, yaml);
        bool found = false;
        for (size_t d = 0; d < f.diags.n; d++)
            found |= f.diags.v[d].level == rules[i].level &&
                     strcmp(f.diags.v[d].code, "IST0106") == 0 &&
                     strstr(f.diags.v[d].message, rules[i].says) != NULL;
        size_t want = rules[i].level == CFG_ERROR ? 0 : 1;
        if (!found || cfg_count(f.snap, CFG_GATEWAY) != want) {
            fprintf(stderr, "rule \"%s\": want \"%s\" and %zu Gateway; got:\n", rules[i].rule,
                    rules[i].says, want);
            cfg_fixture_dump(&f);
            fail();
        }
        cfg_fixture_free(&f);
    }
}

#define SVC_ECHO                                                                                   \
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: echo, namespace: default}\n"             \
    "spec: {selector: {app: echo}, ports: [{name: http, port: 80}]}\n"
#define VS_TLS                                                                                     \
    "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"                              \
    "metadata: {name: sni, namespace: istio-system}\nspec:\n  hosts: ['a.local']\n"                \
    "  gateways: [gw]\n  tls:\n  - match: [{sniHosts: [a.local]}]\n"                               \
    "    route: [{destination: {host: echo.default.svc.cluster.local}}]\n"

static const struct analyze_case {
    const char *what, *yaml, *says; /* says NULL: no MSH0205 at all */
    enum cfg_level level;
} analyzed[] = {
    {"AUTO_PASSTHROUGH admitting no service: every connection refused",
     GW_HEAD SERVER("AUTO_PASSTHROUGH"),
     "AUTO_PASSTHROUGH server port 15443: its hosts admit no service of the mesh", CFG_WARNING},
    {"AUTO_PASSTHROUGH admitting a Service: nothing to say",
     GW_HEAD SERVER("AUTO_PASSTHROUGH") SVC_ECHO, NULL, CFG_INFO},
    {"a namespace-scoped host of another namespace admits nothing",
     GW_HEAD "  - port: {number: 15443, name: tls, protocol: TLS}\n    hosts: ['prod/*.local']\n"
             "    tls: {mode: AUTO_PASSTHROUGH}\n" SVC_ECHO,
     "its hosts admit no service of the mesh", CFG_WARNING},
    {"a MESH_EXTERNAL ServiceEntry is no mesh service",
     GW_HEAD SERVER(
         "AUTO_PASSTHROUGH") "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
                             "metadata: {name: ext, namespace: default}\nspec:\n  hosts: "
                             "[api.ext.local]\n"
                             "  ports: [{number: 443, name: tls, protocol: TLS}]\n  resolution: "
                             "DNS\n",
     "its hosts admit no service of the mesh", CFG_WARNING},
    {"tls routes bound to an AUTO_PASSTHROUGH-only Gateway are not used",
     GW_HEAD SERVER("AUTO_PASSTHROUGH") SVC_ECHO VS_TLS,
     "tls routes bound to Gateway istio-system/gw are not used", CFG_INFO},
};

static void test_analyze_says_what_the_mesh_modes_ignore(void **state)
{
    for (size_t i = 0; i < sizeof(analyzed) / sizeof(analyzed[0]); i++) {
        struct cfg_fixture f;
        cfg_fixture_analyze(&f, analyzed[i].yaml);
        const struct cfg_diag *g = cfg_fixture_diag(&f, "MSH0205");
        bool ok = analyzed[i].says ? g && g->level == analyzed[i].level &&
                                         strstr(g->message, analyzed[i].says) != NULL
                                   : g == NULL;
        if (!ok) {
            fprintf(stderr, "%s: want %s; got:\n", analyzed[i].what,
                    analyzed[i].says ? analyzed[i].says : "no MSH0205");
            cfg_fixture_dump(&f);
            fail();
        }
        cfg_fixture_free(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_east_west_sample_decodes_as_written),
        cmocka_unit_test(test_an_istio_mutual_server_decodes_without_certificates),
        cmocka_unit_test(test_istio_validates_the_mesh_modes),
        cmocka_unit_test(test_analyze_says_what_the_mesh_modes_ignore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
