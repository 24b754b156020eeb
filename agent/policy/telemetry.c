/* Access-logging precedence (see telemetry.h). */
#include "policy/telemetry.h"

#include <string.h>

static bool mode_covers(const char *mode, bool server_side)
{
    if (!mode || strcmp(mode, "CLIENT_AND_SERVER") == 0)
        return true;
    return strcmp(mode, server_side ? "SERVER" : "CLIENT") == 0;
}

/* Whether `t` has an opinion for this side; *on is that opinion. */
static bool decides(const struct cfg_telemetry *t, bool server_side, bool *on)
{
    bool applies = false;
    *on = false;
    for (size_t i = 0; i < t->naccess_logging; i++) {
        const struct cfg_access_logging *al = &t->access_logging[i];
        if (!mode_covers(al->match_mode, server_side))
            continue;
        applies = true;
        if (al->disabled) {
            *on = false; /* an explicit off at this level wins */
            return true;
        }
        bool envoy = al->providers.n == 0;
        for (size_t p = 0; p < al->providers.n; p++)
            envoy |= strcmp(al->providers.v[p], "envoy") == 0;
        *on |= envoy;
    }
    return applies;
}

/* The next Telemetry of a level in ns: not a waypoint's (targetRef); at
 * the workload level one whose selector matches, at the namespace level
 * one without a selector. */
static const struct cfg_telemetry *at_level(const struct cfg_snapshot *s, const char *ns,
                                            const struct cfg_labels *labels, bool workload,
                                            struct cfg_iter *it)
{
    const struct cfg_telemetry *t;
    while ((t = cfg_next_in_ns(s, CFG_TELEMETRY, ns, it))) {
        bool has_selector = t->selector.set && t->selector.match.n;
        if (t->has_target_ref || workload != has_selector)
            continue;
        if (!workload || (labels && cfg_labels_match(&t->selector.match, labels)))
            return t;
    }
    return NULL;
}

/* The first Telemetry of a level in ns that decides. */
static const struct cfg_telemetry *level(const struct cfg_snapshot *s, const char *ns,
                                         const struct cfg_labels *labels, bool workload,
                                         bool server_side, bool *on)
{
    struct cfg_iter it = {0};
    const struct cfg_telemetry *t;
    while ((t = at_level(s, ns, labels, workload, &it)))
        if (decides(t, server_side, on))
            return t;
    return NULL;
}

void telemetry_access_log(const struct cfg_snapshot *s, const char *ns,
                          const struct cfg_labels *labels, bool server_side,
                          struct access_log_decision *out)
{
    bool on = false;
    const char *root = cfg_snapshot_root_namespace(s);
    const struct cfg_telemetry *t = NULL;
    if (ns)
        t = level(s, ns, labels, true, server_side, &on);
    if (!t && ns && strcmp(ns, root) != 0)
        t = level(s, ns, NULL, false, server_side, &on);
    if (!t)
        t = level(s, root, NULL, false, server_side, &on);
    out->enabled = t && on;
    out->by = t;
}

/* --- tracing ------------------------------------------------------------ */

static void merge_tags(struct tracing_decision *out, const struct cfg_tracing *tr)
{
    for (size_t i = 0; i < tr->ncustom_tags; i++) {
        const struct cfg_custom_tag *tag = &tr->custom_tags[i];
        size_t j = 0;
        while (j < out->ntags && strcmp(out->tags[j]->name, tag->name) != 0)
            j++;
        if (j < out->ntags)
            out->tags[j] = tag; /* the nearer level's */
        else if (out->ntags < TELEMETRY_MAX_TAGS)
            out->tags[out->ntags++] = tag;
    }
}

static void merge_tracing(struct tracing_decision *out, const struct cfg_telemetry *t,
                          bool server_side)
{
    for (size_t i = 0; i < t->ntracing; i++) {
        const struct cfg_tracing *tr = &t->tracing[i];
        if (!mode_covers(tr->match_mode, server_side))
            continue;
        out->by = t;
        if (tr->providers.n)
            out->providers = &tr->providers;
        if (tr->has_sampling)
            out->sampling_ppm = tr->sampling_ppm;
        if (tr->has_disable_span_reporting)
            out->disable_span_reporting = tr->disable_span_reporting;
        merge_tags(out, tr);
    }
}

/* Every Telemetry of one level in ns (workload: selector matching). */
static void tracing_level(const struct cfg_snapshot *s, const char *ns,
                          const struct cfg_labels *labels, bool workload, bool server_side,
                          struct tracing_decision *out)
{
    struct cfg_iter it = {0};
    const struct cfg_telemetry *t;
    while ((t = at_level(s, ns, labels, workload, &it))) {
        if (t->ntracing) {
            merge_tracing(out, t, server_side);
            return; /* Istio takes one resource per level */
        }
    }
}

void telemetry_tracing(const struct cfg_snapshot *s, const char *ns,
                       const struct cfg_labels *labels, bool server_side,
                       struct tracing_decision *out)
{
    *out = (struct tracing_decision){.sampling_ppm = TELEMETRY_DEFAULT_SAMPLING_PPM};
    if (!s)
        return;
    const char *root = cfg_snapshot_root_namespace(s);
    tracing_level(s, root, NULL, false, server_side, out);
    if (ns && strcmp(ns, root) != 0)
        tracing_level(s, ns, NULL, false, server_side, out);
    if (ns)
        tracing_level(s, ns, labels, true, server_side, out);
}
