/* The fault injection and mirrors of a VirtualService http[] entry,
 * decoded into config/model_http.h with Istio's checks
 * (validateHTTPFaultInjection, validatePercentage, the mirror checks in
 * validateHTTPRoute and validateHTTPMirrors). Percentages become parts per
 * million; an unset one is 100%. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config/decode.h"

#define PPM 1000000u

static bool is(const char *k, const char *name)
{
    return strcmp(k, name) == 0;
}

static void error_at(struct cfg_dec *d, const char *field, const struct ynode *at, const char *msg)
{
    size_t m = dec_push(d, field);
    dec_error(d, at, "%s", msg);
    dec_pop(d, m);
}

static bool number(struct cfg_dec *d, const struct ynode *v, const char *field, double *out)
{
    char *end = NULL;
    double x = v && v->type == YNODE_SCALAR ? strtod(v->scalar.s, &end) : NAN;
    if (!v || v->type != YNODE_SCALAR || !v->scalar.len || *end || !isfinite(x)) {
        error_at(d, field, v, "expected a number");
        return false;
    }
    *out = x;
    return true;
}

/* A Percent {value: 0..100} as parts per million; unset: 100%. */
static void decode_percentage(struct cfg_dec *d, const struct ynode *n, const char *field,
                              uint32_t *ppm)
{
    if (ynode_is_null(n))
        return;
    size_t m = dec_push(d, field);
    const char *k;
    const struct ynode *v;
    double x = 100;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (is(k, "value"))
            number(d, v, k, &x);
        else
            dec_unknown(d, k, v);
    }
    /* validatePercentage: 0, or 0.0001 to 100. */
    if (x < 0 || x > 100 || (x > 0 && x < 0.0001))
        dec_error(d, n, "percentage %g is neither 0 nor in range [0.0001, 100]", x);
    else
        *ppm = (uint32_t)(x * 10000 + 0.5);
    dec_pop(d, m);
}

/* ---- fault ---- */

/* gRPC status names (grpc/doc/statuscodes.md), index = code. */
static const char *const grpc_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

static void decode_abort(struct cfg_dec *d, const struct ynode *n, struct cfg_http_fault *f)
{
    size_t m = dec_push(d, "abort");
    const char *k;
    const struct ynode *v;
    bool type = false;
    f->abort_set = true;
    f->abort_ppm = PPM;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (is(k, "httpStatus")) {
            type = true;
            if (dec_uint(d, v, k, 100000, &f->abort_status) &&
                (f->abort_status < 200 || f->abort_status > 600))
                error_at(d, k, v, "HTTP status is not in range 200-599");
        } else if (is(k, "grpcStatus")) {
            const char *s = NULL;
            type = true;
            if (!dec_str(d, v, k, &s) || !s)
                continue;
            for (size_t c = 0; c < sizeof(grpc_names) / sizeof(grpc_names[0]); c++)
                if (is(s, grpc_names[c]))
                    f->abort_grpc_status = (int32_t)c;
            if (f->abort_grpc_status < 0)
                error_at(d, k, v, "not a supported gRPC status (for example NOT_FOUND)");
        } else if (is(k, "http2Error")) {
            type = true;
            error_at(d, k, v, "HTTP/2 abort fault injection not supported yet");
        } else if (is(k, "percentage")) {
            decode_percentage(d, v, k, &f->abort_ppm);
        } else {
            dec_unknown(d, k, v);
        }
    }
    if (!type) {
        dec_warn(d, n, IST_SCHEMA, "abort configured, but error type not set");
        f->abort_set = false;
    }
    dec_pop(d, m);
}

static void decode_delay(struct cfg_dec *d, const struct ynode *n, struct cfg_http_fault *f)
{
    size_t m = dec_push(d, "delay");
    const char *k;
    const struct ynode *v;
    bool has_percentage = false;
    f->delay_ppm = PPM;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (is(k, "fixedDelay")) {
            f->delay_set = dec_duration(d, v, k, &f->delay_ns) && f->delay_ns;
        } else if (is(k, "exponentialDelay")) {
            error_at(d, k, v, "exponentialDelay not supported yet");
        } else if (is(k, "percentage")) {
            has_percentage = true;
            decode_percentage(d, v, k, &f->delay_ppm);
        } else if (is(k, "percent")) {
            uint32_t pct = 0;
            /* The legacy integer percent, used when percentage is not given. */
            if (dec_uint(d, v, k, 100, &pct) && !has_percentage && !ymap_get(n, "percentage"))
                f->delay_ppm = pct * 10000;
        } else {
            dec_unknown(d, k, v);
        }
    }
    dec_pop(d, m);
}

void dec_http_fault(struct cfg_dec *d, const struct ynode *n, struct cfg_http_fault *f)
{
    size_t m = dec_push(d, "fault");
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (is(k, "delay"))
            decode_delay(d, v, f);
        else if (is(k, "abort"))
            decode_abort(d, v, f);
        else
            dec_unknown(d, k, v);
    }
    if (ynode_is_null(ymap_get(n, "delay")) && ynode_is_null(ymap_get(n, "abort")))
        dec_error(d, n, "HTTP fault injection must have an abort and/or a delay");
    dec_pop(d, m);
}

/* ---- mirrors ---- */

/* mirror (+ mirrorPercentage, or the legacy mirrorPercent / mirror_percent)
 * and mirrors[] (destination + percentage), in that order; the L4 view
 * (r->mirrors) keeps the destinations for analyze. */
void dec_http_mirrors(struct cfg_dec *d, const struct ynode *n, struct cfg_route *r,
                      struct cfg_http_route *h)
{
    const struct ynode *one = ymap_get(n, "mirror"), *list = ymap_get(n, "mirrors");
    size_t nlist = list && list->type == YNODE_SEQ ? list->seq.n : 0;
    size_t total = (ynode_is_null(one) ? 0 : 1) + nlist;
    if (!total)
        return;
    struct cfg_http_mirror *mir = arena_array(d->arena, total, sizeof(*mir));
    struct cfg_destination *l4 = arena_array(d->arena, total, sizeof(*l4));
    if (!mir || !l4) {
        dec_error(d, n, "out of memory");
        return;
    }
    size_t k = 0;
    if (!ynode_is_null(one)) {
        size_t m = dec_push(d, "mirror");
        dec_destination(d, one, &mir[k].dest);
        dec_pop(d, m);
        mir[k].ppm = PPM;
        const struct ynode *legacy = ymap_get(n, "mirrorPercent");
        legacy = legacy ? legacy : ymap_get(n, "mirror_percent");
        uint32_t pct;
        if (legacy && dec_uint(d, legacy, "mirrorPercent", 100, &pct))
            mir[k].ppm = pct * 10000;
        decode_percentage(d, ymap_get(n, "mirrorPercentage"), "mirrorPercentage", &mir[k].ppm);
        k++;
    }
    size_t m = dec_push(d, "mirrors");
    for (size_t i = 0; i < nlist; i++) {
        size_t mi = dec_push_index(d, i);
        const struct ynode *e = list->seq.v[i], *dst = ymap_get(e, "destination");
        const char *key;
        const struct ynode *v;
        for (size_t j = 0; dec_each(d, e, &j, &key, &v);)
            if (!is(key, "destination") && !is(key, "percentage"))
                dec_unknown(d, key, v);
        if (ynode_is_null(dst)) {
            dec_error(d, e, "destination is required for mirrors");
        } else {
            size_t md = dec_push(d, "destination");
            dec_destination(d, dst, &mir[k].dest);
            dec_pop(d, md);
            mir[k].ppm = PPM;
            decode_percentage(d, ymap_get(e, "percentage"), "percentage", &mir[k].ppm);
            k++;
        }
        dec_pop(d, mi);
    }
    dec_pop(d, m);
    for (size_t i = 0; i < k; i++)
        l4[i] = mir[i].dest;
    h->mirrors = mir;
    h->nmirrors = k;
    r->mirrors = l4;
    r->nmirrors = k;
}
