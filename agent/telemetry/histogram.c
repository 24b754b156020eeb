/* Prometheus histograms (see histogram.h). */
#include "telemetry/histogram.h"

#include <string.h>

#include "core/textbuf.h"

void histogram_init(struct histogram *h, const double *bounds, size_t nbounds)
{
    memset(h, 0, sizeof(*h));
    h->bounds = bounds;
    h->nbounds = nbounds > HIST_MAX_BUCKETS ? HIST_MAX_BUCKETS : nbounds;
}

void histogram_observe(struct histogram *h, double v)
{
    size_t i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

void histogram_render(const struct histogram *h, const char *name, const char *labels,
                      struct textbuf *r)
{
    const char *sep = labels[0] ? "," : "";
    uint64_t cum = 0;
    for (size_t i = 0; i < h->nbounds; i++) {
        cum += h->counts[i];
        textbuf_printf(r, "%s_bucket{%s%sle=\"%.15g\"} %llu\n", name, labels, sep, h->bounds[i],
                       (unsigned long long)cum);
    }
    cum += h->counts[h->nbounds];
    textbuf_printf(r, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                   (unsigned long long)cum);
    textbuf_printf(r, "%s_sum%s%s%s %.15g\n", name, labels[0] ? "{" : "", labels,
                   labels[0] ? "}" : "", h->sum);
    textbuf_printf(r, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
                   labels[0] ? "}" : "", (unsigned long long)h->count);
}
