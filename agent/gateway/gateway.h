/* The ingress gateway (issue 17): an enrolled pod whose Pod labels match a
 * networking.istio.io Gateway's selector is served by meshd itself, as
 * Istio's ingress Envoy would serve it.
 *
 * Where connections arrive: every TCP connection to an enrolled pod is
 * steered by its sk_lookup program to meshd's inbound listener (a socket
 * bound in the pod's netns on the Service targetPort would never see
 * one), so the inbound proxy hands over each connection whose original
 * destination port is one a Gateway server listens on (the targetPort a
 * Service selecting the pod maps the server's port to: 443 -> 8443; else
 * the port itself) before any mesh policy applies: the gateway is the
 * edge, clients are not mesh workloads.
 *
 * On such a port: TLS is terminated (gateway/edge_tls, gateway/edge_conn:
 * SNI chooses the certificate, Secrets re-read on every configuration
 * change), then the requests are carried by the HTTP carrier
 * (http/proxy.h) over a socketpair, routed per request by the
 * VirtualServices bound to the Gateway (route/gateway_route via the
 * router given in opts: the mesh's, HBONE from the gateway pod's own
 * identity) with Envoy's edge headers (x-forwarded-for,
 * x-forwarded-proto, x-envoy-external-address, a fresh x-request-id). A
 * plain HTTP server is served the same way without TLS, and answers 301
 * to https when its tls.httpsRedirect is set. A TLS PASSTHROUGH server
 * peeks the ClientHello's SNI (gateway/sni_peek) and carries the bytes,
 * untouched, along the tls[] route it names. An AUTO_PASSTHROUGH server
 * (Istio's east-west gateway) reads the SNI the same way, as Istio's
 * cluster name outbound_.<port>_.<subset>_.<host> (route/auto_sni.h), and
 * carries the bytes to that service port's endpoints without any
 * VirtualService; a name of another form, or one no service port the
 * server admits has, is reset (counted, logged). An ISTIO_MUTUAL server
 * terminates TLS with the gateway pod's own workload certificate and
 * admits only clients whose certificate the mesh CA issued, verified as
 * the HBONE server verifies its peers; their SPIFFE id is the requests'
 * source principal. Requests and connections are reported as the
 * gateway's own (reporter="source"). */
#ifndef MESHD_GATEWAY_GATEWAY_H
#define MESHD_GATEWAY_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct cfg_snapshot;
struct cfg_store;
struct conn;
struct conn_record;
struct conns;
struct gateway;
struct gw_auto_sni;
struct gw_server;
struct http_decision;
struct http_proxy;
struct http_request_record;
struct http_request_view;
struct loop;
struct meshd_addr;
struct outbound_route;
struct pod;

struct gateway_opts {
    struct conns *conns;      /* borrowed: the gateway's connection records */
    struct http_proxy *http;  /* borrowed: the HTTP carrier */
    struct cfg_store *config; /* borrowed */
    /* Routes one request received on server `gs` (mesh_gateway_http_route). */
    void (*http_route)(void *ctx, const struct pod *gw, const struct cfg_snapshot *snap,
                       const struct gw_server *gs, const struct meshd_addr *local,
                       const struct http_request_view *req, struct http_decision *d);
    void (*route_released)(void *ctx, const struct outbound_route *r, bool failed);
    void *route_ctx;
    void (*report)(void *ctx, struct http_request_record *r, const struct conn_record *conn,
                   const struct http_decision *d);
    void *report_ctx;
    /* PASSTHROUGH: the tls[] route of a ClientHello's SNI
     * (mesh_gateway_tls_route), and the carrier of the connection's bytes
     * along it (outbound_carry). NULL: PASSTHROUGH servers not served. */
    void (*tls_route)(void *ctx, const struct pod *gw, const struct cfg_snapshot *snap,
                      const struct gw_server *gs, const struct meshd_addr *local, const char *sni,
                      struct outbound_route *out);
    void (*carry)(void *carry_ctx, struct pod *gw, struct conn *c,
                  const struct outbound_route *route);
    void *carry_ctx;
    uint64_t handshake_timeout_ns; /* 0: 10 s */
    size_t max_pending;            /* TLS handshakes in progress; 0: 512 */
    /* TCP servers, and TLS servers that terminate (protocol TLS): the
     * tcp[] route of a connection (mesh_gateway_tcp_route), its bytes then
     * carried by `carry`. NULL: those servers not served. */
    void (*tcp_route)(void *ctx, const struct pod *gw, const struct cfg_snapshot *snap,
                      const struct gw_server *gs, const struct meshd_addr *local,
                      struct outbound_route *out);
    /* ISTIO_MUTUAL servers, all with route_ctx: a server context presenting
     * the gateway pod's current workload certificate and trusting only the
     * mesh CA (a new one, the caller frees it), that certificate now
     * (borrowed; a renewed one is noticed by the next connection, which
     * rebuilds the pod's TLS set first), and the HBONE server's verification
     * of a client (chain, trust domain, node authorizer; the id written).
     * NULL: ISTIO_MUTUAL servers fail closed. */
    SSL_CTX *(*workload_ctx)(void *ctx, const struct pod *gw);
    X509 *(*workload_leaf)(void *ctx, const struct pod *gw);
    int (*verify_client)(void *ctx, SSL *ssl, char *id, size_t idlen, char *why, size_t whylen);
    /* AUTO_PASSTHROUGH servers: the route to the service port (and subset)
     * a parsed SNI names (mesh_gateway_auto_route), carried by `carry`.
     * NULL: those servers not served. */
    void (*auto_route)(void *ctx, const struct pod *gw, const struct cfg_snapshot *snap,
                       const struct gw_server *gs, const struct meshd_addr *local,
                       const struct gw_auto_sni *sni, struct outbound_route *out);
};

struct gateway_stats {
    uint64_t pods;     /* enrolled pods serving a Gateway now */
    uint64_t accepted; /* connections taken from the inbound proxy */
    uint64_t refused;  /* a TLS port without a usable certificate, or out of memory */
    uint64_t redirects;
    uint64_t handshakes, handshake_failures, handshake_timeouts, evicted, tls_active, tls_pending;
    uint64_t passthrough, sni_refused, sni_timeouts, sni_evicted, sni_pending;
    uint64_t tcp_carried, tcp_refused; /* TCP servers' connections: carried, no tcp route */
    /* AUTO_PASSTHROUGH: carried; refused (an SNI not Istio's cluster name
     * form, or naming no service port, subset or endpoint the server has) */
    uint64_t auto_carried, auto_refused;
    uint64_t mesh_rebuilds; /* TLS sets rebuilt for a renewed workload certificate */
};

int gateway_new(struct loop *loop, const struct gateway_opts *opts, struct gateway **out);
/* Resets the TLS connections still open. Accepts NULL. */
void gateway_free(struct gateway *g);

/* pod_hooks: a pod starts or stops being one the gateway may serve. */
int gateway_attach_pod(void *g, struct pod *pod);
void gateway_detach_pod(void *g, struct pod *pod);
/* A new configuration: which pods serve which servers, and the TLS
 * contexts from the Secrets as they are now (new handshakes use them;
 * open connections keep theirs). */
void gateway_reconfigure(struct gateway *g);

/* The inbound proxy's hand-over: true when `fd` (accepted for `pod`,
 * from `client` to `local`) is a gateway connection, then taken over. */
bool gateway_accept(void *g, struct pod *pod, int fd, const struct meshd_addr *client,
                    const struct meshd_addr *local);

void gateway_tick(struct gateway *g, uint64_t now_ns);
void gateway_get_stats(const struct gateway *g, struct gateway_stats *st);

#endif
