/* Fixed-bucket Prometheus histograms (the kernel-derived series, Istio's
 * request histograms): cumulative buckets, sum and count, rendered in the
 * text format. Bounds print as Envoy prints them ("1800000", not
 * "1.8e+06"). */
#ifndef MESHD_TELEMETRY_HISTOGRAM_H
#define MESHD_TELEMETRY_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define HIST_MAX_BUCKETS 20 /* Envoy's default has 19 bounds */

struct histogram {
    const double *bounds; /* upper bounds, ascending; +Inf is implicit */
    size_t nbounds;
    uint64_t counts[HIST_MAX_BUCKETS + 1];
    double sum;
    uint64_t count;
};

struct textbuf;

void histogram_init(struct histogram *h, const double *bounds, size_t nbounds);
void histogram_observe(struct histogram *h, double v);
/* `labels` is "" or `key="v",...` without braces. */
void histogram_render(const struct histogram *h, const char *name, const char *labels,
                      struct textbuf *r);

#endif
