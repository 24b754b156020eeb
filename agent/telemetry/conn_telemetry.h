/* What becomes of each connection record in telemetry: Istio's TCP metrics
 * with their whole label set (what the record knows, then what the served
 * configuration says about both workloads), the access-log line when the
 * operator (--access-log) or the Telemetry resources want one, and the
 * kernel's RTT/retransmits joined to the record.
 *
 * The agent feeds it from the conns observer (opened, closed), the
 * sockops ring (kernel events) and its ticker (series expiry); the HTTP
 * carrier reports each finished request (conn_telemetry_request): Istio's
 * request metrics and the request's access-log line. */
#ifndef MESHD_TELEMETRY_CONN_TELEMETRY_H
#define MESHD_TELEMETRY_CONN_TELEMETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "meshd/capture.h"

struct cfg_store;
struct conn_record;
struct meshd_conn_event;
struct tcp_metrics;
struct tcp_labels;
struct http_metrics;
struct http_request_record;
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
/* Drops the series (TCP and HTTP) of workloads gone long enough. */
void conn_telemetry_tick(struct conn_telemetry *t, uint64_t now_ns);

/* Where one request went, when it is not where its connection went:
 * requests on one connection can go to different services, subsets and
 * endpoints. */
struct http_request_dest {
    const char *service;               /* the Service FQDN routed to; NULL: the connection's */
    const struct meshd_addr *endpoint; /* the endpoint chosen; NULL: the connection's upstream */
    /* The verified SPIFFE id of this request's upstream: NULL keeps the
     * connection's (identity and security policy); "" is a plaintext
     * upstream (no principal, the policy of a plaintext connection); an
     * id is mTLS with that peer. */
    const char *peer_identity;
};

/* Istio's labels for one request carried by `conn`: what
 * tcp_labels_from_record() and tcp_labels_from_config() give the
 * connection (reporter from its direction, the local pod, the
 * configuration's workload labels), with the destination replaced by
 * `dst` where given (NULL: the connection's, as for inbound, where the
 * destination is the local pod), request_protocol "grpc" or "http".
 * response_flags is the record's own field (http_request_record). Writes
 * *out whole; borrows everything for the call. */
void conn_telemetry_request_labels(struct conn_telemetry *t, const struct conn_record *conn,
                                   const struct http_request_dest *dst, bool grpc,
                                   struct tcp_labels *out);

/* The same, and the id of the label set when it is one the telemetry
 * keeps (its labels memo, request_protocol included; 0: none): set it as
 * the record's labels_id so the request metrics find its series without
 * comparing the labels. */
void conn_telemetry_request_labels_id(struct conn_telemetry *t, const struct conn_record *conn,
                                      const struct http_request_dest *dst, bool grpc,
                                      struct tcp_labels *out, uint64_t *id);

/* One finished request (or one meshd refused itself), reported by the
 * HTTP carrier once the response is complete or the stream reset: its
 * request metrics under r->labels (conn_telemetry_request_labels), and
 * its access-log line on stdout when --access-log or the Telemetry
 * resources want one for conn's pod and side (the decision the TCP log
 * takes; conn NULL: only --access-log). Never blocks: a line stdout
 * cannot take now is counted as dropped. Borrows r and conn. */
void conn_telemetry_request(struct conn_telemetry *t, const struct conn_record *conn,
                            const struct http_request_record *r);

void conn_telemetry_get_stats(const struct conn_telemetry *t, struct conn_telemetry_stats *out);
const struct tcp_metrics *conn_telemetry_tcp(const struct conn_telemetry *t);
const struct http_metrics *conn_telemetry_http(const struct conn_telemetry *t);
const struct kernel_metrics *conn_telemetry_kernel(const struct conn_telemetry *t);

#endif
