/* Kernel-derived histograms per destination (see kernel_metrics.h). */
#include "telemetry/kernel_metrics.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/textbuf.h"
#include "meshd/telemetry.h"
#include "proxy/records.h"
#include "telemetry/histogram.h"

/* Seconds: 50 us (same host) to 5 s (a very bad path). */
static const double rtt_bounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                    0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5};
static const double retrans_bounds[] = {0, 1, 2, 5, 10, 25, 50, 100};
static const double duration_bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5,  1,
                                         5,     10,    30,   60,   300, 1800, 3600};

struct dest {
    char reporter[12];
    char service[128];
    struct histogram rtt, retrans, duration;
};

struct kernel_metrics {
    struct dest d[KERNEL_METRICS_MAX];
    size_t n;
    uint64_t dropped;
};

int kernel_metrics_new(struct kernel_metrics **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

void kernel_metrics_free(struct kernel_metrics *k)
{
    free(k);
}

static struct dest *dest_get(struct kernel_metrics *k, const char *reporter, const char *service)
{
    for (size_t i = 0; i < k->n; i++)
        if (strcmp(k->d[i].reporter, reporter) == 0 && strcmp(k->d[i].service, service) == 0)
            return &k->d[i];
    if (k->n == KERNEL_METRICS_MAX)
        return NULL;
    struct dest *d = &k->d[k->n++];
    snprintf(d->reporter, sizeof(d->reporter), "%s", reporter);
    snprintf(d->service, sizeof(d->service), "%s", service);
    histogram_init(&d->rtt, rtt_bounds, sizeof(rtt_bounds) / sizeof(rtt_bounds[0]));
    histogram_init(&d->retrans, retrans_bounds, sizeof(retrans_bounds) / sizeof(retrans_bounds[0]));
    histogram_init(&d->duration, duration_bounds,
                   sizeof(duration_bounds) / sizeof(duration_bounds[0]));
    return d;
}

void kernel_metrics_observe(struct kernel_metrics *k, const struct conn_record *rec,
                            const struct meshd_conn_event *ev)
{
    bool outbound = strcmp(rec->direction, "outbound") == 0;
    /* Inbound, the destination is the local pod; outbound it is known once
     * the config names the service (until then "unknown"). */
    const char *slash = strchr(rec->pod, '/');
    const char *service = outbound || !slash ? "unknown" : slash + 1;
    struct dest *d = dest_get(k, outbound ? "source" : "destination", service);
    if (!d) {
        k->dropped++;
        return;
    }
    histogram_observe(&d->rtt, ev->srtt_us / 1e6);
    histogram_observe(&d->retrans, ev->total_retrans);
    histogram_observe(&d->duration, (double)(ev->end_ns - ev->start_ns) / 1e9);
}

void kernel_metrics_render(const struct kernel_metrics *k, struct textbuf *r)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } fams[] = {
        {"meshd_tcp_rtt_seconds", "Smoothed RTT of proxied connections at close (kernel).",
         offsetof(struct dest, rtt)},
        {"meshd_tcp_retransmits", "Retransmitted segments per proxied connection (kernel).",
         offsetof(struct dest, retrans)},
        {"meshd_tcp_connection_duration_seconds", "Lifetime of proxied connections (kernel).",
         offsetof(struct dest, duration)},
    };
    for (size_t f = 0; f < 3; f++) {
        textbuf_printf(r, "# HELP %s %s\n# TYPE %s histogram\n", fams[f].name, fams[f].help,
                       fams[f].name);
        for (size_t i = 0; i < k->n; i++) {
            char labels[200];
            snprintf(labels, sizeof(labels), "reporter=\"%s\",destination_service=\"%s\"",
                     k->d[i].reporter, k->d[i].service);
            histogram_render((const struct histogram *)((const char *)&k->d[i] + fams[f].off),
                             fams[f].name, labels, r);
        }
    }
    textbuf_printf(r,
                   "# HELP meshd_tcp_kernel_observations_dropped_total Observations past the "
                   "label-set bound.\n# TYPE meshd_tcp_kernel_observations_dropped_total "
                   "counter\nmeshd_tcp_kernel_observations_dropped_total %llu\n",
                   (unsigned long long)k->dropped);
}
