/* Istio's standard request metrics, as Istio names, labels and buckets
 * them, for the HTTP carrier (both reporters):
 *
 *   istio_requests_total (counter)
 *   istio_request_duration_milliseconds (histogram, whole milliseconds
 *     as Envoy records them)
 *   istio_request_bytes, istio_response_bytes (histograms)
 *
 * all three histograms with Envoy's default buckets, which Istio keeps
 * unless a pod asks otherwise (sidecar.istio.io/statsHistogramBuckets):
 *   0.5 1 5 10 25 50 100 250 500 1000 2500 5000 10000 30000 60000
 *   300000 600000 1800000 3600000
 *
 * labelled with the TCP metrics' whole label set (telemetry/tcp_metrics.h,
 * request_protocol "http" or "grpc") plus response_code and
 * grpc_response_status, in the order Istio's stats filter emits them
 * (request_protocol, response_code, grpc_response_status, response_flags,
 * connection_security_policy last). Bounded by the shared series table
 * (telemetry/series.h: HTTP_METRICS_MAX_SERIES, drops counted, idle series
 * expire). And the access log line of one request, with Envoy's default
 * fields, and the x-request-id meshd gives a request that has none. */
#ifndef MESHD_TELEMETRY_HTTP_METRICS_H
#define MESHD_TELEMETRY_HTTP_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "telemetry/accesslog.h"
#include "telemetry/tcp_metrics.h"

#define HTTP_METRICS_MAX_SERIES 20000

/* One finished request (or one refused by meshd itself: 400, 403, 404,
 * 503 UO...). Strings are borrowed for the call; NULL renders "-". */
struct http_request_record {
    struct tcp_labels labels; /* reporter, workloads, principals, service,
                                 request_protocol, response_flags, security policy */
    int response_code;        /* 0: no response (reset): rendered "0" */
    int grpc_status;          /* -1: none (not gRPC, or no grpc-status): label "" as Istio */
    uint64_t request_bytes, response_bytes; /* bodies, as Envoy counts them */
    /* What the stream took on the wire, headers included: what Istio's
     * stats filter observes in istio_request_bytes / istio_response_bytes
     * (its downstream bytes meter). 0: the body counts above are used. */
    uint64_t request_wire_bytes, response_wire_bytes;
    uint64_t duration_ns;
    uint64_t start_realtime_ns;           /* CLOCK_REALTIME at the request's first byte */
    const char *method, *path, *protocol; /* protocol: "HTTP/1.1", "HTTP/2" */
    const char *authority, *user_agent, *request_id, *forwarded_for;
    const char *upstream_host;    /* "ip:port" of the endpoint, NULL: none */
    const char *upstream_cluster; /* Envoy's "outbound|80|v1|payments.default.svc.cluster.local" */
    const char *response_flags;   /* the letters, "-" (or NULL) for none; this, not
                                     labels.v[TL_RESPONSE_FLAGS], is the label */
    uint64_t upstream_service_time_ms; /* x-envoy-upstream-service-time, 0: unknown */
    bool grpc;                         /* content-type application/grpc*: request_protocol "grpc" */
    const struct trace_span *trace;    /* the request's span (telemetry/trace.h), NULL: none */
    const char *forwarded_proto;       /* x-forwarded-proto sent upstream (the edge's at a
                                          gateway), NULL: none; the span's http.url scheme */
    const char *source_principal;      /* the downstream's verified SPIFFE id where the
                                          reporter's own is not the source (an ISTIO_MUTUAL
                                          gateway server's client): the label
                                          source_principal and the span's; NULL: the labels' */
    /* Nonzero: `labels` are the kept set of this id (conn_telemetry_
     * request_labels_id): records with one id have equal labels, so the
     * metrics find their series without comparing them. 0: compared. */
    uint64_t labels_id;
};

struct http_metrics;
struct trace_span;

int http_metrics_new(uint64_t expiry_ns, struct http_metrics **out);
void http_metrics_free(struct http_metrics *m); /* accepts NULL */
void http_metrics_observe(struct http_metrics *m, const struct http_request_record *r,
                          uint64_t now_ns);
void http_metrics_expire(struct http_metrics *m, uint64_t now_ns);
struct textbuf;
/* Appends the exposition of all series (text format 0.0.4). */
void http_metrics_render(const struct http_metrics *m, struct textbuf *out);
size_t http_metrics_series(const struct http_metrics *m);
uint64_t http_metrics_dropped(const struct http_metrics *m);

/* One access-log line for a request: Envoy's default text format
 *   [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"
 *   %RESPONSE_CODE% %RESPONSE_FLAGS% ... "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% ...
 * or one JSON object with the keys of Istio's default JSON encoding
 * (start_time, method, path, ..., absent values null, numbers as numbers).
 * Fields the record does not carry (response code details, addresses,
 * SNI, route name) are "-" (text) or null (JSON).
 *
 * Values from the wire are hostile: in text, \ and " are backslashed and
 * control and non-ASCII bytes written \xHH (as Apache and nginx do;
 * Envoy escapes nothing); in JSON, invalid UTF-8 becomes '?' and the line
 * is ASCII (\uXXXX). Each value is truncated to a budget so that a whole
 * line fits HTTP_ACCESSLOG_LINE_MAX (PIPE_BUF: one non-blocking write of
 * it is all or nothing, never half a line). Always NUL-terminated,
 * newline-ended when it fits `len`; returns the length. */
#define HTTP_ACCESSLOG_LINE_MAX 4096
size_t http_accesslog_format(const struct http_request_record *r, enum accesslog_format fmt,
                             char *buf, size_t len);
/* One write(2) to a non-blocking fd; false when the line was lost. */
bool http_accesslog_write(int fd, const struct http_request_record *r, enum accesslog_format fmt);

/* A random (version 4) UUID for a request without x-request-id, from
 * OpenSSL's RAND_bytes (getrandom(2) if that fails): 36 lowercase
 * characters 8-4-4-4-12 and a NUL. */
void http_request_id(char out[37]);

#endif
