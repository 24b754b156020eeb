/* Routing at an ingress gateway (issue 17), as Istio builds a gateway's
 * listeners and routes from Gateway and VirtualService resources:
 *
 *   a pod whose Pod labels match a Gateway's selector (in any namespace:
 *   Istio's default, PILOT_SCOPE_GATEWAY_TO_NAMESPACE off) serves each of
 *   its servers on the port a Service selecting the pod maps the server's
 *   port to (the Service's targetPort: 443 -> 8443), else on the port
 *   itself;
 *   a request on one of those ports -> the servers of that port whose hosts
 *   admit the request's host -> the VirtualServices bound to one of those
 *   Gateways (`gateways: [ns/name]` or a name in the VirtualService's
 *   namespace; `mesh` binds the mesh only) whose hosts match the host, the
 *   most specific host first, and whose namespace the server's `ns/host`
 *   admits -> the first http[] route whose matches admit the request (a
 *   match's own `gateways` replaces the VirtualService's) -> the request.
 *   A TLS PASSTHROUGH server routes by the ClientHello's SNI with tls[]
 *   routes the same way.
 *
 * Pure logic over an immutable snapshot: no I/O, no allocation. */
#ifndef MESHD_ROUTE_GATEWAY_ROUTE_H
#define MESHD_ROUTE_GATEWAY_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "http/message.h"
#include "route/resolve.h"

#define GW_MAX_SERVERS 64 /* servers one listener port considers */

/* One Gateway server a pod serves, and the port it listens on. */
struct gw_server {
    const struct cfg_gateway *gw;
    const struct cfg_gateway_server *srv;
    uint16_t listen_port; /* in the pod */
};

/* A gateway workload: its Pod is labelled as Istio's gateway deployments
 * are (`istio`: istio=ingressgateway, the gateway chart's istio=ingress;
 * or gateway.networking.k8s.io/gateway-name, istio.io/gateway-name).
 * Istio applies a Gateway only to gateway proxies, never to a sidecar's
 * workload; without this a Gateway of any namespace selecting an ordinary
 * pod's labels would take over that pod's ports, past its mTLS and
 * authorization. */
bool gw_pod_is_gateway(const struct cfg_pod *pod);

/* Every server of every Gateway selecting the pod (its Pod object's
 * labels), when it is a gateway workload; returns how many were written
 * (at most max). */
size_t gw_pod_servers(const struct cfg_snapshot *s, const struct cfg_pod *pod,
                      struct gw_server *out, size_t max);

/* The servers of `servers` listening on `port`, and among them the first
 * whose hosts admit `host` (NULL: any host, SNI absent): NULL if none. */
const struct gw_server *gw_server_for(const struct gw_server *servers, size_t n, uint16_t port,
                                      const char *host);

/* Does a Gateway host ("host", "ns/host", "*\/host", "./host") admit `host`
 * for a VirtualService of namespace `vs_ns` (NULL: any namespace)? */
bool gw_host_admits(const char *gw_host, const char *gw_ns, const char *host, const char *vs_ns);
/* Istio's host matching: "*" anything, "*.x" / "*x" a suffix, else equal
 * (case-insensitive). A port in `host` ("a.com:8443") is ignored. */
bool gw_host_matches(const char *pattern, const char *host);

/* Is `vs` (or one of its matches' `gateways`) bound to `gw`? */
bool gw_binds(const struct cfg_strs *gateways, const char *vs_ns, const struct cfg_gateway *gw);

struct gw_http_result {
    const struct cfg_virtual_service *vs; /* NULL: no VirtualService binds the host */
    const struct cfg_route *route;        /* NULL: none of its routes matched */
};

/* The VirtualService and http[] route for a request to server `gs`.
 * `src` is the gateway pod as a client (sourceLabels, sourceNamespace). */
void gw_route_http(const struct cfg_snapshot *s, const struct gw_server *gs,
                   const struct route_source *src, const struct http_request_view *req,
                   struct gw_http_result *out);

/* The tls[] route for SNI `sni` at a PASSTHROUGH server (NULL: none), and
 * its VirtualService. */
const struct cfg_tls_route *gw_route_sni(const struct cfg_snapshot *s, const struct gw_server *gs,
                                         const char *sni, const struct cfg_virtual_service **vs);

/* The tcp[] route for a connection to a TCP server (or a TLS server that
 * terminates, its bytes after the handshake), as Istio picks it: the
 * VirtualServices bound to the server's Gateway whose hosts the server
 * admits, in order, and the first of their tcp[] routes whose match
 * (port: the server's; gateways; the gateway pod as source) admits it.
 * NULL if none; *vs its VirtualService. */
const struct cfg_route *gw_route_tcp(const struct cfg_snapshot *s, const struct gw_server *gs,
                                     const struct route_source *src,
                                     const struct cfg_virtual_service **vs);

#endif
