/* DestinationRule connectionPool.http, decoded into struct cfg_http_pool
 * (config/model.h) and validated as Istio's validateConnectionPool does:
 * counts are int32 and non-negative, idleTimeout a duration of at least
 * 1ms to ms precision, and useClientProtocol excludes h2UpgradePolicy
 * UPGRADE. The values are Istio's as written; 0 keeps its meaning there
 * (unset: Istio applies only counts > 0). */
#include <string.h>

#include "config/decode.h"

static bool is(const char *k, const char *name)
{
    return strcmp(k, name) == 0;
}

/* An int32 count; a negative one gets Istio's message ("http1 max
 * pending requests must be non-negative"), anything else dec_uint's. */
static void pool_count(struct cfg_dec *d, const struct ynode *v, const char *k, const char *what,
                       uint32_t *out)
{
    if (v && v->type == YNODE_SCALAR && v->scalar.s[0] == '-') {
        size_t m = dec_push(d, k);
        dec_error(d, v, "%s must be non-negative", what);
        dec_pop(d, m);
        return;
    }
    dec_uint(d, v, k, INT32_MAX, out);
}

/* Istio's ValidateDuration: at least 1ms, whole milliseconds. */
static void pool_duration(struct cfg_dec *d, const struct ynode *v, const char *k, uint64_t *ns)
{
    uint64_t x = 0;
    if (!dec_duration(d, v, k, &x) || !x)
        return;
    const char *err = x < 1000000ULL        ? "duration must be greater than 1ms"
                      : x % 1000000ULL != 0 ? "only durations to ms precision are supported"
                                            : NULL;
    if (err) {
        size_t m = dec_push(d, k);
        dec_error(d, v, "%s", err);
        dec_pop(d, m);
        return;
    }
    *ns = x;
}

void dec_http_pool(struct cfg_dec *d, const struct ynode *n, struct cfg_http_pool *p)
{
    static const char *const upgrade[] = {"DEFAULT", "DO_NOT_UPGRADE", "UPGRADE", NULL};
    p->set = true;
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (is(k, "http1MaxPendingRequests")) {
            pool_count(d, v, k, "http1 max pending requests", &p->max_pending);
        } else if (is(k, "http2MaxRequests")) {
            pool_count(d, v, k, "http2 max requests", &p->max_requests);
        } else if (is(k, "maxRequestsPerConnection")) {
            pool_count(d, v, k, "max requests per connection", &p->max_requests_per_conn);
        } else if (is(k, "maxRetries")) {
            pool_count(d, v, k, "max retries", &p->max_retries);
        } else if (is(k, "maxConcurrentStreams")) {
            pool_count(d, v, k, "max concurrent streams", &p->max_concurrent_streams);
        } else if (is(k, "idleTimeout")) {
            pool_duration(d, v, k, &p->idle_timeout_ns);
        } else if (is(k, "h2UpgradePolicy")) {
            int x = -1;
            if (dec_enum(d, v, k, upgrade, &x) && x >= 0)
                p->h2_upgrade = (enum cfg_h2_upgrade)x;
        } else if (is(k, "useClientProtocol")) {
            dec_bool(d, v, k, &p->use_client_protocol);
        } else if (!is(k, "http2KeepAlive")) { /* pings on upstream HTTP/2: none yet */
            dec_unknown(d, k, v);
        }
    }
    if (p->h2_upgrade == CFG_H2_UPGRADE && p->use_client_protocol)
        dec_error(d, n, "use client protocol must not be true when H2UpgradePolicy is UPGRADE");
}
