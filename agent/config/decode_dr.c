/* networking.istio.io DestinationRule: host, subsets and trafficPolicy
 * (loadBalancer, connectionPool, outlierDetection, tls, portLevelSettings)
 * as Istio validates them; connectionPool.http is decode_pool.c's. */
#include <stdlib.h>
#include <string.h>

#include "config/decode.h"

/* A double for the schema's numeric checks; false (and an error) if not one. */
static bool dec_number(struct cfg_dec *d, const struct ynode *v, const char *field, double *out)
{
    if (ynode_is_null(v))
        return false;
    char *end = NULL;
    double x = v->type == YNODE_SCALAR ? strtod(v->scalar.s, &end) : 0;
    if (v->type != YNODE_SCALAR || !v->scalar.len || *end) {
        size_t m = dec_push(d, field);
        dec_error(d, v, "expected a number");
        dec_pop(d, m);
        return false;
    }
    *out = x;
    return true;
}

/* Slow start is not applied at L4 (connections get their endpoint once);
 * validated as Istio's validateLoadBalancer does. */
static void decode_warmup(struct cfg_dec *d, const struct ynode *n)
{
    const char *k;
    const struct ynode *v;
    bool has_duration = false;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        double x;
        if (dec_is(k, "duration")) {
            uint64_t ns = 0;
            has_duration = dec_duration(d, v, k, &ns) && ns;
        } else if (dec_is(k, "minimumPercent")) {
            if (dec_number(d, v, k, &x) && (x < 0 || x > 100)) {
                size_t m = dec_push(d, k);
                dec_error(d, v, "must be from 0 to 100");
                dec_pop(d, m);
            }
        } else if (dec_is(k, "aggression")) {
            if (dec_number(d, v, k, &x) && x <= 0) {
                size_t m = dec_push(d, k);
                dec_error(d, v, "must be greater than 0");
                dec_pop(d, m);
            }
        } else {
            dec_unknown(d, k, v);
        }
    }
    if (!has_duration && !d->failed)
        dec_error(d, n, "duration is required");
}

static void decode_lb(struct cfg_dec *d, const struct ynode *n, enum cfg_lb *lb)
{
    static const char *const simple[] = {"UNSPECIFIED", "LEAST_CONN",    "RANDOM", "PASSTHROUGH",
                                         "ROUND_ROBIN", "LEAST_REQUEST", NULL};
    static const enum cfg_lb simple_lb[] = {CFG_LB_ROUND_ROBIN, CFG_LB_LEAST_REQUEST,
                                            CFG_LB_RANDOM,      CFG_LB_PASSTHROUGH,
                                            CFG_LB_ROUND_ROBIN, CFG_LB_LEAST_REQUEST};
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "simple")) {
            int x = -1;
            if (dec_enum(d, v, k, simple, &x) && x >= 0)
                *lb = simple_lb[x];
        } else if (dec_is(k, "consistentHash")) {
            bool src = false;
            size_t m = dec_push(d, k);
            dec_bool(d, ymap_get(v, "useSourceIp"), "useSourceIp", &src);
            dec_pop(d, m);
            *lb = src ? CFG_LB_CONSISTENT_SOURCE_IP : CFG_LB_CONSISTENT_OTHER;
            if (!src)
                dec_warn(d, v, MSH_L7_IGNORED,
                         "consistentHash on HTTP attributes is not computed yet (not at L4, "
                         "nor per request): requests and connections are spread round-robin");
        } else if (dec_is(k, "warmup")) {
            size_t m = dec_push(d, k);
            decode_warmup(d, v);
            dec_pop(d, m);
        } else if (dec_is(k, "warmupDurationSecs")) {
            uint64_t ns = 0;
            dec_duration(d, v, k, &ns);
        } else if (!dec_is(k, "localityLbSetting")) {
            dec_unknown(d, k, v);
        }
    }
}

static void decode_conn_pool(struct cfg_dec *d, const struct ynode *n, struct cfg_conn_pool *p)
{
    p->set = true;
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "tcp")) {
            size_t m = dec_push(d, k);
            const char *tk;
            const struct ynode *tv;
            for (size_t j = 0; dec_each(d, v, &j, &tk, &tv);) {
                if (dec_is(tk, "maxConnections")) {
                    dec_uint(d, tv, tk, UINT32_MAX, &p->max_connections);
                } else if (dec_is(tk, "connectTimeout")) {
                    dec_duration(d, tv, tk, &p->connect_timeout_ns);
                } else if (dec_is(tk, "tcpKeepalive")) {
                    size_t m2 = dec_push(d, tk);
                    uint64_t t = 0, iv = 0;
                    p->keepalive = true;
                    dec_uint(d, ymap_get(tv, "probes"), "probes", 1000, &p->keepalive_probes);
                    dec_duration(d, ymap_get(tv, "time"), "time", &t);
                    dec_duration(d, ymap_get(tv, "interval"), "interval", &iv);
                    p->keepalive_time_s = (uint32_t)(t / 1000000000ULL);
                    p->keepalive_interval_s = (uint32_t)(iv / 1000000000ULL);
                    dec_pop(d, m2);
                } else if (!dec_is(tk, "maxConnectionDuration") && !dec_is(tk, "idleTimeout")) {
                    dec_unknown(d, tk, tv);
                }
            }
            dec_pop(d, m);
        } else if (dec_is(k, "http")) {
            size_t m = dec_push(d, k);
            dec_http_pool(d, v, &p->http);
            dec_pop(d, m);
        } else {
            dec_unknown(d, k, v);
        }
    }
}

static void decode_outlier(struct cfg_dec *d, const struct ynode *n, struct cfg_outlier *o)
{
    o->set = true;
    uint32_t gw = 0, fivexx = 0, legacy = 0;
    bool has_gw = false, has_5xx = false;
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "consecutiveGatewayErrors"))
            has_gw = dec_uint(d, v, k, 1000000, &gw) && !ynode_is_null(v);
        else if (dec_is(k, "consecutive5xxErrors"))
            has_5xx = dec_uint(d, v, k, 1000000, &fivexx) && !ynode_is_null(v);
        else if (dec_is(k, "consecutiveErrors"))
            dec_uint(d, v, k, 1000000, &legacy);
        else if (dec_is(k, "interval"))
            dec_duration(d, v, k, &o->interval_ns);
        else if (dec_is(k, "baseEjectionTime"))
            dec_duration(d, v, k, &o->base_ejection_ns);
        else if (dec_is(k, "maxEjectionPercent"))
            o->has_max_ejection = dec_uint(d, v, k, 100, &o->max_ejection_percent);
        else if (dec_is(k, "minHealthPercent"))
            o->has_min_health = dec_uint(d, v, k, 100, &o->min_health_percent);
        else if (!dec_is(k, "splitExternalLocalOriginErrors") &&
                 !dec_is(k, "consecutiveLocalOriginFailures"))
            dec_unknown(d, k, v);
    }
    /* At L4 a failed connect is both a gateway error and a 5xx. */
    o->consecutive_errors = gw ? gw : fivexx ? fivexx : legacy;
    /* Per request, as Istio configures Envoy: the legacy consecutiveErrors
     * counts gateway errors only; each newer field, when given, wins. */
    o->consecutive_5xx = has_5xx ? fivexx : legacy ? 0 : 5;
    o->consecutive_gateway = has_gw ? gw : legacy;
}

static void decode_policy_level(struct cfg_dec *d, const char *k, const struct ynode *v,
                                struct cfg_policy_level *lv)
{
    if (dec_is(k, "loadBalancer")) {
        size_t m = dec_push(d, k);
        decode_lb(d, v, &lv->lb);
        dec_pop(d, m);
    } else if (dec_is(k, "connectionPool")) {
        size_t m = dec_push(d, k);
        decode_conn_pool(d, v, &lv->pool);
        dec_pop(d, m);
    } else if (dec_is(k, "outlierDetection")) {
        size_t m = dec_push(d, k);
        decode_outlier(d, v, &lv->outlier);
        dec_pop(d, m);
    } else if (dec_is(k, "tls")) {
        size_t m = dec_push(d, k);
        dec_str(d, ymap_get(v, "mode"), "mode", &lv->tls_mode);
        dec_pop(d, m);
    } else if (!dec_is(k, "tunnel") && !dec_is(k, "proxyProtocol") && !dec_is(k, "port")) {
        dec_unknown(d, k, v);
    }
}

static void decode_port_policy(struct cfg_dec *d, const struct ynode *n, struct cfg_port_policy *pp)
{
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);)
        decode_policy_level(d, k, v, &pp->level);
    size_t m = dec_push(d, "port");
    dec_port(d, ymap_get(ymap_get(n, "port"), "number"), "number", &pp->port);
    dec_pop(d, m);
    if (!pp->port)
        dec_error(d, n, "port.number is required");
}

static void decode_traffic_policy(struct cfg_dec *d, const struct ynode *n,
                                  struct cfg_traffic_policy *tp)
{
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "portLevelSettings"))
            DECODE_LIST(d, v, k, struct cfg_port_policy, decode_port_policy, tp->ports, tp->nports);
        else
            decode_policy_level(d, k, v, &tp->top);
    }
}

static void decode_subset(struct cfg_dec *d, const struct ynode *n, struct cfg_subset *s)
{
    s->pos = dec_here(d, n);
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "name")) {
            dec_str(d, v, k, &s->name);
        } else if (dec_is(k, "labels")) {
            dec_labels(d, v, k, &s->labels);
        } else if (dec_is(k, "trafficPolicy")) {
            size_t m = dec_push(d, k);
            decode_traffic_policy(d, v, &s->policy);
            dec_pop(d, m);
        } else {
            dec_unknown(d, k, v);
        }
    }
    if (!s->name)
        dec_error(d, n, "name is required");
}

void decode_destination_rule(struct cfg_dec *d, const struct ynode *doc, void *out)
{
    struct cfg_destination_rule *dr = out;
    const struct ynode *spec = ymap_get(doc, "spec");
    size_t m = dec_push(d, "spec");
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, spec, &i, &k, &v);) {
        if (dec_is(k, "host")) {
            dec_str(d, v, k, &dr->host);
        } else if (dec_is(k, "trafficPolicy")) {
            size_t m2 = dec_push(d, k);
            decode_traffic_policy(d, v, &dr->policy);
            dec_pop(d, m2);
        } else if (dec_is(k, "subsets")) {
            DECODE_LIST(d, v, k, struct cfg_subset, decode_subset, dr->subsets, dr->nsubsets);
        } else if (dec_is(k, "exportTo")) {
            dec_strs(d, v, k, &dr->export_to);
        } else if (dec_is(k, "workloadSelector")) {
            dec_match_labels(d, v, k, &dr->workload_selector);
        } else {
            dec_unknown(d, k, v);
        }
    }
    dec_pop(d, m);
    if (!dr->host)
        dec_error(d, spec, "spec.host is required");
}

/* ---- ServiceEntry, WorkloadEntry ---- */
