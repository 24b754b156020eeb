/* VirtualService http[] entries (Istio's HTTPRoute): the matches, the
 * weighted destinations with their header edits, and the StringMatch
 * regexes, decoded into config/model_http.h. The actions (redirect,
 * rewrite, fault, retries, ...) are in decode_http_actions.c.
 *
 * Regexes are RE2 syntax (Istio's and Envoy's): compiled here with PCRE2
 * into the snapshot and freed with its arena. What PCRE2 has and RE2
 * lacks (backreferences, lookaround, atomic groups, recursion,
 * conditionals, backtracking verbs, possessive quantifiers) is refused at
 * load, as Istio's RE2 would refuse it, so a pattern means the same to
 * meshd as to Istio and cannot backtrack without bound on the data path
 * (the matcher also caps PCRE2's work). */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <ctype.h>
#include <pcre2.h>
#include <string.h>
#include <strings.h>

#include "config/decode.h"

#define REGEX_MAX_LEN 1024 /* Istio's validateStringRegexp */

static bool is(const char *k, const char *name)
{
    return strcmp(k, name) == 0;
}

/* ---- regexes ---- */

/* The first construct of `p` that RE2 lacks, or NULL. A scan over the
 * syntax, outside character classes and escapes. */
static const char *re2_lacks(const char *p)
{
    bool in_class = false, after_quant = false;
    for (size_t i = 0; p[i]; i++) {
        char c = p[i];
        if (c == '\\') {
            char e = p[i + 1];
            if (!e)
                return NULL; /* PCRE2 reports the trailing backslash */
            if (e >= '1' && e <= '9' && !in_class)
                return "a backreference";
            if (e == 'g' || e == 'k')
                return "a backreference";
            if (e == 'K')
                return "\\K";
            i++;
            after_quant = false;
            continue;
        }
        if (in_class) {
            if (c == ']')
                in_class = false;
            continue;
        }
        if (c == '[') {
            in_class = true;
            /* A ']' first (after an optional '^') is a literal. */
            if (p[i + 1] == '^')
                i++;
            if (p[i + 1] == ']')
                i++;
            after_quant = false;
            continue;
        }
        if (c == '+' && after_quant)
            return "a possessive quantifier";
        if (c == '(' && p[i + 1] == '*')
            return "a backtracking verb";
        if (c == '(' && p[i + 1] == '?') {
            char a = p[i + 2], b = a ? p[i + 3] : '\0';
            if (a == '=' || a == '!' || (a == '<' && (b == '=' || b == '!')))
                return "a lookaround";
            if (a == '>')
                return "an atomic group";
            if (a == '(')
                return "a conditional";
            if (a == 'R' || a == '&' || a == '+' || isdigit((unsigned char)a) ||
                (a == '-' && isdigit((unsigned char)b)) || (a == 'P' && (b == '>' || b == '=')))
                return "a recursion or backreference";
            if (a == 'C')
                return "a callout";
            if (a == '|')
                return "a branch reset";
        }
        after_quant = c == '*' || c == '+' || c == '?' || c == '}';
        /* "a*?" is lazy (RE2 has it); "a*?+" stays refused by PCRE2 rules. */
        if (c == '?' && i > 0 && (p[i - 1] == '*' || p[i - 1] == '+' || p[i - 1] == '}'))
            after_quant = false;
    }
    return NULL;
}

static void regex_free(void *code)
{
    pcre2_code_free(code);
}

void *dec_regex(struct cfg_dec *d, const struct ynode *at, const char *pattern)
{
    size_t len = strlen(pattern);
    if (!len) {
        dec_error(d, at, "regex string match should not be empty");
        return NULL;
    }
    if (len > REGEX_MAX_LEN) {
        dec_error(d, at, "regex is too large, max length allowed is %d", REGEX_MAX_LEN);
        return NULL;
    }
    const char *lacks = re2_lacks(pattern);
    if (lacks) {
        dec_error(d, at, "\"%.80s\": %s is not RE2 syntax (Istio uses RE2 regexes)", pattern,
                  lacks);
        return NULL;
    }
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C,
                                     &err, &off, NULL);
    if (!code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof(msg));
        dec_error(d, at, "\"%.80s\": invalid regex at offset %zu: %s", pattern, (size_t)off,
                  (const char *)msg);
        return NULL;
    }
    uint32_t backrefs = 0;
    pcre2_pattern_info(code, PCRE2_INFO_BACKREFMAX, &backrefs);
    if (backrefs) {
        pcre2_code_free(code);
        dec_error(d, at, "\"%.80s\": a backreference is not RE2 syntax", pattern);
        return NULL;
    }
    if (arena_on_free(d->arena, regex_free, code)) {
        pcre2_code_free(code);
        dec_error(d, at, "out of memory");
        return NULL;
    }
    return code;
}

/* ---- StringMatch ---- */

void dec_str_match(struct cfg_dec *d, const struct ynode *v, const char *field,
                   struct cfg_str_match *out)
{
    static const char *const kinds[] = {"exact", "prefix", "regex"};
    size_t m = dec_push(d, field);
    const char *k;
    const struct ynode *val;
    for (size_t i = 0; dec_each(d, v, &i, &k, &val);) {
        int kind = -1;
        for (int j = 0; j < 3; j++)
            if (is(k, kinds[j]))
                kind = j;
        if (kind < 0) {
            dec_unknown(d, k, val);
            continue;
        }
        if (out->set) {
            dec_error(d, val, "only one of exact, prefix or regex may be set");
            continue;
        }
        const char *s = NULL;
        if (!dec_str(d, val, k, &s) || !s)
            continue;
        out->set = true;
        out->kind = (enum cfg_str_match_kind)kind;
        out->value = s;
        if (out->kind == CFG_STR_REGEX) {
            size_t mk = dec_push(d, k);
            out->regex = dec_regex(d, val, s);
            dec_pop(d, mk);
            out->set = out->regex != NULL;
        }
    }
    dec_pop(d, m);
}

/* Istio's validateStringMatch: an empty prefix is refused everywhere but
 * in uri (Envoy's StringMatcher requires one). */
static void check_prefix(struct cfg_dec *d, const struct ynode *v, const char *field,
                         const struct cfg_str_match *m)
{
    if (m->set && m->kind == CFG_STR_PREFIX && !*m->value) {
        size_t mk = dec_push(d, field);
        dec_error(d, v, "prefix string match should not be empty");
        dec_pop(d, mk);
    }
}

/* RFC 7230 token characters (Istio's validHeaderNameRegex). */
bool dec_valid_header_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return false;
    return true;
}

char *dec_lower_dup(struct cfg_dec *d, const char *s)
{
    char *out = arena_strdup(d->arena, s);
    for (char *p = out; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

/* headers / withoutHeaders / queryParams: name -> StringMatch ({} is presence). */
static void decode_header_matches(struct cfg_dec *d, const struct ynode *v, const char *field,
                                  bool header_names, struct cfg_header_matches *out)
{
    if (ynode_is_null(v))
        return;
    size_t m = dec_push(d, field);
    if (v->type != YNODE_MAP) {
        dec_error(d, v, "expected a mapping, got %s", ynode_type_name(v));
        dec_pop(d, m);
        return;
    }
    struct cfg_header_match *all = arena_array(d->arena, v->map.n ? v->map.n : 1, sizeof(*all));
    const char *k;
    const struct ynode *val;
    size_t n = 0;
    for (size_t i = 0; all && dec_each(d, v, &i, &k, &val);) {
        if (ynode_is_null(val)) {
            dec_error(d, val, "match %.64s cannot be null", k);
            continue;
        }
        /* JWT claims (Istio's gateways route on them): never in a request
         * meshd sees, so such a header match never matches. */
        bool claim = strncmp(k, "@request.auth.claims.", 21) == 0;
        if (header_names && !claim && !dec_valid_header_name(k)) {
            dec_error(d, val, "header name %.64s is not a valid header name", k);
            continue;
        }
        struct cfg_header_match *h = &all[n++];
        /* Query parameters are case-sensitive; header names are not. */
        h->name = header_names ? dec_lower_dup(d, k) : arena_strdup(d->arena, k);
        if (!h->name) {
            dec_error(d, val, "out of memory");
            n--;
            continue;
        }
        /* withoutHeaders' regex "*" is presence, not a regex (Istio). */
        const struct ynode *re = ymap_get(val, "regex");
        if (is(field, "withoutHeaders") && val->type == YNODE_MAP && val->map.n == 1 &&
            yscalar_is(re, "*"))
            continue;
        dec_str_match(d, val, k, &h->m);
        check_prefix(d, val, k, &h->m);
    }
    if (!all)
        dec_error(d, v, "out of memory");
    dec_pop(d, m);
    out->v = all;
    out->n = n;
}

/* One HTTPMatchRequest: its L4 half into `mt` (as the L4 router reads it:
 * any L7 condition marks it), its L7 half into `hm`. */
static void decode_http_match(struct cfg_dec *d, const struct ynode *n, struct cfg_match *mt,
                              struct cfg_http_match *hm)
{
    static const char *const strs[] = {"uri", "scheme", "method", "authority", NULL};
    struct cfg_str_match *dst[] = {&hm->uri, &hm->scheme, &hm->method, &hm->authority};
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        size_t s = 0;
        while (strs[s] && !is(k, strs[s]))
            s++;
        if (strs[s]) {
            dec_str_match(d, v, k, dst[s]);
            if (s)
                check_prefix(d, v, k, dst[s]);
            /* uri prefix "/" admits every request: decidable at L4. */
            bool all =
                s == 0 && hm->uri.set && hm->uri.kind == CFG_STR_PREFIX && is(hm->uri.value, "/");
            if (!all && !mt->l7)
                mt->l7 = strs[s];
        } else if (is(k, "headers") || is(k, "withoutHeaders") || is(k, "queryParams")) {
            bool q = is(k, "queryParams");
            decode_header_matches(d, v, k, !q,
                                  q                  ? &hm->query_params
                                  : is(k, "headers") ? &hm->headers
                                                     : &hm->without_headers);
            if (!mt->l7)
                mt->l7 = q ? "queryParams" : is(k, "headers") ? "headers" : "withoutHeaders";
        } else if (is(k, "ignoreUriCase")) {
            dec_bool(d, v, k, &hm->ignore_uri_case);
        } else if (is(k, "name")) {
            dec_str(d, v, k, &hm->name);
        } else if (!is(k, "statPrefix") && !dec_l4_match_field(d, k, v, mt)) {
            dec_unknown(d, k, v);
        }
    }
    if (mt->source_namespace && !cfg_valid_dns_label(mt->source_namespace))
        dec_error(d, n, "sourceNamespace match %.64s is invalid", mt->source_namespace);
}

static void decode_matches(struct cfg_dec *d, const struct ynode *v, struct cfg_route *r,
                           struct cfg_http_route *h)
{
    size_t n;
    struct cfg_match *mt = dec_seq(d, v, "match", sizeof(*mt), &n);
    struct cfg_http_match *hm = mt ? arena_array(d->arena, n ? n : 1, sizeof(*hm)) : NULL;
    if (mt && !hm)
        dec_error(d, v, "out of memory");
    if (!hm)
        return;
    size_t m = dec_push(d, "match");
    for (size_t i = 0; i < n; i++) {
        size_t mi = dec_push_index(d, i);
        decode_http_match(d, v->seq.v[i], &mt[i], &hm[i]);
        dec_pop(d, mi);
    }
    dec_pop(d, m);
    r->match = mt;
    r->nmatch = n;
    h->match = hm;
}

/* ---- HeaderOperations ---- */

/* Envoy cannot edit pseudo-headers or Host, except the authority where
 * Istio allows it (request set/add). */
static void check_header_op(struct cfg_dec *d, const struct ynode *at, const char *name,
                            bool authority_ok)
{
    bool authority = strcasecmp(name, ":authority") == 0 || strcasecmp(name, "host") == 0;
    if (authority && authority_ok)
        return;
    if (name[0] == ':' || authority)
        dec_error(d, at, "invalid header %.64s: a pseudo-header or host cannot be edited", name);
    else if (!dec_valid_header_name(name))
        dec_error(d, at, "header name %.64s is not a valid header name", name);
}

static void decode_kvs(struct cfg_dec *d, const struct ynode *v, const char *field,
                       bool authority_ok, const struct cfg_kv **out, size_t *nout)
{
    struct cfg_labels kv = {0};
    if (!dec_labels(d, v, field, &kv))
        return;
    size_t m = dec_push(d, field);
    for (size_t i = 0; i < kv.n; i++) {
        check_header_op(d, v, kv.v[i].key, authority_ok);
        char *name = dec_lower_dup(d, kv.v[i].key);
        if (name)
            ((struct cfg_kv *)kv.v)[i].key = name;
    }
    dec_pop(d, m);
    *out = kv.v;
    *nout = kv.n;
}

static void decode_header_ops(struct cfg_dec *d, const struct ynode *n, bool request,
                              struct cfg_header_ops *ops)
{
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (is(k, "set")) {
            decode_kvs(d, v, k, request, &ops->set, &ops->nset);
        } else if (is(k, "add")) {
            decode_kvs(d, v, k, request, &ops->add, &ops->nadd);
        } else if (is(k, "remove")) {
            if (!dec_strs(d, v, k, &ops->remove))
                continue;
            size_t m = dec_push(d, k);
            for (size_t j = 0; j < ops->remove.n; j++) {
                check_header_op(d, v, ops->remove.v[j], false);
                char *name = dec_lower_dup(d, ops->remove.v[j]);
                if (name)
                    ((const char **)ops->remove.v)[j] = name;
            }
            dec_pop(d, m);
        } else {
            dec_unknown(d, k, v);
        }
    }
}

void dec_http_headers(struct cfg_dec *d, const struct ynode *n, struct cfg_headers *out)
{
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        size_t m = dec_push(d, k);
        if (is(k, "request"))
            decode_header_ops(d, v, true, &out->request);
        else if (is(k, "response"))
            decode_header_ops(d, v, false, &out->response);
        else
            dec_unknown(d, k, v);
        dec_pop(d, m);
    }
}

/* ---- the route ---- */

static bool has_headers(const struct cfg_headers *h)
{
    return h->request.nset || h->request.nadd || h->request.remove.n || h->response.nset ||
           h->response.nadd || h->response.remove.n;
}

static void decode_destinations(struct cfg_dec *d, const struct ynode *v, struct cfg_route *r,
                                struct cfg_http_route *h)
{
    size_t n;
    struct cfg_route_destination *rd = dec_seq(d, v, "route", sizeof(*rd), &n);
    struct cfg_headers *hd = rd ? arena_array(d->arena, n ? n : 1, sizeof(*hd)) : NULL;
    if (rd && !hd)
        dec_error(d, v, "out of memory");
    if (!hd)
        return;
    bool any = false;
    size_t m = dec_push(d, "route");
    for (size_t i = 0; i < n; i++) {
        size_t mi = dec_push_index(d, i);
        dec_route_destination(d, v->seq.v[i], &rd[i], &hd[i]);
        any |= has_headers(&hd[i]);
        dec_pop(d, mi);
    }
    dec_pop(d, m);
    r->dest = rd;
    r->ndest = n;
    h->dest_headers = any ? hd : NULL;
}

/* Istio's defaults for a route without retries: two retries on
 * connect-failure,refused-stream,unavailable,cancelled,503. */
static const uint16_t default_codes[] = {503};

void decode_http_route(struct cfg_dec *d, const struct ynode *n, struct cfg_route *r)
{
    struct cfg_http_route *h = arena_alloc(d->arena, sizeof(*h));
    if (!h) {
        dec_error(d, n, "out of memory");
        return;
    }
    r->http = true;
    r->http_ext = h;
    r->pos = (struct cfg_pos){d->file, n->line, n->col};
    h->retries = (struct cfg_http_retry){
        .attempts = 2,
        .retry_on = CFG_RETRY_CONNECT_FAILURE | CFG_RETRY_REFUSED_STREAM | CFG_RETRY_UNAVAILABLE |
                    CFG_RETRY_CANCELLED | CFG_RETRY_RETRIABLE_STATUS,
        .retriable_codes = default_codes,
        .ncodes = 1,
    };
    h->fault.abort_grpc_status = -1;
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (is(k, "name")) {
            dec_str(d, v, k, &r->name);
        } else if (is(k, "match")) {
            decode_matches(d, v, r, h);
        } else if (is(k, "route")) {
            decode_destinations(d, v, r, h);
        } else if (is(k, "timeout")) {
            dec_duration(d, v, k, &r->timeout_ns);
            h->timeout_ns = r->timeout_ns;
        } else if (is(k, "headers")) {
            size_t m = dec_push(d, k);
            dec_http_headers(d, v, &h->headers);
            dec_pop(d, m);
            if (!r->l7_action)
                r->l7_action = "headers";
        } else if (!dec_http_action(d, k, v, r, h)) {
            dec_unknown(d, k, v);
        }
    }
    dec_http_check(d, n, r, h);
}
