/* The agent's /metrics page (agent/telemetry/agent_metrics.c) rendered
 * from known statistics: each row names a sample the page must carry with
 * its value, and the whole page must pass `promtool check metrics` (the
 * Prometheus text format and its naming conventions) when promtool is
 * installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/agent_metrics.h"
#include "telemetry/http_metrics.h"
#include "telemetry/kernel_metrics.h"
#include "telemetry/tcp_metrics.h"

static void known_stats(struct agent_metrics *m)
{
    *m = (struct agent_metrics){.version = "0.1.0", .node = "n1"};
    m->config = (struct cfg_store_status){.loaded = true,
                                          .serving = CFG_SERVING_LIVE,
                                          .persisted_version = "",
                                          .version = "abcdef0123456789",
                                          .persist_failures = 1,
                                          .applied = 3,
                                          .rejected = 2,
                                          .unchanged = 4,
                                          .last_load_seconds = 0.25,
                                          .nfindings = 1};
    m->config.findings[0] =
        (struct cfg_finding_count){.code = "IST0101", .level = CFG_ERROR, .count = 2};
    m->resources[CFG_POD] = 7;
    m->pods = 5;
    m->has_mesh = true;
    m->mesh = (struct mesh_stats){.renewals = 11,
                                  .sessions_opened = 12,
                                  .sessions_reused = 13,
                                  .sessions = 2,
                                  .no_route = 21,
                                  .no_endpoint = 22,
                                  .overflows = 23,
                                  .ejections = 24,
                                  .server_self_calls = 25,
                                  .handshakes_pending = 26,
                                  .handshakes_refused = 27};
    m->conns = (struct conns_stats){.accepted = 100,
                                    .forwarded = 90,
                                    .failed = 4,
                                    .refused = 6,
                                    .overflow = 1,
                                    .active = 3,
                                    .self_calls = 2};
    m->has_bpf = true;
    for (int i = 0; i < MESHD_STAT__MAX; i++)
        m->bpf[i] = (uint64_t)(1000 + i);
    m->progs[0] = (struct capture_prog_stats){"meshd_connect4", 40, 2000000000ull};
    m->nprogs = 1;
    m->telemetry = (struct conn_telemetry_stats){.kevents_joined = 31,
                                                 .kevents_unjoined = 32,
                                                 .access_log_written = 33,
                                                 .access_log_dropped = 34};
    m->istio_series = 8;
    m->istio_series_dropped = 9;
    m->has_tracing = true;
    m->trace = (struct tracer_stats){
        .sampled = 41,
        .not_sampled = 42,
        .otlp = {.exported = 43, .dropped = 44, .export_errors = 45, .queued = 46}};
}

static const struct sample {
    const char *behaviour;
    const char *line; /* a whole sample line, "" value included */
} samples[] = {
    {"the build and node", "meshd_build_info{version=\"0.1.0\",node=\"n1\"} 1"},
    {"the served version", "meshd_config_info{version=\"abcdef0123456789\",loaded=\"true\"} 1"},
    {"where the configuration comes from, one-hot", "meshd_config_serving{source=\"live\"} 1"},
    {"other sources are 0", "meshd_config_serving{source=\"none\"} 0"},
    {"persist failures", "meshd_config_persist_failures_total 1"},
    {"reloads by result", "meshd_config_reloads_total{result=\"rejected\"} 2"},
    {"unchanged reloads", "meshd_config_reloads_total{result=\"unchanged\"} 4"},
    {"findings by code and level", "meshd_config_findings{code=\"IST0101\",level=\"Error\"} 2"},
    {"the load time", "meshd_config_load_seconds 0.250000"},
    {"resources by kind", "meshd_config_resources{kind=\"Pod\"} 7"},
    {"enrolled pods", "meshd_enrolled_pods 5"},
    {"certificate renewals", "meshd_workload_cert_renewals_total 11"},
    {"HBONE sessions now", "meshd_hbone_sessions 2"},
    {"HBONE sessions reused", "meshd_hbone_sessions_total{event=\"reused\"} 13"},
    {"no route is NR", "meshd_route_refused_total{response_flags=\"NR\"} 21"},
    {"no endpoint is UH", "meshd_route_refused_total{response_flags=\"UH\"} 22"},
    {"overflow is UO", "meshd_route_refused_total{response_flags=\"UO\"} 23"},
    {"pending handshakes", "meshd_hbone_server_handshakes 26"},
    {"handshake cap refusals", "meshd_hbone_server_refused_total{reason=\"handshake_cap\"} 27"},
    {"HBONE self-calls", "meshd_hbone_server_refused_total{reason=\"self_call\"} 25"},
    {"outlier ejections", "meshd_outlier_ejections_total 24"},
    {"active connections", "meshd_connections_active 3"},
    {"connections by outcome", "meshd_connections_total{outcome=\"forwarded\"} 90"},
    {"self-call refusals", "meshd_connections_total{outcome=\"self_call\"} 2"},
    {"BPF program runs", "meshd_bpf_program_runs_total{program=\"meshd_connect4\"} 40"},
    {"BPF program time in seconds",
     "meshd_bpf_program_run_seconds_total{program=\"meshd_connect4\"} 2.000000000"},
    {"kernel events joined", "meshd_kernel_conn_events_total{joined=\"true\"} 31"},
    {"kernel events not joined", "meshd_kernel_conn_events_total{joined=\"false\"} 32"},
    {"access-log lines written", "meshd_access_log_lines_total{outcome=\"written\"} 33"},
    {"access-log lines dropped", "meshd_access_log_lines_total{outcome=\"dropped\"} 34"},
    {"Istio series", "meshd_istio_series 8"},
    {"Istio series refused", "meshd_istio_series_dropped_total 9"},
    {"requests traced, sampled", "meshd_trace_spans_total{sampled=\"true\"} 41"},
    {"requests traced, not sampled", "meshd_trace_spans_total{sampled=\"false\"} 42"},
    {"spans a collector accepted", "meshd_trace_spans_exported_total 43"},
    {"spans lost", "meshd_trace_spans_dropped_total 44"},
    {"failed exports", "meshd_trace_export_errors_total 45"},
    {"spans waiting", "meshd_trace_export_queue_spans 46"},
};

static char *render(const struct agent_metrics *m)
{
    struct textbuf r = {0};
    agent_metrics_render(m, &r);
    assert_int_equal(r.oom, 0);
    textbuf_printf(&r, "%s", ""); /* a body, even if empty, NUL-terminated */
    return r.data;
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = strstr(text, line); p; p = strstr(p + 1, line))
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

static void renders_every_sample_with_its_value(void **state)
{
    struct agent_metrics m;
    known_stats(&m);
    char *text = render(&m);
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
        if (!has_line(text, samples[i].line))
            fail_msg("%s: no line \"%s\" in\n%s", samples[i].behaviour, samples[i].line, text);
    /* Every BPF counter by its name. */
    char want[160];
    snprintf(want, sizeof(want), "meshd_bpf_events_total{event=\"%s\"} %d",
             capture_stat_name(MESHD_STAT_CONNECT_CAPTURED), 1000 + MESHD_STAT_CONNECT_CAPTURED);
    assert_true(has_line(text, want));
    free(text);
}

static void without_mesh_bpf_or_tracing_their_families_are_absent(void **state)
{
    struct agent_metrics m;
    known_stats(&m);
    m.has_mesh = false;
    m.has_bpf = false;
    m.has_tracing = false;
    char *text = render(&m);
    assert_null(strstr(text, "meshd_trace_"));
    assert_null(strstr(text, "meshd_hbone_sessions"));
    assert_null(strstr(text, "meshd_route_refused_total"));
    assert_null(strstr(text, "meshd_bpf_events_total"));
    assert_true(has_line(text, "meshd_connections_active 3"));
    free(text);
}

/* promtool reads the page from stdin; its exit status is the verdict. */
static void passes_promtool_check_metrics(void **state)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0)
        skip();
    struct agent_metrics m;
    known_stats(&m);
    struct tcp_metrics *tcp;
    struct http_metrics *requests;
    struct kernel_metrics *kernel;
    assert_int_equal(tcp_metrics_new(600ull * 1000000000ull, &tcp), 0);
    assert_int_equal(http_metrics_new(600ull * 1000000000ull, &requests), 0);
    assert_int_equal(kernel_metrics_new(&kernel), 0);
    m.tcp = tcp;
    m.requests = requests;
    m.kernel = kernel;
    char *text = render(&m);
    FILE *p = popen("promtool check metrics >/dev/null", "w");
    assert_non_null(p);
    fputs(text, p);
    int rc = pclose(p);
    if (rc != 0) {
        FILE *again = popen("promtool check metrics", "w");
        fputs(text, again);
        pclose(again);
        fail_msg("promtool check metrics refused the page (exit %d)", rc);
    }
    assert_non_null(strstr(text, "# TYPE istio_request_duration_milliseconds histogram\n"));
    free(text);
    tcp_metrics_free(tcp);
    http_metrics_free(requests);
    kernel_metrics_free(kernel);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(renders_every_sample_with_its_value),
        cmocka_unit_test(without_mesh_bpf_or_tracing_their_families_are_absent),
        cmocka_unit_test(passes_promtool_check_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
