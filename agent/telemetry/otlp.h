/* Span export in OTLP/HTTP JSON (opentelemetry-proto's
 * ExportTraceServiceRequest, POST <path> with Content-Type
 * application/json), which Jaeger, Tempo and the OpenTelemetry Collector
 * accept on their OTLP/HTTP port (4318, /v1/traces).
 *
 * The JSON mapping as the OTLP specification fixes it: lowerCamelCase
 * field names, trace and span ids as lower-case hex (not base64), 64-bit
 * integers (times in unix nanoseconds, intValue) as decimal strings, and
 * enums as their integer values (kind 2 SERVER, 3 CLIENT; status code 2
 * ERROR): names are not allowed. Spans are grouped into one resourceSpans
 * per service.name, one scopeSpans (scope "meshd") each.
 *
 * The exporter runs on the agent's loop and never blocks it: spans wait
 * in a bounded queue (OTLP_QUEUE_MAX spans, OTLP_QUEUE_BYTES encoded) and
 * leave in batches (OTLP_BATCH_MAX spans, or what waited OTLP_FLUSH_MS)
 * over one keep-alive HTTP/1.1 connection, one request at a time, with a
 * connect and response deadline. A span that finds the queue full is
 * dropped; a batch that fails (connect refused, timeout, a status other
 * than 2xx) is dropped whole: both counted, nothing retried (tracing is
 * best effort, requests never wait for it). */
#ifndef MESHD_TELEMETRY_OTLP_H
#define MESHD_TELEMETRY_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"

#define OTLP_QUEUE_MAX   4096
#define OTLP_QUEUE_BYTES (8u << 20)
#define OTLP_SPAN_MAX    (16u << 10) /* one encoded span */
#define OTLP_BATCH_MAX   512
#define OTLP_FLUSH_MS    1000
#define OTLP_TIMEOUT_MS  5000
#define OTLP_PATH_MAX    256

enum otlp_kind { OTLP_KIND_SERVER = 2, OTLP_KIND_CLIENT = 3 };

struct otlp_attr {
    const char *key;
    const char *str; /* NULL: the integer */
    int64_t i;
};

/* One finished span; everything borrowed for the call. */
struct otlp_span {
    const uint8_t *trace_id;  /* 16 bytes */
    const uint8_t *span_id;   /* 8 */
    const uint8_t *parent_id; /* 8, NULL: a root span */
    const char *name;
    enum otlp_kind kind;
    uint64_t start_unix_ns, end_unix_ns;
    bool error; /* status code ERROR (a 5xx, or no response) */
    const struct otlp_attr *attrs;
    size_t nattrs;
};

/* The compact JSON of one Span object (malloc'd), or NULL. */
char *otlp_span_encode(const struct otlp_span *s);
/* The ExportTraceServiceRequest for n spans (encoded by otlp_span_encode)
 * with their resource's service.name: malloc'd, *len set, or NULL. */
char *otlp_request_encode(const char *const *services, const char *const *spans, size_t n,
                          size_t *len);

/* Where to export: "IP:PORT[/PATH]" (PATH default /v1/traces), with an
 * optional "NAME=" before it naming the provider (Istio's
 * extensionProviders[].name, which Telemetry tracing[].providers[].name
 * chooses; default "otel"). 0, or -EINVAL. */
struct otlp_collector {
    char name[64];
    struct meshd_addr addr;
    char path[OTLP_PATH_MAX];
};
int otlp_collector_parse(const char *spec, struct otlp_collector *out);
/* A collector from MeshConfig's parts: `host` an IP literal or a DNS
 * name, resolved now (getaddrinfo blocks: at start-up only, never on the
 * loop). 0, -EINVAL, or -EHOSTUNREACH when the name does not resolve. */
int otlp_collector_resolve(const char *name, const char *host, uint16_t port, const char *path,
                           struct otlp_collector *out);

struct otlp_opts {
    struct otlp_collector collector;
    size_t queue_max;    /* 0: OTLP_QUEUE_MAX */
    size_t batch_max;    /* 0: OTLP_BATCH_MAX */
    unsigned flush_ms;   /* 0: OTLP_FLUSH_MS */
    unsigned timeout_ms; /* 0: OTLP_TIMEOUT_MS */
};

struct otlp_stats {
    uint64_t exported;      /* spans a collector accepted */
    uint64_t dropped;       /* spans lost: queue full, or their batch failed */
    uint64_t export_errors; /* batches that failed */
    uint64_t batches;       /* batches sent and accepted */
    size_t queued;
};

struct loop;
struct otlp;

int otlp_new(struct loop *loop, const struct otlp_opts *opts, struct otlp **out);
/* Drops what is queued (counted) and closes the connection. Accepts NULL. */
void otlp_free(struct otlp *x);
/* Queues one span (its service.name and otlp_span_encode's text, copied).
 * false when it was dropped (the queue is full, it is too big, or
 * span_json is NULL: a span that could not be encoded). */
bool otlp_enqueue(struct otlp *x, const char *service, const char *span_json);
void otlp_get_stats(const struct otlp *x, struct otlp_stats *out);

#endif
