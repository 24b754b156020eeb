/* The mesh-wide settings Istio keeps in its MeshConfig (the `mesh` key of
 * the istio ConfigMap in istio-system), read from a file given at start
 * (meshd --mesh-config FILE): the tracing providers.
 *
 *   defaultProviders: {tracing: [otel]}
 *   extensionProviders:
 *   - name: otel
 *     opentelemetry:
 *       service: otel-collector.observability.svc.cluster.local  # or an IP
 *       port: 4318
 *       http: {path: /v1/traces, timeout: 5s}
 *
 * The file is that MeshConfig document, or the ConfigMap itself (its
 * data.mesh text is parsed). Only OTLP over HTTP is exported: an
 * opentelemetry provider without `http` (Istio's gRPC form) and other
 * provider kinds (zipkin, datadog, envoyExtAuthz...) are skipped, each
 * named in `skipped` for the log. A Telemetry resource chooses among the
 * providers by name (tracing[].providers[].name); without one, the
 * default provider (defaultProviders.tracing[0], else the first). */
#ifndef MESHD_CONFIG_MESH_CONFIG_H
#define MESHD_CONFIG_MESH_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define MESH_TRACE_PROVIDERS_MAX 4

struct mesh_trace_provider {
    char name[64];
    char service[254]; /* a DNS name or an IP literal */
    uint16_t port;
    char path[256];      /* default /v1/traces */
    uint32_t timeout_ms; /* http.timeout; 0: the exporter's default */
};

struct mesh_config {
    struct mesh_trace_provider tracing[MESH_TRACE_PROVIDERS_MAX];
    size_t ntracing;
    char default_tracing[64]; /* "" when defaultProviders names none */
    char skipped[256];        /* providers not used, "name (why), ..." */
};

/* 0, or -EINVAL with a message naming line:column in err (-errno when
 * the file cannot be read). */
int mesh_config_parse(const char *buf, size_t len, struct mesh_config *out, char *err,
                      size_t errlen);
int mesh_config_load(const char *path, struct mesh_config *out, char *err, size_t errlen);

#endif
