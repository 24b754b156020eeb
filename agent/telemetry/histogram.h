/* Fixed-bucket Prometheus histograms for the kernel-derived series:
 * cumulative buckets, sum and count, rendered in the text format. */
#ifndef MESHD_TELEMETRY_HISTOGRAM_H
#define MESHD_TELEMETRY_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define HIST_MAX_BUCKETS 16

struct histogram {
    const double *bounds; /* upper bounds, ascending; +Inf is implicit */
    size_t nbounds;
    uint64_t counts[HIST_MAX_BUCKETS + 1];
    double sum;
    uint64_t count;
};

struct http_response;

void histogram_init(struct histogram *h, const double *bounds, size_t nbounds);
void histogram_observe(struct histogram *h, double v);
/* `labels` is "" or `key="v",...` without braces. */
void histogram_render(const struct histogram *h, const char *name, const char *labels,
                      struct http_response *r);

#endif
