/* The agent's Prometheus page from its modules' statistics (see
 * agent_metrics.h). */
#include "telemetry/agent_metrics.h"

#include "enroll/pods.h"
#include "telemetry/http_metrics.h"
#include "telemetry/kernel_metrics.h"
#include "telemetry/tcp_metrics.h"

static void metric(struct http_response *r, const char *name, const char *type, const char *help)
{
    http_printf(r, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void agent_metrics_render(const struct agent_metrics *m, struct http_response *r)
{
    const struct conns_stats *cs = &m->conns;
    const struct cfg_store_status *cfs = &m->config;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    metric(r, "meshd_build_info", "gauge", "meshd version and node.");
    http_printf(r, "meshd_build_info{version=\"%s\",node=\"%s\"} 1\n", m->version, m->node);
    metric(r, "meshd_config_info", "gauge", "The configuration version being served.");
    http_printf(r, "meshd_config_info{version=\"%s\",loaded=\"%s\"} 1\n", cfs->version,
                cfs->loaded ? "true" : "false");
    metric(r, "meshd_config_serving", "gauge",
           "Where the served configuration comes from: live (the --config files), persisted "
           "(the last good one of a previous run), none (fail closed: inbound refused).");
    for (int k = CFG_SERVING_NONE; k <= CFG_SERVING_LIVE; k++)
        http_printf(r, "meshd_config_serving{source=\"%s\"} %d\n",
                    cfg_serving_name((enum cfg_serving)k), cfs->serving == (enum cfg_serving)k);
    metric(r, "meshd_config_persist_failures_total", "counter",
           "Applied configurations that could not be persisted in the state directory.");
    http_printf(r, "meshd_config_persist_failures_total %llu\n",
                (unsigned long long)cfs->persist_failures);
    metric(r, "meshd_config_reloads_total", "counter",
           "Configuration loads by result (rejected: errors, last good kept).");
    http_printf(r, "meshd_config_reloads_total{result=\"applied\"} %llu\n",
                (unsigned long long)cfs->applied);
    http_printf(r, "meshd_config_reloads_total{result=\"rejected\"} %llu\n",
                (unsigned long long)cfs->rejected);
    http_printf(r, "meshd_config_reloads_total{result=\"unchanged\"} %llu\n",
                (unsigned long long)cfs->unchanged);
    metric(r, "meshd_config_findings", "gauge",
           "What analysis found in the served configuration (meshctl analyze), by code.");
    for (size_t i = 0; i < cfs->nfindings; i++)
        http_printf(r, "meshd_config_findings{code=\"%s\",level=\"%s\"} %u\n",
                    cfs->findings[i].code, cfg_level_name(cfs->findings[i].level),
                    cfs->findings[i].count);
    metric(r, "meshd_config_load_seconds", "gauge", "Time the last applied load took.");
    http_printf(r, "meshd_config_load_seconds %.6f\n", cfs->last_load_seconds);
    metric(r, "meshd_config_resources", "gauge", "Resources in the served configuration.");
    for (int k = 0; k < CFG_KIND_COUNT; k++)
        http_printf(r, "meshd_config_resources{kind=\"%s\"} %zu\n", cfg_kind_name((enum cfg_kind)k),
                    m->resources[k]);
    metric(r, "meshd_enrolled_pods", "gauge", "Pods whose traffic this agent captures.");
    http_printf(r, "meshd_enrolled_pods %zu\n", m->pods);
    if (m->has_mesh) {
        metric(r, "meshd_workload_cert_expiry_timestamp_seconds", "gauge",
               "When each enrolled pod's workload certificate expires (renewed at half-life).");
        for (const struct pod *p = m->pod_list; p; p = p->next) {
            const char *spiffe;
            long not_after;
            if (mesh_pod_certificate(p, &spiffe, &not_after))
                http_printf(r,
                            "meshd_workload_cert_expiry_timestamp_seconds{pod=\"%s/%s\","
                            "identity=\"%s\"} %ld\n",
                            p->ns, p->name, spiffe, not_after);
        }
        const struct mesh_stats *ms = &m->mesh;
        metric(r, "meshd_workload_cert_renewals_total", "counter",
               "Workload certificates renewed.");
        http_printf(r, "meshd_workload_cert_renewals_total %llu\n",
                    (unsigned long long)ms->renewals);
        metric(r, "meshd_hbone_sessions", "gauge", "HBONE client sessions in the pool now.");
        http_printf(r, "meshd_hbone_sessions %llu\n", (unsigned long long)ms->sessions);
        metric(r, "meshd_hbone_sessions_total", "counter",
               "HBONE sessions the pool opened (a handshake each) and connections that reused "
               "one.");
        http_printf(r, "meshd_hbone_sessions_total{event=\"opened\"} %llu\n",
                    (unsigned long long)ms->sessions_opened);
        http_printf(r, "meshd_hbone_sessions_total{event=\"reused\"} %llu\n",
                    (unsigned long long)ms->sessions_reused);
        metric(r, "meshd_route_refused_total", "counter",
               "Connections routing refused, by Envoy response flag.");
        http_printf(r, "meshd_route_refused_total{response_flags=\"NR\"} %llu\n",
                    (unsigned long long)ms->no_route);
        http_printf(r, "meshd_route_refused_total{response_flags=\"UH\"} %llu\n",
                    (unsigned long long)ms->no_endpoint);
        http_printf(r, "meshd_route_refused_total{response_flags=\"UO\"} %llu\n",
                    (unsigned long long)ms->overflows);
        metric(r, "meshd_hbone_server_handshakes", "gauge",
               "HBONE server connections not yet authenticated.");
        http_printf(r, "meshd_hbone_server_handshakes %llu\n",
                    (unsigned long long)ms->handshakes_pending);
        metric(r, "meshd_hbone_server_refused_total", "counter",
               "HBONE server connections reset at accept: a pending-handshake cap was full, "
               "or the client was meshd itself (self_call).");
        http_printf(r, "meshd_hbone_server_refused_total{reason=\"handshake_cap\"} %llu\n",
                    (unsigned long long)ms->handshakes_refused);
        http_printf(r, "meshd_hbone_server_refused_total{reason=\"self_call\"} %llu\n",
                    (unsigned long long)ms->server_self_calls);
        metric(r, "meshd_outlier_ejections_total", "counter", "Endpoints ejected.");
        http_printf(r, "meshd_outlier_ejections_total %llu\n", (unsigned long long)ms->ejections);
    }
    metric(r, "meshd_connections_active", "gauge", "Connections meshd is carrying now.");
    http_printf(r, "meshd_connections_active %llu\n", (unsigned long long)cs->active);
    metric(r, "meshd_connections_total", "counter", "Captured connections by what became of them.");
    const struct {
        const char *outcome;
        uint64_t v;
    } outcomes[] = {{"accepted", cs->accepted}, {"forwarded", cs->forwarded},
                    {"failed", cs->failed},     {"refused", cs->refused},
                    {"overflow", cs->overflow}, {"self_call", cs->self_calls}};
    for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
        http_printf(r, "meshd_connections_total{outcome=\"%s\"} %llu\n", outcomes[i].outcome,
                    (unsigned long long)outcomes[i].v);
    if (m->has_bpf) {
        metric(r, "meshd_bpf_events_total", "counter",
               "Decisions counted by meshd's BPF programs.");
        for (int i = 0; i < MESHD_STAT__MAX; i++)
            http_printf(r, "meshd_bpf_events_total{event=\"%s\"} %llu\n", capture_stat_name(i),
                        (unsigned long long)m->bpf[i]);
    }
    const struct capture_prog_stats *ps = m->progs;
    size_t nps = m->nprogs;
    metric(r, "meshd_bpf_program_runs_total", "counter",
           "Runs of each meshd BPF program (counted while kernel.bpf_stats_enabled=1).");
    for (size_t i = 0; i < nps; i++)
        http_printf(r, "meshd_bpf_program_runs_total{program=\"%s\"} %llu\n", ps[i].name,
                    (unsigned long long)ps[i].run_cnt);
    metric(r, "meshd_bpf_program_run_seconds_total", "counter",
           "Time spent in each meshd BPF program (while kernel.bpf_stats_enabled=1).");
    for (size_t i = 0; i < nps; i++)
        http_printf(r, "meshd_bpf_program_run_seconds_total{program=\"%s\"} %.9f\n", ps[i].name,
                    (double)ps[i].run_time_ns / 1e9);
    metric(r, "meshd_kernel_conn_events_total", "counter",
           "Kernel connection events read from the ring buffer, by join result.");
    http_printf(r, "meshd_kernel_conn_events_total{joined=\"true\"} %llu\n",
                (unsigned long long)m->telemetry.kevents_joined);
    http_printf(r, "meshd_kernel_conn_events_total{joined=\"false\"} %llu\n",
                (unsigned long long)m->telemetry.kevents_unjoined);
    metric(r, "meshd_access_log_lines_total", "counter",
           "Access-log lines by outcome (dropped: stdout would have blocked).");
    http_printf(r, "meshd_access_log_lines_total{outcome=\"written\"} %llu\n",
                (unsigned long long)m->telemetry.access_log_written);
    http_printf(r, "meshd_access_log_lines_total{outcome=\"dropped\"} %llu\n",
                (unsigned long long)m->telemetry.access_log_dropped);
    metric(r, "meshd_istio_series", "gauge",
           "Series in the istio_tcp_* and istio_request* tables.");
    http_printf(r, "meshd_istio_series %zu\n", m->istio_series);
    metric(r, "meshd_istio_series_dropped_total", "counter",
           "New label sets refused because the series table was full.");
    http_printf(r, "meshd_istio_series_dropped_total %llu\n",
                (unsigned long long)m->istio_series_dropped);
    if (m->tcp)
        tcp_metrics_render(m->tcp, r);
    if (m->requests)
        http_metrics_render(m->requests, r);
    if (m->kernel)
        kernel_metrics_render(m->kernel, r);
    static const char *const endpoints[3] = {"admin", "metrics", "health"}, *control = "control";
    http_render_client_stats(r, "meshd_admin_http", endpoints, m->http, 3);
    http_render_client_stats(r, "meshd_control", &control, &m->control, 1);
}
