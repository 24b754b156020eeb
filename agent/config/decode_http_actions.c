/* The actions of a VirtualService http[] entry (retries, redirect,
 * directResponse, rewrite, fault, mirrors, corsPolicy) decoded into
 * config/model_http.h, and Istio's checks across them
 * (pkg/config/validation: validateHTTPRouteConflict, validateHTTPRetry,
 * validateHTTPRedirect, validateHTTPDirectResponse, validateHTTPRewrite,
 * validateCORSPolicy), no stricter than Istio. Faults and mirrors are in
 * decode_http_fault.c. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/decode.h"

#define DIRECT_BODY_MAX  (1024 * 1024) /* Istio: an error past 1 MB */
#define DIRECT_BODY_WARN (100 * 1024)  /* and a warning past 100 KB */

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

/* ---- retries ---- */

static const struct {
    const char *name;
    uint32_t bit; /* 0: a valid Envoy policy meshd does not apply */
} retry_names[] = {
    {"5xx", CFG_RETRY_5XX},
    {"gateway-error", CFG_RETRY_GATEWAY_ERROR},
    {"reset", CFG_RETRY_RESET},
    {"connect-failure", CFG_RETRY_CONNECT_FAILURE},
    {"refused-stream", CFG_RETRY_REFUSED_STREAM},
    {"retriable-4xx", CFG_RETRY_RETRIABLE_4XX},
    {"retriable-status-codes", CFG_RETRY_RETRIABLE_STATUS},
    {"unavailable", CFG_RETRY_UNAVAILABLE},
    {"cancelled", CFG_RETRY_CANCELLED},
    {"deadline-exceeded", CFG_RETRY_DEADLINE_EXCEEDED},
    {"resource-exhausted", CFG_RETRY_RESOURCE_EXHAUSTED},
    {"reset-before-request", 0},
    {"retriable-headers", 0},
    {"envoy-ratelimited", 0},
    {"http3-post-connect-failure", 0},
    {"internal", 0},
};

/* retryOn: Envoy's policy names and bare status codes, comma-separated. */
static void decode_retry_on(struct cfg_dec *d, const struct ynode *v, struct cfg_http_retry *rt)
{
    const char *s = NULL;
    if (!dec_str(d, v, "retryOn", &s) || !s || !*s)
        return; /* "" is unset: Istio's default policy */
    size_t m = dec_push(d, "retryOn"), parts = 1;
    for (const char *p = s; *p; p++)
        parts += *p == ',';
    uint16_t *codes = arena_array(d->arena, parts, sizeof(*codes));
    if (!codes) {
        dec_error(d, v, "out of memory");
        dec_pop(d, m);
        return;
    }
    rt->retry_on = 0;
    rt->ncodes = 0;
    for (const char *p = s; p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        size_t i = 0, n = sizeof(retry_names) / sizeof(retry_names[0]);
        while (i < n &&
               !(strlen(retry_names[i].name) == len && strncmp(retry_names[i].name, p, len) == 0))
            i++;
        if (i < n) {
            if (!retry_names[i].bit)
                dec_warn(d, v, MSH_L7_IGNORED, "\"%.*s\" is not applied by meshd", (int)len, p);
            rt->retry_on |= retry_names[i].bit;
        } else if (len == 3 && strspn(p, "0123456789") == 3 && p[0] >= '1' && p[0] <= '5') {
            codes[rt->ncodes++] = (uint16_t)strtoul(p, NULL, 10);
            rt->retry_on |= CFG_RETRY_RETRIABLE_STATUS;
        } else {
            dec_error(d, v, "\"%.*s\" is not a valid retryOn policy", (int)(len > 64 ? 64 : len),
                      p);
        }
        p = comma ? comma + 1 : NULL;
    }
    rt->retriable_codes = codes;
    dec_pop(d, m);
}

static void decode_retries(struct cfg_dec *d, const struct ynode *n, struct cfg_route *r,
                           struct cfg_http_retry *rt)
{
    size_t m = dec_push(d, "retries");
    const char *k;
    const struct ynode *v;
    bool policy = false;
    r->has_retries = true;
    rt->set = true;
    rt->attempts = 0; /* given retries without attempts: disabled */
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (is(k, "attempts")) {
            dec_uint(d, v, k, 100, &rt->attempts);
        } else if (is(k, "perTryTimeout")) {
            dec_duration(d, v, k, &rt->per_try_timeout_ns);
            policy = true;
        } else if (is(k, "retryOn")) {
            decode_retry_on(d, v, rt);
            policy |= !ynode_is_null(v) && !(v->type == YNODE_SCALAR && !v->scalar.len);
        } else if (is(k, "retryRemoteLocalities")) {
            bool b;
            dec_bool(d, v, k, &b);
            policy = true;
        } else if (is(k, "backoff")) {
            uint64_t ns;
            dec_duration(d, v, k, &ns);
        } else {
            dec_unknown(d, k, v);
        }
    }
    if (!rt->attempts && policy)
        dec_error(d, n, "http retry policy configured when attempts are set to 0 (disabled)");
    r->retries = rt->attempts;
    r->per_try_timeout_ns = rt->per_try_timeout_ns;
    dec_pop(d, m);
}

/* ---- redirect, directResponse, rewrite ---- */

static void decode_redirect(struct cfg_dec *d, const struct ynode *n, struct cfg_http_redirect *rd)
{
    size_t m = dec_push(d, "redirect");
    const char *k;
    const struct ynode *v;
    bool port = false;
    rd->set = true;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (is(k, "uri")) {
            dec_str(d, v, k, &rd->uri);
        } else if (is(k, "authority")) {
            dec_str(d, v, k, &rd->authority);
        } else if (is(k, "scheme")) {
            dec_str(d, v, k, &rd->scheme);
        } else if (is(k, "port")) {
            port = dec_uint(d, v, k, 65535, &rd->port);
            if (port && !rd->port)
                error_at(d, k, v, "port number 0 must be in the range 1..65535");
        } else if (is(k, "derivePort")) {
            port = true;
            dec_warn(d, v, MSH_L7_IGNORED, "derivePort is not applied: the request's port is kept");
        } else if (is(k, "redirectCode")) {
            if (dec_uint(d, v, k, 1000, &rd->code) && (rd->code < 300 || rd->code > 399))
                error_at(d, k, v, "not a valid redirect code, must be 3xx");
        } else {
            dec_unknown(d, k, v);
        }
    }
    if (!rd->uri && !rd->authority && !rd->scheme && !port)
        dec_error(d, n, "redirect must specify URI, authority, scheme, or port");
    if (rd->scheme && !is(rd->scheme, "http") && !is(rd->scheme, "https"))
        dec_error(d, n, "invalid redirect scheme, must be \"http\" or \"https\"");
    dec_pop(d, m);
}

static int b64(char c)
{
    const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(abc, c) : NULL;
    return p ? (int)(p - abc) : -1;
}

/* Standard base64 with padding, as protobuf's JSON bytes; -1 if not. */
static long base64_decode(const char *s, size_t len, char *out)
{
    if (len % 4)
        return -1;
    long n = 0;
    for (size_t i = 0; i < len; i += 4) {
        int q[4];
        for (int j = 0; j < 4; j++) {
            bool pad = s[i + j] == '=' && i + 4 == len && j >= 2;
            q[j] = pad ? -2 : b64(s[i + j]);
            if (q[j] == -1 || (q[j] == -2 && j == 2 && s[i + 3] != '='))
                return -1;
        }
        out[n++] = (char)(q[0] << 2 | q[1] >> 4);
        if (q[2] >= 0)
            out[n++] = (char)((q[1] & 15) << 4 | q[2] >> 2);
        if (q[3] >= 0)
            out[n++] = (char)((q[2] & 3) << 6 | q[3]);
    }
    return n;
}

static void decode_body(struct cfg_dec *d, const struct ynode *n, struct cfg_http_direct *dr)
{
    size_t m = dec_push(d, "body");
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        const char *s = NULL;
        if ((!is(k, "string") && !is(k, "bytes"))) {
            dec_unknown(d, k, v);
            continue;
        }
        if (dr->body) {
            dec_error(d, v, "only one of string or bytes may be set");
            continue;
        }
        if (!dec_str(d, v, k, &s) || !s)
            continue;
        size_t len = strlen(s);
        if (is(k, "bytes")) {
            char *raw = arena_alloc(d->arena, len / 4 * 3 + 1);
            long got = raw ? base64_decode(s, len, raw) : -1;
            if (got < 0) {
                error_at(d, k, v, raw ? "expected base64" : "out of memory");
                continue;
            }
            s = raw;
            len = (size_t)got;
        }
        if (len > DIRECT_BODY_MAX)
            error_at(d, k, v,
                     "large direct_responses may impact control plane performance, must be less "
                     "than 1MB");
        else if (len > DIRECT_BODY_WARN)
            dec_warn(d, v, IST_SCHEMA,
                     "large direct_responses may impact control plane performance");
        dr->body = s;
        dr->body_len = len;
    }
    dec_pop(d, m);
}

static void decode_direct(struct cfg_dec *d, const struct ynode *n, struct cfg_http_direct *dr)
{
    size_t m = dec_push(d, "directResponse");
    const char *k;
    const struct ynode *v;
    dr->set = true;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (is(k, "status"))
            dec_uint(d, v, k, 100000, &dr->status);
        else if (is(k, "body"))
            decode_body(d, v, dr);
        else
            dec_unknown(d, k, v);
    }
    if (dr->status < 200 || dr->status > 600)
        dec_error(d, n, "HTTP status %u is not in range 200-599", dr->status);
    dec_pop(d, m);
}

static void decode_rewrite(struct cfg_dec *d, const struct ynode *n, struct cfg_http_rewrite *rw)
{
    size_t m = dec_push(d, "rewrite");
    const char *k;
    const struct ynode *v;
    bool regex = false;
    rw->set = true;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (is(k, "uri")) {
            dec_str(d, v, k, &rw->uri);
        } else if (is(k, "authority")) {
            dec_str(d, v, k, &rw->authority);
        } else if (is(k, "uriRegexRewrite")) {
            regex = true;
            size_t mk = dec_push(d, k);
            dec_str(d, ymap_get(v, "match"), "match", &rw->regex_match);
            dec_str(d, ymap_get(v, "rewrite"), "rewrite", &rw->regex_rewrite);
            if (!rw->regex_match || !*rw->regex_match || !rw->regex_rewrite || !*rw->regex_rewrite)
                dec_error(d, v, "UriRegexRewrite requires both Rewrite and Match fields");
            else
                rw->regex = dec_regex(d, ymap_get(v, "match"), rw->regex_match);
            dec_pop(d, mk);
        } else {
            dec_unknown(d, k, v);
        }
    }
    if (rw->uri && *rw->uri && regex)
        dec_error(d, n, "rewrite may only contain one of URI or UriRegexRewrite");
    else if (!(rw->uri && *rw->uri) && !regex && !(rw->authority && *rw->authority))
        dec_error(d, n, "rewrite must specify at least one of URI, UriRegexRewrite, or authority");
    dec_pop(d, m);
}

/* ---- corsPolicy ---- */

static void decode_cors(struct cfg_dec *d, const struct ynode *n, struct cfg_cors *c)
{
    static const char *const methods[] = {"GET",    "HEAD",    "POST",    "PUT",   "PATCH",
                                          "DELETE", "CONNECT", "OPTIONS", "TRACE", "*"};
    size_t m = dec_push(d, "corsPolicy");
    const char *k;
    const struct ynode *v;
    c->set = true;
    struct cfg_strs legacy = {0};
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (is(k, "allowOrigins")) {
            size_t no;
            struct cfg_str_match *o = dec_seq(d, v, k, sizeof(*o), &no);
            size_t mk = dec_push(d, k);
            for (size_t j = 0; o && j < no; j++) {
                size_t mi = dec_push_index(d, j);
                dec_str_match(d, v->seq.v[j], "", &o[j]);
                if (!o[j].value || !*o[j].value)
                    dec_error(d, v->seq.v[j], "not a valid match type for CORS allow origins");
                dec_pop(d, mi);
            }
            dec_pop(d, mk);
            c->allow_origins = o;
            c->norigins = o ? no : 0;
        } else if (is(k, "allowOrigin")) {
            dec_strs(d, v, k, &legacy);
        } else if (is(k, "allowMethods")) {
            dec_strs(d, v, k, &c->allow_methods);
            for (size_t j = 0; j < c->allow_methods.n; j++) {
                size_t x = 0;
                while (x < 10 && !is(c->allow_methods.v[j], methods[x]))
                    x++;
                if (x == 10)
                    dec_error(d, v, "allowMethods: \"%.32s\" is not a supported HTTP method",
                              c->allow_methods.v[j]);
            }
        } else if (is(k, "allowHeaders") || is(k, "exposeHeaders")) {
            struct cfg_strs *s = is(k, "allowHeaders") ? &c->allow_headers : &c->expose_headers;
            dec_strs(d, v, k, s);
            for (size_t j = 0; j < s->n; j++)
                if (!*s->v[j] || strpbrk(s->v[j], " \t\r\n\"(),/:;<=>?@[\\]{}"))
                    dec_error(d, v, "%s: \"%.64s\" is not a valid header name", k, s->v[j]);
        } else if (is(k, "maxAge")) {
            uint64_t ns = 0;
            if (dec_duration(d, v, k, &ns) && ns % 1000000000u)
                error_at(d, k, v, "max_age duration is accurate only to seconds precision");
            c->max_age_s = ns / 1000000000u;
        } else if (is(k, "allowCredentials")) {
            c->has_allow_credentials = dec_bool(d, v, k, &c->allow_credentials);
        } else if (!is(k, "unmatchedPreflights")) {
            dec_unknown(d, k, v);
        }
    }
    /* The legacy allowOrigin list: exact origins, when allowOrigins is not given. */
    if (legacy.n && !c->norigins) {
        struct cfg_str_match *o = arena_array(d->arena, legacy.n, sizeof(*o));
        for (size_t j = 0; o && j < legacy.n; j++)
            o[j] = (struct cfg_str_match){.set = true, .kind = CFG_STR_EXACT, .value = legacy.v[j]};
        c->allow_origins = o;
        c->norigins = o ? legacy.n : 0;
    }
    dec_pop(d, m);
}

bool dec_http_action(struct cfg_dec *d, const char *k, const struct ynode *v, struct cfg_route *r,
                     struct cfg_http_route *h)
{
    static const char *const actions[] = {
        "redirect", "directResponse",   "delegate",      "rewrite",        "fault",      "mirror",
        "mirrors",  "mirrorPercentage", "mirrorPercent", "mirror_percent", "corsPolicy", NULL};
    if (is(k, "retries")) {
        decode_retries(d, v, r, &h->retries);
        return true;
    }
    size_t i = 0;
    while (actions[i] && !is(k, actions[i]))
        i++;
    if (!actions[i])
        return false;
    if (!r->l7_action)
        r->l7_action = actions[i];
    if (is(k, "redirect"))
        decode_redirect(d, v, &h->redirect);
    else if (is(k, "directResponse"))
        decode_direct(d, v, &h->direct);
    else if (is(k, "rewrite"))
        decode_rewrite(d, v, &h->rewrite);
    else if (is(k, "fault"))
        dec_http_fault(d, v, &h->fault);
    else if (is(k, "corsPolicy"))
        decode_cors(d, v, &h->cors);
    else if (is(k, "mirrorPercent") || is(k, "mirror_percent"))
        dec_warn(d, v, IST_SCHEMA, "%s: deprecated, use mirrorPercentage instead", k);
    /* mirror, mirrors and their percentages: dec_http_mirrors, after the loop
     * (their keys come in any order). */
    return true;
}

/* How many of the request's authority edits (rewrite.authority, request
 * headers set/add of :authority or host) the route has. */
static size_t authority_edits(const struct cfg_http_route *h)
{
    size_t n = h->rewrite.authority && *h->rewrite.authority;
    const struct cfg_header_ops *ops = &h->headers.request;
    for (size_t i = 0; i < ops->nset; i++)
        n += is(ops->set[i].key, ":authority") || is(ops->set[i].key, "host");
    for (size_t i = 0; i < ops->nadd; i++)
        n += is(ops->add[i].key, ":authority") || is(ops->add[i].key, "host");
    return n;
}

void dec_http_check(struct cfg_dec *d, const struct ynode *n, const struct cfg_route *r,
                    const struct cfg_http_route *h)
{
    dec_http_mirrors(d, n, (struct cfg_route *)r, (struct cfg_http_route *)h);
    bool fault = !ynode_is_null(ymap_get(n, "fault")), route = r->ndest > 0;
    bool rewrite = h->rewrite.set;
    if (ymap_get(n, "delegate")) {
        if (h->redirect.set)
            dec_error(d, n, "root HTTP route must not specify redirect");
        if (route)
            dec_error(d, n, "root HTTP route must not specify route");
    } else if (h->redirect.set) {
        if (route)
            dec_error(d, n, "HTTP route cannot contain both route and redirect");
        if (fault)
            dec_error(d, n, "HTTP route cannot contain both fault and redirect");
        if (rewrite)
            dec_error(d, n, "HTTP route rule cannot contain both rewrite and redirect");
        if (h->direct.set)
            dec_error(d, n, "HTTP route rule cannot contain both direct_response and redirect");
    } else if (h->direct.set) {
        if (route)
            dec_error(d, n, "HTTP route cannot contain both route and direct_response");
        if (fault)
            dec_error(d, n, "HTTP route cannot contain both fault and direct_response");
        if (rewrite)
            dec_error(d, n, "HTTP route rule cannot contain both rewrite and direct_response");
    } else if (!route) {
        dec_error(d, n, "HTTP route, redirect or direct_response is required");
    }
    if (!ynode_is_null(ymap_get(n, "mirror")) && ymap_get(n, "mirrors"))
        dec_error(d, n, "HTTP route cannot contain both mirror and mirrors");
    if (authority_edits(h) > 1)
        dec_error(d, n, "authority header cannot be set multiple times");
}
