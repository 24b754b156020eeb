/* meshctl dashboard kiali's graph (tools/meshctl/graph.c) from two metric
 * scrapes, and the exposition parser under it (promtext.c): rates from
 * counter deltas, error and denied rates, p99 from bucket deltas, mTLS
 * share, the reporter chosen per edge, counter resets, new series, and
 * hostile exposition text (malformed lines skipped and counted). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../tools/meshctl/graph.h"
#include "../../tools/meshctl/promtext.h"

#define SRC "source_workload=\"sleep\",source_workload_namespace=\"default\""
#define SVC                                                                                        \
    "destination_service=\"httpbin.default.svc.cluster.local\",destination_service_name="          \
    "\"httpbin\",destination_service_namespace=\"default\""
#define DST "destination_workload=\"httpbin-v1\",destination_workload_namespace=\"default\""
#define LBL(rep, extra)                                                                            \
    "{reporter=\"" rep "\"," SRC "," DST "," SVC                                                   \
    ",connection_security_policy=\"mutual_tls\"" extra "}"

static const char *const E_SRC_SVC = "wl:default/sleep->svc:httpbin.default.svc.cluster.local";
static const char *const E_SVC_DST = "svc:httpbin.default.svc.cluster.local->wl:default/httpbin-v1";

static json_t *build(const char *prev, const char *cur, double dt)
{
    struct prom_set a = {0}, b = {0};
    assert_int_equal(prom_parse(&b, cur, strlen(cur), "istio_"), 0);
    if (prev)
        assert_int_equal(prom_parse(&a, prev, strlen(prev), "istio_"), 0);
    json_t *g = graph_build(prev ? &a : NULL, &b, dt);
    prom_set_free(&a);
    prom_set_free(&b);
    assert_non_null(g);
    return g;
}

static json_t *edge(json_t *g, const char *id)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(g, "edges"), i,
                       e) if (strcmp(json_string_value(json_object_get(e, "id")), id) ==
                              0) return e;
    fail_msg("no edge %s", id);
    return NULL;
}

static double num(json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

struct rate_case {
    const char *name, *prev, *cur;
    double dt;
    const char *edge;
    double rps, errors_ps, denied_ps, error_rate, bytes_ps, mtls;
};

static const struct rate_case rate_cases[] = {
    {"request rate and error rate from the deltas over dt",
     "istio_requests_total" LBL(
         "source", ",response_code=\"200\"") " 10\n"
                                             "istio_requests_total" LBL(
                                                 "source", ",response_code=\"503\"") " 1\n",
     "istio_requests_total" LBL(
         "source", ",response_code=\"200\"") " 28\n"
                                             "istio_requests_total" LBL(
                                                 "source", ",response_code=\"503\"") " 3\n",
     2.0, NULL, 10.0, 1.0, 0.0, 0.1, 0.0, 1.0},
    {"a series new in the second scrape counts from zero",
     "istio_requests_total" LBL("source", ",response_code=\"200\"") " 4\n",
     "istio_requests_total" LBL(
         "source", ",response_code=\"200\"") " 8\n"
                                             "istio_requests_total" LBL(
                                                 "source", ",response_code=\"0\"") " 2\n",
     1.0, NULL, 6.0, 2.0, 0.0, 2.0 / 6.0, 0.0, 1.0},
    {"a counter that went down restarted: its value is the delta",
     "istio_requests_total" LBL("source", ",response_code=\"200\"") " 100\n",
     "istio_requests_total" LBL("source", ",response_code=\"200\"") " 5\n", 1.0, NULL, 5.0, 0.0,
     0.0, 0.0, 0.0, 1.0},
    {"denied requests (response_flags DENY) are their own rate",
     "istio_requests_total" LBL("source", ",response_code=\"403\",response_flags=\"DENY\"") " 0\n",
     "istio_requests_total" LBL("source", ",response_code=\"403\",response_flags=\"DENY\"") " 4\n",
     2.0, NULL, 2.0, 0.0, 2.0, 0.0, 0.0, 1.0},
    {"a denial the source saw as a 403 is counted from the destination",
     "istio_requests_total" LBL(
         "source",
         ",response_code=\"403\",response_flags=\"-\"") " 0\n"
                                                        "istio_requests_total" LBL(
                                                            "destination",
                                                            ",response_code=\"403\",response_flags="
                                                            "\"DENY\"") " 0\n",
     "istio_requests_total" LBL(
         "source",
         ",response_code=\"403\",response_flags=\"-\"") " 3\n"
                                                        "istio_requests_total" LBL(
                                                            "destination",
                                                            ",response_code=\"403\",response_flags="
                                                            "\"DENY\"") " 3\n",
     1.0, NULL, 3.0, 0.0, 3.0, 0.0, 0.0, 1.0},
    {"TCP byte rate is sent plus received",
     "istio_tcp_sent_bytes_total" LBL("source", "") " 1000\n"
                                                    "istio_tcp_received_bytes_total" LBL(
                                                        "source", "") " 100\n",
     "istio_tcp_sent_bytes_total" LBL("source", "") " 3000\n"
                                                    "istio_tcp_received_bytes_total" LBL(
                                                        "source", "") " 300\n",
     2.0, NULL, 0.0, 0.0, 0.0, 0.0, 1100.0, 0.0},
    {"the source reporter wins over the destination's (retries seen there)",
     "istio_requests_total" LBL(
         "source", ",response_code=\"200\"") " 0\n"
                                             "istio_requests_total" LBL(
                                                 "destination", ",response_code=\"200\"") " 0\n",
     "istio_requests_total" LBL(
         "source", ",response_code=\"200\"") " 3\n"
                                             "istio_requests_total" LBL(
                                                 "destination", ",response_code=\"200\"") " 9\n",
     1.0, NULL, 3.0, 0.0, 0.0, 0.0, 0.0, 1.0},
    {"only a destination reporter (a client outside the mesh): its numbers",
     "istio_requests_total" LBL("destination", ",response_code=\"200\"") " 0\n",
     "istio_requests_total" LBL("destination", ",response_code=\"200\"") " 7\n", 1.0, NULL, 7.0,
     0.0, 0.0, 0.0, 0.0, 1.0},
    {"one scrape only: totals, no rates", NULL,
     "istio_requests_total" LBL("source", ",response_code=\"200\"") " 7\n", 0.0, NULL, 0.0, 0.0,
     0.0, 0.0, 0.0, 1.0},
};

static void rates_from_two_scrapes(void **state)
{
    for (size_t i = 0; i < sizeof(rate_cases) / sizeof(rate_cases[0]); i++) {
        const struct rate_case *c = &rate_cases[i];
        print_message("  %s\n", c->name);
        json_t *g = build(c->prev, c->cur, c->dt);
        const char *ids[2] = {E_SRC_SVC, E_SVC_DST};
        for (int k = 0; k < 2; k++) { /* both edges of a request carry it */
            json_t *e = edge(g, ids[k]);
            assert_float_equal(num(e, "rps"), c->rps, 1e-9);
            assert_float_equal(num(e, "errors_ps"), c->errors_ps, 1e-9);
            assert_float_equal(num(e, "denied_ps"), c->denied_ps, 1e-9);
            assert_float_equal(num(e, "error_rate"), c->error_rate, 1e-9);
            assert_float_equal(num(e, "tcp_bytes_ps"), c->bytes_ps, 1e-9);
            assert_float_equal(num(e, "mtls"), c->mtls, 1e-9);
        }
        json_decref(g);
    }
}

static void nodes_are_workloads_services_and_unknown(void **state)
{
    json_t *g =
        build(NULL,
              "istio_requests_total{reporter=\"destination\",source_workload=\"unknown\"," DST
              "," SVC ",source_app=\"\",destination_app=\"httpbin\","
              "destination_version=\"v1\",connection_security_policy=\"none\"} 3\n",
              0);
    json_t *nodes = json_object_get(g, "nodes");
    assert_int_equal(json_array_size(nodes), 3);
    const char *want[3][3] = {{"unknown", "unknown", "unknown"},
                              {"wl:default/httpbin-v1", "workload", "httpbin-v1"},
                              {"svc:httpbin.default.svc.cluster.local", "service", "httpbin"}};
    for (int i = 0; i < 3; i++) {
        json_t *n = NULL, *x;
        size_t k;
        json_array_foreach(nodes, k, x) if (strcmp(json_string_value(json_object_get(x, "id")),
                                                   want[i][0]) == 0) n = x;
        assert_non_null(n);
        assert_string_equal(json_string_value(json_object_get(n, "type")), want[i][1]);
        assert_string_equal(json_string_value(json_object_get(n, "name")), want[i][2]);
    }
    json_t *e = edge(g, "unknown->svc:httpbin.default.svc.cluster.local");
    assert_float_equal(num(e, "mtls"), 0.0, 1e-9); /* plaintext */
    assert_float_equal(num(e, "requests_total"), 3.0, 1e-9);
    json_decref(g);
}

static void without_a_service_the_edge_joins_the_workloads(void **state)
{
    json_t *g = build(NULL,
                      "istio_tcp_connections_opened_total{reporter=\"source\"," SRC "," DST
                      ",destination_service=\"unknown\"} 1\n",
                      0);
    edge(g, "wl:default/sleep->wl:default/httpbin-v1");
    assert_int_equal(json_array_size(json_object_get(g, "edges")), 1);
    json_decref(g);
}

static void p99_from_the_bucket_deltas(void **state)
{
    /* 100 requests in the window: 90 under 5 ms, 9 in (5, 10], 1 in (10, 25]. */
    char prev[4096], cur[4096];
    const char *les[] = {"1", "5", "10", "25", "+Inf"};
    double before[] = {0, 10, 10, 10, 10}, after[] = {0, 100, 109, 110, 110};
    size_t p = 0, c = 0;
    for (int i = 0; i < 5; i++) {
        p += (size_t)snprintf(
            prev + p, sizeof(prev) - p,
            "istio_request_duration_milliseconds_bucket" LBL("source", ",le=\"%s\"") " %g\n",
            les[i], before[i]);
        c += (size_t)snprintf(
            cur + c, sizeof(cur) - c,
            "istio_request_duration_milliseconds_bucket" LBL("source", ",le=\"%s\"") " %g\n",
            les[i], after[i]);
    }
    json_t *g = build(prev, cur, 1.0);
    /* rank 99 of 100: the 9th of 9 in (5, 10]: 10 ms exactly. */
    assert_float_equal(num(edge(g, E_SRC_SVC), "p99_ms"), 10.0, 1e-9);
    json_decref(g);
    json_t *idle = build(cur, cur, 1.0); /* nothing in the window: no p99 */
    assert_true(json_is_null(json_object_get(edge(idle, E_SRC_SVC), "p99_ms")));
    json_decref(idle);
}

static void quantile_as_prometheus_computes_it(void **state)
{
    const double le[] = {1, 5, INFINITY};
    const double count[] = {50, 100, 100};
    assert_float_equal(graph_quantile(0.5, le, count, 3), 1.0, 1e-9);
    assert_float_equal(graph_quantile(0.75, le, count, 3), 3.0, 1e-9); /* interpolated */
    const double inf_count[] = {0, 0, 10}; /* all past the last finite bound */
    assert_float_equal(graph_quantile(0.99, le, inf_count, 3), 5.0, 1e-9);
    const double none[] = {0, 0, 0};
    assert_true(graph_quantile(0.99, le, none, 3) < 0);
}

static void exposition_parsed_and_malformed_lines_skipped(void **state)
{
    const char *text = "# HELP istio_requests_total x\n"
                       "# TYPE istio_requests_total counter\n"
                       "istio_requests_total{a=\"q\\\"uo\\\\te\\n\",b=\"2\"} 12\n"
                       "istio_requests_total 7 1700000000000\n" /* a federated timestamp */
                       "istio_requests_total{a=\"unterminated} 1\n"
                       "istio_requests_total{a=\"1\"} notanumber\n"
                       "istio_requests_total{=\"1\"} 1\n"
                       "istio_requests_total{a=\"1\"}\n"
                       "meshd_other_total 3\n" /* another prefix: skipped, not malformed */
                       "istio_tcp_sent_bytes_total{x=\"y\"} +Inf\r\n";
    struct prom_set s = {0};
    assert_int_equal(prom_parse(&s, text, strlen(text), "istio_"), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.malformed, 4);
    assert_string_equal(prom_label(&s.v[0], "a"), "q\"uo\\te\n");
    assert_string_equal(prom_label(&s.v[0], "b"), "2");
    assert_string_equal(prom_label(&s.v[0], "missing"), "");
    assert_float_equal(s.v[0].value, 12, 0);
    assert_float_equal(s.v[1].value, 7, 0);
    assert_true(isinf(s.v[2].value));
    prom_set_free(&s);
    assert_int_equal(s.n, 0);
}

static void exposition_bounds(void **state)
{
    /* Too many labels, a label value past its bound, a line past its bound. */
    char *text = malloc(PROM_MAX_LINE + 4096);
    size_t n = (size_t)sprintf(text, "istio_x{");
    for (int i = 0; i <= PROM_MAX_LABELS; i++)
        n += (size_t)sprintf(text + n, "l%d=\"v\",", i);
    n += (size_t)sprintf(text + n, "} 1\nistio_y{a=\"");
    memset(text + n, 'v', PROM_MAX_LABEL_LEN);
    n += PROM_MAX_LABEL_LEN;
    n += (size_t)sprintf(text + n, "\"} 1\nistio_z");
    memset(text + n, ' ', PROM_MAX_LINE);
    n += PROM_MAX_LINE;
    n += (size_t)sprintf(text + n, "1\nistio_ok 2\n");
    struct prom_set s = {0};
    assert_int_equal(prom_parse(&s, text, n, "istio_"), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.malformed, 3);
    assert_string_equal(s.v[0].name, "istio_ok");
    prom_set_free(&s);
    free(text);
}

static void samples_past_the_bound_are_dropped(void **state)
{
    size_t lines = PROM_MAX_SAMPLES + 10;
    char *text = malloc(lines * 16), *p = text;
    for (size_t i = 0; i < lines; i++)
        p += sprintf(p, "istio_c %zu\n", i);
    struct prom_set s = {0};
    assert_int_equal(prom_parse(&s, text, (size_t)(p - text), ""), 0);
    assert_int_equal(s.n, PROM_MAX_SAMPLES);
    assert_int_equal(s.dropped, 10);
    prom_set_free(&s);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rates_from_two_scrapes),
        cmocka_unit_test(nodes_are_workloads_services_and_unknown),
        cmocka_unit_test(without_a_service_the_edge_joins_the_workloads),
        cmocka_unit_test(p99_from_the_bucket_deltas),
        cmocka_unit_test(quantile_as_prometheus_computes_it),
        cmocka_unit_test(exposition_parsed_and_malformed_lines_skipped),
        cmocka_unit_test(exposition_bounds),
        cmocka_unit_test(samples_past_the_bound_are_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
