/* The agent's Prometheus page from its modules' statistics (see
 * agent_metrics.h): one table of families, rendered by one loop. A family
 * is its name, type and help, then either fixed samples (labels and the
 * offset of a counter in struct agent_metrics, type-checked at compile
 * time) or a function for samples that come from a list. The modules with
 * tables of their own (istio_tcp_*, kernel metrics, the admin servers'
 * clients) render them after it. */
#include "telemetry/agent_metrics.h"

#include "enroll/pods.h"
#include "telemetry/http_metrics.h"
#include "telemetry/kernel_metrics.h"
#include "telemetry/tcp_metrics.h"

enum sample_type { S_U64, S_SIZE, S_SECONDS };

struct sample {
    const char *labels; /* "{k=\"v\"}" or "" */
    size_t off;         /* in struct agent_metrics */
    enum sample_type type;
};

/* The field's offset, refused at compile time unless it has type `t`. */
#define FIELD(f, t)                                                                                \
    (offsetof(struct agent_metrics, f) +                                                           \
     0 * sizeof(char[__builtin_types_compatible_p(__typeof__(((struct agent_metrics *)0)->f), t)   \
                         ? 1                                                                       \
                         : -1]))
#define U64(labels, f)                                                                             \
    {                                                                                              \
        labels, FIELD(f, uint64_t), S_U64                                                          \
    }
#define SIZE(labels, f)                                                                            \
    {                                                                                              \
        labels, FIELD(f, size_t), S_SIZE                                                           \
    }
#define SECS(labels, f)                                                                            \
    {                                                                                              \
        labels, FIELD(f, double), S_SECONDS                                                        \
    }

enum family_when { ALWAYS, IF_MESH, IF_BPF, IF_TRACING };

struct family {
    const char *name, *type, *help;
    enum family_when when;
    /* Samples from a list (NULL: the fixed samples below). */
    void (*samples)(const struct agent_metrics *m, const char *name, struct textbuf *r);
    struct sample fixed[6];
};

static void build_info(const struct agent_metrics *m, const char *name, struct textbuf *r)
{
    textbuf_printf(r, "%s{version=\"%s\",node=\"%s\"} 1\n", name, m->version, m->node);
}

static void config_info(const struct agent_metrics *m, const char *name, struct textbuf *r)
{
    textbuf_printf(r, "%s{version=\"%s\",loaded=\"%s\"} 1\n", name, m->config.version,
                   m->config.loaded ? "true" : "false");
}

static void config_serving(const struct agent_metrics *m, const char *name, struct textbuf *r)
{
    for (int k = CFG_SERVING_NONE; k <= CFG_SERVING_LIVE; k++)
        textbuf_printf(r, "%s{source=\"%s\"} %d\n", name, cfg_serving_name((enum cfg_serving)k),
                       m->config.serving == (enum cfg_serving)k);
}

static void config_findings(const struct agent_metrics *m, const char *name, struct textbuf *r)
{
    const struct cfg_store_status *cfs = &m->config;
    for (size_t i = 0; i < cfs->nfindings; i++)
        textbuf_printf(r, "%s{code=\"%s\",level=\"%s\"} %u\n", name, cfs->findings[i].code,
                       cfg_level_name(cfs->findings[i].level), cfs->findings[i].count);
}

static void config_resources(const struct agent_metrics *m, const char *name, struct textbuf *r)
{
    for (int k = 0; k < CFG_KIND_COUNT; k++)
        textbuf_printf(r, "%s{kind=\"%s\"} %zu\n", name, cfg_kind_name((enum cfg_kind)k),
                       m->resources[k]);
}

static void cert_expiry(const struct agent_metrics *m, const char *name, struct textbuf *r)
{
    for (const struct pod *p = m->pod_list; p; p = p->next) {
        const char *spiffe;
        long not_after;
        if (mesh_pod_certificate(p, &spiffe, &not_after))
            textbuf_printf(r, "%s{pod=\"%s/%s\",identity=\"%s\"} %ld\n", name, p->ns, p->name,
                           spiffe, not_after);
    }
}

static void bpf_events(const struct agent_metrics *m, const char *name, struct textbuf *r)
{
    for (int i = 0; i < MESHD_STAT__MAX; i++)
        textbuf_printf(r, "%s{event=\"%s\"} %llu\n", name, capture_stat_name(i),
                       (unsigned long long)m->bpf[i]);
}

static void prog_runs(const struct agent_metrics *m, const char *name, struct textbuf *r)
{
    for (size_t i = 0; i < m->nprogs; i++)
        textbuf_printf(r, "%s{program=\"%s\"} %llu\n", name, m->progs[i].name,
                       (unsigned long long)m->progs[i].run_cnt);
}

static void prog_seconds(const struct agent_metrics *m, const char *name, struct textbuf *r)
{
    for (size_t i = 0; i < m->nprogs; i++)
        textbuf_printf(r, "%s{program=\"%s\"} %.9f\n", name, m->progs[i].name,
                       (double)m->progs[i].run_time_ns / 1e9);
}

static const struct family families[] = {
    {"meshd_build_info", "gauge", "meshd version and node.", ALWAYS, build_info, {{0}}},
    {"meshd_config_info",
     "gauge",
     "The configuration version being served.",
     ALWAYS,
     config_info,
     {{0}}},
    {"meshd_config_serving",
     "gauge",
     "Where the served configuration comes from: live (the --config files), persisted (the last "
     "good one of a previous run), none (fail closed: inbound refused).",
     ALWAYS,
     config_serving,
     {{0}}},
    {"meshd_config_persist_failures_total",
     "counter",
     "Applied configurations that could not be persisted in the state directory.",
     ALWAYS,
     NULL,
     {U64("", config.persist_failures)}},
    {"meshd_config_reloads_total",
     "counter",
     "Configuration loads by result (rejected: errors, last good kept).",
     ALWAYS,
     NULL,
     {U64("{result=\"applied\"}", config.applied), U64("{result=\"rejected\"}", config.rejected),
      U64("{result=\"unchanged\"}", config.unchanged)}},
    {"meshd_config_findings",
     "gauge",
     "What analysis found in the served configuration (meshctl analyze), by code.",
     ALWAYS,
     config_findings,
     {{0}}},
    {"meshd_config_load_seconds",
     "gauge",
     "Time the last applied load took.",
     ALWAYS,
     NULL,
     {SECS("", config.last_load_seconds)}},
    {"meshd_config_resources",
     "gauge",
     "Resources in the served configuration.",
     ALWAYS,
     config_resources,
     {{0}}},
    {"meshd_enrolled_pods",
     "gauge",
     "Pods whose traffic this agent captures.",
     ALWAYS,
     NULL,
     {SIZE("", pods)}},
    {"meshd_workload_cert_expiry_timestamp_seconds",
     "gauge",
     "When each enrolled pod's workload certificate expires (renewed at half-life).",
     IF_MESH,
     cert_expiry,
     {{0}}},
    {"meshd_workload_cert_renewals_total",
     "counter",
     "Workload certificates renewed.",
     IF_MESH,
     NULL,
     {U64("", mesh.renewals)}},
    {"meshd_hbone_sessions",
     "gauge",
     "HBONE client sessions in the pool now.",
     IF_MESH,
     NULL,
     {U64("", mesh.sessions)}},
    {"meshd_hbone_sessions_total",
     "counter",
     "HBONE sessions the pool opened (a handshake each) and connections that reused one.",
     IF_MESH,
     NULL,
     {U64("{event=\"opened\"}", mesh.sessions_opened),
      U64("{event=\"reused\"}", mesh.sessions_reused)}},
    {"meshd_route_refused_total",
     "counter",
     "Connections routing refused, by Envoy response flag.",
     IF_MESH,
     NULL,
     {U64("{response_flags=\"NR\"}", mesh.no_route),
      U64("{response_flags=\"UH\"}", mesh.no_endpoint),
      U64("{response_flags=\"UO\"}", mesh.overflows)}},
    {"meshd_hbone_server_handshakes",
     "gauge",
     "HBONE server connections not yet authenticated.",
     IF_MESH,
     NULL,
     {U64("", mesh.handshakes_pending)}},
    {"meshd_hbone_server_refused_total",
     "counter",
     "HBONE server connections reset at accept: a pending-handshake cap was full, or the client "
     "was meshd itself (self_call).",
     IF_MESH,
     NULL,
     {U64("{reason=\"handshake_cap\"}", mesh.handshakes_refused),
      U64("{reason=\"self_call\"}", mesh.server_self_calls)}},
    {"meshd_outlier_ejections_total",
     "counter",
     "Endpoints ejected.",
     IF_MESH,
     NULL,
     {U64("", mesh.ejections)}},
    {"meshd_connections_active",
     "gauge",
     "Connections meshd is carrying now.",
     ALWAYS,
     NULL,
     {U64("", conns.active)}},
    {"meshd_connections_total",
     "counter",
     "Captured connections by what became of them.",
     ALWAYS,
     NULL,
     {U64("{outcome=\"accepted\"}", conns.accepted),
      U64("{outcome=\"forwarded\"}", conns.forwarded), U64("{outcome=\"failed\"}", conns.failed),
      U64("{outcome=\"refused\"}", conns.refused), U64("{outcome=\"overflow\"}", conns.overflow),
      U64("{outcome=\"self_call\"}", conns.self_calls)}},
    {"meshd_bpf_events_total",
     "counter",
     "Decisions counted by meshd's BPF programs.",
     IF_BPF,
     bpf_events,
     {{0}}},
    {"meshd_bpf_program_runs_total",
     "counter",
     "Runs of each meshd BPF program (counted while kernel.bpf_stats_enabled=1).",
     ALWAYS,
     prog_runs,
     {{0}}},
    {"meshd_bpf_program_run_seconds_total",
     "counter",
     "Time spent in each meshd BPF program (while kernel.bpf_stats_enabled=1).",
     ALWAYS,
     prog_seconds,
     {{0}}},
    {"meshd_kernel_conn_events_total",
     "counter",
     "Kernel connection events read from the ring buffer, by join result.",
     ALWAYS,
     NULL,
     {U64("{joined=\"true\"}", telemetry.kevents_joined),
      U64("{joined=\"false\"}", telemetry.kevents_unjoined)}},
    {"meshd_access_log_lines_total",
     "counter",
     "Access-log lines by outcome (dropped: stdout would have blocked).",
     ALWAYS,
     NULL,
     {U64("{outcome=\"written\"}", telemetry.access_log_written),
      U64("{outcome=\"dropped\"}", telemetry.access_log_dropped)}},
    {"meshd_istio_series",
     "gauge",
     "Series in the istio_tcp_* and istio_request* tables.",
     ALWAYS,
     NULL,
     {SIZE("", istio_series)}},
    {"meshd_istio_series_dropped_total",
     "counter",
     "New label sets refused because the series table was full.",
     ALWAYS,
     NULL,
     {U64("", istio_series_dropped)}},
    {"meshd_trace_spans_total",
     "counter",
     "Requests traced, by sampling decision.",
     IF_TRACING,
     NULL,
     {U64("{sampled=\"true\"}", trace.sampled), U64("{sampled=\"false\"}", trace.not_sampled)}},
    {"meshd_trace_spans_exported_total",
     "counter",
     "Spans an OTLP collector accepted.",
     IF_TRACING,
     NULL,
     {U64("", trace.otlp.exported)}},
    {"meshd_trace_spans_dropped_total",
     "counter",
     "Spans lost: the export queue was full, or their batch failed.",
     IF_TRACING,
     NULL,
     {U64("", trace.otlp.dropped)}},
    {"meshd_trace_export_errors_total",
     "counter",
     "OTLP export requests that failed (connect, timeout, a non-2xx answer).",
     IF_TRACING,
     NULL,
     {U64("", trace.otlp.export_errors)}},
    {"meshd_trace_export_queue_spans",
     "gauge",
     "Spans waiting for export.",
     IF_TRACING,
     NULL,
     {SIZE("", trace.otlp.queued)}},
};

static void render_sample(const struct agent_metrics *m, const char *name, const struct sample *s,
                          struct textbuf *r)
{
    const char *at = (const char *)m + s->off;
    switch (s->type) {
    case S_U64:
        textbuf_printf(r, "%s%s %llu\n", name, s->labels,
                       (unsigned long long)*(const uint64_t *)(const void *)at);
        break;
    case S_SIZE:
        textbuf_printf(r, "%s%s %zu\n", name, s->labels, *(const size_t *)(const void *)at);
        break;
    case S_SECONDS:
        textbuf_printf(r, "%s%s %.6f\n", name, s->labels, *(const double *)(const void *)at);
        break;
    }
}

void agent_metrics_render(const struct agent_metrics *m, struct textbuf *r)
{
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        const struct family *f = &families[i];
        if ((f->when == IF_MESH && !m->has_mesh) || (f->when == IF_BPF && !m->has_bpf) ||
            (f->when == IF_TRACING && !m->has_tracing))
            continue;
        textbuf_printf(r, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
        if (f->samples)
            f->samples(m, f->name, r);
        for (size_t k = 0;
             !f->samples && k < sizeof(f->fixed) / sizeof(f->fixed[0]) && f->fixed[k].labels; k++)
            render_sample(m, f->name, &f->fixed[k], r);
    }
    if (m->tcp)
        tcp_metrics_render(m->tcp, r);
    if (m->requests)
        http_metrics_render(m->requests, r);
    if (m->kernel)
        kernel_metrics_render(m->kernel, r);
}
