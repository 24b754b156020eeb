/* Access logging from Telemetry resources (agent/policy/telemetry.c),
 * Istio's precedence: each case names the behaviour it checks. The
 * workload: namespace "shop", labels app=pay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "policy/telemetry.h"
#include "support/config_fixture.h"

#define TEL(ns, name, spec)                                                                        \
    "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: " name                   \
    ", namespace: " ns "}\nspec: " spec "\n---\n"
#define MESH_ON TEL("istio-system", "mesh", "{accessLogging: [{providers: [{name: envoy}]}]}")

static const struct tel_case {
    const char *istio_behaviour;
    const char *yaml;
    bool server_side;
    bool want;
    const char *by;
} cases[] = {
    {"no Telemetry: no access log", "", true, false, NULL},
    {"mesh-wide envoy provider turns logging on", MESH_ON, true, true, "mesh"},
    {"the seed's v1alpha1 resource as written",
     "apiVersion: telemetry.istio.io/v1alpha1\nkind: Telemetry\nmetadata:\n  name: access-logs\n"
     "  namespace: istio-system\nspec:\n  accessLogging:\n    - providers:\n        - name: "
     "envoy\n",
     false, true, "access-logs"},
    {"namespace disabled overrides the mesh",
     MESH_ON TEL("shop", "off", "{accessLogging: [{disabled: true}]}"), true, false, "off"},
    {"workload enables over a disabled namespace",
     MESH_ON TEL("shop", "off", "{accessLogging: [{disabled: true}]}")
         TEL("shop", "pay",
             "{selector: {matchLabels: {app: pay}}, accessLogging: [{providers: "
             "[{name: envoy}]}]}"),
     true, true, "pay"},
    {"a workload selector that does not match defers to the namespace",
     MESH_ON TEL("shop", "other",
                 "{selector: {matchLabels: {app: other}}, accessLogging: "
                 "[{disabled: true}]}"),
     true, true, "mesh"},
    {"match mode SERVER does not apply to the client side",
     TEL("istio-system", "mesh",
         "{accessLogging: [{match: {mode: SERVER}, providers: [{name: envoy}]}]}"),
     false, false, NULL},
    {"match mode SERVER applies to the server side",
     TEL("istio-system", "mesh",
         "{accessLogging: [{match: {mode: SERVER}, providers: [{name: envoy}]}]}"),
     true, true, "mesh"},
    {"a level with no entry for this side defers upward",
     MESH_ON TEL("shop", "srv-off", "{accessLogging: [{match: {mode: SERVER}, disabled: true}]}"),
     false, true, "mesh"},
    {"only a provider meshd does not write: off",
     TEL("istio-system", "mesh", "{accessLogging: [{providers: [{name: otel}]}]}"), true, false,
     "mesh"},
    {"no providers listed: the default provider (envoy)",
     TEL("istio-system", "mesh", "{accessLogging: [{}]}"), true, true, "mesh"},
    {"another namespace's Telemetry does not apply", TEL("other", "on", "{accessLogging: [{}]}"),
     true, false, NULL},
    {"targetRef Telemetry is for waypoints",
     TEL("shop", "w", "{targetRefs: [{kind: Service, name: pay}], accessLogging: [{}]}"), true,
     false, NULL},
};

static void test_precedence(void **state)
{
    static const struct cfg_kv kv[] = {{"app", "pay"}};
    const struct cfg_labels labels = {kv, 1};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct tel_case *c = &cases[i];
        struct cfg_fixture f;
        cfg_fixture_load(&f, c->yaml);
        if (f.diags.counts[CFG_ERROR]) {
            cfg_fixture_dump(&f);
            fail_msg("case \"%s\": the YAML does not load", c->istio_behaviour);
        }
        struct access_log_decision d;
        telemetry_access_log(f.snap, "shop", &labels, c->server_side, &d);
        const char *by = d.by ? d.by->meta.name : NULL;
        if (d.enabled != c->want || (by == NULL) != (c->by == NULL) || (by && strcmp(by, c->by)))
            fail_msg("case \"%s\": got %d by %s, want %d by %s", c->istio_behaviour, d.enabled,
                     by ? by : "(none)", c->want, c->by ? c->by : "(none)");
        cfg_fixture_free(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_precedence)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
