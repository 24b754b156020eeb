/* What becomes of each connection record in telemetry: Istio's TCP metrics
 * with their whole label set (what the record knows, then what the served
 * configuration says about both workloads), the access-log line when the
 * operator (--access-log) or the Telemetry resources want one, and the
 * kernel's RTT/retransmits joined to the record.
 *
 * The agent feeds it from the conns observer (opened, closed), the
 * sockops ring (kernel events) and its ticker (series expiry). */
#ifndef MESHD_TELEMETRY_CONN_TELEMETRY_H
#define MESHD_TELEMETRY_CONN_TELEMETRY_H

#include <stdbool.h>
#include <stdint.h>

struct cfg_store;
struct conn_record;
struct meshd_conn_event;
struct tcp_metrics;
struct kernel_metrics;

struct conn_telemetry_opts {
    const struct cfg_store *config; /* borrowed */
    const char *trust_domain;       /* borrowed */
    bool access_log_all;            /* --access-log: every connection */
    bool log_json;                  /* --log-format json */
};

struct conn_telemetry_stats {
    uint64_t kevents_joined, kevents_unjoined;
    uint64_t access_log_written, access_log_dropped;
};

struct conn_telemetry;

int conn_telemetry_new(const struct conn_telemetry_opts *opts, struct conn_telemetry **out);
/* Gives stdout its flags back (it may be a terminal the shell shares).
 * Accepts NULL. */
void conn_telemetry_free(struct conn_telemetry *t);

void conn_telemetry_opened(struct conn_telemetry *t, const struct conn_record *rec);
void conn_telemetry_closed(struct conn_telemetry *t, const struct conn_record *rec);
/* A sockops event; rec is the record conns joined it to, NULL if the
 * socket was not one meshd carries (the app's own connections). */
void conn_telemetry_kernel_event(struct conn_telemetry *t, const struct conn_record *rec,
                                 const struct meshd_conn_event *ev);
/* Drops the series of workloads gone long enough. */
void conn_telemetry_tick(struct conn_telemetry *t, uint64_t now_ns);

void conn_telemetry_get_stats(const struct conn_telemetry *t, struct conn_telemetry_stats *out);
const struct tcp_metrics *conn_telemetry_tcp(const struct conn_telemetry *t);
const struct kernel_metrics *conn_telemetry_kernel(const struct conn_telemetry *t);

#endif
