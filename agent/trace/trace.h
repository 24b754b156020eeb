/* Trace context of one request, codec-neutral: HTTP/1 (http/request.c)
 * and HTTP/2 hand it the request's fields (struct http_field) and get
 * back the fields to send upstream.
 *
 * Incoming context, the first valid of:
 *   W3C traceparent "00-<32 hex trace>-<16 hex parent>-<2 hex flags>"
 *     (version 00 only, lower-case hex, all-zero ids invalid; an
 *     invalid traceparent is ignored, and its tracestate with it),
 *   B3 single "b3: <trace>-<span>[-<sampled>[-<parent>]]" or "b3: 0|1|d",
 *   B3 multi x-b3-traceid (16 or 32 hex), x-b3-spanid, x-b3-parentspanid,
 *     x-b3-sampled (1/0, true/false), x-b3-flags (1: debug, sampled).
 * A sampling decision in it (W3C flags bit 0, B3 sampled or debug) is
 * honoured; otherwise the caller's percentage decides (trace_decide).
 *
 * This hop's span is a child of the incoming span (same trace id) or the
 * root of a new trace. Upstream the request carries traceparent with our
 * span as its parent, tracestate as received (when the traceparent was
 * valid), each B3 form that came in rewritten with our span, and every
 * other field (x-request-id, x-b3-flags) untouched. */
#ifndef MESHD_TRACE_TRACE_H
#define MESHD_TRACE_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/message.h"

enum trace_format {
    TRACE_NONE,      /* no (valid) incoming context */
    TRACE_W3C,       /* traceparent */
    TRACE_B3_SINGLE, /* b3 */
    TRACE_B3_MULTI,  /* x-b3-* */
};

/* What came in. sampled: -1 no decision, 0 no, 1 yes. */
struct trace_incoming {
    enum trace_format format;
    uint8_t trace_id[16];
    uint8_t span_id[8];
    bool trace_id_64; /* B3 with a 64-bit trace id: sent on as 16 hex */
    int sampled;
    bool debug;    /* B3 debug (x-b3-flags: 1, or b3 "d") */
    bool has_span; /* b3 "1"/"0"/"d" alone carries no ids */
    /* trace_extract: which valid B3 forms came (whichever was chosen):
     * each is sent on, rewritten, beside traceparent. */
    bool b3_single, b3_multi;
};

/* The first value of `name` among f (case-insensitive), or NULL: this
 * folder is below http/ (which calls it), so it has its own lookup. */
const char *trace_field_get(const struct http_field *f, size_t n, const char *name);

/* Parsers of one value: 0, or -EINVAL (the field is ignored). */
int trace_parse_traceparent(const char *v, struct trace_incoming *out);
int trace_parse_b3_single(const char *v, struct trace_incoming *out);
/* The x-b3-* fields among `f`; -ENOENT when there is no x-b3-traceid. */
int trace_parse_b3_multi(const struct http_field *f, size_t n, struct trace_incoming *out);
/* The first valid context among the request's fields (format NONE if
 * none), with the B3 forms that came beside it. */
void trace_extract(const struct http_field *f, size_t n, struct trace_incoming *out);

/* Random bits for ids and sampling; seeded from the OS once. The loop
 * thread is its only user. */
uint64_t trace_random(void);
/* The incoming decision, else true with probability ppm / 10^6. */
bool trace_decide(const struct trace_incoming *in, uint32_t ppm);

/* This hop's span, as the request carries it. */
struct trace_span {
    bool active;  /* a span exists for this request (tracing is on) */
    bool sampled; /* sent upstream as sampled */
    bool report;  /* sampled and reported (not disableSpanReporting) */
    bool server;  /* SERVER (destination) or CLIENT (source) */
    bool has_parent;
    bool trace_id_64;
    enum trace_format in_format;
    bool b3_single, b3_multi; /* the B3 forms to send on */
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_id[8];
    uint64_t start_real_ns;
    /* customTags resolved at the request's start: "key\0value\0" pairs. */
    uint8_t ntags;
    uint16_t tags_len;
    char tags[512];
    uint8_t exporter; /* the provider it is reported to (the tracer's index) */
};

/* Begins a span from `in`: same trace, a new span id; or a new trace. */
void trace_span_begin(struct trace_span *s, const struct trace_incoming *in, bool sampled,
                      bool server, uint64_t start_real_ns);
/* Appends one custom tag (false when the bound is reached). */
bool trace_span_tag(struct trace_span *s, const char *key, const char *value);

/* Hex of an id (2 * len characters and a NUL). */
void trace_hex(const uint8_t *id, size_t len, char *out);

/* Storage for the values of the fields trace_fields appends. */
struct trace_out {
    char traceparent[56];
    char b3[80];
    char b3_trace[33], b3_span[17], b3_parent[17];
};

/* Rewrites the upstream field list f[0..n) (capacity cap) for span `s`:
 * drops every incoming traceparent, b3 and x-b3-{traceid,spanid,
 * parentspanid,sampled} (and tracestate when the incoming traceparent was
 * not valid), then appends this hop's. Values point into `buf`. Returns
 * the new count. An inactive span leaves the list as it is. */
size_t trace_fields(const struct trace_span *s, struct http_field *f, size_t n, size_t cap,
                    struct trace_out *buf);

#endif
