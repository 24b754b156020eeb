/* The typed model of the Kubernetes and Istio resources meshd reads.
 *
 * Decoded from YAML by config/decode*.c; every string and array lives in
 * the owning snapshot's arena and is immutable once the snapshot is built.
 * Lists are {v, n}; "unset" is NULL / 0 / a false has_ flag, so Istio's
 * defaults are applied where the value is used, not here. */
#ifndef MESHD_CONFIG_MODEL_H
#define MESHD_CONFIG_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meshd/capture.h"

enum cfg_kind {
    CFG_NAMESPACE,
    CFG_SERVICE,
    CFG_POD,
    CFG_DEPLOYMENT,
    CFG_SECRET,
    CFG_GATEWAY,
    CFG_VIRTUAL_SERVICE,
    CFG_DESTINATION_RULE,
    CFG_SERVICE_ENTRY,
    CFG_WORKLOAD_ENTRY,
    CFG_PEER_AUTHENTICATION,
    CFG_AUTHORIZATION_POLICY,
    CFG_TELEMETRY,
    /* gateway.networking.k8s.io (config/model_gwapi.h) */
    CFG_K8S_GATEWAY,
    CFG_HTTP_ROUTE,
    CFG_TLS_ROUTE,
    CFG_TCP_ROUTE,
    CFG_REFERENCE_GRANT,
    CFG_KIND_COUNT,
};

const char *cfg_kind_name(enum cfg_kind k);

struct cfg_pos {
    const char *file;
    uint32_t line, col;
};

struct cfg_kv {
    const char *key, *value;
};

/* Sorted by key. */
struct cfg_labels {
    const struct cfg_kv *v;
    size_t n;
};

struct cfg_strs {
    const char *const *v;
    size_t n;
};

/* Addresses with port 0. */
struct cfg_ips {
    const struct meshd_addr *v;
    size_t n;
};

/* An address block: ServiceEntry addresses may be CIDRs. */
struct cfg_cidr {
    struct meshd_addr addr; /* the network, port 0 */
    uint8_t prefix;
};

struct cfg_cidrs {
    const struct cfg_cidr *v;
    size_t n;
};

struct cfg_meta {
    enum cfg_kind kind;
    const char *api_version;
    const char *name;
    const char *ns; /* "default" when not given, except cluster-scoped kinds */
    struct cfg_labels labels;
    struct cfg_pos pos;
    uint32_t ord; /* position among the snapshot's resources of this kind */
};

/* A workloadSelector / selector.matchLabels. `set` distinguishes "no
 * selector" (applies to all) from an empty one. */
struct cfg_selector {
    bool set;
    struct cfg_labels match;
};

/* ---- Kubernetes ---- */

struct cfg_namespace {
    struct cfg_meta meta;
};

/* IntOrString. */
struct cfg_port_ref {
    uint16_t number; /* 0 when given by name */
    const char *name;
};

struct cfg_service_port {
    const char *name;
    const char *protocol; /* TCP when unset */
    const char *app_protocol;
    uint16_t port;
    struct cfg_port_ref target; /* number 0 and name NULL: same as port */
};

struct cfg_service {
    struct cfg_meta meta;
    struct cfg_strs export_to; /* annotation networking.istio.io/exportTo */
    const char *type;
    struct cfg_ips cluster_ips; /* clusterIP and clusterIPs, "None" excluded */
    bool headless;
    const struct cfg_service_port *ports;
    size_t nports;
    struct cfg_selector selector;
};

struct cfg_container_port {
    const char *name;
    const char *protocol;
    uint16_t port;
};

struct cfg_pod {
    struct cfg_meta meta;
    const char *node;
    const char *service_account; /* "default" when unset */
    struct cfg_ips ips;          /* status.podIPs, else status.podIP */
    bool ready;                  /* condition Ready=True, or no conditions given */
    const struct cfg_container_port *ports;
    size_t nports;
};

struct cfg_deployment {
    struct cfg_meta meta;
    uint32_t replicas;
    struct cfg_selector selector;
    struct cfg_labels template_labels;
    const char *service_account;
};

struct cfg_secret {
    struct cfg_meta meta;
    const char *type;
    bool has_cert, has_key; /* tls.crt / tls.key in data or stringData */
    /* The PEM texts (data base64-decoded, or stringData), NUL-terminated,
     * for the ingress gateway (config/decode_gateway.c): tls.crt/tls.key
     * (or cert/key), ca.crt (or cacert); NULL when absent. */
    const char *tls_crt, *tls_key, *ca_crt;
};

/* ---- networking.istio.io ---- */

struct cfg_gateway_server {
    uint32_t port;
    const char *port_name, *protocol;
    struct cfg_strs hosts;
    const char *tls_mode, *credential_name;
    struct cfg_pos pos;
    /* config/decode_gateway.c: the rest of the server, as Istio reads it. */
    const char *name;         /* servers[].name */
    uint16_t target_port;     /* port.targetPort: deprecated, no effect (Istio warns) */
    bool has_tls;             /* a tls: block is present */
    bool https_redirect;      /* tls.httpsRedirect: HTTP answers 301 to https */
    const char *min_protocol; /* TLS_AUTO | TLSV1_0 .. TLSV1_3, NULL unset */
    const char *max_protocol;
    struct cfg_strs cipher_suites, subject_alt_names;
    const char *server_certificate, *private_key, *ca_certificates; /* file paths */
};

struct cfg_gateway {
    struct cfg_meta meta;
    struct cfg_selector selector;
    const struct cfg_gateway_server *servers;
    size_t nservers;
    /* Generated from a Gateway API Gateway's listener (config/gateway_api.c):
     * it selects pods of its own namespace only, and listens on the
     * listener's port itself (Istio's <name>-istio Service maps P to P).
     * NULL for networking.istio.io Gateways. */
    const struct cfg_k8s_gateway *k8s;
};

struct cfg_destination {
    const char *host;
    const char *subset;
    uint16_t port; /* 0: the connection's port */
    struct cfg_pos pos;
};

/* The HTTP parts of http[] routes (uses cfg_kv, cfg_strs, cfg_destination). */
#include "config/model_http.h"

struct cfg_route_destination {
    struct cfg_destination dest;
    uint32_t weight;
    bool has_weight;
};

/* The parts of an HTTP or TCP match meshd can decide per connection. */
struct cfg_match {
    uint16_t port;
    struct cfg_labels source_labels;
    const char *source_namespace;
    struct cfg_strs gateways;
    const char *l7; /* first L7-only condition ("headers", "uri.exact", ...), or NULL */
};

struct cfg_route {
    const char *name;
    bool http; /* from http[] (else tcp[]) */
    const struct cfg_match *match;
    size_t nmatch; /* 0: matches everything */
    const struct cfg_route_destination *dest;
    size_t ndest;
    uint32_t retries; /* retries.attempts */
    bool has_retries;
    uint64_t per_try_timeout_ns, timeout_ns;
    const char *l7_action; /* redirect, rewrite, fault, mirror, ...: not applied at L4 */
    const struct cfg_destination *mirrors; /* mirror and mirrors[]: checked, not applied */
    size_t nmirrors;
    const struct cfg_http_route *http_ext; /* every http[] route; NULL for tcp[] */
    struct cfg_pos pos;
};

struct cfg_virtual_service {
    struct cfg_meta meta;
    struct cfg_strs hosts, gateways, export_to;
    const struct cfg_route *routes; /* http[] then tcp[] entries, in order */
    size_t nroutes;
    size_t ntls; /* tls[] routes: SNI, applied by gateways' PASSTHROUGH servers */
    const struct cfg_tls_route *tls_routes; /* the tls[] routes (ntls of them) */
    /* Generated from Gateway API routes (config/gateway_api.c): the first
     * of them; NULL for networking.istio.io VirtualServices. */
    const struct cfg_meta *generated_from;
};

enum cfg_lb {
    CFG_LB_UNSET,
    CFG_LB_ROUND_ROBIN,
    CFG_LB_LEAST_REQUEST,
    CFG_LB_RANDOM,
    CFG_LB_PASSTHROUGH,
    CFG_LB_CONSISTENT_SOURCE_IP,
    CFG_LB_CONSISTENT_OTHER, /* header/cookie/query hashes: L7 */
};

struct cfg_outlier {
    bool set;
    uint32_t consecutive_errors; /* consecutiveGatewayErrors, else consecutive5xxErrors; 0 unset */
    /* Per request (the HTTP carrier), as Envoy counts them; 0: not counted.
     * 5xx: any 5xx response, connect failures and resets; Istio's default 5
     * when outlierDetection is set and consecutive5xxErrors is not, 0 when
     * given as 0 or the legacy consecutiveErrors is. Gateway: 502, 503, 504,
     * connect failures and resets; off unless given (or consecutiveErrors). */
    uint32_t consecutive_5xx, consecutive_gateway;
    uint64_t interval_ns, base_ejection_ns;
    uint32_t max_ejection_percent, min_health_percent;
    bool has_max_ejection, has_min_health;
};

enum cfg_h2_upgrade { CFG_H2_UPGRADE_DEFAULT, CFG_H2_DO_NOT_UPGRADE, CFG_H2_UPGRADE };

/* connectionPool.http: Envoy's circuit breakers and HTTP protocol options
 * for the cluster. A count of 0 is unset, as Istio reads it (it applies
 * only values > 0): the limit is then Istio's default, 2^32-1. */
struct cfg_http_pool {
    bool set;
    uint32_t max_pending;            /* http1MaxPendingRequests: requests queued for a connection */
    uint32_t max_requests;           /* http2MaxRequests: requests outstanding to the cluster */
    uint32_t max_requests_per_conn;  /* maxRequestsPerConnection; 0: unlimited, 1: no keep-alive */
    uint32_t max_retries;            /* maxRetries: retries outstanding to the cluster */
    uint64_t idle_timeout_ns;        /* idleTimeout of upstream connections; 0: Envoy's 1h */
    enum cfg_h2_upgrade h2_upgrade;  /* h2UpgradePolicy */
    bool use_client_protocol;        /* useClientProtocol */
    uint32_t max_concurrent_streams; /* maxConcurrentStreams per HTTP/2 connection; 0: unset */
};

struct cfg_conn_pool {
    bool set;
    uint32_t max_connections; /* 0: unset (Istio: 2^32-1) */
    uint64_t connect_timeout_ns;
    bool keepalive;
    uint32_t keepalive_time_s, keepalive_interval_s, keepalive_probes;
    struct cfg_http_pool http; /* replaced with the whole connectionPool, as Istio merges */
};

/* One level of trafficPolicy; each section replaces the level above as a
 * whole when set, as Istio merges them. */
struct cfg_policy_level {
    enum cfg_lb lb;
    struct cfg_conn_pool pool;
    struct cfg_outlier outlier;
    const char *tls_mode;
};

struct cfg_port_policy {
    uint16_t port;
    struct cfg_policy_level level;
};

struct cfg_traffic_policy {
    struct cfg_policy_level top;
    const struct cfg_port_policy *ports;
    size_t nports;
};

struct cfg_subset {
    const char *name;
    struct cfg_labels labels;
    struct cfg_traffic_policy policy;
    struct cfg_pos pos;
};

struct cfg_destination_rule {
    struct cfg_meta meta;
    const char *host;
    struct cfg_traffic_policy policy;
    const struct cfg_subset *subsets;
    size_t nsubsets;
    struct cfg_selector workload_selector;
    struct cfg_strs export_to;
};

struct cfg_named_port {
    const char *name;
    uint16_t number;
    const char *protocol;
    uint16_t target_port;
};

struct cfg_workload_entry_spec {
    const char *address;  /* IP, host name or unix:// socket; NULL with only a network */
    struct meshd_addr ip; /* when address is an IP */
    bool has_ip;
    struct cfg_labels labels;
    struct cfg_labels ports; /* name -> number, as text */
    const char *service_account;
    const char *network;
    uint32_t weight;
};

struct cfg_service_entry {
    struct cfg_meta meta;
    struct cfg_strs hosts, export_to;
    struct cfg_ips addresses; /* single addresses (and /32, /128 blocks) */
    struct cfg_cidrs cidrs;   /* wider blocks, matched after exact addresses */
    const struct cfg_named_port *ports;
    size_t nports;
    const char *location;   /* MESH_EXTERNAL (default) | MESH_INTERNAL */
    const char *resolution; /* NONE | STATIC | DNS | DNS_ROUND_ROBIN */
    const struct cfg_workload_entry_spec *endpoints;
    size_t nendpoints;
    struct cfg_selector workload_selector;
};

struct cfg_workload_entry {
    struct cfg_meta meta;
    struct cfg_workload_entry_spec spec;
};

/* A VirtualService tls[] route: SNI-matched, for gateways' PASSTHROUGH
 * servers (config/decode_gateway.c). */
struct cfg_tls_match {
    struct cfg_strs sni_hosts; /* required */
    uint16_t port;
    struct cfg_strs gateways;
};

struct cfg_tls_route {
    const struct cfg_tls_match *match;
    size_t nmatch;
    const struct cfg_route_destination *dest;
    size_t ndest;
    struct cfg_pos pos;
};

/* ---- security.istio.io ---- */

enum cfg_mtls {
    CFG_MTLS_UNSET,
    CFG_MTLS_PERMISSIVE,
    CFG_MTLS_STRICT,
    CFG_MTLS_DISABLE,
};

struct cfg_port_mtls {
    uint16_t port;
    enum cfg_mtls mode;
};

struct cfg_peer_authentication {
    struct cfg_meta meta;
    struct cfg_selector selector;
    enum cfg_mtls mode;
    const struct cfg_port_mtls *ports;
    size_t nports;
};

enum cfg_authz_action { CFG_AUTHZ_ALLOW, CFG_AUTHZ_DENY, CFG_AUTHZ_AUDIT, CFG_AUTHZ_CUSTOM };

struct cfg_authz_source {
    struct cfg_strs principals, not_principals, namespaces, not_namespaces, ip_blocks,
        not_ip_blocks;
    struct cfg_strs service_accounts, not_service_accounts; /* "sa" or "ns/sa" */
    struct cfg_strs trust_domains, not_trust_domains;
    struct cfg_strs request_principals, not_request_principals; /* HTTP only */
    const char *l7;                                             /* first HTTP-only field, or NULL */
    const char *undecidable; /* remoteIpBlocks or notRemoteIpBlocks, or NULL */
};

struct cfg_authz_operation {
    struct cfg_strs ports, not_ports;
    struct cfg_strs hosts, not_hosts, methods, not_methods, paths, not_paths; /* HTTP only */
    const char *l7; /* first HTTP-only field, or NULL */
};

struct cfg_authz_condition {
    const char *key;
    struct cfg_strs values, not_values;
    struct cfg_pos pos;
};

struct cfg_authz_rule {
    const struct cfg_authz_source *from;
    size_t nfrom;
    const struct cfg_authz_operation *to;
    size_t nto;
    const struct cfg_authz_condition *when;
    size_t nwhen;
    struct cfg_pos pos;
};

struct cfg_authorization_policy {
    struct cfg_meta meta;
    struct cfg_selector selector;
    bool has_target_ref;
    enum cfg_authz_action action;
    const char *provider; /* CUSTOM */
    const struct cfg_authz_rule *rules;
    size_t nrules;
    bool rules_set; /* `rules:` present (an empty list differs from none for ALLOW) */
};

/* ---- telemetry.istio.io ---- */

struct cfg_access_logging {
    struct cfg_strs providers;
    bool disabled;
    bool has_disabled;
    const char *match_mode; /* CLIENT | SERVER | CLIENT_AND_SERVER */
    const char *filter;     /* CEL: not evaluated at L4 */
};

/* tracing[].customTags: a span attribute from a literal, a request header
 * or the agent's environment (default_value when the header or variable
 * is absent; NULL: the tag is left out). */
enum cfg_custom_tag_kind { CFG_TAG_LITERAL, CFG_TAG_HEADER, CFG_TAG_ENVIRONMENT };

struct cfg_custom_tag {
    const char *name;
    enum cfg_custom_tag_kind kind;
    const char *value; /* the literal, or the header's or variable's name */
    const char *default_value;
};

struct cfg_tracing {
    struct cfg_strs providers;
    const char *match_mode; /* CLIENT | SERVER | CLIENT_AND_SERVER */
    bool has_sampling;
    uint32_t sampling_ppm; /* randomSamplingPercentage, per million */
    bool has_disable_span_reporting, disable_span_reporting;
    const struct cfg_custom_tag *custom_tags;
    size_t ncustom_tags;
};

struct cfg_telemetry {
    struct cfg_meta meta;
    struct cfg_selector selector;
    bool has_target_ref;
    const struct cfg_access_logging *access_logging;
    size_t naccess_logging;
    const struct cfg_tracing *tracing; /* tracing[] (decode_tracing.c) */
    size_t ntracing;
};

/* The Gateway API kinds (uses cfg_meta, cfg_route, cfg_selector). */
#include "config/model_gwapi.h"

#endif
