/* The series only the kernel can give (ztunnel cannot): per destination,
 * histograms of the smoothed RTT, of retransmits and of connection
 * duration, from the sockops events joined to meshd's records.
 *
 *   meshd_tcp_rtt_seconds, meshd_tcp_retransmits, meshd_tcp_connection_duration_seconds
 *   labels: reporter, destination_service (destination workload until the
 *   service is known; "unknown" otherwise)
 *
 * Bounded: KERNEL_METRICS_MAX label sets; beyond, observations are counted
 * as dropped. */
#ifndef MESHD_TELEMETRY_KERNEL_METRICS_H
#define MESHD_TELEMETRY_KERNEL_METRICS_H

#include <stdint.h>

#define KERNEL_METRICS_MAX 1024

struct kernel_metrics;
struct conn_record;
struct meshd_conn_event;
struct textbuf;

int kernel_metrics_new(struct kernel_metrics **out);
void kernel_metrics_free(struct kernel_metrics *k);
void kernel_metrics_observe(struct kernel_metrics *k, const struct conn_record *rec,
                            const struct meshd_conn_event *ev);
void kernel_metrics_render(const struct kernel_metrics *k, struct textbuf *r);

#endif
