/* Per-connection endpoint choice, with Istio's DestinationRule semantics:
 * weighted route destinations, loadBalancer.simple (ROUND_ROBIN,
 * LEAST_REQUEST, RANDOM, PASSTHROUGH), consistentHash.useSourceIp, and
 * outlier ejection (see outlier.h) deciding which endpoints may be picked.
 *
 * Pure logic over caller-owned arrays: no allocation, no I/O, O(n) in the
 * endpoints of one cluster (service, subset, port). */
#ifndef MESHD_ROUTE_LB_H
#define MESHD_ROUTE_LB_H

#include <stddef.h>
#include <stdint.h>

#include "meshd/capture.h"
#include "route/outlier.h"

enum lb_policy {
    LB_ROUND_ROBIN, /* Istio's default for L4 */
    LB_LEAST_REQUEST,
    LB_RANDOM,
    LB_PASSTHROUGH, /* to the original destination, no choice */
    LB_CONSISTENT_HASH_SOURCE_IP,
};

struct lb_endpoint {
    struct meshd_addr addr;
    uint32_t active; /* open connections through us (LEAST_REQUEST) */
    struct outlier_state outlier;
};

/* Per cluster, kept by the caller between picks. */
struct lb_state {
    uint64_t rr_next;
    uint64_t rng; /* xorshift64* state, never 0 */
};

void lb_state_init(struct lb_state *st, uint64_t seed);
uint64_t lb_random(struct lb_state *st);

/* Index of the endpoint for a new connection from `src`, or -1 when none
 * is available. Ejected endpoints are skipped unless outlier detection is
 * suspended by minHealthPercent. `exclude` (or -1) is an index a retry
 * must avoid when another choice exists. */
int lb_pick(enum lb_policy policy, struct lb_state *st, const struct lb_endpoint *eps, size_t n,
            const struct meshd_addr *src, const struct outlier_config *oc, uint64_t now_ns,
            int exclude);

/* A VirtualService route's weighted destinations: index i with probability
 * weights[i] / sum. A single destination (n == 1) is 100 whatever its
 * weight. -1 when every weight is 0. */
int lb_weighted_pick(const uint32_t *weights, size_t n, struct lb_state *st);

#endif
