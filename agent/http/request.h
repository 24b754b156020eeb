/* One request in flight on an HTTP session, and everything the route's
 * policy does to it that is not I/O: the request view routing and policy
 * see, the head sent upstream for each attempt (rewrites, header edits,
 * x-request-id, the framing re-written), the body kept for a retry, the
 * retry and timeout policy (Istio's defaults when the route has none),
 * faults, the response head and framing passed downstream, local replies
 * as Envoy words them, and the telemetry record. The session
 * (http/proxy.c) does the I/O and calls these. */
#ifndef MESHD_HTTP_REQUEST_H
#define MESHD_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"
#include "http/internal.h"
#include "http/proxy.h"
#include "trace/trace.h"

struct http_request_record;

#define HTTP_OUT_HEADERS_MAX  256 /* the request's own (<= 100) plus the route's edits */
#define HTTP_PATH_MAX         8192
#define HTTP_LOCAL_FIELDS_MAX 12

/* Why an attempt failed before its response went downstream. */
enum http_failure {
    HTTP_FAIL_CONNECT, /* no connection to the endpoint */
    HTTP_FAIL_RESET,   /* connected, then reset or closed before a response */
    HTTP_FAIL_TIMEOUT, /* perTryTimeout (or the route's timeout) passed */
    HTTP_FAIL_STATUS,  /* a response whose status the retry policy retries */
};

enum http_framing { HTTP_FRAME_NONE, HTTP_FRAME_LENGTH, HTTP_FRAME_CHUNKED, HTTP_FRAME_CLOSE };

struct http_request {
    const struct h1_head *head; /* the parser's, valid while it is paused */
    struct http_request_view view;
    char *target; /* path, NUL, query: owned copy the view points into */
    char request_id[40];
    bool has_request_id; /* the client sent one */
    bool is_head, upgrade, upgraded;
    bool req_complete; /* the whole request was read */
    bool down_keep_alive, up_keep_alive;
    bool decided, attempt_open, faulted, retried, resp_head_sent, reported, mirrored;
    struct http_decision d;
    struct meshd_addr orig_dst;
    /* attempts */
    unsigned attempt; /* 0 for the first */
    uint64_t start_ns, start_real_ns, deadline_ns, try_deadline_ns, delay_until_ns;
    uint64_t first_byte_ns; /* the response head arrived */
    struct hbuf body;       /* sent so far, framed, for a retry */
    bool body_overflow;
    enum http_framing req_framing, resp_framing;
    /* outcome */
    int status;
    enum resp_flag flag;
    uint64_t req_bytes, resp_bytes;
    char upstream_host[ADDR_STRLEN];
    /* The failure a retry follows: it stands when the retry cannot run. */
    enum http_failure last_failure;
    int last_status;
    const char *cors_origin; /* an Origin the route's corsPolicy allows (the head's) */
    /* gRPC (HTTP/2): content-type application/grpc*, and the grpc-status
     * of the response's trailers (or of a trailers-only head); -1 none. */
    bool grpc;
    int grpc_status;
    struct trace_span trace;    /* this hop's span (inactive without tracing) */
    struct trace_out trace_out; /* the trace fields' values of the attempt being sent */
    /* Served at the destination: retries and timeouts are the source's
     * (or a waypoint's), never the destination's, as in Istio ambient. */
    bool at_destination;
};

void http_request_init(struct http_request *r);
/* Drops what the request holds (its snapshot reference, copies). */
void http_request_reset(struct http_request *r);

/* A head arrived: builds the view. -EBADMSG with the status and reason
 * to answer (no Host on HTTP/1.1, CONNECT, a target that is not a path). */
int http_request_begin(struct http_request *r, const struct meshd_addr *orig_dst, uint64_t now,
                       int *status, const char **why);
/* Before each routing: the last attempt's endpoint becomes the one to
 * avoid, its snapshot reference is dropped. */
void http_request_prepare_route(struct http_request *r);
/* The route's fault: a delay (ns, 0 none) or an abort status (0 none). */
uint64_t http_request_fault(struct http_request *r, int *abort_status);
/* True with probability ppm / 10^6 (Istio's percentages). */
bool http_chance_ppm(uint32_t ppm);
void http_request_start_try(struct http_request *r, uint64_t now);
/* Formats this attempt's head and queues it with the body kept so far.
 * `shadow`: a mirrored copy (Envoy's "-shadow" suffix on the authority),
 * sent once the request is whole. */
int http_request_send_head(struct http_request *r, struct hup *up, bool shadow);
/* Codec-neutral: this attempt's end-to-end fields (the request's, less
 * hop-by-hop ones and Host, with the route's and the destination's edits
 * and x-request-id) into `f` (cap >= HTTP_OUT_HEADERS_MAX), the authority
 * to send (rewritten; `shadow`: into authority_buf) and the target (path
 * and query, rewritten). The count, or -E2BIG. */
int http_request_attempt_fields(struct http_request *r, bool shadow, struct http_field *f,
                                size_t cap, char *authority_buf, size_t authority_len,
                                const char **authority, char *target, size_t target_len);
/* Body bytes from the downstream: framed to `up` (NULL: dropped) and
 * kept for a retry while they fit. */
int http_request_body(struct http_request *r, struct hup *up, const char *data, size_t len);
void http_request_body_end(struct http_request *r, struct hup *up);

/* A local reply: its status, body, Location and flag (borrowed). */
struct http_reply {
    int status;
    const char *body;
    size_t body_len;
    const char *location;
    enum resp_flag flag;
};
/* The route's mirrors of a request once it is whole (and small enough
 * to have been kept), once: for each mirror the dice choose, the router's
 * endpoint is handed to `send`, which sends the copy its codec's way
 * (true: it went); fire and forget, the answers dropped, the endpoints'
 * load not held (nobody waits for them). (exchange.c) */
struct pod;
typedef bool (*http_mirror_fn)(void *ctx, const struct outbound_route *route,
                               const struct pod *pod);
void http_request_mirror(struct http_request *r, struct http_proxy *hp,
                         const struct http_router *rt, void *user,
                         const struct meshd_addr *orig_dst, http_mirror_fn send, void *ctx);
/* The request's span begins (the proxy's tracer, if any) for `pod`, on
 * the destination side when `server`. (exchange.c) */
void http_request_trace_begin(struct http_request *r, const struct http_proxy *hp,
                              const struct pod *pod, bool server);
/* Routes the next attempt (http_request_prepare_route, then the router's
 * route on the view): false when it is to be forwarded (r->d.route), true
 * with the local reply the decision or a refusal gives (Envoy's words).
 * (exchange.c) */
struct pod;
bool http_request_route(struct http_request *r, const struct http_router *rt, void *user,
                        const struct pod *pod, struct http_reply *reply);
/* An attempt failed (`why`, status for HTTP_FAIL_STATUS): true when the
 * policy tries again (counted in `st`), else false with Envoy's reply. */
bool http_request_failed(struct http_request *r, struct http_proxy_stats *st, enum http_failure why,
                         int status, struct http_reply *reply);
/* Whether to try again after `why` (status for HTTP_FAIL_STATUS), as the
 * route's retry policy and its budget say; counts the attempt if so. */
bool http_request_may_retry(struct http_request *r, enum http_failure why, int status,
                            uint64_t now);
bool http_request_retry_on_status(struct http_request *r, int status, uint64_t now);
/* A deadline passed for the attempt in flight (why: TIMEOUT). */
bool http_request_deadline(struct http_request *r, uint64_t now, enum http_failure *why);

/* Envoy's local replies: the body text, status and flag for a failure
 * that exhausted the retries, and for a refusal by the router. */
const char *http_failure_reply(enum http_failure why, int *status, enum resp_flag *flag);
const char *http_refusal_reply(enum resp_flag flag, int *status);

/* Codec-neutral: a local reply's fields (f: HTTP_LOCAL_FIELDS_MAX); records
 * its status and flag. */
size_t http_request_local_fields(struct http_request *r, int status, size_t body_len,
                                 const struct http_field *extra, size_t nextra,
                                 const char *location, enum resp_flag flag, struct http_field *f);
/* Formats a local reply (records its status and flag). */
int http_request_local_reply(struct http_request *r, int status, const char *body, size_t body_len,
                             const struct http_field *extra, size_t nextra, const char *location,
                             enum resp_flag flag, struct hbuf *out);
/* The response's head for the downstream (records status; decides the
 * downstream framing: an until-close body is chunked to a keep-alive
 * HTTP/1.1 client). */
int http_response_head(struct http_request *r, const struct h1_head *h, bool keep_alive,
                       struct hbuf *out);
/* Codec-neutral: the response's end-to-end fields with the route's and the
 * destination's edits and CORS (f: HTTP_OUT_HEADERS_MAX; cors: its text). */
size_t http_response_fields(const struct http_request *r, const struct h1_head *h,
                            struct http_field *f, char *cors, size_t cors_len);
int http_response_interim(struct http_request *r, const struct h1_head *h, struct hbuf *out);
int http_response_body(struct http_request *r, struct hbuf *out, const char *data, size_t len);
void http_response_complete(struct http_request *r, struct hbuf *out, uint64_t *counted);

/* The telemetry record of the request (strings borrowed from `r`). */
void http_request_record_fill(struct http_request *r, struct http_request_record *out);

#endif
