/* Tracing from Telemetry resources (config/decode_tracing.c and
 * policy/telemetry.c): each row names the Istio behaviour it checks,
 * for the workload app=pay in namespace "shop"; and every field Istio's
 * validation refuses is refused with its path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config/model.h"
#include "policy/telemetry.h"
#include "support/config_fixture.h"

#define TEL(ns, name, spec)                                                                        \
    "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: " name                   \
    ", namespace: " ns "}\nspec: " spec "\n---\n"

static const struct case_ {
    const char *istio_behaviour;
    const char *yaml;
    bool server_side;
    uint32_t ppm;
    bool disabled;
    const char *provider; /* NULL: the default */
    const char *tags;     /* "k=kind:value|default;..." */
} cases[] = {
    {"no Telemetry: Istio's default 1%", "", false, 10000, false, NULL, ""},
    {"mesh-wide sampling 100",
     TEL("istio-system", "mesh", "{tracing: [{randomSamplingPercentage: 100}]}"), false, 1000000,
     false, NULL, ""},
    {"fractional percentages kept per million",
     TEL("istio-system", "mesh", "{tracing: [{randomSamplingPercentage: 0.25}]}"), false, 2500,
     false, NULL, ""},
    {"namespace overrides the mesh's percentage",
     TEL("istio-system", "mesh", "{tracing: [{randomSamplingPercentage: 100}]}")
         TEL("shop", "ns", "{tracing: [{randomSamplingPercentage: 0}]}"),
     false, 0, false, NULL, ""},
    {"workload overrides the namespace",
     TEL("shop", "ns", "{tracing: [{randomSamplingPercentage: 0}]}")
         TEL("shop", "pay",
             "{selector: {matchLabels: {app: pay}}, tracing: "
             "[{randomSamplingPercentage: 50}]}"),
     false, 500000, false, NULL, ""},
    {"a selector that does not match is not the workload's",
     TEL("shop", "ns", "{tracing: [{randomSamplingPercentage: 5}]}")
         TEL("shop", "x",
             "{selector: {matchLabels: {app: x}}, tracing: "
             "[{randomSamplingPercentage: 50}]}"),
     false, 50000, false, NULL, ""},
    {"fields not set at a level are inherited (providers from the mesh)",
     TEL("istio-system", "mesh", "{tracing: [{providers: [{name: otel}]}]}")
         TEL("shop", "ns", "{tracing: [{randomSamplingPercentage: 7}]}"),
     false, 70000, false, "otel", ""},
    {"disableSpanReporting at the namespace",
     TEL("shop", "ns", "{tracing: [{disableSpanReporting: true}]}"), true, 10000, true, NULL, ""},
    {"match mode SERVER does not apply to the client",
     TEL("istio-system", "mesh",
         "{tracing: [{match: {mode: SERVER}, randomSamplingPercentage: 100}]}"),
     false, 10000, false, NULL, ""},
    {"match mode SERVER applies to the server",
     TEL("istio-system", "mesh",
         "{tracing: [{match: {mode: SERVER}, randomSamplingPercentage: 100}]}"),
     true, 1000000, false, NULL, ""},
    {"customTags merged by name, the nearer level wins",
     TEL("istio-system", "mesh",
         "{tracing: [{customTags: {a: {literal: {value: m}}, b: {environment: {name: HOME}}}}]}")
         TEL("shop", "ns",
             "{tracing: [{customTags: {a: {header: {name: x-a, defaultValue: none}}}}]}"),
     false, 10000, false, NULL, "a=1:x-a|none;b=2:HOME|;"},
    {"another namespace's Telemetry does not apply",
     TEL("other", "t", "{tracing: [{randomSamplingPercentage: 100}]}"), false, 10000, false, NULL,
     ""},
};

static void render_tags(const struct tracing_decision *d, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < d->ntags && o < len; i++) {
        const struct cfg_custom_tag *t = d->tags[i];
        o += (size_t)snprintf(buf + o, len - o, "%s=%d:%s|%s;", t->name, (int)t->kind, t->value,
                              t->default_value ? t->default_value : "");
    }
}

static void test_sampling_precedence(void **state)
{
    (void)state;
    static const struct cfg_kv kv[] = {{"app", "pay"}};
    const struct cfg_labels labels = {kv, 1};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct case_ *c = &cases[i];
        struct cfg_fixture f;
        cfg_fixture_load(&f, c->yaml);
        if (f.diags.counts[CFG_ERROR]) {
            cfg_fixture_dump(&f);
            fail_msg("case \"%s\": the YAML does not load", c->istio_behaviour);
        }
        struct tracing_decision d;
        telemetry_tracing(f.snap, "shop", &labels, c->server_side, &d);
        char tags[256];
        render_tags(&d, tags, sizeof(tags));
        const char *prov = d.providers && d.providers->n ? d.providers->v[0] : NULL;
        if (d.sampling_ppm != c->ppm || d.disable_span_reporting != c->disabled ||
            (prov == NULL) != (c->provider == NULL) || (prov && strcmp(prov, c->provider)) ||
            strcmp(tags, c->tags))
            fail_msg("case \"%s\": got ppm %u disabled %d provider %s tags \"%s\"",
                     c->istio_behaviour, d.sampling_ppm, d.disable_span_reporting,
                     prov ? prov : "-", tags);
        cfg_fixture_free(&f);
    }
}

static void test_invalid_tracing_is_refused_with_its_path(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *want;
    } rows[] = {
        {"{tracing: [{randomSamplingPercentage: 101}]}", "randomSamplingPercentage"},
        {"{tracing: [{randomSamplingPercentage: -1}]}", "randomSamplingPercentage"},
        {"{tracing: [{randomSamplingPercentage: lots}]}", "expected a number"},
        {"{tracing: [{providers: [{name: ''}]}]}", "name is required"},
        {"{tracing: [{customTags: {a: {}}}]}", "exactly one of"},
        {"{tracing: [{customTags: {a: {literal: {value: x}, header: {name: y}}}}]}",
         "exactly one of"},
        {"{tracing: [{customTags: {a: {header: {defaultValue: y}}}}]}", "name is required"},
        {"{tracing: [{customTags: {a: {environment: {name: ''}}}}]}", "name is required"},
        {"{tracing: [{customTags: [a]}]}", "expected a mapping"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char doc[768];
        snprintf(doc, sizeof(doc),
                 "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: bad, "
                 "namespace: shop}\nspec: %s\n",
                 rows[i].spec);
        struct cfg_fixture f;
        cfg_fixture_load(&f, doc);
        bool found = false;
        for (size_t j = 0; j < f.diags.n; j++)
            found |= f.diags.v[j].level == CFG_ERROR && strstr(f.diags.v[j].message, rows[i].want);
        if (!found) {
            cfg_fixture_dump(&f);
            fail_msg("\"%s\": no error containing \"%s\"", rows[i].spec, rows[i].want);
        }
        assert_int_equal(cfg_count(f.snap, CFG_TELEMETRY), 0);
        cfg_fixture_free(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sampling_precedence),
        cmocka_unit_test(test_invalid_tracing_is_refused_with_its_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
