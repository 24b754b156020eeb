/* PeerAuthentication precedence (agent/policy/peerauth.c): each case names
 * the Istio behaviour it checks. Workload: namespace "shop", labels
 * app=pay, port 8080 unless the case says otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "policy/peerauth.h"
#include "support/config_fixture.h"

#define PA(ns, name, spec)                                                                         \
    "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: " name           \
    ", namespace: " ns "}\nspec: " spec "\n---\n"

static const struct pa_case {
    const char *istio_behaviour;
    const char *yaml;
    const char *ns;
    uint16_t port;
    enum cfg_mtls want;
    const char *by; /* deciding policy's name, or NULL */
} cases[] = {
    {"no policy: PERMISSIVE", "", "shop", 8080, CFG_MTLS_PERMISSIVE, NULL},
    {"mesh-wide STRICT in the root namespace applies everywhere",
     PA("istio-system", "mesh", "{mtls: {mode: STRICT}}"), "shop", 8080, CFG_MTLS_STRICT, "mesh"},
    {"namespace policy overrides the mesh",
     PA("istio-system", "mesh", "{mtls: {mode: STRICT}}")
         PA("shop", "ns", "{mtls: {mode: PERMISSIVE}}"),
     "shop", 8080, CFG_MTLS_PERMISSIVE, "ns"},
    {"namespace UNSET inherits the mesh",
     PA("istio-system", "mesh", "{mtls: {mode: STRICT}}") PA("shop", "ns", "{mtls: {mode: UNSET}}"),
     "shop", 8080, CFG_MTLS_STRICT, "mesh"},
    {"namespace policy without mtls inherits the mesh",
     PA("istio-system", "mesh", "{mtls: {mode: STRICT}}") PA("shop", "ns", "{}"), "shop", 8080,
     CFG_MTLS_STRICT, "mesh"},
    {"workload policy overrides the namespace",
     PA("shop", "ns", "{mtls: {mode: PERMISSIVE}}")
         PA("shop", "w", "{selector: {matchLabels: {app: pay}}, mtls: {mode: STRICT}}"),
     "shop", 8080, CFG_MTLS_STRICT, "w"},
    {"workload UNSET inherits the namespace",
     PA("shop", "ns", "{mtls: {mode: STRICT}}")
         PA("shop", "w", "{selector: {matchLabels: {app: pay}}, mtls: {mode: UNSET}}"),
     "shop", 8080, CFG_MTLS_STRICT, "ns"},
    {"portLevelMtls overrides the workload mode on its port",
     PA("shop", "w",
        "{selector: {matchLabels: {app: pay}}, mtls: {mode: STRICT}, portLevelMtls: {8080: {mode: "
        "PERMISSIVE}}}"),
     "shop", 8080, CFG_MTLS_PERMISSIVE, "w"},
    {"portLevelMtls leaves other ports alone",
     PA("shop", "w",
        "{selector: {matchLabels: {app: pay}}, mtls: {mode: STRICT}, portLevelMtls: {8080: {mode: "
        "PERMISSIVE}}}"),
     "shop", 9090, CFG_MTLS_STRICT, "w"},
    {"portLevelMtls UNSET inherits the workload mode",
     PA("shop", "w",
        "{selector: {matchLabels: {app: pay}}, mtls: {mode: STRICT}, portLevelMtls: {8080: {mode: "
        "UNSET}}}"),
     "shop", 8080, CFG_MTLS_STRICT, "w"},
    {"portLevelMtls under an inherited mode",
     PA("istio-system", "mesh", "{mtls: {mode: PERMISSIVE}}")
         PA("shop", "w",
            "{selector: {matchLabels: {app: pay}}, portLevelMtls: {8080: {mode: STRICT}}}"),
     "shop", 8080, CFG_MTLS_STRICT, "w"},
    {"a selector that does not match is ignored",
     PA("shop", "ns", "{mtls: {mode: PERMISSIVE}}")
         PA("shop", "w", "{selector: {matchLabels: {app: other}}, mtls: {mode: STRICT}}"),
     "shop", 8080, CFG_MTLS_PERMISSIVE, "ns"},
    {"another namespace's policy does not apply", PA("other", "ns", "{mtls: {mode: STRICT}}"),
     "shop", 8080, CFG_MTLS_PERMISSIVE, NULL},
    {"two namespace policies: the first (oldest) wins",
     PA("shop", "a", "{mtls: {mode: STRICT}}") PA("shop", "b", "{mtls: {mode: PERMISSIVE}}"),
     "shop", 8080, CFG_MTLS_STRICT, "a"},
    {"a root-namespace policy with a selector is not mesh-wide",
     PA("istio-system", "w", "{selector: {matchLabels: {app: pay}}, mtls: {mode: STRICT}}"), "shop",
     8080, CFG_MTLS_PERMISSIVE, NULL},
    {"DISABLE is reported as such (ambient then accepts plaintext)",
     PA("shop", "ns", "{mtls: {mode: DISABLE}}"), "shop", 8080, CFG_MTLS_DISABLE, "ns"},
};

static void test_precedence(void **state)
{
    static const struct cfg_kv kv[] = {{"app", "pay"}};
    const struct cfg_labels labels = {kv, 1};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct pa_case *c = &cases[i];
        struct cfg_fixture f;
        cfg_fixture_load(&f, c->yaml);
        if (f.diags.counts[CFG_ERROR]) {
            cfg_fixture_dump(&f);
            fail_msg("case \"%s\": the YAML does not load", c->istio_behaviour);
        }
        struct peerauth_result r;
        peerauth_mode(f.snap, c->ns, &labels, c->port, &r);
        const char *by = r.by ? r.by->meta.name : NULL;
        if (r.mode != c->want || (by == NULL) != (c->by == NULL) || (by && strcmp(by, c->by)))
            fail_msg("case \"%s\": got mode %d by %s, want %d by %s", c->istio_behaviour, r.mode,
                     by ? by : "(none)", c->want, c->by ? c->by : "(none)");
        cfg_fixture_free(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_precedence)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
