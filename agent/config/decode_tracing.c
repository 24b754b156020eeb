/* telemetry.istio.io Telemetry tracing[]: providers, match.mode,
 * randomSamplingPercentage (0..100, kept per million),
 * disableSpanReporting and customTags (exactly one of literal {value},
 * header {name, defaultValue}, environment {name, defaultValue}), as
 * Istio's validation accepts them. useRequestIdForTraceSampling and
 * enableIstioTags are accepted and not applied. */
#include <stdlib.h>
#include <string.h>

#include "config/decode.h"

void dec_provider_names(struct cfg_dec *d, const struct ynode *v, const char *k,
                        struct cfg_strs *out)
{
    size_t np;
    const char **names = dec_seq(d, v, k, sizeof(*names), &np);
    size_t m = dec_push(d, k), kept = 0;
    for (size_t j = 0; names && j < np; j++) {
        size_t mi = dec_push_index(d, j);
        const char *name = NULL;
        dec_str(d, ymap_get(v->seq.v[j], "name"), "name", &name);
        if (name && *name)
            names[kept++] = name;
        else
            dec_error(d, v->seq.v[j], "name is required (at least one character)");
        dec_pop(d, mi);
    }
    dec_pop(d, m);
    *out = (struct cfg_strs){names, kept};
}

static void dec_sampling(struct cfg_dec *d, const struct ynode *v, const char *k,
                         struct cfg_tracing *t)
{
    if (ynode_is_null(v))
        return;
    char *end = NULL;
    double x = v->type == YNODE_SCALAR ? strtod(v->scalar.s, &end) : -1;
    size_t m = dec_push(d, k);
    if (v->type != YNODE_SCALAR || !v->scalar.len || *end)
        dec_error(d, v, "expected a number");
    else if (!(x >= 0 && x <= 100)) /* NaN fails too */
        dec_error(d, v, "must be in range [0.0, 100.0], got %g", x);
    else {
        t->has_sampling = true;
        t->sampling_ppm = (uint32_t)(x * 10000.0 + 0.5);
    }
    dec_pop(d, m);
}

/* One customTags entry: `name: {literal|header|environment: {...}}`. */
static void dec_custom_tag(struct cfg_dec *d, const char *name, const struct ynode *v,
                           struct cfg_custom_tag *tag)
{
    static const char *const kinds[] = {"literal", "header", "environment"};
    size_t m = dec_push(d, name);
    int found = 0;
    tag->name = arena_strdup(d->arena, name); /* the YAML tree does not outlive decoding */
    const char *k;
    const struct ynode *body;
    for (size_t i = 0; dec_each(d, v, &i, &k, &body);) {
        int kind = -1;
        for (int j = 0; j < 3; j++)
            if (dec_is(k, kinds[j]))
                kind = j;
        if (kind < 0) {
            dec_unknown(d, k, body);
            continue;
        }
        found++;
        tag->kind = (enum cfg_custom_tag_kind)kind;
        size_t mk = dec_push(d, k);
        const char *field = kind == CFG_TAG_LITERAL ? "value" : "name";
        dec_str(d, ymap_get(body, field), field, &tag->value);
        if (kind != CFG_TAG_LITERAL)
            dec_str(d, ymap_get(body, "defaultValue"), "defaultValue", &tag->default_value);
        if (!tag->value || (kind != CFG_TAG_LITERAL && !*tag->value))
            dec_error(d, body, "%s is required", field);
        dec_pop(d, mk);
    }
    if (found != 1)
        dec_error(d, v, "exactly one of literal, header or environment must be set");
    dec_pop(d, m);
}

static void dec_custom_tags(struct cfg_dec *d, const struct ynode *v, const char *k,
                            struct cfg_tracing *t)
{
    if (ynode_is_null(v))
        return;
    size_t m = dec_push(d, k);
    if (v->type != YNODE_MAP) {
        dec_error(d, v, "expected a mapping");
        dec_pop(d, m);
        return;
    }
    struct cfg_custom_tag *tags = v->map.n ? arena_array(d->arena, v->map.n, sizeof(*tags)) : NULL;
    for (size_t i = 0; tags && i < v->map.n; i++) {
        const struct ynode *key = v->map.v[i].key;
        const char *name = key->type == YNODE_SCALAR ? key->scalar.s : "";
        if (!*name)
            dec_error(d, key, "tag name must not be empty");
        dec_custom_tag(d, name, v->map.v[i].value, &tags[i]);
    }
    t->custom_tags = tags;
    t->ncustom_tags = tags ? v->map.n : 0;
    dec_pop(d, m);
}

void dec_tracing(struct cfg_dec *d, const struct ynode *n, struct cfg_tracing *t)
{
    const char *k;
    const struct ynode *v;
    for (size_t i = 0; dec_each(d, n, &i, &k, &v);) {
        if (dec_is(k, "providers")) {
            dec_provider_names(d, v, k, &t->providers);
        } else if (dec_is(k, "match")) {
            size_t m = dec_push(d, k);
            dec_str(d, ymap_get(v, "mode"), "mode", &t->match_mode);
            dec_pop(d, m);
        } else if (dec_is(k, "randomSamplingPercentage")) {
            dec_sampling(d, v, k, t);
        } else if (dec_is(k, "disableSpanReporting")) {
            t->has_disable_span_reporting =
                dec_bool(d, v, k, &t->disable_span_reporting) && !ynode_is_null(v);
        } else if (dec_is(k, "customTags")) {
            dec_custom_tags(d, v, k, t);
        } else if (!dec_is(k, "useRequestIdForTraceSampling") && !dec_is(k, "enableIstioTags")) {
            dec_unknown(d, k, v);
        }
    }
}
