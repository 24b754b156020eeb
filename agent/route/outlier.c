/* L4 outlier detection (see outlier.h). */
#include "route/outlier.h"

void outlier_config_defaults(struct outlier_config *oc)
{
    *oc = (struct outlier_config){
        .enabled = true,
        .consecutive_errors = 5,
        .base_ejection_ns = 30ull * 1000000000ull,
        .max_ejection_percent = 10,
        .min_health_percent = 0,
    };
}

bool outlier_is_ejected(const struct outlier_state *s, uint64_t now_ns)
{
    return s->ejected_until_ns > now_ns;
}

bool outlier_active(const struct outlier_config *oc, size_t cluster_size, size_t ejected_now)
{
    if (!oc || !oc->enabled || cluster_size == 0)
        return false;
    size_t healthy = cluster_size - ejected_now;
    return healthy * 100 >= (size_t)oc->min_health_percent * cluster_size;
}

bool outlier_report(struct outlier_state *s, const struct outlier_config *oc, bool success,
                    size_t cluster_size, size_t ejected_now, uint64_t now_ns)
{
    if (success) {
        s->consecutive = 0;
        return false;
    }
    if (!oc || !oc->enabled || oc->consecutive_errors == 0)
        return false;
    if (++s->consecutive < oc->consecutive_errors || outlier_is_ejected(s, now_ns))
        return false;
    /* Envoy: never more than max_ejection_percent, but one may always go. */
    if (ejected_now > 0 &&
        (ejected_now + 1) * 100 > (size_t)oc->max_ejection_percent * cluster_size)
        return false;
    s->ejections++;
    s->ejected_until_ns = now_ns + oc->base_ejection_ns * s->ejections;
    s->consecutive = 0;
    return true;
}
