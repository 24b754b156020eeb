/* The agent's /metrics page (15020 /metrics, /stats/prometheus) in the
 * Prometheus text format, rendered from a snapshot of every module's
 * statistics: build and configuration, pods and certificates, the mesh
 * (HBONE sessions, routing refusals, outliers), connections, the BPF
 * programs, kernel events, access logs, Istio's istio_tcp_* and request
 * series. The admin endpoints' clients follow, rendered by admin
 * (http_render_client_stats).
 *
 * The admin endpoint gathers the stats from the live modules
 * (admin/endpoints.c); rendering from plain structs keeps the page
 * testable without an agent (tests/unit/test_agent_metrics.c). */
#ifndef MESHD_TELEMETRY_AGENT_METRICS_H
#define MESHD_TELEMETRY_AGENT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/textbuf.h"
#include "capture/capture.h"
#include "config/store.h"
#include "mesh/mesh.h"
#include "proxy/conns.h"
#include "telemetry/conn_telemetry.h"
#include "telemetry/tracer.h"

#define AGENT_METRICS_PROGS 3
/* The Prometheus text format the page is in. */
#define AGENT_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct agent_metrics {
    const char *version, *node;
    struct cfg_store_status config;
    size_t resources[CFG_KIND_COUNT]; /* in the served snapshot */
    size_t pods;
    const struct pod *pod_list; /* borrowed: certificate expiry per pod */
    bool has_mesh;              /* --ca-dir: the mesh_* families */
    struct mesh_stats mesh;
    struct conns_stats conns;
    bool has_bpf; /* the BPF counters could be read */
    uint64_t bpf[MESHD_STAT__MAX];
    struct capture_prog_stats progs[AGENT_METRICS_PROGS];
    size_t nprogs;
    struct conn_telemetry_stats telemetry;
    size_t istio_series;                 /* TCP and HTTP tables together */
    uint64_t istio_series_dropped;       /* TCP and HTTP tables together */
    const struct tcp_metrics *tcp;       /* borrowed; NULL: no istio_tcp_* */
    const struct http_metrics *requests; /* borrowed; NULL: no istio_request* */
    const struct kernel_metrics *kernel; /* borrowed; NULL: none */
    bool has_tracing;                    /* --trace-collector: the meshd_trace_* families */
    struct tracer_stats trace;
};

void agent_metrics_render(const struct agent_metrics *m, struct textbuf *r);

#endif
