/* HTTP routing per request, as Istio routes VirtualService http[] (issue
 * 15), and the protocol selection that decides which connections are HTTP.
 *
 *   a request to a service port -> that service's VirtualService (the same
 *   host lookup and exportTo as route/resolve) -> its first http[] route
 *   whose match admits the request (uri, scheme, method, authority,
 *   headers, withoutHeaders, queryParams, ignoreUriCase, port,
 *   sourceLabels, sourceNamespace; matches ORed, fields ANDed; no match
 *   list matches all) -> a redirect or direct response, or one weighted
 *   destination chosen for this request -> the cluster and its ready
 *   endpoints exactly as route/resolve fills them.
 *   No VirtualService: the service itself (Istio's default route).
 *   No http[] route matches: ROUTE_NO_ROUTE (Envoy answers 404, flag NR).
 *
 * Pure logic over an immutable snapshot: no I/O, no allocation. */
#ifndef MESHD_ROUTE_HTTP_ROUTE_H
#define MESHD_ROUTE_HTTP_ROUTE_H

#include <stdbool.h>

#include "config/protocol.h"
#include "http/message.h"
#include "route/resolve.h"

/* enum http_proto and a port's protocol (http_port_protocol):
 * config/protocol.h, which the analyzers use too. */

/* What a client's connection to `orig_dst` is, decided before any byte:
 * a Service VIP:port or ServiceEntry address -> that port's protocol
 * (ServiceEntry ports by their protocol field); a workload IP:port -> the
 * protocol of the service port whose targetPort it is (the first service
 * selecting the workload; none: PROTO_AUTO); anything else PROTO_TCP
 * (passthrough is never parsed). */
enum http_proto http_dest_protocol(const struct cfg_snapshot *s, const struct meshd_addr *orig_dst);

/* What the destination agent serves on one of its pods' ports: the
 * protocol of a service port selecting `w` whose targetPort is `port`
 * (host order); none: PROTO_AUTO. */
enum http_proto http_workload_port_protocol(const struct cfg_snapshot *s,
                                            const struct cfg_workload *w, uint16_t port);

enum http_route_kind {
    HTTP_ROUTE_FORWARD,  /* `cluster` filled, `dest` chosen */
    HTTP_ROUTE_REDIRECT, /* route->http_ext->redirect */
    HTTP_ROUTE_DIRECT,   /* route->http_ext->direct */
    HTTP_ROUTE_NO_ROUTE, /* 404 NR (no http[] route matched), or a destination leading nowhere: 503
                            NR */
    HTTP_ROUTE_WORKLOAD, /* orig_dst is a workload's IP: `workload` */
    HTTP_ROUTE_PASSTHROUGH, /* not a service or workload the configuration knows */
};

struct http_route_result {
    enum http_route_kind kind;
    const struct cfg_virtual_service *vs; /* NULL: none applied */
    const struct cfg_route *route;        /* the matched http[] route, NULL: default */
    size_t dest_index;                    /* FORWARD with a route: index in route->dest */
    const struct cfg_workload *workload;  /* WORKLOAD */
    int status;                           /* NO_ROUTE: 404 or 503 */
    const char *why;                      /* NO_ROUTE: for the log */
};

/* Routes one request. `cluster` is filled as route_resolve fills it for
 * FORWARD (its `route` is the matched route). `rng` drives the weighted
 * choice, per request. */
void http_route_resolve(const struct cfg_snapshot *s, const struct route_source *src,
                        const struct meshd_addr *orig_dst, const struct http_request_view *req,
                        struct lb_state *rng, struct route_cluster *cluster,
                        struct http_route_result *out);

/* Whether one http[] route's matches admit the request (and the
 * connection's source and port, as route_matches). */
bool http_route_matches(const struct cfg_route *r, const struct route_source *src, uint16_t port,
                        const struct http_request_view *req);
/* StringMatch against a value (ignore_case for uri with ignoreUriCase).
 * Regex: full match, as RE2's FullMatch (Envoy's safe_regex), bounded by
 * PCRE2's match limits. */
bool http_str_match(const struct cfg_str_match *m, const char *value, size_t len, bool ignore_case);

/* One route as a line for `meshctl proxy-config routes`: "uri prefix /v2
 * && header x-canary exact yes -> payments/v2 100%; timeout 3000ms".
 * Returns its length (truncated to len - 1). */
size_t http_route_summary(const struct cfg_route *r, char *buf, size_t len);

#endif
