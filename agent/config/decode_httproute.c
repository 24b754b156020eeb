/* Gateway API routes (gateway.networking.k8s.io): HTTPRoute v1/v1beta1,
 * TLSRoute and TCPRoute v1alpha2, decoded into config/model_gwapi.h.
 *
 * Each HTTPRoute match becomes an http[] route of the internal model
 * (cfg_route + cfg_http_route), as istiod generates one VirtualService
 * route per match, with the rule's filters: RequestHeaderModifier and
 * ResponseHeaderModifier (header operations), RequestRedirect (redirect,
 * 302 unless given), URLRewrite (ReplaceFullPath as a whole-path regex
 * rewrite, ReplacePrefixMatch as the prefix rewrite), RequestMirror
 * (mirrors). A PathPrefix matches whole path elements ("/foo" matches
 * "/foo" and "/foo/bar", never "/foobar"): it becomes two routes, the path
 * exactly and the path with a "/" as a prefix. The rule's backends are
 * kept as references: config/gateway_api.c resolves them. The filters are
 * in decode_httproute_filters.c.
 *
 * Validation is the CRDs' (schema, CEL rules), bounded by their maxItems. */
#include <string.h>

#include "config/decode.h"

#define MAX_PARENTS    32
#define MAX_HOSTNAMES  16
#define MAX_RULES      16
#define MAX_MATCHES    64
#define MAX_FILTERS    16
#define MAX_BACKENDS   16
#define MAX_HEADER_OPS 16
#define MAX_PATH       1024

static const char *const methods[] = {"GET",     "HEAD",    "POST",  "PUT",   "DELETE",
                                      "CONNECT", "OPTIONS", "TRACE", "PATCH", NULL};

static void decode_ref(struct cfg_dec *d, const struct ynode *n, struct cfg_gwapi_ref *r)
{
    dec_gwapi_ref(d, n, r);
}

/* ---- matches ---- */

/* {name, value, type} of a header or query match. */
static void decode_kv_match(struct cfg_dec *d, const struct ynode *n, struct cfg_header_match *h,
                            bool header)
{
    static const char *const types[] = {"Exact", "RegularExpression", NULL};
    const char *name = NULL, *value = NULL;
    int type = 0, x;
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "name"))
            dec_str(d, v, k, &name);
        else if (dec_is(k, "value"))
            dec_str(d, v, k, &value);
        else if (dec_is(k, "type") && dec_enum(d, v, k, types, &x) && x >= 0)
            type = x;
        else if (!dec_is(k, "type"))
            dec_unknown(d, k, v);
    }
    if (!name || !value) {
        dec_error(d, n, "name and value are required");
        return;
    }
    if (!dec_gwapi_header_name(name))
        dec_error(d, n, "name: \"%.64s\" is not a valid %s name", name,
                  header ? "header" : "query parameter");
    if (strlen(value) > 4096)
        dec_error(d, n, "value: at most 4096 characters");
    h->name = header ? dec_lower_dup(d, name) : name;
    h->m = (struct cfg_str_match){.set = true, .value = value};
    if (type == 1) {
        h->m.kind = CFG_STR_REGEX;
        h->m.regex = dec_regex(d, n, value);
    }
}

static void decode_header_match(struct cfg_dec *d, const struct ynode *n,
                                struct cfg_header_match *h)
{
    decode_kv_match(d, n, h, true);
}

static void decode_query_match(struct cfg_dec *d, const struct ynode *n, struct cfg_header_match *h)
{
    decode_kv_match(d, n, h, false);
}

/* What CEL refuses in an Exact or PathPrefix value. */
static const char *path_error(const char *p)
{
    static const char *const bad[] = {"//", "/./", "/../", "%2f", "%2F", "#", NULL};
    if (p[0] != '/')
        return "must be an absolute path";
    for (size_t i = 0; bad[i]; i++)
        if (strstr(p, bad[i]))
            return "must not contain '//', '/./', '/../', '%2f', '%2F' or '#'";
    size_t n = strlen(p);
    if ((n >= 2 && !strcmp(p + n - 2, "/.")) || (n >= 3 && !strcmp(p + n - 3, "/..")))
        return "must not end with '/.' or '/..'";
    return NULL;
}

struct match_in {
    int path_kind; /* 3 Exact, 2 PathPrefix, 1 RegularExpression */
    const char *path;
    void *regex;
    const char *method;
    struct cfg_header_matches headers, query;
};

static void decode_match(struct cfg_dec *d, const struct ynode *n, struct match_in *mi)
{
    static const char *const kinds[] = {"RegularExpression", "PathPrefix", "Exact", NULL};
    mi->path_kind = 2;
    mi->path = "/";
    int x;
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "path")) {
            size_t m = dec_push(d, k);
            const char *k2;
            const struct ynode *v2;
            for (size_t j = 0; dec_each(d, v, &j, &k2, &v2);) {
                if (dec_is(k2, "type") && dec_enum(d, v2, k2, kinds, &x) && x >= 0)
                    mi->path_kind = x + 1;
                else if (dec_is(k2, "value"))
                    dec_str(d, v2, k2, &mi->path);
                else if (!dec_is(k2, "type"))
                    dec_unknown(d, k2, v2);
            }
            const char *why = mi->path_kind == 1 ? NULL : path_error(mi->path);
            if (strlen(mi->path) > MAX_PATH)
                dec_error(d, v, "value: at most %d characters", MAX_PATH);
            else if (why)
                dec_error(d, v, "value: \"%.80s\" %s", mi->path, why);
            else if (mi->path_kind == 1)
                mi->regex = dec_regex(d, v, mi->path);
            dec_pop(d, m);
        } else if (dec_is(k, "headers")) {
            DECODE_LIST(d, v, k, struct cfg_header_match, decode_header_match, mi->headers.v,
                        mi->headers.n);
        } else if (dec_is(k, "queryParams")) {
            DECODE_LIST(d, v, k, struct cfg_header_match, decode_query_match, mi->query.v,
                        mi->query.n);
        } else if (dec_is(k, "method") && dec_enum(d, v, k, methods, &x) && x >= 0) {
            mi->method = methods[x];
        } else if (!dec_is(k, "method")) {
            dec_unknown(d, k, v);
        }
    }
    if (mi->headers.n > MAX_HEADER_OPS || mi->query.n > MAX_HEADER_OPS)
        dec_error(d, n, "headers and queryParams: at most %d each", MAX_HEADER_OPS);
    for (size_t i = 0; i < mi->headers.n; i++)
        for (size_t j = 0; j < i; j++)
            if (mi->headers.v[i].name && mi->headers.v[j].name &&
                !strcmp(mi->headers.v[i].name, mi->headers.v[j].name))
                dec_error(d, n, "headers: \"%.64s\" is matched twice", mi->headers.v[i].name);
}

/* ---- rules ---- */

/* One http[] route of a match; `uri` the path condition it carries. */
static void add_route(struct cfg_dec *d, struct cfg_gwapi_rule *rule, const struct match_in *mi,
                      struct cfg_str_match uri, const struct dec_gwapi_filters *f,
                      const char *rewrite_uri, uint64_t timeout, uint64_t per_try)
{
    struct cfg_route *r = &rule->routes[rule->nroutes];
    struct cfg_match *l4 = arena_alloc(d->arena, sizeof(*l4));
    struct cfg_http_match *hm = arena_alloc(d->arena, sizeof(*hm));
    struct cfg_http_route *h = arena_alloc(d->arena, sizeof(*h));
    if (!l4 || !hm || !h) {
        dec_error(d, NULL, "out of memory");
        return;
    }
    *l4 = (struct cfg_match){.l7 = "uri"};
    *hm = (struct cfg_http_match){.uri = uri, .headers = mi->headers, .query_params = mi->query};
    if (mi->method)
        hm->method =
            (struct cfg_str_match){.set = true, .kind = CFG_STR_EXACT, .value = mi->method};
    *h = (struct cfg_http_route){.match = hm,
                                 .headers = f->headers,
                                 .redirect = f->redirect,
                                 .rewrite = f->rewrite,
                                 .timeout_ns = timeout};
    if (rewrite_uri)
        h->rewrite.uri = rewrite_uri;
    if (per_try)
        h->retries =
            (struct cfg_http_retry){.set = true, .attempts = 2, .per_try_timeout_ns = per_try};
    *r = (struct cfg_route){.http = true,
                            .match = l4,
                            .nmatch = 1,
                            .timeout_ns = timeout,
                            .per_try_timeout_ns = per_try,
                            .http_ext = h,
                            .pos = rule->pos};
    if (f->redirect.set)
        r->l7_action = "redirect";
    rule->ranks[rule->nroutes] = (struct cfg_gwapi_rank){.path_kind = mi->path_kind,
                                                         .path_len = strlen(mi->path),
                                                         .method = mi->method != NULL,
                                                         .nheaders = mi->headers.n,
                                                         .nquery = mi->query.n};
    rule->nroutes++;
}

/* "/foo" + "/": the prefix below a path element. */
static const char *with_slash(struct cfg_dec *d, const char *p)
{
    size_t n = strlen(p);
    return n && p[n - 1] == '/' ? p : arena_printf(d->arena, "%s/", p);
}

static void expand_match(struct cfg_dec *d, struct cfg_gwapi_rule *rule, const struct match_in *mi,
                         const struct dec_gwapi_filters *f, uint64_t timeout, uint64_t per_try)
{
    const char *rp = f->rewrite_prefix;
    if (mi->path_kind == 3) {
        add_route(d, rule, mi, (struct cfg_str_match){true, CFG_STR_EXACT, mi->path, NULL}, f, rp,
                  timeout, per_try);
        return;
    }
    if (mi->path_kind == 1) {
        add_route(d, rule, mi, (struct cfg_str_match){true, CFG_STR_REGEX, mi->path, mi->regex}, f,
                  rp, timeout, per_try);
        return;
    }
    /* PathPrefix, a trailing "/" ignored: the element itself, then below. */
    size_t n = strlen(mi->path);
    const char *elem =
        n > 1 && mi->path[n - 1] == '/' ? arena_strndup(d->arena, mi->path, n - 1) : mi->path;
    if (!elem) {
        dec_error(d, NULL, "out of memory");
        return;
    }
    if (strcmp(elem, "/") != 0)
        add_route(d, rule, mi, (struct cfg_str_match){true, CFG_STR_EXACT, elem, NULL}, f,
                  rp && !*rp ? "/" : rp, timeout, per_try);
    add_route(d, rule, mi, (struct cfg_str_match){true, CFG_STR_PREFIX, with_slash(d, elem), NULL},
              f, rp ? with_slash(d, rp) : NULL, timeout, per_try);
}

/* GEP-2257 Duration: 1 to 4 of <digits up to 5><h|m|s|ms>; "0s" is none. */
static bool gwapi_duration(struct cfg_dec *d, const struct ynode *v, const char *field,
                           uint64_t *ns)
{
    const char *s = NULL;
    if (!dec_str(d, v, field, &s) || !s)
        return false;
    size_t parts = 0;
    bool ok = *s != '\0';
    for (const char *p = s; ok && *p; parts++) {
        size_t digits = strspn(p, "0123456789");
        p += digits;
        size_t unit = !strncmp(p, "ms", 2) ? 2 : (*p == 'h' || *p == 'm' || *p == 's') ? 1 : 0;
        ok = digits && digits <= 5 && unit;
        p += unit;
    }
    if (!ok || parts > 4 || cfg_parse_duration(s, ns) != 0) {
        dec_error(d, v, "%s: \"%.40s\" is not a Gateway API duration (e.g. 10s, 1h30m, 500ms)",
                  field, s);
        return false;
    }
    return true;
}

static void decode_timeouts(struct cfg_dec *d, const struct ynode *n, uint64_t *request,
                            uint64_t *backend)
{
    size_t m = dec_push(d, "timeouts");
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "request"))
            gwapi_duration(d, v, k, request);
        else if (dec_is(k, "backendRequest"))
            gwapi_duration(d, v, k, backend);
        else
            dec_unknown(d, k, v);
    }
    if (*request && *backend > *request)
        dec_error(d, n, "backendRequest timeout cannot be longer than request timeout");
    dec_pop(d, m);
}

static void decode_http_rule(struct cfg_dec *d, const struct ynode *n, struct cfg_gwapi_rule *rule)
{
    rule->pos = dec_here(d, n);
    struct match_in *matches = NULL;
    size_t nmatches = 0, nfilters = 0;
    struct dec_gwapi_filters f = {0};
    uint64_t timeout = 0, per_try = 0;
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "matches")) {
            DECODE_LIST(d, v, k, struct match_in, decode_match, matches, nmatches);
        } else if (dec_is(k, "filters")) {
            struct dec_gwapi_filters *fp = &f;
            size_t nf = 0;
            void *unused = dec_seq(d, v, k, 1, &nf); /* counts, type-checks the list */
            size_t m = dec_push(d, k);
            for (size_t j = 0; unused && j < nf; j++) {
                size_t mj = dec_push_index(d, j);
                dec_gwapi_filter(d, v->seq.v[j], fp);
                dec_pop(d, mj);
            }
            dec_pop(d, m);
            nfilters = nf;
        } else if (dec_is(k, "backendRefs")) {
            DECODE_LIST(d, v, k, struct cfg_gwapi_ref, decode_ref, rule->backends, rule->nbackends);
        } else if (dec_is(k, "timeouts")) {
            decode_timeouts(d, v, &timeout, &per_try);
        } else if (!dec_is(k, "name") && !dec_is(k, "sessionPersistence") && !dec_is(k, "retry")) {
            dec_unknown(d, k, v);
        }
    }
    if (nmatches > MAX_MATCHES || nfilters > MAX_FILTERS || rule->nbackends > MAX_BACKENDS) {
        dec_error(d, n, "at most %d matches, %d filters and %d backendRefs a rule", MAX_MATCHES,
                  MAX_FILTERS, MAX_BACKENDS);
        return;
    }
    if (f.redirect.set && f.rewrite.set)
        dec_error(d, n,
                  "may specify either httpRouteFilterRequestRedirect or "
                  "httpRouteFilterRequestRewrite, but not both");
    if (f.redirect.set && rule->nbackends)
        dec_error(d, n, "RequestRedirect filter must not be used together with backendRefs");
    if (f.rewrite_prefix) {
        size_t prefixes = 0;
        for (size_t i = 0; i < nmatches; i++)
            prefixes += matches[i].path_kind == 2;
        if (nmatches > 1 || (nmatches == 1 && prefixes != 1))
            dec_error(d, n,
                      "When using URLRewrite filter with path.replacePrefixMatch, exactly "
                      "one PathPrefix match must be specified");
    }
    for (size_t i = 0; i < rule->nbackends; i++)
        if ((!rule->backends[i].kind || !strcmp(rule->backends[i].kind, "Service")) &&
            !rule->backends[i].port)
            dec_error(d, n, "backendRefs[%zu]: port is required for a Service reference", i);
    rule->mirrors = f.mirrors;
    rule->nmirrors = f.nmirrors;
    struct match_in dflt = {.path_kind = 2, .path = "/"};
    if (!nmatches) {
        matches = &dflt;
        nmatches = 1;
    }
    rule->routes = arena_array(d->arena, 2 * nmatches, sizeof(*rule->routes));
    rule->ranks = arena_array(d->arena, 2 * nmatches, sizeof(*rule->ranks));
    if (!rule->routes || !rule->ranks) {
        dec_error(d, n, "out of memory");
        return;
    }
    for (size_t i = 0; i < nmatches; i++)
        expand_match(d, rule, &matches[i], &f, timeout, per_try);
}

/* TLSRoute and TCPRoute rules: backendRefs only. */
static void decode_l4_rule(struct cfg_dec *d, const struct ynode *n, struct cfg_gwapi_rule *rule)
{
    rule->pos = dec_here(d, n);
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);)
        if (dec_is(k, "backendRefs"))
            DECODE_LIST(d, v, k, struct cfg_gwapi_ref, decode_ref, rule->backends, rule->nbackends);
        else if (!dec_is(k, "name"))
            dec_unknown(d, k, v);
    if (!rule->nbackends || rule->nbackends > MAX_BACKENDS)
        dec_error(d, n, "backendRefs: 1 to %d items are required", MAX_BACKENDS);
    rule->routes = arena_alloc(d->arena, sizeof(*rule->routes));
    rule->ranks = arena_alloc(d->arena, sizeof(*rule->ranks));
    if (!rule->routes || !rule->ranks) {
        dec_error(d, n, "out of memory");
        return;
    }
    *rule->routes = (struct cfg_route){.pos = rule->pos};
    rule->nroutes = 1;
}

enum route_kind { HTTP, TLS, TCP };

static void decode_route(struct cfg_dec *d, const struct ynode *doc, struct cfg_gwapi_route *r,
                         enum route_kind kind)
{
    const struct ynode *spec = ymap_get(doc, "spec");
    size_t m = dec_push(d, "spec");
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, spec, &i, &k, &v);) {
        if (dec_is(k, "parentRefs")) {
            DECODE_LIST(d, v, k, struct cfg_gwapi_ref, decode_ref, r->parents, r->nparents);
        } else if (dec_is(k, "hostnames") && kind != TCP) {
            if (dec_strs(d, v, k, &r->hostnames))
                for (size_t j = 0; j < r->hostnames.n; j++)
                    if (!cfg_gwapi_valid_hostname(r->hostnames.v[j]))
                        dec_error(d, v, "hostnames[%zu]: \"%.128s\" is not a valid hostname", j,
                                  r->hostnames.v[j]);
        } else if (dec_is(k, "rules") && kind == HTTP) {
            DECODE_LIST(d, v, k, struct cfg_gwapi_rule, decode_http_rule, r->rules, r->nrules);
        } else if (dec_is(k, "rules")) {
            DECODE_LIST(d, v, k, struct cfg_gwapi_rule, decode_l4_rule, r->rules, r->nrules);
        } else if (!dec_is(k, "useDefaultGateways")) {
            dec_unknown(d, k, v);
        }
    }
    dec_pop(d, m);
    const struct ynode *at = spec ? spec : doc;
    if (r->nparents > MAX_PARENTS)
        dec_error(d, at, "spec.parentRefs: at most %d items", MAX_PARENTS);
    if (r->hostnames.n > MAX_HOSTNAMES)
        dec_error(d, at, "spec.hostnames: at most %d items", MAX_HOSTNAMES);
    if (r->nrules > MAX_RULES)
        dec_error(d, at, "spec.rules: at most %d items", MAX_RULES);
    if (kind != HTTP && !r->nrules)
        dec_error(d, at, "spec.rules: at least one rule is required");
    for (size_t i = 0; i < r->nparents && i < MAX_PARENTS; i++) {
        const struct cfg_gwapi_ref *p = &r->parents[i];
        for (size_t j = 0; j < i; j++) {
            const struct cfg_gwapi_ref *q = &r->parents[j];
            if (!strcmp(p->name ? p->name : "", q->name ? q->name : "") &&
                !strcmp(p->ns ? p->ns : "", q->ns ? q->ns : "") &&
                !strcmp(p->section ? p->section : "", q->section ? q->section : "") &&
                p->port == q->port)
                dec_error(d, at,
                          "spec.parentRefs[%zu]: sectionName or port must be unique when "
                          "parentRefs includes 2 or more references to the same parent",
                          i);
        }
    }
}

void decode_http_route_k8s(struct cfg_dec *d, const struct ynode *doc, void *out)
{
    decode_route(d, doc, out, HTTP);
    struct cfg_gwapi_route *r = out;
    if (!r->nrules) { /* the API's default: one rule, every path, no backend */
        r->rules = arena_alloc(d->arena, sizeof(*r->rules));
        if (r->rules) {
            struct ynode empty = {
                .type = YNODE_MAP, .line = r->meta.pos.line, .col = r->meta.pos.col};
            decode_http_rule(d, &empty, r->rules);
            r->nrules = 1;
        }
    }
}

void decode_tls_route_k8s(struct cfg_dec *d, const struct ynode *doc, void *out)
{
    decode_route(d, doc, out, TLS);
}

void decode_tcp_route_k8s(struct cfg_dec *d, const struct ynode *doc, void *out)
{
    decode_route(d, doc, out, TCP);
}
