/* Outbound proxy: accepts what the BPF capture redirected to the pod's
 * 127.0.0.1:15001 / [::1]:15001, recovers where the app meant to go, and
 * hands the connection on: HBONE to mesh endpoints, plain TCP otherwise. */
#ifndef MESHD_PROXY_OUTBOUND_H
#define MESHD_PROXY_OUTBOUND_H

#include <stdbool.h>
#include <stdint.h>

#include "hbone/pool.h"
#include "http/proxy.h" /* types only: the carrier is reached through opts */
#include "proxy/outbound_route.h"

struct capture;
struct cfg_destination;
struct conn_record;
struct http_decision;
struct conn;
struct http_proxy;
struct http_router;
struct http_request_record;
struct http_request_view;
struct conns;
struct loop;
struct pod;
struct outbound;

/* Decides what happens to a captured connection (the config does). */
typedef void (*outbound_route_fn)(void *ctx, const struct pod *src,
                                  const struct meshd_addr *orig_dst, struct outbound_route *out);

struct outbound_opts {
    uint16_t port;           /* 15001 */
    outbound_route_fn route; /* NULL: everything passes through */
    /* A route decision `r` will not become the connection's record (its
     * attempt failed before the connection was established, or it was not
     * used):
     * release what routing counted for it; `failed` says the endpoint
     * failed. */
    void (*route_released)(void *ctx, const struct outbound_route *r, bool failed);
    void *route_ctx;
    struct hbone_pool *pool; /* borrowed */
    /* The HTTP carrier (borrowed; NULL: every connection is carried as
     * bytes). `protocol` says what a destination speaks (enum http_proto);
     * HTTP and unnamed ports are sniffed (sniff_timeout_ns for unnamed
     * ones: a server-first protocol is carried as bytes after it), and
     * what speaks HTTP/1 is carried request by request, routed by
     * http_route (route_ctx) and reported to http_report. */
    struct http_proxy *http;
    /* The carrier's entry points (http/proxy.h), given here so that the
     * proxies below never call up into it. */
    int (*http_sniff)(struct http_proxy *hp, struct conn *c, uint64_t timeout_ns, http_sniff_fn fn,
                      void *ctx);
    int (*http_start)(struct http_proxy *hp, struct conn *c, const struct meshd_addr *orig_dst,
                      const struct http_router *router, void *user);
    int (*protocol)(void *ctx, const struct pod *src, const struct meshd_addr *orig_dst);
    void (*http_route)(void *ctx, const struct pod *src, const struct meshd_addr *orig_dst,
                       const struct http_request_view *req, struct http_decision *d);
    void (*http_mirror)(void *ctx, const struct pod *src, const struct meshd_addr *orig_dst,
                        const struct cfg_destination *dest, struct outbound_route *out);
    void (*http_report)(void *ctx, struct http_request_record *r, const struct conn_record *conn,
                        const struct http_decision *d);
    void *http_report_ctx;
    uint64_t sniff_timeout_ns; /* 0: 100 ms */
    /* The same-node fast path (route action LOCAL, proxy/local_path.h): the
     * destination's admission, the HBONE server's callback. NULL: routes
     * to LOCAL are refused (the mesh makes none then). */
    int (*local_authorize)(void *ctx, const struct pod *dst, const char *peer_id,
                           const struct meshd_addr *src, const struct meshd_addr *dst_addr);
    void *local_authorize_ctx;
};

/* `loop`, `capture` and `conns` are borrowed. */
int outbound_new(struct loop *loop, struct capture *capture, struct conns *conns,
                 const struct outbound_opts *opts, struct outbound **out);
/* The pool's stream-done callback for connections this proxy tunnelled. */
void outbound_on_stream_done(void *ob, struct hbone_stream *st, void *stream_ctx, int err,
                             const struct hbone_stream_stats *stats);
void outbound_free(struct outbound *ob);

struct outbound_stats {
    uint64_t retries;  /* attempts made after a failed one */
    uint64_t timeouts; /* attempts aborted at perTryTimeout or timeout */
    /* The same-node fast path: allowed, refused by policy, self-calls. */
    uint64_t local_connections, local_denied, local_self_calls;
};
void outbound_get_stats(const struct outbound *ob, struct outbound_stats *st);

/* Carries connection `c` of enrolled pod `pod` (its record's src and
 * orig_dst set) as bytes along `route`, decided by the caller: the
 * ingress gateway's PASSTHROUGH servers route by SNI. */
void outbound_carry(struct outbound *ob, struct pod *pod, struct conn *c,
                    const struct outbound_route *route);

/* pod_hooks for the enrollment registry. */
int outbound_attach_pod(void *ob, struct pod *pod);
void outbound_detach_pod(void *ob, struct pod *pod);
/* Closes the pod's 15001 listeners (drain): new captured connects are
 * refused; open ones go on. */
void outbound_quiesce_pod(void *ob, struct pod *pod);

#endif
