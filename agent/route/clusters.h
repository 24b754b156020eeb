/* Per-cluster state kept across connections and configuration reloads:
 * the round-robin cursor and random state of route/lb, and the number of
 * connections open to the cluster (connectionPool.tcp.maxConnections).
 * A cluster is (service FQDN, subset, port). Bounded: at most
 * CLUSTERS_MAX entries; past that, new clusters share one overflow entry
 * (fair enough for RANDOM, coarser for ROUND_ROBIN) and are counted. */
#ifndef MESHD_ROUTE_CLUSTERS_H
#define MESHD_ROUTE_CLUSTERS_H

#include <stddef.h>
#include <stdint.h>

#include "route/lb.h"

#define CLUSTERS_MAX 16384

struct cluster_state {
    struct lb_state lb;
    uint32_t active; /* connections open through this cluster */
    uint64_t overflows;
};

struct clusters;

int clusters_new(uint64_t seed, struct clusters **out);
void clusters_free(struct clusters *t);
/* Never NULL: the overflow entry when the table is full. */
struct cluster_state *clusters_get(struct clusters *t, const char *fqdn, const char *subset,
                                   uint16_t port);
size_t clusters_count(const struct clusters *t);
uint64_t clusters_overflowed(const struct clusters *t);

#endif
