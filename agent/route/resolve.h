/* Where a captured connection goes, decided from the configuration, as
 * Istio decides it for TCP (issue 5):
 *
 *   original destination is a Service VIP:port (or a ServiceEntry
 *   address) -> that service; its VirtualService's first matching route
 *   (match on port, sourceLabels, sourceNamespace; L7 matches never match
 *   at L4) -> one weighted destination (host, subset, port) -> the ready
 *   endpoints of that host in that subset, with the DestinationRule's
 *   traffic policy merged as Istio merges it (subset over port over top
 *   level, one section at a time);
 *   original destination is a workload's IP -> that workload;
 *   anything else -> passthrough.
 *
 * Pure logic over an immutable snapshot: no I/O, no allocation. The
 * caller picks the endpoint (route/lb) with its per-cluster state. */
#ifndef MESHD_ROUTE_RESOLVE_H
#define MESHD_ROUTE_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "route/lb.h"

#define ROUTE_MAX_ENDPOINTS 512 /* per cluster; more are not considered */

/* The client, as the configuration knows it. */
struct route_source {
    const char *ns; /* NULL when unknown */
    struct cfg_labels labels;
};

/* One cluster: a destination service, subset and port. */
struct route_cluster {
    const struct cfg_svc *svc;
    const char *subset;                   /* NULL: the whole service */
    uint16_t port;                        /* the service port */
    const struct cfg_virtual_service *vs; /* NULL: no VirtualService applied */
    const struct cfg_route *route;
    const struct cfg_destination_rule *dr;
    struct cfg_policy_level policy; /* merged; unset sections are Istio's defaults */
    const struct cfg_workload *endpoints[ROUTE_MAX_ENDPOINTS]; /* ready, in the subset */
    uint16_t target_ports[ROUTE_MAX_ENDPOINTS];
    size_t nendpoints;
};

enum route_kind {
    ROUTE_PASSTHROUGH, /* not a service or workload the configuration knows */
    ROUTE_SERVICE,     /* `cluster` is filled */
    ROUTE_WORKLOAD,    /* `workload` is the destination itself */
    ROUTE_NO_ROUTE,    /* a service, but its route leads nowhere (flag NR) */
};

struct route_result {
    enum route_kind kind;
    const struct cfg_workload *workload;
    const char *why; /* ROUTE_NO_ROUTE: for the log */
};

/* `rng` drives the weighted choice between route destinations. */
void route_resolve(const struct cfg_snapshot *s, const struct route_source *src,
                   const struct meshd_addr *orig_dst, struct lb_state *rng,
                   struct route_cluster *cluster, struct route_result *out);

/* What a client gets for a service port, every choice spelled out: the
 * VirtualService and route that apply and each destination with its
 * weight, DestinationRule, merged policy and ready endpoints (for
 * `meshctl proxy-config routes`). */
#define ROUTE_VIEW_MAX_DEST 16
struct route_view_dest {
    const char *host;   /* as the route names it */
    const char *subset; /* NULL: the whole service */
    uint16_t port;
    uint32_t weight; /* percent */
    const char *why; /* set when the destination leads nowhere (NR) */
    const struct cfg_svc *svc;
    const struct cfg_destination_rule *dr;
    struct cfg_policy_level policy;
    size_t ready; /* ready endpoints in the subset */
};

struct route_view {
    const struct cfg_svc *svc;
    uint16_t port;
    const struct cfg_virtual_service *vs; /* NULL: none applies */
    const struct cfg_route *route;        /* NULL: no route matched */
    bool passthrough;                     /* a ServiceEntry without endpoints */
    struct route_view_dest dest[ROUTE_VIEW_MAX_DEST];
    size_t ndest;
};

/* `scratch` is working space (a route_cluster is large). */
void route_describe(const struct cfg_snapshot *s, const struct route_source *src,
                    const struct cfg_svc *svc, uint16_t port, struct route_cluster *scratch,
                    struct route_view *out);

/* The steps of route_resolve, shared with route/http_route.c. */
/* The service VIP:port orig_dst is for this client (visible to it), or NULL. */
const struct cfg_vip *route_vip(const struct cfg_snapshot *s, const struct route_source *src,
                                const struct meshd_addr *orig_dst);
/* Points `c` at a service port and the VirtualService the client sees for
 * it (c->route NULL: no route chosen yet). */
void route_begin(const struct cfg_snapshot *s, const struct route_source *src,
                 const struct cfg_svc *svc, uint16_t port, struct route_cluster *c);
/* Chooses one of r's destinations by weight and points `c` at it (*index:
 * its place in r->dest); NULL, or why it leads nowhere. */
const char *route_pick(const struct cfg_snapshot *s, struct route_cluster *c,
                       const struct cfg_route *r, struct lb_state *rng, size_t *index);
/* The cluster's DestinationRule, merged policy and ready endpoints. */
void route_fill_endpoints(const struct cfg_snapshot *s, struct route_cluster *c,
                          const char *client_ns);
/* A ServiceEntry without endpoints (resolution NONE or DNS): the original
 * destination is the endpoint, as in Istio. */
bool route_endpointless_entry(const struct route_cluster *c);
/* The port an endpoint listens on for a service port; 0 for a named
 * targetPort the pod lacks. */
uint16_t route_target_port(const struct cfg_svc *svc, uint16_t port, const struct cfg_workload *w);
/* One match's L4 half (port, gateways, sourceNamespace, sourceLabels),
 * whatever its L7 half. */
bool route_match_l4(const struct cfg_match *m, const struct route_source *src, uint16_t port);

/* Whether a VirtualService route's match list admits this connection. */
bool route_matches(const struct cfg_route *r, const struct route_source *src, uint16_t port);
/* The merged trafficPolicy of (dr, subset, port), Istio's precedence. */
void route_policy(const struct cfg_destination_rule *dr, const char *subset, uint16_t port,
                  struct cfg_policy_level *out);
/* Whether a workload takes part in the mesh: its namespace is labelled
 * istio.io/dataplane-mode=ambient and the workload does not opt out. */
bool route_in_mesh(const struct cfg_snapshot *s, const struct cfg_workload *w);
enum lb_policy route_lb_policy(enum cfg_lb lb);

#endif
