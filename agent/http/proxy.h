/* The HTTP carrier: a captured connection whose destination speaks HTTP
 * (issue 15) is carried request by request instead of byte by byte.
 *
 * One session per downstream connection reads requests with the HTTP/1
 * codec (http/h1.h), asks its router where each one goes, and sends it over
 * an upstream HTTP/1.1 connection: plain TCP from the pod's netns, or an
 * HBONE stream (the pool's CONNECT tunnel, one stream per upstream
 * connection, kept alive and reused per endpoint). The router decides per
 * request (a VirtualService's weights, matches, redirects...); the session
 * applies the route's actions (rewrites, header edits, faults, timeouts,
 * retries on another endpoint) and answers locally what no upstream should
 * see (a malformed request: 400 before a byte reaches the app; no route:
 * 404; no endpoint: 503 UH; a deadline: 504 UT).
 *
 * Requests on one connection are served one at a time, in order: a
 * pipelined request is read only once the previous response is complete,
 * which keeps responses in order and bounds what one client holds. Memory
 * per session: a read buffer (64 KiB at most) and one upstream's output
 * buffer (64 KiB at most; reading stops while it is full), the request body
 * kept for a retry up to HTTP_RETRY_BODY_MAX. */
#ifndef MESHD_HTTP_PROXY_H
#define MESHD_HTTP_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/upstream.h"
#include "http/message.h"
#include "proxy/outbound_route.h"

struct cfg_snapshot;
struct cfg_http_route;
struct cfg_route;
struct cfg_destination;
struct conn;
struct conn_record;
struct hbone_pool;
struct loop;
struct pod;
struct http_proxy;
struct http_request_record;
struct trace_span;

#define HTTP_RETRY_BODY_MAX (64u * 1024) /* Envoy's per-request buffer for retries */

/* What the router decides for one attempt of a request. */
enum http_verdict {
    HTTP_FORWARD, /* `route` says how (HBONE, plain TCP, or REFUSE with a flag) */
    HTTP_RESPOND, /* answer locally: status, body, location */
};

struct http_decision {
    enum http_verdict verdict;
    /* RESPOND */
    int status;
    const char *body; /* borrowed from `snap` or static; NULL: none */
    size_t body_len;
    char location[512]; /* redirect: the Location header, "" when none */
    enum resp_flag flag;
    /* FORWARD: the endpoint and its carrier, as for an L4 connection. */
    struct outbound_route route;
    /* The matched route's HTTP actions (rewrite, headers, retries,
     * timeout, fault), NULL when none; borrowed from `snap`. */
    const struct cfg_http_route *actions;
    const struct cfg_route *vs_route; /* the route `actions` belong to (its matches) */
    size_t dest_index;                /* which destination's header edits apply */
    /* The target to send instead of the request's (path and query: the
     * destination's normalized path); malloc'd, freed with the decision. */
    char *target;
    /* A reference on the snapshot `actions`, `body` and route strings live
     * in: the session drops it when the request ends. NULL: none taken. */
    struct cfg_snapshot *snap;
    char cluster[320]; /* Envoy's name, for the access log */
    /* At the edge (an ingress gateway's router sets `edge`), as Envoy's
     * edge proxy sanitizes an external request: the client's
     * x-forwarded-for, x-forwarded-proto, x-request-id and x-envoy-*
     * fields are replaced by these and a fresh x-request-id. */
    bool edge;
    char edge_xff[320];   /* x-forwarded-for: the client's, then its address */
    char edge_proto[8];   /* x-forwarded-proto: "https" or "http" */
    char edge_client[64]; /* x-envoy-external-address: the client's address */
    /* The destination's port speaks HTTP/1.1 only (an ingress gateway's
     * router sets it for a port not declared http2 or grpc, by name or
     * appProtocol, as Istio's gateway selects the upstream protocol): an
     * HTTP/2 client's request goes upstream as HTTP/1.1. false: an h2
     * client is answered over h2 upstream (useClientProtocol). */
    bool upstream_http1;
};

/* Where a session asks and tells (the outbound proxy over the mesh). */
struct http_router {
    /* The source pod, or NULL once it was unenrolled (then the session
     * ends after the response in flight). */
    const struct pod *(*pod)(void *user);
    /* Decides one attempt of `req` (d->route.avoid_* name the endpoint
     * that just failed, on a retry). */
    void (*route)(void *user, const struct pod *pod, const struct meshd_addr *orig_dst,
                  const struct http_request_view *req, struct http_decision *d);
    /* nginx's peer free for a FORWARD attempt: its endpoint's load is
     * released; `failed` feeds outlier detection (a connect failure, a
     * reset, or a 5xx). */
    void (*free)(void *user, const struct outbound_route *r, bool failed);
    /* Where a mirrored copy to `dest` goes (VirtualService mirror: fire
     * and forget); REFUSE: nowhere. NULL: no mirrors. */
    void (*mirror)(void *user, const struct pod *pod, const struct meshd_addr *orig_dst,
                   const struct cfg_destination *dest, struct outbound_route *out);
    /* One finished request, for metrics and the access log: `r` has
     * what the session knows; the router fills its labels from the
     * connection's record and the decision (NULL: none was made). */
    void (*report)(void *user, struct http_request_record *r, const struct conn_record *conn,
                   const struct http_decision *d);
    /* The session is over: drop what the router holds for it. */
    void (*release)(void *user);
};

struct http_proxy_opts {
    struct upstream_owner owner; /* plain-TCP upstream sockets are meshd's own */
    struct hbone_pool *pool;     /* borrowed: HBONE upstreams (NULL: none) */
    uint64_t idle_timeout_ns;    /* a downstream connection between requests; 0: 1 h */
    uint64_t head_timeout_ns;    /* to receive a whole request head; 0: 60 s */
    unsigned max_idle_upstreams; /* kept alive per endpoint; 0: 32 */
    /* A request in flight with no byte moving either way (an upstream
     * stalled mid-response, a client that stopped reading) is ended
     * after this (Envoy's stream_idle_timeout, flag SI); 0: 5 min. */
    uint64_t stream_idle_timeout_ns;
    /* Tracing (telemetry/tracer.h tracer_begin, reached through this
     * pointer: http/ is below telemetry/): called at each request head
     * for the pod ns/name the session serves (server: the destination
     * side) to begin the request's span. NULL: no tracing. */
    void (*trace_begin)(void *ctx, const char *ns, const char *name, bool server,
                        const struct http_request_view *req, struct trace_span *out);
    void *trace_ctx;
};

struct http_proxy_stats {
    uint64_t sessions, active_sessions, requests, local_replies, bad_requests, retries, timeouts,
        upstreams_opened, upstreams_reused, upstreams_idle, mirrored;
};

int http_proxy_new(struct loop *loop, const struct http_proxy_opts *opts, struct http_proxy **out);
/* Ends every session (their connections are reset). Accepts NULL. */
void http_proxy_free(struct http_proxy *hp);
void http_proxy_get_stats(const struct http_proxy *hp, struct http_proxy_stats *st);
/* A drain (SIGTERM): connections between requests close now, the others
 * after the response in flight (Connection: close); idle upstreams close. */
void http_proxy_drain(struct http_proxy *hp);
/* The HBONE pool's stream end, for upstreams this proxy tunnelled. */
void http_proxy_on_stream_done(void *hp, struct hbone_stream *st, void *stream_ctx, int err,
                               const struct hbone_stream_stats *stats);

/* What a client's first bytes say it speaks. */
enum http_sniffed {
    HTTP_SNIFF_HTTP1, /* a request line: "GET /x HTTP/1.1" */
    HTTP_SNIFF_OTHER, /* anything else (TLS, a binary protocol), or
                         nothing within the wait: carried as bytes */
    HTTP_SNIFF_GONE,  /* the client closed or reset first: the connection was ended */
    HTTP_SNIFF_HTTP2, /* the HTTP/2 preface (h2c prior knowledge): served by the HTTP/2
                         session http_session_start hands the connection to */
};
/* Classifies the first `n` bytes: HTTP1, HTTP2 or OTHER, or -EAGAIN when
 * more are needed to tell. */
int http_sniff_bytes(const char *p, size_t n);
typedef void (*http_sniff_fn)(void *ctx, struct conn *c, enum http_sniffed what);
/* Waits for `c`'s client to speak first (Istio's protocol sniffing for
 * ports it cannot name): its bytes are peeked, never consumed, so either
 * carrier can take the connection after. After `timeout_ns` with nothing
 * telling (a server-first protocol), OTHER. `fn` is told once, possibly
 * before this returns. -ENOMEM: nothing started. */
int http_sniff(struct http_proxy *hp, struct conn *c, uint64_t timeout_ns, http_sniff_fn fn,
               void *ctx);

/* Serves connection `c` (its app socket held by the table: the session
 * takes it) to `orig_dst` as HTTP (HTTP/1.x, or HTTP/2 when the client's
 * first bytes are the preface: see http/h2_session.h). `router` is copied, `user` is the
 * router's until release. -ENOMEM: nothing started. */
int http_session_start(struct http_proxy *hp, struct conn *c, const struct meshd_addr *orig_dst,
                       const struct http_router *router, void *user);

/* The destination side: serves requests arriving on `down_fd` (the app's
 * end of an HBONE stream) or on `c`'s socket (a plaintext connection,
 * whose record the session then ends) to the app's connection `app_fd`,
 * all taken over, with `router` deciding each one (authorization: a
 * refusal is answered 403 and never reaches the app). Without `c` the
 * caller's carrier keeps the record. `who` names the pod in logs. 0 or
 * -errno (the fds closed, `c` ended; `user` not released). */
int http_session_start_inbound(struct http_proxy *hp, struct conn *c, int down_fd, int app_fd,
                               const char *who, const struct meshd_addr *orig_dst,
                               const struct http_router *router, void *user);

/* The destination side over HBONE: the server stream `st` (answered 200
 * here) is the downstream itself, its requests served to the app's
 * connection `app_fd` (taken over). The caller's carrier keeps the
 * connection's record and hears of the stream's end as usual. 0, or
 * -errno: app_fd closed, `user` released, the stream not answered (the
 * caller rejects it). */
int http_session_start_inbound_stream(struct http_proxy *hp, struct hbone_stream *st, int app_fd,
                                      const char *who, const struct meshd_addr *orig_dst,
                                      const struct http_router *router, void *user);

#endif
