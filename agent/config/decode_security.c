/* security.istio.io and telemetry.istio.io kinds. */
#include <stdlib.h>
#include <string.h>

#include "config/decode.h"
#include "config/pattern.h"
#include "core/cidr.h"

static bool is(const char *k, const char *name)
{
    return strcmp(k, name) == 0;
}

static const char *const mtls_modes[] = {"UNSET", "PERMISSIVE", "STRICT", "DISABLE", NULL};

static void decode_mtls(struct cfg_dec *d, const struct ynode *n, const char *field,
                        enum cfg_mtls *mode)
{
    size_t m = dec_push(d, field);
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        int x = 0;
        if (is(k, "mode")) {
            if (dec_enum(d, v, k, mtls_modes, &x))
                *mode = (enum cfg_mtls)x;
        } else {
            dec_unknown(d, k, v);
        }
    }
    dec_pop(d, m);
}

void decode_peer_authentication(struct cfg_dec *d, const struct ynode *doc, void *out)
{
    struct cfg_peer_authentication *pa = out;
    size_t m = dec_push(d, "spec");
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, ymap_get(doc, "spec"), &i, &k, &v);) {
        if (is(k, "selector")) {
            dec_match_labels(d, v, k, &pa->selector);
        } else if (is(k, "mtls")) {
            decode_mtls(d, v, k, &pa->mode);
        } else if (is(k, "portLevelMtls")) {
            size_t m2 = dec_push(d, k);
            if (v->type == YNODE_MAP) {
                struct cfg_port_mtls *ports = arena_array(d->arena, v->map.n + 1, sizeof(*ports));
                const char *pk;
                const struct ynode *pv;
                size_t n = 0;
                for (size_t j = 0; ports && dec_each(d, v, &j, &pk, &pv);) {
                    uint32_t port = 0;
                    struct ynode key = *v->map.v[j - 1].key;
                    if (!dec_uint(d, &key, pk, 65535, &port) || port == 0) {
                        if (!d->failed)
                            dec_error(d, &key, "%s: not a port number", pk);
                        continue;
                    }
                    ports[n].port = (uint16_t)port;
                    decode_mtls(d, pv, pk, &ports[n].mode);
                    n++;
                }
                pa->ports = ports;
                pa->nports = n;
                if (!v->map.n) /* the CRD's minProperties: 1 */
                    dec_error(d, v, "must have at least one port");
            } else if (!ynode_is_null(v)) {
                dec_error(d, v, "expected a mapping of port to mtls, got %s", ynode_type_name(v));
            }
            dec_pop(d, m2);
        } else {
            dec_unknown(d, k, v);
        }
    }
    dec_pop(d, m);
    if (pa->nports && !pa->selector.set)
        dec_error(d, ymap_get(doc, "spec"),
                  "portLevelMtls requires a workload selector (Istio rejects it otherwise)");
}

static bool is_one_of(const char *k, const char *const *names)
{
    for (size_t i = 0; names[i]; i++)
        if (is(k, names[i]))
            return true;
    return false;
}

/* The first of `l7` present in `n`, else NULL. */
static const char *first_l7(const struct ynode *n, const char *const *l7)
{
    for (size_t i = 0; l7[i]; i++)
        if (ymap_get(n, l7[i]))
            return l7[i];
    return NULL;
}

/* An invalid CIDR is a schema error: dropping it silently would narrow a
 * DENY rule, failing open. */
static void decode_cidrs(struct cfg_dec *d, const struct ynode *v, const char *field,
                         struct cfg_strs *out)
{
    if (!dec_strs(d, v, field, out))
        return;
    for (size_t i = 0; i < out->n; i++) {
        struct cidr c;
        if (cidr_parse(out->v[i], &c))
            dec_error(d, out->n == v->seq.n ? v->seq.v[i] : v,
                      "%s[%zu]: \"%.64s\" is not an IP address or CIDR", field, i, out->v[i]);
    }
}

/* The node of a list's i-th string, for positions (dec_strs skips nulls). */
static const struct ynode *item_at(const struct ynode *v, const struct cfg_strs *out, size_t i)
{
    return v && v->type == YNODE_SEQ && out->n == v->seq.n ? v->seq.v[i] : v;
}

/* Identity patterns: Istio refuses an empty value. "" would be the one
 * pattern that an absent identity could be said to match. */
static void decode_patterns(struct cfg_dec *d, const struct ynode *v, const char *field,
                            struct cfg_strs *out)
{
    if (!dec_strs(d, v, field, out))
        return;
    for (size_t i = 0; i < out->n; i++)
        if (!out->v[i][0])
            dec_error(d, item_at(v, out, i), "%s[%zu]: empty value not allowed", field, i);
}

/* serviceAccounts as Istio validates them: at most 16, each "name" (in the
 * policy's namespace) or "namespace/name", exact (no wildcard). */
static void decode_service_accounts(struct cfg_dec *d, const struct ynode *v, const char *field,
                                    struct cfg_strs *out)
{
    if (!dec_strs(d, v, field, out))
        return;
    if (out->n > 16)
        dec_error(d, v, "%s: may not have more than 16 values", field);
    for (size_t i = 0; i < out->n; i++) {
        const char *sa = out->v[i], *slash = strchr(sa, '/');
        const struct ynode *at = item_at(v, out, i);
        if (!sa[0] || strchr(sa, '*') || strlen(sa) > 320 ||
            (slash && (slash == sa || !slash[1] || strchr(slash + 1, '/'))))
            dec_error(d, at,
                      "%s[%zu]: expected 'serviceAccount' or 'namespace/serviceAccount' without "
                      "wildcards, got \"%.64s\"",
                      field, i, sa);
    }
}

/* Istio's CheckTrustDomainValues: one wildcard at an end at most, no '/'. */
static void decode_trust_domains(struct cfg_dec *d, const struct ynode *v, const char *field,
                                 struct cfg_strs *out)
{
    if (!dec_strs(d, v, field, out))
        return;
    for (size_t i = 0; i < out->n; i++) {
        const char *td = out->v[i], *star = strchr(td, '*');
        size_t n = strlen(td);
        bool bad_star = star && (strchr(star + 1, '*') || (star != td && star != td + n - 1));
        if (!n || bad_star || strchr(td, '/'))
            dec_error(d, item_at(v, out, i),
                      "%s[%zu]: \"%.64s\" is not a trust domain (one '*' at an end at most, no "
                      "'/')",
                      field, i, td);
    }
}

static void decode_source(struct cfg_dec *d, const struct ynode *n, struct cfg_authz_source *s)
{
    static const char *const l7[] = {"requestPrincipals", "notRequestPrincipals", "remoteIpBlocks",
                                     "notRemoteIpBlocks", NULL};
    static const char *const undecidable[] = {"remoteIpBlocks", "notRemoteIpBlocks", NULL};
    const struct ynode *src = ymap_get(n, "source");
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);)
        if (!is(k, "source"))
            dec_unknown(d, k, v);
    size_t m = dec_push(d, "source");
    for (size_t i = 0; dec_each(d, src, &i, &k, &v);) {
        if (is(k, "principals"))
            decode_patterns(d, v, k, &s->principals);
        else if (is(k, "notPrincipals"))
            decode_patterns(d, v, k, &s->not_principals);
        else if (is(k, "namespaces"))
            decode_patterns(d, v, k, &s->namespaces);
        else if (is(k, "notNamespaces"))
            decode_patterns(d, v, k, &s->not_namespaces);
        else if (is(k, "serviceAccounts"))
            decode_service_accounts(d, v, k, &s->service_accounts);
        else if (is(k, "notServiceAccounts"))
            decode_service_accounts(d, v, k, &s->not_service_accounts);
        else if (is(k, "ipBlocks"))
            decode_cidrs(d, v, k, &s->ip_blocks);
        else if (is(k, "notIpBlocks"))
            decode_cidrs(d, v, k, &s->not_ip_blocks);
        else if (is(k, "trustDomains"))
            decode_trust_domains(d, v, k, &s->trust_domains);
        else if (is(k, "notTrustDomains"))
            decode_trust_domains(d, v, k, &s->not_trust_domains);
        else if (is(k, "requestPrincipals"))
            decode_patterns(d, v, k, &s->request_principals);
        else if (is(k, "notRequestPrincipals"))
            decode_patterns(d, v, k, &s->not_request_principals);
        else if (!is_one_of(k, l7))
            dec_unknown(d, k, v);
    }
    s->l7 = first_l7(src, l7);
    s->undecidable = first_l7(src, undecidable);
    /* Istio's ValidateAuthorizationPolicy. */
    if ((s->service_accounts.n || s->not_service_accounts.n) &&
        (s->principals.n || s->not_principals.n || s->namespaces.n || s->not_namespaces.n))
        dec_error(d, src, "cannot set serviceAccounts with namespaces or principals");
    dec_pop(d, m);
}

static bool valid_port_string(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || strspn(s, "0123456789") != n)
        return false;
    long x = strtol(s, NULL, 10);
    return x >= 1 && x <= 65535;
}

static void decode_port_strings(struct cfg_dec *d, const struct ynode *v, const char *field,
                                struct cfg_strs *out)
{
    if (!dec_strs(d, v, field, out))
        return;
    for (size_t i = 0; i < out->n; i++)
        if (!valid_port_string(out->v[i]))
            dec_error(d, out->n == v->seq.n ? v->seq.v[i] : v,
                      "%s[%zu]: not a port number: \"%.32s\"", field, i, out->v[i]);
}

/* paths and notPaths: Istio's empty-value and path template checks. */
static void decode_paths(struct cfg_dec *d, const struct ynode *v, const char *field,
                         struct cfg_strs *out)
{
    decode_patterns(d, v, field, out);
    for (size_t i = 0; i < out->n; i++) {
        const char *why = out->v[i][0] ? pattern_path_check(out->v[i]) : NULL;
        if (why)
            dec_error(d, item_at(v, out, i), "%s[%zu]: \"%.64s\": %s", field, i, out->v[i], why);
    }
}

static void decode_operation(struct cfg_dec *d, const struct ynode *n,
                             struct cfg_authz_operation *o)
{
    static const char *const l7[] = {"hosts", "notHosts", "methods", "notMethods",
                                     "paths", "notPaths", NULL};
    const struct ynode *op = ymap_get(n, "operation");
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);)
        if (!is(k, "operation"))
            dec_unknown(d, k, v);
    size_t m = dec_push(d, "operation");
    for (size_t i = 0; dec_each(d, op, &i, &k, &v);) {
        if (is(k, "ports"))
            decode_port_strings(d, v, k, &o->ports);
        else if (is(k, "notPorts"))
            decode_port_strings(d, v, k, &o->not_ports);
        else if (is(k, "hosts"))
            decode_patterns(d, v, k, &o->hosts);
        else if (is(k, "notHosts"))
            decode_patterns(d, v, k, &o->not_hosts);
        else if (is(k, "methods"))
            decode_patterns(d, v, k, &o->methods);
        else if (is(k, "notMethods"))
            decode_patterns(d, v, k, &o->not_methods);
        else if (is(k, "paths"))
            decode_paths(d, v, k, &o->paths);
        else if (is(k, "notPaths"))
            decode_paths(d, v, k, &o->not_paths);
        else if (!is_one_of(k, l7))
            dec_unknown(d, k, v);
    }
    o->l7 = first_l7(op, l7);
    dec_pop(d, m);
}

/* Istio's validateMapKey: "a[b]" with a non-empty b. */
static bool valid_map_key(const char *key)
{
    const char *open = strchr(key, '[');
    size_t n = strlen(key);
    return n > 0 && key[n - 1] == ']' && open && open > key && (size_t)(open - key) < n - 2;
}

static void decode_condition(struct cfg_dec *d, const struct ynode *n,
                             struct cfg_authz_condition *c)
{
    c->pos = (struct cfg_pos){d->file, n->line, n->col};
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (is(k, "key"))
            dec_str(d, v, k, &c->key);
        else if (is(k, "values"))
            decode_patterns(d, v, k, &c->values);
        else if (is(k, "notValues"))
            decode_patterns(d, v, k, &c->not_values);
        else
            dec_unknown(d, k, v);
    }
    if (!c->key)
        dec_error(d, n, "key is required");
    else if (!c->values.n && !c->not_values.n)
        dec_error(d, n, "one of values or notValues is required");
    else if (strncmp(c->key, "request.headers", 15) == 0 && !valid_map_key(c->key))
        dec_error(d, n, "bad key %.64s: expected request.headers[name]", c->key);
}

static void decode_rule(struct cfg_dec *d, const struct ynode *n, struct cfg_authz_rule *r)
{
    r->pos = (struct cfg_pos){d->file, n->line, n->col};
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (is(k, "from"))
            DECODE_LIST(d, v, k, struct cfg_authz_source, decode_source, r->from, r->nfrom);
        else if (is(k, "to"))
            DECODE_LIST(d, v, k, struct cfg_authz_operation, decode_operation, r->to, r->nto);
        else if (is(k, "when"))
            DECODE_LIST(d, v, k, struct cfg_authz_condition, decode_condition, r->when, r->nwhen);
        else
            dec_unknown(d, k, v);
    }
}

void decode_authorization_policy(struct cfg_dec *d, const struct ynode *doc, void *out)
{
    static const char *const actions[] = {"ALLOW", "DENY", "AUDIT", "CUSTOM", NULL};
    struct cfg_authorization_policy *ap = out;
    size_t m = dec_push(d, "spec");
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, ymap_get(doc, "spec"), &i, &k, &v);) {
        int x = 0;
        if (is(k, "selector")) {
            dec_match_labels(d, v, k, &ap->selector);
        } else if (is(k, "targetRef") || is(k, "targetRefs")) {
            ap->has_target_ref = true;
        } else if (is(k, "action")) {
            if (dec_enum(d, v, k, actions, &x))
                ap->action = (enum cfg_authz_action)x;
        } else if (is(k, "provider")) {
            dec_str(d, ymap_get(v, "name"), "provider.name", &ap->provider);
        } else if (is(k, "rules")) {
            ap->rules_set = true;
            DECODE_LIST(d, v, k, struct cfg_authz_rule, decode_rule, ap->rules, ap->nrules);
        } else {
            dec_unknown(d, k, v);
        }
    }
    dec_pop(d, m);
}

static void decode_access_logging(struct cfg_dec *d, const struct ynode *n,
                                  struct cfg_access_logging *al)
{
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (is(k, "providers")) {
            dec_provider_names(d, v, k, &al->providers);
        } else if (is(k, "disabled")) {
            al->has_disabled = dec_bool(d, v, k, &al->disabled) && !ynode_is_null(v);
        } else if (is(k, "match")) {
            size_t m = dec_push(d, k);
            dec_str(d, ymap_get(v, "mode"), "mode", &al->match_mode);
            dec_pop(d, m);
        } else if (is(k, "filter")) {
            size_t m = dec_push(d, k);
            dec_str(d, ymap_get(v, "expression"), "expression", &al->filter);
            dec_pop(d, m);
        } else {
            dec_unknown(d, k, v);
        }
    }
}

/* metrics[] are not applied (meshd exports its own TCP metrics), but a
 * resource Istio's CRD schema refuses must not load: provider names and
 * customMetric non-empty; a tag override's value set for UPSERT, absent
 * for REMOVE. */
static void validate_metrics(struct cfg_dec *d, const struct ynode *v)
{
    size_t n;
    if (!dec_seq(d, v, "metrics", 1, &n))
        return;
    size_t m = dec_push(d, "metrics");
    for (size_t i = 0; i < n; i++) {
        const struct ynode *item = v->seq.v[i];
        size_t mi = dec_push_index(d, i);
        const struct ynode *providers = ymap_get(item, "providers"),
                           *overrides = ymap_get(item, "overrides");
        for (size_t p = 0; providers && providers->type == YNODE_SEQ && p < providers->seq.n; p++) {
            const struct ynode *name = ymap_get(providers->seq.v[p], "name");
            if (!name || name->type != YNODE_SCALAR || !name->scalar.len)
                dec_error(d, providers->seq.v[p], "providers[%zu]: name is required", p);
        }
        for (size_t o = 0; overrides && overrides->type == YNODE_SEQ && o < overrides->seq.n; o++) {
            const struct ynode *ov = overrides->seq.v[o];
            const struct ynode *cm = ymap_get(ymap_get(ov, "match"), "customMetric");
            if (cm && cm->type == YNODE_SCALAR && !cm->scalar.len)
                dec_error(d, cm, "overrides[%zu].match.customMetric: must not be empty", o);
            const struct ynode *tags = ymap_get(ov, "tagOverrides");
            for (size_t t = 0; tags && tags->type == YNODE_MAP && t < tags->map.n; t++) {
                const struct ynode *tag = tags->map.v[t].value;
                const struct ynode *op = ymap_get(tag, "operation"), *val = ymap_get(tag, "value");
                if (yscalar_is(op, "UPSERT") &&
                    (!val || val->type != YNODE_SCALAR || !val->scalar.len))
                    dec_error(d, tag,
                              "overrides[%zu].tagOverrides.%.64s: value must be set when "
                              "operation is UPSERT",
                              o, tags->map.v[t].key->scalar.s);
                if (yscalar_is(op, "REMOVE") && val)
                    dec_error(d, val,
                              "overrides[%zu].tagOverrides.%.64s: value must not be set "
                              "when operation is REMOVE",
                              o, tags->map.v[t].key->scalar.s);
            }
        }
        dec_pop(d, mi);
    }
    dec_pop(d, m);
}

void decode_telemetry(struct cfg_dec *d, const struct ynode *doc, void *out)
{
    struct cfg_telemetry *t = out;
    size_t m = dec_push(d, "spec");
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, ymap_get(doc, "spec"), &i, &k, &v);) {
        if (is(k, "selector"))
            dec_match_labels(d, v, k, &t->selector);
        else if (is(k, "targetRef") || is(k, "targetRefs"))
            t->has_target_ref = true;
        else if (is(k, "accessLogging"))
            DECODE_LIST(d, v, k, struct cfg_access_logging, decode_access_logging,
                        t->access_logging, t->naccess_logging);
        else if (is(k, "metrics"))
            validate_metrics(d, v);
        else if (is(k, "tracing"))
            DECODE_LIST(d, v, k, struct cfg_tracing, dec_tracing, t->tracing, t->ntracing);
        else
            dec_unknown(d, k, v);
    }
    dec_pop(d, m);
}
