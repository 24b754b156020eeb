/* Outlier detection at L4, as Istio's DestinationRule.outlierDetection and
 * Envoy implement it, with failed connects counted as gateway errors:
 *
 *  - an endpoint is ejected after `consecutive_errors` failures in a row,
 *    unless that would eject more than max_ejection_percent of the cluster
 *    (one endpoint may always be ejected);
 *  - it stays out for base_ejection_time x the number of times it has been
 *    ejected, then is eligible again (a success resets the error run);
 *  - below min_health_percent healthy endpoints, detection is suspended and
 *    every endpoint is used. */
#ifndef MESHD_ROUTE_OUTLIER_H
#define MESHD_ROUTE_OUTLIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct outlier_config {
    bool enabled;
    uint32_t consecutive_errors;   /* consecutiveGatewayErrors / 5xxErrors */
    uint64_t base_ejection_ns;     /* baseEjectionTime (Istio default 30s) */
    uint32_t max_ejection_percent; /* default 10 */
    uint32_t min_health_percent;   /* default 0 */
};

struct outlier_state {
    uint32_t consecutive; /* failures in a row */
    uint32_t ejections;   /* times ejected so far */
    uint64_t ejected_until_ns;
};

/* Istio's defaults when outlierDetection is present but fields are not. */
void outlier_config_defaults(struct outlier_config *oc);

bool outlier_is_ejected(const struct outlier_state *s, uint64_t now_ns);

/* Counts a connect result for endpoint `s` of a cluster of `cluster_size`
 * endpoints of which `ejected_now` are ejected. Returns true when this
 * failure ejected it. */
bool outlier_report(struct outlier_state *s, const struct outlier_config *oc, bool success,
                    size_t cluster_size, size_t ejected_now, uint64_t now_ns);

/* Whether ejections apply right now: false when fewer than
 * min_health_percent of the cluster is healthy. */
bool outlier_active(const struct outlier_config *oc, size_t cluster_size, size_t ejected_now);

#endif
