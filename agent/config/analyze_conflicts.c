/* IST0109, conflicting VirtualServices bound to the mesh, as istioctl's
 * ConflictingMeshGatewayHostsAnalyzer decides it (part of config/analyze). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/internal.h"

static bool wildcard(const char *host)
{
    return host[0] == '*';
}

bool cfg_vs_binds_mesh(const struct cfg_virtual_service *vs)
{
    if (!vs->gateways.n)
        return true;
    for (size_t i = 0; i < vs->gateways.n; i++)
        if (strcmp(vs->gateways.v[i], "mesh") == 0)
            return true;
    return false;
}

/* IST0109 as istioctl's ConflictingMeshGatewayHostsAnalyzer: each
 * mesh-bound VirtualService host is keyed by its scope (exportTo: "*" when
 * empty or listing "*", else each namespace, "." its own) and FQDN; a key
 * with more than one VirtualService conflicts, and a namespace-scoped key
 * also conflicts with "*"-scoped hosts it overlaps (wildcards included). */
struct scoped_host {
    const char *scope;
    char fqdn[256];
    const struct cfg_virtual_service *vs;
};

/* Istio's host.Name.Matches: overlap of two hosts, either a wildcard. */
static bool hosts_overlap(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    bool wa = wildcard(a), wb = wildcard(b);
    if (wa && wb)
        return la < lb ? strcmp(b + lb - (la - 1), a + 1) == 0
                       : strcmp(a + la - (lb - 1), b + 1) == 0;
    if (wa)
        return lb >= la - 1 && strcmp(b + lb - (la - 1), a + 1) == 0;
    if (wb)
        return la >= lb - 1 && strcmp(a + la - (lb - 1), b + 1) == 0;
    return strcmp(a, b) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void report_vs_conflict(const struct scoped_host *key, const struct scoped_host **list,
                               size_t n, bool *reported, struct cfg_diags *diags)
{
    const char *names[64];
    char buf[64][256];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 64; i++) {
        snprintf(buf[k], sizeof(buf[k]), "%s/%s", list[i]->vs->meta.ns, list[i]->vs->meta.name);
        bool dup = false;
        for (size_t j = 0; j < k && !dup; j++)
            dup = strcmp(names[j], buf[k]) == 0;
        if (!dup) {
            names[k] = buf[k];
            k++;
        }
    }
    if (k < 2)
        return;
    qsort(names, k, sizeof(*names), cmp_str);
    char joined[1024] = "";
    for (size_t i = 0; i < k; i++) {
        size_t l = strlen(joined);
        snprintf(joined + l, sizeof(joined) - l, "%s%s", i ? "," : "", names[i]);
    }
    for (size_t i = 0; i < n; i++) {
        if (reported[list[i]->vs->meta.ord])
            continue;
        reported[list[i]->vs->meta.ord] = true;
        cfg_diag_add(diags, CFG_ERROR, IST_VS_CONFLICT, &list[i]->vs->meta, NULL,
                     "The VirtualServices %s associated with mesh gateway define the same host "
                     "%s/%s which can lead to undefined behavior. This can be fixed by merging the "
                     "conflicting VirtualServices into a single resource.",
                     joined, key->scope, key->fqdn);
    }
}

static int cmp_scoped(const void *x, const void *y)
{
    const struct scoped_host *a = x, *b = y;
    int c = strcmp(a->scope, b->scope);
    if (c)
        return c;
    c = strcmp(a->fqdn, b->fqdn);
    return c ? c : (a->vs->meta.ord > b->vs->meta.ord) - (a->vs->meta.ord < b->vs->meta.ord);
}

void cfg_analyze_vs_conflicts(const struct cfg_snapshot *s, struct cfg_diags *diags)
{
    size_t cap = 0, n = 0, nvs = cfg_count(s, CFG_VIRTUAL_SERVICE), nwild = 0;
    CFG_FOR_EACH(s, CFG_VIRTUAL_SERVICE, struct cfg_virtual_service, vs)
    cap += cfg_vs_binds_mesh(vs) ? vs->hosts.n * (vs->export_to.n ? vs->export_to.n : 1) : 0;
    struct scoped_host *e = calloc(cap ? cap : 1, sizeof(*e));
    const struct scoped_host **list = calloc(cap ? cap : 1, sizeof(*list));
    const struct scoped_host **wild = calloc(cap ? cap : 1, sizeof(*wild));
    bool *reported = calloc(nvs ? nvs : 1, sizeof(*reported));
    if (!e || !list || !wild || !reported)
        goto out;
    CFG_FOR_EACH(s, CFG_VIRTUAL_SERVICE, struct cfg_virtual_service, vs)
    {
        if (!cfg_vs_binds_mesh(vs))
            continue;
        bool all = !vs->export_to.n;
        for (size_t x = 0; x < vs->export_to.n; x++)
            all |= strcmp(vs->export_to.v[x], "*") == 0;
        for (size_t x = 0; x < (all ? 1 : vs->export_to.n); x++) {
            const char *scope = all ? "*" : vs->export_to.v[x];
            if (strcmp(scope, ".") == 0)
                scope = vs->meta.ns;
            for (size_t h = 0; h < vs->hosts.n && n < cap; h++) {
                e[n] = (struct scoped_host){.scope = scope, .vs = vs};
                if (cfg_fqdn(s, vs->hosts.v[h], vs->meta.ns, e[n].fqdn, sizeof(e[n].fqdn)))
                    n++;
            }
        }
    }
    /* Sorted, a key's entries are adjacent; the "*" scope's wildcards are
     * the only ones a scoped key can overlap other than its own FQDN. */
    qsort(e, n, sizeof(*e), cmp_scoped);
    size_t nstar = 0;
    while (nstar < n && strcmp(e[nstar].scope, "*") == 0)
        nstar++;
    for (size_t i = 0; i < nstar; i++)
        if (wildcard(e[i].fqdn))
            wild[nwild++] = &e[i];
    for (size_t i = 0; i < n;) {
        size_t j = i, k = 0;
        while (j < n && strcmp(e[j].scope, e[i].scope) == 0 && strcmp(e[j].fqdn, e[i].fqdn) == 0)
            list[k++] = &e[j++];
        if (strcmp(e[i].scope, "*") != 0) {
            for (size_t w = 0; w < nwild; w++)
                if (hosts_overlap(e[i].fqdn, wild[w]->fqdn) && k < cap)
                    list[k++] = wild[w];
            /* Exported entries of the same FQDN: the "*" block sorts
             * first ('*' < any namespace), so a binary search finds them. */
            size_t lo = 0, hi = nstar;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (strcmp(e[mid].fqdn, e[i].fqdn) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            for (size_t x = lo;
                 !wildcard(e[i].fqdn) && x < nstar && strcmp(e[x].fqdn, e[i].fqdn) == 0 && k < cap;
                 x++)
                list[k++] = &e[x];
            if (wildcard(e[i].fqdn))
                for (size_t x = 0; x < n; x++)
                    if (strcmp(e[x].scope, "*") == 0 && !wildcard(e[x].fqdn) &&
                        hosts_overlap(e[i].fqdn, e[x].fqdn) && k < cap)
                        list[k++] = &e[x];
        }
        if (k > 1)
            report_vs_conflict(&e[i], list, k, reported, diags);
        i = j;
    }
out:
    free(e);
    free(list);
    free(wild);
    free(reported);
}
