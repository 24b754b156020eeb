/* meshctl dashboard jaeger's collector: OTLP/HTTP JSON trace exports
 * (POST /v1/traces, an ExportTraceServiceRequest:
 * resourceSpans[].scopeSpans[].spans[] with hex traceId/spanId/
 * parentSpanId, name, kind, startTimeUnixNano/endTimeUnixNano as strings
 * or numbers, attributes [{key, value: {stringValue|intValue|boolValue|
 * doubleValue}}], the service from the resource's service.name) kept in a
 * bounded in-memory ring: past its capacity the oldest span is evicted and
 * counted. A span that does not validate (ids not hex of the right length,
 * an all-zero id, a missing name or time, end before start) is rejected
 * and counted, the rest of the export kept, as OTLP's partial success
 * says. Strings are cut to TRACE_MAX_STR bytes, attributes past
 * TRACE_MAX_ATTRS per span dropped. Not thread-safe: one owner. */
#ifndef MESHCTL_TRACES_H
#define MESHCTL_TRACES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define TRACE_DEFAULT_SPANS    10000
#define TRACE_MAX_SPANS_EXPORT 10000 /* spans in one export request */
#define TRACE_MAX_STR          1024
#define TRACE_MAX_ATTRS        64
#define TRACE_MAX_RESULTS      500

struct trace_store;

struct trace_stats {
    uint64_t received, stored, evicted, rejected;
};

int trace_store_new(size_t capacity, struct trace_store **out); /* 0 or -EINVAL/-ENOMEM */
void trace_store_free(struct trace_store *s);                   /* accepts NULL */

/* One export's body. Returns the spans accepted (>= 0) with `rejected`
 * set, or -EINVAL (not an ExportTraceServiceRequest: nothing kept) with a
 * reason in err, or -E2BIG (more than TRACE_MAX_SPANS_EXPORT spans). */
int trace_store_ingest(struct trace_store *s, const char *body, size_t len, size_t *rejected,
                       char *err, size_t errlen);

/* Traces newest first, as summaries {traceId, name (the root span's),
 * service, startUnixNano, durationUs, spans, services, errors}; `service`
 * NULL or "" for any, traces shorter than min_duration_us left out, at
 * most `limit` (capped at TRACE_MAX_RESULTS). A new reference or NULL. */
json_t *trace_store_search(const struct trace_store *s, const char *service,
                           uint64_t min_duration_us, size_t limit);

/* {traceId, spans: [...]} with the trace's spans by start time (then by
 * parent before child), each {spanId, parentSpanId, name, service, kind,
 * startUnixNano, durationUs, attributes: {key: value}}; NULL if unknown. */
json_t *trace_store_get(const struct trace_store *s, const char *trace_id);

/* Distinct services of the stored spans, in first-seen order. */
json_t *trace_store_services(const struct trace_store *s);

void trace_store_stats(const struct trace_store *s, struct trace_stats *out);

#endif
