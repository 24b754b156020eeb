/* MeshConfig tracing providers (agent/config/mesh_config.c): Istio's
 * extensionProviders and defaultProviders as written in the istio
 * ConfigMap's `mesh` (bare or inside the ConfigMap), providers meshd does
 * not export to skipped by name, every malformed field refused with its
 * position; and resolution of a provider's service (IP literals, and
 * localhost from /etc/hosts: no test asks a DNS server). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/mesh_config.h"
#include "telemetry/otlp.h"

#define OTEL                                                                                       \
    "extensionProviders:\n"                                                                        \
    "- name: otel\n"                                                                               \
    "  opentelemetry:\n"                                                                           \
    "    service: otel-collector.observability.svc.cluster.local\n"                                \
    "    port: 4318\n"                                                                             \
    "    http: {path: /v1/traces, timeout: 2s}\n"

static void test_providers_as_istio_writes_them(void **state)
{
    (void)state;
    static const char yaml[] = "defaultProviders:\n  tracing: [jaeger]\n" OTEL
                               "- name: jaeger\n  opentelemetry: {service: 10.0.0.7, port: 4318, "
                               "http: {}}\n"
                               "- name: grpc-otel\n  opentelemetry: {service: c, port: 4317}\n"
                               "- name: zipkin\n  zipkin: {service: z, port: 9411}\n";
    struct mesh_config mc;
    char err[256];
    assert_int_equal(mesh_config_parse(yaml, strlen(yaml), &mc, err, sizeof(err)), 0);
    assert_int_equal(mc.ntracing, 2);
    assert_string_equal(mc.tracing[0].name, "otel");
    assert_string_equal(mc.tracing[0].service, "otel-collector.observability.svc.cluster.local");
    assert_int_equal(mc.tracing[0].port, 4318);
    assert_string_equal(mc.tracing[0].path, "/v1/traces");
    assert_int_equal(mc.tracing[0].timeout_ms, 2000);
    assert_string_equal(mc.tracing[1].name, "jaeger");
    assert_string_equal(mc.tracing[1].path, "/v1/traces"); /* the default */
    assert_int_equal(mc.tracing[1].timeout_ms, 0);
    assert_string_equal(mc.default_tracing, "jaeger");
    assert_non_null(strstr(mc.skipped, "grpc-otel (OTLP over gRPC"));
    assert_non_null(strstr(mc.skipped, "zipkin (not opentelemetry)"));
}

static void test_the_configmap_itself(void **state)
{
    (void)state;
    static const char yaml[] = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, "
                               "namespace: istio-system}\ndata:\n  mesh: |-\n"
                               "    extensionProviders:\n"
                               "    - name: otel\n"
                               "      opentelemetry: {service: 127.0.0.1, port: 4318, http: "
                               "{path: /otlp/v1/traces}}\n";
    struct mesh_config mc;
    char err[256];
    assert_int_equal(mesh_config_parse(yaml, strlen(yaml), &mc, err, sizeof(err)), 0);
    assert_int_equal(mc.ntracing, 1);
    assert_string_equal(mc.tracing[0].path, "/otlp/v1/traces");
    assert_string_equal(mc.default_tracing, "");
}

static void test_malformed_fields_refused_with_position(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *want;
    } rows[] = {
        {"[1, 2]", "expected a mapping"},
        {"extensionProviders: {a: b}", "expected a list"},
        {"extensionProviders:\n- opentelemetry: {service: a, port: 1, http: {}}\n", "name"},
        {"extensionProviders:\n- name: x\n  opentelemetry: {port: 1, http: {}}\n", "service"},
        {"extensionProviders:\n- name: x\n  opentelemetry: {service: a, port: 0, http: {}}\n",
         "port"},
        {"extensionProviders:\n- name: x\n  opentelemetry: {service: a, port: 70000, http: {}}\n",
         "port"},
        {"extensionProviders:\n- name: x\n  opentelemetry: {service: a, port: http, http: {}}\n",
         "port"},
        {"extensionProviders:\n- name: x\n  opentelemetry: {service: a, port: 1, http: {path: "
         "v1}}\n",
         "absolute path"},
        {"extensionProviders:\n- name: x\n  opentelemetry: {service: a, port: 1, http: {path: "
         "'/a b'}}\n",
         "absolute path"},
        {"extensionProviders:\n- name: x\n  opentelemetry: {service: a, port: 1, http: {timeout: "
         "soon}}\n",
         "timeout"},
        {"extensionProviders:\n- name: x\n  opentelemetry: {service: a, port: 1, http: {}}\n"
         "- name: x\n  opentelemetry: {service: b, port: 1, http: {}}\n",
         "named twice"},
        {"kind: ConfigMap\ndata: {other: x}\n", "data.mesh"},
        {"extensionProviders: [\n", "YAML"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct mesh_config mc;
        char err[256];
        int rc = mesh_config_parse(rows[i].yaml, strlen(rows[i].yaml), &mc, err, sizeof(err));
        if (rc != -EINVAL || !strstr(err, rows[i].want))
            fail_msg("row %zu: rc %d, error \"%s\", want \"%s\"", i, rc, err, rows[i].want);
        assert_non_null(strchr(err, ':')); /* line:column */
    }
}

static void test_load_a_missing_file(void **state)
{
    (void)state;
    struct mesh_config mc;
    char err[256];
    assert_int_equal(mesh_config_load("/nonexistent/mesh.yaml", &mc, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "No such file"));
}

static void test_resolve_a_provider_service(void **state)
{
    (void)state;
    struct otlp_collector c;
    assert_int_equal(otlp_collector_resolve("otel", "127.0.0.1", 4318, "/v1/traces", &c), 0);
    char buf[64];
    assert_string_equal(addr_format(&c.addr, buf, sizeof(buf)), "127.0.0.1:4318");
    assert_string_equal(c.name, "otel");
    assert_int_equal(otlp_collector_resolve("otel", "::1", 4318, "/v1/traces", &c), 0);
    assert_string_equal(addr_format(&c.addr, buf, sizeof(buf)), "[::1]:4318");
    assert_int_equal(otlp_collector_resolve("otel", "localhost", 4318, "/x", &c), 0);
    assert_int_equal(otlp_collector_resolve("otel", "127.0.0.1", 0, "/x", &c), -EINVAL);
    assert_int_equal(otlp_collector_resolve("otel", "127.0.0.1", 1, "x", &c), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_providers_as_istio_writes_them),
        cmocka_unit_test(test_the_configmap_itself),
        cmocka_unit_test(test_malformed_fields_refused_with_position),
        cmocka_unit_test(test_load_a_missing_file),
        cmocka_unit_test(test_resolve_a_provider_service),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
