/* Per-cluster state kept across connections and configuration reloads:
 * the round-robin cursor and random state of route/lb, and the number of
 * connections open to the cluster (connectionPool.tcp.maxConnections).
 * A cluster is (service FQDN, subset, port); an attempt's accounting
 * (open connections per cluster and endpoint, outlier reports) is here
 * too. Bounded: at most CLUSTERS_MAX entries; past that, new clusters
 * share one overflow entry (fair enough for RANDOM, coarser for
 * ROUND_ROBIN) and are counted. */
#ifndef MESHD_ROUTE_CLUSTERS_H
#define MESHD_ROUTE_CLUSTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meshd/capture.h"
#include "route/lb.h"
#include "route/outlier.h"

#define CLUSTERS_MAX 16384

#define CLUSTER_MAX_ENDPOINTS 1024 /* endpoint states kept per cluster */

/* An endpoint as this agent has seen it: load and health. Kept by address
 * across reloads (an endpoint that moves subsets keeps its history). */
struct endpoint_state {
    struct meshd_addr addr; /* ip:port */
    uint32_t active;        /* connections open to it through us */
    struct outlier_state outlier;
};

struct cluster_state {
    struct lb_state lb;
    uint32_t active;  /* connections open through this cluster */
    uint32_t retries; /* HTTP retries in flight through it (maxRetries) */
    uint64_t overflows, ejections, retry_overflows;
    struct endpoint_state *eps; /* never shrinks: indexes stay valid */
    uint32_t neps, cap;
};

/* The index of addr's state in the cluster (added if new), or -1 when
 * the cluster already tracks CLUSTER_MAX_ENDPOINTS or memory ran out. */
int cluster_endpoint(struct cluster_state *cs, const struct meshd_addr *addr);

/* One connection routed through cs to endpoint (-1: none, or not tracked). */
void cluster_acquire(struct cluster_state *cs, int32_t endpoint);
/* Releases what cluster_acquire counted (never below zero) and, when oc
 * is enabled, reports the attempt to the endpoint's outlier detection
 * against how many of the cluster are ejected at now_ns. True when this
 * failure ejected the endpoint (counted in cs->ejections). */
bool cluster_release(struct cluster_state *cs, int32_t endpoint, const struct outlier_config *oc,
                     bool failed, uint64_t now_ns);

struct clusters;

int clusters_new(uint64_t seed, struct clusters **out);
void clusters_free(struct clusters *t);
/* Never NULL: the overflow entry when the table is full. */
struct cluster_state *clusters_get(struct clusters *t, const char *fqdn, const char *subset,
                                   uint16_t port);
size_t clusters_count(const struct clusters *t);
uint64_t clusters_overflowed(const struct clusters *t);

#endif
