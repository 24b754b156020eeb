/* Istio's standard TCP metrics, exactly as Istio names and labels them, so
 * existing dashboards and Kiali work on meshd unchanged:
 *
 *   istio_tcp_connections_opened_total, istio_tcp_connections_closed_total,
 *   istio_tcp_sent_bytes_total, istio_tcp_received_bytes_total,
 *   istio_tcp_connections_failed_total
 *
 * One series per distinct label set, in a bounded table: past
 * TCP_METRICS_MAX_SERIES new label sets are counted as dropped, not added
 * (cardinality is bounded by design: no per-connection or client-port
 * labels). Series with no open connection and no update for the expiry
 * time are removed, so deleted workloads disappear. Missing label values
 * are rendered "unknown", as Istio does. */
#ifndef MESHD_TELEMETRY_TCP_METRICS_H
#define MESHD_TELEMETRY_TCP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define TCP_METRICS_MAX_SERIES 20000
#define TCP_LABEL_MAX          128

/* The label set, in Istio's order. Empty strings render as "unknown". */
enum tcp_label {
    TL_REPORTER,
    TL_SOURCE_WORKLOAD,
    TL_SOURCE_WORKLOAD_NAMESPACE,
    TL_SOURCE_PRINCIPAL,
    TL_SOURCE_APP,
    TL_SOURCE_VERSION,
    TL_SOURCE_CANONICAL_SERVICE,
    TL_SOURCE_CANONICAL_REVISION,
    TL_SOURCE_CLUSTER,
    TL_DESTINATION_WORKLOAD,
    TL_DESTINATION_WORKLOAD_NAMESPACE,
    TL_DESTINATION_PRINCIPAL,
    TL_DESTINATION_APP,
    TL_DESTINATION_VERSION,
    TL_DESTINATION_SERVICE,
    TL_DESTINATION_SERVICE_NAME,
    TL_DESTINATION_SERVICE_NAMESPACE,
    TL_DESTINATION_CANONICAL_SERVICE,
    TL_DESTINATION_CANONICAL_REVISION,
    TL_DESTINATION_CLUSTER,
    TL_REQUEST_PROTOCOL,
    TL_RESPONSE_FLAGS,
    TL_CONNECTION_SECURITY_POLICY,
    TL__COUNT,
};

struct tcp_labels {
    char v[TL__COUNT][TCP_LABEL_MAX];
};

struct tcp_metrics;
struct textbuf;

int tcp_metrics_new(uint64_t expiry_ns, struct tcp_metrics **out);
void tcp_metrics_free(struct tcp_metrics *m);

/* A connection opened / closed under these labels. Label values longer
 * than TCP_LABEL_MAX-1 are truncated by the caller's snprintf. */
void tcp_metrics_opened(struct tcp_metrics *m, const struct tcp_labels *l, uint64_t now_ns);
void tcp_metrics_closed(struct tcp_metrics *m, const struct tcp_labels *l, uint64_t sent,
                        uint64_t received, int failed, uint64_t now_ns);
/* Removes idle series past the expiry. */
void tcp_metrics_expire(struct tcp_metrics *m, uint64_t now_ns);

/* Appends the exposition (text format 0.0.4) of all series. */
void tcp_metrics_render(const struct tcp_metrics *m, struct textbuf *r);
size_t tcp_metrics_series(const struct tcp_metrics *m);
uint64_t tcp_metrics_dropped(const struct tcp_metrics *m);

const char *tcp_label_name(enum tcp_label l);

struct conn_record;
/* What meshd knows of a connection, as Istio labels: the reporter from its
 * direction, the local pod as source (outbound) or destination (inbound)
 * workload, the mTLS peer's principal, the security policy (mutual_tls
 * over HBONE, none for accepted plaintext). Workload, app, version and
 * service labels from the Kubernetes model are filled in by the caller
 * where known; the rest render "unknown". */
void tcp_labels_from_record(const struct conn_record *rec, struct tcp_labels *out);

#endif
