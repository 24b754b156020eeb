/* The Kubernetes Gateway API kinds meshd serves, as Istio serves them
 * (gateway.networking.k8s.io: Gateway, HTTPRoute, ReferenceGrant; v1alpha2
 * TLSRoute and TCPRoute), decoded into the snapshot arena like the rest of
 * config/model.h, which includes this.
 *
 * They are not routed directly: config/gateway_api.c translates them at
 * load, as istiod does (pilot/pkg/config/kube/gateway), into generated
 * networking.istio.io Gateways (one per listener) and VirtualServices (one
 * per listener and host), so the gateway's per-request router is the one
 * the Istio kinds use. What a route's rules decode to (cfg_route with its
 * cfg_http_route) is ready for that router but for the destinations,
 * which need the ReferenceGrants and the cluster domain. */
#ifndef MESHD_CONFIG_MODEL_GWAPI_H
#define MESHD_CONFIG_MODEL_GWAPI_H

#include "config/model.h"

/* A reference to an object of another kind: a Secret, a Service, a parent
 * Gateway. NULL group/kind: the field's default (core Secret or Service;
 * gateway.networking.k8s.io Gateway); NULL ns: the referrer's namespace. */
struct cfg_gwapi_ref {
    const char *group, *kind, *name, *ns;
    const char *section; /* parentRefs: sectionName */
    uint16_t port;       /* backendRefs / parentRefs port; 0 unset */
    uint32_t weight;     /* backendRefs: 1 unless given */
    uint32_t mirror_ppm; /* RequestMirror: percent or fraction, per million */
    struct cfg_pos pos;
};

enum cfg_gwapi_from { CFG_FROM_SAME, CFG_FROM_ALL, CFG_FROM_SELECTOR };

struct cfg_gwapi_listener {
    const char *name;
    const char *hostname; /* NULL: every host */
    uint16_t port;
    const char *protocol; /* HTTP, HTTPS, TLS, TCP */
    const char *tls_mode; /* Terminate (the default with tls) | Passthrough; NULL: no tls */
    const struct cfg_gwapi_ref *certs;
    size_t ncerts;
    enum cfg_gwapi_from from; /* allowedRoutes.namespaces.from */
    struct cfg_selector ns_selector;
    struct cfg_strs kinds; /* allowedRoutes.kinds[].kind; empty: the protocol's */
    struct cfg_pos pos;
};

struct cfg_k8s_gateway {
    struct cfg_meta meta;
    const char *class_name; /* gatewayClassName: only "istio" is served */
    const struct cfg_gwapi_listener *listeners;
    size_t nlisteners;
};

/* Gateway API's precedence among matches (HTTPRouteRule): Exact before
 * PathPrefix before RegularExpression, then the longer path, then a
 * method, then more headers, then more query parameters. */
struct cfg_gwapi_rank {
    int path_kind; /* 3 Exact, 2 PathPrefix, 1 RegularExpression */
    size_t path_len;
    bool method;
    size_t nheaders, nquery;
};

/* One rule: its matches, each already an http[] route of its own (a
 * PathPrefix is two: the path itself and what lies below it), sharing the
 * rule's filters; destinations filled at translation. */
struct cfg_gwapi_rule {
    struct cfg_route *routes;
    struct cfg_gwapi_rank *ranks; /* parallel to routes */
    size_t nroutes;
    const struct cfg_gwapi_ref *backends;
    size_t nbackends;
    const struct cfg_gwapi_ref *mirrors; /* RequestMirror backendRefs */
    size_t nmirrors;
    struct cfg_pos pos;
    /* The translation's, once for every listener and host it serves. */
    bool resolved, usable;
    struct cfg_route_destination *dests;
    size_t ndests;
    struct cfg_http_mirror *mirror_dests;
    size_t nmirror_dests;
};

/* HTTPRoute, TLSRoute and TCPRoute alike: TLS and TCP rules have one
 * route each, without matches. */
struct cfg_gwapi_route {
    struct cfg_meta meta;
    const struct cfg_gwapi_ref *parents;
    size_t nparents;
    struct cfg_strs hostnames;
    struct cfg_gwapi_rule *rules;
    size_t nrules;
};

struct cfg_gwapi_grant_peer {
    const char *group, *kind, *ns, *name; /* name only in `to`; NULL: any */
};

struct cfg_reference_grant {
    struct cfg_meta meta;
    const struct cfg_gwapi_grant_peer *from, *to;
    size_t nfrom, nto;
};

#endif
