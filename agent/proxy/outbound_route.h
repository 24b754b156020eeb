/* What the router decides for one outbound connection (or one attempt of
 * it): the action, which names the carrier, and what that carrier and the
 * flow need. Types only, so that the flow (proxy/flow.h) and the router
 * (mesh/) share them without depending on the outbound proxy. */
#ifndef MESHD_PROXY_OUTBOUND_ROUTE_H
#define MESHD_PROXY_OUTBOUND_ROUTE_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "core/upstream.h"
#include "hbone/pool.h"
#include "proxy/resp_flag.h"
#include "route/outlier.h"

enum outbound_action {
    OUTBOUND_PASSTHROUGH, /* plain TCP to the original destination */
    OUTBOUND_HBONE,       /* CONNECT to `target` through the HBONE pool */
    OUTBOUND_REFUSE,      /* reset, with `response_flag` (NONE: NR) */
    OUTBOUND_LOCAL,       /* a pod enrolled here: no TLS, meshd decides for both ends
                             (proxy/local_path.h); `target`, `key` ids, `local_pod` */
};

struct pod;

struct outbound_route {
    enum outbound_action action;
    struct meshd_addr target;     /* HBONE: the endpoint, becomes :authority;
                                     PASSTHROUGH: where to connect (unset: orig dst) */
    struct hbone_pool_key key;    /* HBONE: identities and the peer's 15008 */
    SSL_CTX *client_ctx;          /* HBONE: the source workload's; borrowed */
    struct meshd_addr source;     /* HBONE: the app's pod address, for Forwarded */
    enum resp_flag response_flag; /* REFUSE */
    const char *service;          /* the Service FQDN routed to, or NULL */
    void *cluster;                /* copied to the record: the router's bookkeeping */
    int32_t endpoint;
    struct outlier_config outlier;
    uint32_t retries; /* attempts after a failed one (VirtualService retries) */
    uint64_t per_try_timeout_ns, timeout_ns; /* establishment bounds; 0: none */
    struct upstream_tuning tuning;           /* PASSTHROUGH: connectTimeout, tcpKeepalive */
    /* In, on a retry: the attempt that failed, to be avoided. */
    void *avoid_cluster;
    int32_t avoid_endpoint;
    /* In: one HTTP request is routed (connectionPool.http limits apply,
     * outlier detection counts 5xx); out: requests one upstream connection
     * may carry (maxRequestsPerConnection; 0: no limit). */
    bool per_request;
    uint32_t max_requests_per_conn;
    /* Out: how long an upstream connection may stay idle between
     * requests (connectionPool.http.idleTimeout; 0: the carrier's). */
    uint64_t idle_timeout_ns;
    /* In: this attempt retries a request (connectionPool.http.maxRetries
     * bounds those in flight per cluster). Out: it holds one of them
     * (released with the attempt), or there was none left: REFUSE with
     * retry_overflow, and the failure before it stands, as in Envoy. */
    bool retry, retry_held, retry_overflow;
    /* LOCAL: the destination pod (borrowed for the call that routed it: the
     * carrier starts within it, and a retry routes again). */
    const struct pod *local_pod;
};

#endif
