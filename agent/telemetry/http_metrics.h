/* Istio's standard request metrics, as Istio names, labels and buckets
 * them, for the HTTP carrier (both reporters):
 *
 *   istio_requests_total (counter)
 *   istio_request_duration_milliseconds (histogram, Istio's buckets:
 *     0.5 1 5 10 25 50 100 250 500 1000 2500 5000 10000 30000 60000
 *     300000 600000 1800000 3600000)
 *   istio_request_bytes, istio_response_bytes (histograms, Istio's
 *     buckets 1 10 100 1000 10000 100000 1000000 10000000 100000000
 *     1000000000 ... as Envoy's stats)
 *
 * labelled with the TCP metrics' whole label set (telemetry/tcp_metrics.h,
 * request_protocol "http" or "grpc") plus response_code and
 * grpc_response_status. Bounded like the TCP table (series cap, drops
 * counted, idle series expire). And the access log line of one request,
 * with Envoy's default fields. */
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
    int grpc_status;          /* -1: none ("" label... rendered as Istio: "-"? see .c) */
    uint64_t request_bytes, response_bytes; /* bodies, as Envoy counts them */
    uint64_t duration_ns;
    uint64_t start_realtime_ns;           /* CLOCK_REALTIME at the request's first byte */
    const char *method, *path, *protocol; /* protocol: "HTTP/1.1", "HTTP/2" */
    const char *authority, *user_agent, *request_id, *forwarded_for;
    const char *upstream_host;    /* "ip:port" of the endpoint, NULL: none */
    const char *upstream_cluster; /* Envoy's "outbound|80|v1|payments.default.svc.cluster.local" */
    const char *response_flags;   /* the letters, "-" for none */
    uint64_t upstream_service_time_ms; /* x-envoy-upstream-service-time, 0: unknown */
};

struct http_metrics;

int http_metrics_new(uint64_t expiry_ns, struct http_metrics **out);
void http_metrics_free(struct http_metrics *m); /* accepts NULL */
void http_metrics_observe(struct http_metrics *m, const struct http_request_record *r,
                          uint64_t now_ns);
void http_metrics_expire(struct http_metrics *m, uint64_t now_ns);
struct http_response;
/* Appends the exposition of all series (text format 0.0.4). */
void http_metrics_render(const struct http_metrics *m, struct http_response *out);
size_t http_metrics_series(const struct http_metrics *m);
uint64_t http_metrics_dropped(const struct http_metrics *m);

/* One access-log line for a request: Envoy's default text format
 *   [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"
 *   %RESPONSE_CODE% %RESPONSE_FLAGS% ... "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% ...
 * or one JSON object with Envoy's JSON keys. Always NUL-terminated,
 * newline-ended when it fits; returns the length. */
size_t http_accesslog_format(const struct http_request_record *r, enum accesslog_format fmt,
                             char *buf, size_t len);
/* One write(2) to a non-blocking fd; false when the line was lost. */
bool http_accesslog_write(int fd, const struct http_request_record *r, enum accesslog_format fmt);

#endif
