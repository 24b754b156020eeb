/* The lookups the Gateway API translation makes before the snapshot's
 * indexes exist (see internal.h, struct cfg_gwapi_ix): Gateways, Secrets
 * by namespace/name, Namespaces by name, ReferenceGrants by namespace; and
 * the ReferenceGrant check every cross-namespace reference takes. */
#include <errno.h>
#include <string.h>

#include "config/internal.h"

#define GWAPI_GROUP "gateway.networking.k8s.io"

bool cfg_gwapi_granted(const struct cfg_gwapi_ix *ix, const char *from_kind, const char *from_ns,
                       const char *to_kind, const char *to_ns, const char *name)
{
    struct cfg_iter it = {0};
    const struct cfg_reference_grant *g;
    while ((g = cfg_index_next(&ix->grants, to_ns, strlen(to_ns), &it))) {
        bool from = false, to = false;
        for (size_t f = 0; f < g->nfrom && !from; f++)
            from = !strcmp(g->from[f].group, GWAPI_GROUP) && !strcmp(g->from[f].kind, from_kind) &&
                   !strcmp(g->from[f].ns, from_ns);
        for (size_t t = 0; t < g->nto && !to; t++)
            to = !strcmp(g->to[t].group, "") && !strcmp(g->to[t].kind, to_kind) &&
                 (!g->to[t].name || !strcmp(g->to[t].name, name));
        if (from && to)
            return true;
    }
    return false;
}

static const char *ns_name(struct arena *a, const struct cfg_meta *m)
{
    return arena_printf(a, "%s/%s", m->ns, m->name);
}

int cfg_gwapi_ix_build(struct cfg_snapshot *s, struct cfg_gwapi_ix *ix, size_t max_routes)
{
    struct arena *a = &s->arena;
    const struct cfg_list *gws = &s->kinds[CFG_K8S_GATEWAY], *nss = &s->kinds[CFG_NAMESPACE],
                          *secs = &s->kinds[CFG_SECRET], *grants = &s->kinds[CFG_REFERENCE_GRANT];
    if (cfg_index_init(&ix->gateways, a, gws->n) || cfg_index_init(&ix->namespaces, a, nss->n) ||
        cfg_index_init(&ix->secrets, a, secs->n) || cfg_index_init(&ix->grants, a, grants->n))
        return -ENOMEM;
    ix->routes_left = max_routes;
    for (size_t i = 0; i < gws->n; i++) {
        const char *k = ns_name(a, gws->v[i]);
        if (!k || cfg_index_put_str(&ix->gateways, a, k, gws->v[i]))
            return -ENOMEM;
    }
    for (size_t i = 0; i < nss->n; i++)
        if (cfg_index_put_str(&ix->namespaces, a, ((const struct cfg_meta *)nss->v[i])->name,
                              nss->v[i]))
            return -ENOMEM;
    for (size_t i = 0; i < secs->n; i++) {
        const char *k = ns_name(a, secs->v[i]);
        if (!k || cfg_index_put_str(&ix->secrets, a, k, secs->v[i]))
            return -ENOMEM;
    }
    for (size_t i = 0; i < grants->n; i++)
        if (cfg_index_put_str(&ix->grants, a, ((const struct cfg_meta *)grants->v[i])->ns,
                              grants->v[i]))
            return -ENOMEM;
    return 0;
}
