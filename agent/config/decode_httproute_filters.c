/* An HTTPRoute rule's filters (part of decode_httproute.c): the Gateway
 * API's RequestHeaderModifier and ResponseHeaderModifier (header
 * operations, names lower case), RequestRedirect (redirect, 302 unless
 * given), URLRewrite (hostname; ReplaceFullPath as a whole-path regex
 * rewrite with "$" literal, ReplacePrefixMatch as the prefix rewrite),
 * RequestMirror (a backendRef with its percent or fraction), CORS
 * (warned: not applied yet), ExtensionRef (refused: Istio serves none);
 * each type once a rule but mirrors, its field and no other's, as the
 * CRD's CEL rules say. */
#include <string.h>

#include "config/decode.h"

#define MAX_HEADER_OPS 16
#define MAX_PATH       1024

bool dec_gwapi_header_name(const char *s)
{
    return strlen(s) <= 256 && dec_valid_header_name(s);
}

static void decode_kv_op(struct cfg_dec *d, const struct ynode *n, struct cfg_kv *kv)
{
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);)
        if (dec_is(k, "name"))
            dec_str(d, v, k, &kv->key);
        else if (dec_is(k, "value"))
            dec_str(d, v, k, &kv->value);
        else
            dec_unknown(d, k, v);
    if (!kv->key || !kv->value)
        dec_error(d, n, "name and value are required");
    else if (strlen(kv->value) > 4096 || strpbrk(kv->value, "\r\n"))
        dec_error(d, n, "value: at most 4096 characters, without CR or LF");
    else if (!dec_gwapi_header_name(kv->key))
        dec_error(d, n, "name: \"%.64s\" is not a valid header name", kv->key);
    else
        kv->key = dec_lower_dup(d, kv->key);
}

/* remove: header names, matched in lower case. */
static void lower_names(struct cfg_dec *d, const struct ynode *at, struct cfg_strs *names)
{
    for (size_t i = 0; i < names->n; i++) {
        if (!dec_gwapi_header_name(names->v[i]))
            dec_error(d, at, "remove[%zu]: \"%.64s\" is not a valid header name", i, names->v[i]);
        /* The array is dec_strs' own, in the arena: rewritten in place. */
        ((const char **)names->v)[i] = dec_lower_dup(d, names->v[i]);
    }
}

static void decode_header_ops(struct cfg_dec *d, const struct ynode *n, struct cfg_header_ops *o)
{
    const char *k;
    const struct ynode *v;
    struct cfg_kv *set = NULL, *add = NULL;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "set"))
            DECODE_LIST(d, v, k, struct cfg_kv, decode_kv_op, set, o->nset);
        else if (dec_is(k, "add"))
            DECODE_LIST(d, v, k, struct cfg_kv, decode_kv_op, add, o->nadd);
        else if (dec_is(k, "remove") && dec_strs(d, v, k, &o->remove))
            lower_names(d, v, &o->remove);
        else
            dec_unknown(d, k, v);
    }
    o->set = set;
    o->add = add;
    if (o->nset > MAX_HEADER_OPS || o->nadd > MAX_HEADER_OPS || o->remove.n > MAX_HEADER_OPS)
        dec_error(d, n, "set, add and remove: at most %d each", MAX_HEADER_OPS);
}

/* {type: ReplaceFullPath|ReplacePrefixMatch, replaceFullPath, replacePrefixMatch} */
static void decode_path_mod(struct cfg_dec *d, const struct ynode *n, const char **full,
                            const char **prefix)
{
    static const char *const types[] = {"ReplaceFullPath", "ReplacePrefixMatch", NULL};
    int type = -1;
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "type"))
            dec_enum(d, v, k, types, &type);
        else if (dec_is(k, "replaceFullPath"))
            dec_str(d, v, k, full);
        else if (dec_is(k, "replacePrefixMatch"))
            dec_str(d, v, k, prefix);
        else
            dec_unknown(d, k, v);
    }
    if (type == 0 ? !*full || *prefix : type == 1 ? !*prefix || *full : true)
        dec_error(d, n,
                  "type must be given with its one field (replaceFullPath for "
                  "ReplaceFullPath, replacePrefixMatch for ReplacePrefixMatch)");
    /* An empty replacePrefixMatch removes the prefix. */
    const char *p = *full ? *full : *prefix;
    if (p && ((p[0] != '/' && (p == *full || *p)) || strlen(p) > MAX_PATH || strpbrk(p, "\r\n")))
        dec_error(d, n, "\"%.80s\" must be an absolute path of at most %d characters", p, MAX_PATH);
}

static void decode_redirect(struct cfg_dec *d, const struct ynode *n, struct dec_gwapi_filters *f)
{
    static const char *const schemes[] = {"http", "https", NULL};
    struct cfg_http_redirect *rd = &f->redirect;
    rd->set = true;
    rd->code = 302; /* the API's default */
    const char *prefix = NULL;
    int x;
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "scheme") && dec_enum(d, v, k, schemes, &x) && x >= 0) {
            rd->scheme = schemes[x];
        } else if (dec_is(k, "hostname")) {
            if (dec_str(d, v, k, &rd->authority) && rd->authority &&
                (!cfg_gwapi_valid_hostname(rd->authority) || rd->authority[0] == '*'))
                dec_error(d, v, "hostname: \"%.80s\" is not a valid hostname", rd->authority);
        } else if (dec_is(k, "port")) {
            uint16_t port = 0;
            if (dec_port(d, v, k, &port))
                rd->port = port;
        } else if (dec_is(k, "statusCode")) {
            if (dec_uint(d, v, k, 999, &rd->code) && rd->code != 301 && rd->code != 302)
                dec_error(d, v, "statusCode: %u: supported values are 301, 302", rd->code);
        } else if (dec_is(k, "path")) {
            size_t m = dec_push(d, k);
            decode_path_mod(d, v, &rd->uri, &prefix);
            dec_pop(d, m);
        } else if (!dec_is(k, "scheme")) {
            dec_unknown(d, k, v);
        }
    }
    if (prefix) {
        /* The carrier's redirect replaces the whole path. */
        dec_warn(d, n, MSH_NOT_APPLIED,
                 "path.replacePrefixMatch in a redirect replaces the whole path in meshd");
        rd->uri = prefix;
    }
}

/* A literal for PCRE2's substitution: "$" doubled. */
static const char *substitution_literal(struct cfg_dec *d, const char *s)
{
    size_t n = strlen(s), dollars = 0;
    for (size_t i = 0; i < n; i++)
        dollars += s[i] == '$';
    char *out = arena_alloc(d->arena, n + dollars + 1);
    for (size_t i = 0, o = 0; out && i <= n; i++) {
        if (s[i] == '$')
            out[o++] = '$';
        out[o++] = s[i];
    }
    return out;
}

static void decode_rewrite(struct cfg_dec *d, const struct ynode *n, struct dec_gwapi_filters *f)
{
    f->rewrite.set = true;
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "hostname")) {
            if (dec_str(d, v, k, &f->rewrite.authority) && f->rewrite.authority &&
                (!cfg_gwapi_valid_hostname(f->rewrite.authority) || f->rewrite.authority[0] == '*'))
                dec_error(d, v, "hostname: \"%.80s\" is not a valid hostname",
                          f->rewrite.authority);
        } else if (dec_is(k, "path")) {
            size_t m = dec_push(d, k);
            decode_path_mod(d, v, &f->rewrite_full, &f->rewrite_prefix);
            dec_pop(d, m);
        } else {
            dec_unknown(d, k, v);
        }
    }
    if (f->rewrite_full) {
        /* The whole path, whatever matched: one anchored match of it all. */
        f->rewrite.regex_match = "^/.*";
        f->rewrite.regex_rewrite = substitution_literal(d, f->rewrite_full);
        f->rewrite.regex = dec_regex(d, n, f->rewrite.regex_match);
    }
}

static void decode_mirror(struct cfg_dec *d, const struct ynode *n, struct dec_gwapi_filters *f)
{
    struct cfg_gwapi_ref *grown =
        arena_array(d->arena, f->nmirrors + 1, sizeof(*grown)); /* few: a copy each */
    if (!grown) {
        dec_error(d, n, "out of memory");
        return;
    }
    if (f->nmirrors)
        memcpy(grown, f->mirrors, f->nmirrors * sizeof(*grown));
    struct cfg_gwapi_ref *r = &grown[f->nmirrors];
    *r = (struct cfg_gwapi_ref){.pos = dec_here(d, n)};
    uint32_t percent = 100, num = 0, den = 100;
    bool has_fraction = false;
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "backendRef")) {
            size_t m = dec_push(d, k);
            dec_gwapi_ref(d, v, r);
            dec_pop(d, m);
        } else if (dec_is(k, "percent")) {
            dec_uint(d, v, k, 100, &percent);
        } else if (dec_is(k, "fraction")) {
            size_t m = dec_push(d, k);
            has_fraction = true;
            dec_uint(d, ymap_get(v, "numerator"), "numerator", 1000000, &num);
            dec_uint(d, ymap_get(v, "denominator"), "denominator", 1000000, &den);
            if (!den || num > den)
                dec_error(d, v, "numerator must be less than or equal to a denominator above 0");
            dec_pop(d, m);
        } else {
            dec_unknown(d, k, v);
        }
    }
    if (!r->name)
        dec_error(d, n, "backendRef is required");
    if (has_fraction && ymap_get(n, "percent"))
        dec_error(d, n, "only one of percent or fraction may be specified");
    /* Parts per million, as the VirtualService's mirrorPercentage. */
    r->mirror_ppm =
        has_fraction && den ? (uint32_t)((uint64_t)num * 1000000 / den) : percent * 10000;
    f->mirrors = grown;
    f->nmirrors++;
}

void dec_gwapi_filter(struct cfg_dec *d, const struct ynode *n, struct dec_gwapi_filters *f)
{
    static const char *const types[] = {"RequestHeaderModifier",
                                        "ResponseHeaderModifier",
                                        "RequestRedirect",
                                        "URLRewrite",
                                        "RequestMirror",
                                        "ExtensionRef",
                                        "CORS",
                                        NULL};
    static const char *const fields[] = {"requestHeaderModifier",
                                         "responseHeaderModifier",
                                         "requestRedirect",
                                         "urlRewrite",
                                         "requestMirror",
                                         "extensionRef",
                                         "cors"};
    int type = -1;
    dec_enum(d, ymap_get(n, "type"), "type", types, &type);
    if (type < 0) {
        dec_error(d, n, "type is required");
        return;
    }
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "type"))
            continue;
        bool known = false;
        for (int t = 0; t < 7; t++)
            known |= dec_is(k, fields[t]);
        if (!known)
            dec_unknown(d, k, v);
        else if (!dec_is(k, fields[type]))
            dec_error(d, v, "%s must be nil if the filter type is not %s", k, types[type]);
    }
    const struct ynode *cfg = ymap_get(n, fields[type]);
    if (ynode_is_null(cfg)) {
        dec_error(d, n, "%s must be specified for %s filter.type", fields[type], types[type]);
        return;
    }
    if (type != 4 && (f->seen & (1u << type)))
        dec_error(d, n, "%s may appear once in a rule's filters", types[type]);
    f->seen |= 1u << type;
    size_t m = dec_push(d, fields[type]);
    switch (type) {
    case 0:
        decode_header_ops(d, cfg, &f->headers.request);
        break;
    case 1:
        decode_header_ops(d, cfg, &f->headers.response);
        break;
    case 2:
        decode_redirect(d, cfg, f);
        break;
    case 3:
        decode_rewrite(d, cfg, f);
        break;
    case 4:
        decode_mirror(d, cfg, f);
        break;
    case 5:
        dec_error(d, cfg, "extensionRef filters are not served (Istio serves none)");
        break;
    default: /* the API's newer CORS filter */
        dec_warn(d, cfg, MSH_NOT_APPLIED, "the CORS filter is not applied by meshd yet");
    }
    dec_pop(d, m);
}
