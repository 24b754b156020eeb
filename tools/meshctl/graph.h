/* The service graph of meshctl dashboard kiali, computed from two scrapes
 * of Istio's standard metrics (promtext.h) taken dt seconds apart, the way
 * Kiali computes it from Prometheus: workloads and services are nodes
 * ("unknown" for a source outside the mesh); a request from workload W to
 * service S served by workload D is two edges, W -> S and S -> D (W -> D
 * when there is no service). Each edge carries:
 *
 *   rps, errors_ps (5xx and no response), denied_ps (response_flags DENY),
 *   error_rate (errors / requests), p99_ms (from the duration histogram's
 *   bucket deltas, as histogram_quantile), tcp_bytes_ps (sent + received),
 *   tcp_conns_ps, tcp_failed_ps, and lifetime totals; mtls: the share of
 *   its requests and connections with connection_security_policy
 *   mutual_tls (0..1, from the totals, so one scrape shows it).
 *
 * Counters are matched by metric, labels and origin (the agent); a series
 * new in `cur` counts from 0, a counter that went down restarted (its
 * delta is its value). Per edge the source reporter is used when it saw
 * the traffic, else the destination's (a client outside the mesh).
 * Bounded: GRAPH_MAX_EDGES edges and GRAPH_MAX_NODES nodes, the rest
 * counted in "dropped". */
#ifndef MESHCTL_GRAPH_H
#define MESHCTL_GRAPH_H

#include <jansson.h>

#include "promtext.h"

#define GRAPH_MAX_EDGES   2000
#define GRAPH_MAX_NODES   1000
#define GRAPH_MAX_BUCKETS 32

/* {"nodes": [...], "edges": [...], "interval_s", "dropped"} as a new
 * reference, or NULL on allocation failure. `prev` may be NULL (one scrape
 * so far: rates are 0) and dt <= 0 means the same. */
json_t *graph_build(const struct prom_set *prev, const struct prom_set *cur, double dt);

/* histogram_quantile over cumulative bucket counts sorted by `le`
 * (the last +Inf); -1 when the histogram is empty. */
double graph_quantile(double q, const double *le, const double *count, size_t n);

#endif
