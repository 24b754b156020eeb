/* Reads of an indexed snapshot (see config.h): the accessors and every
 * lookup the data path, the analyzers and the admin API make. Hash-table
 * reads on an immutable snapshot, no locks; the indexes are built by
 * snapshot.c. */
#include <string.h>

#include "config/internal.h"

static bool block_contains(const struct cfg_cidr *c, const struct meshd_addr *a)
{
    if (c->addr.family != a->family)
        return false;
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->addr.addr, a->addr, full) != 0)
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (c->addr.addr[full] & mask) == (a->addr[full] & mask);
}

const char *cfg_snapshot_version(const struct cfg_snapshot *s)
{
    return s->version;
}

const char *cfg_snapshot_root_namespace(const struct cfg_snapshot *s)
{
    return s->root_ns;
}

const char *cfg_snapshot_domain(const struct cfg_snapshot *s)
{
    return s->domain;
}

size_t cfg_snapshot_files(const struct cfg_snapshot *s)
{
    return s->nfiles;
}

size_t cfg_snapshot_bytes(const struct cfg_snapshot *s)
{
    return s->bytes;
}

size_t cfg_snapshot_memory(const struct cfg_snapshot *s)
{
    size_t n = s->arena.used;
    for (int k = 0; k < CFG_KIND_COUNT; k++)
        n += s->kinds[k].cap * sizeof(void *);
    return n;
}

size_t cfg_count(const struct cfg_snapshot *s, enum cfg_kind kind)
{
    return s->kinds[kind].n;
}

const void *cfg_at(const struct cfg_snapshot *s, enum cfg_kind kind, size_t i)
{
    return i < s->kinds[kind].n ? s->kinds[kind].v[i] : NULL;
}

const void *cfg_find(const struct cfg_snapshot *s, enum cfg_kind kind, const char *ns,
                     const char *name)
{
    /* "ns/name" (or "name") by hand: the data path asks per request. */
    char key[320];
    size_t nl = ns ? strlen(ns) : 0, ml = strlen(name), kl = ns ? nl + 1 + ml : ml;
    if (kl >= sizeof(key))
        return NULL;
    if (ns) {
        memcpy(key, ns, nl);
        key[nl] = '/';
        memcpy(key + nl + 1, name, ml);
    } else
        memcpy(key, name, ml);
    key[kl] = '\0';
    return cfg_index_get_str(&s->by_name[kind], key);
}

const void *cfg_next_in_ns(const struct cfg_snapshot *s, enum cfg_kind kind, const char *ns,
                           struct cfg_iter *it)
{
    return cfg_index_next(&s->by_ns[kind], ns, strlen(ns), it);
}

const struct cfg_svc *cfg_svc_by_fqdn(const struct cfg_snapshot *s, const char *fqdn)
{
    return cfg_index_get_str(&s->svc_by_host, fqdn);
}

const struct cfg_svc *cfg_next_svc_for_fqdn(const struct cfg_snapshot *s, const char *fqdn,
                                            struct cfg_iter *it)
{
    return cfg_index_next(&s->svc_by_host, fqdn, strlen(fqdn), it);
}

const struct cfg_svc *cfg_svc_by_host(const struct cfg_snapshot *s, const char *host,
                                      const char *ctx_ns)
{
    char fqdn[512];
    if (!cfg_fqdn(s, host, ctx_ns, fqdn, sizeof(fqdn)))
        return NULL;
    return cfg_index_get_str(&s->svc_by_host, fqdn);
}

const struct cfg_vip *cfg_vip_lookup(const struct cfg_snapshot *s, const struct meshd_addr *ip_port)
{
    unsigned char key[20];
    size_t kl = cfg_ip_key(ip_port, true, key);
    const struct cfg_vip *v = cfg_index_get(&s->vip, key, kl);
    /* ServiceEntry blocks: few (a linear scan), and only on a miss. */
    for (size_t i = 0; !v && i < s->nvip_ranges; i++)
        if (s->vip_ranges[i].vip.addr.port == ip_port->port &&
            block_contains(&s->vip_ranges[i].net, ip_port))
            v = &s->vip_ranges[i].vip;
    return v;
}

const struct cfg_workload *cfg_workload_by_ip(const struct cfg_snapshot *s,
                                              const struct meshd_addr *ip)
{
    unsigned char key[20];
    size_t kl = cfg_ip_key(ip, false, key);
    return cfg_index_get(&s->workload_by_ip, key, kl);
}

const struct cfg_workload *cfg_workload_of(const struct cfg_snapshot *s, const struct cfg_meta *m)
{
    for (size_t i = 0; i < s->nworkloads; i++)
        if (s->workloads[i].meta == m)
            return &s->workloads[i];
    return NULL;
}

const struct cfg_workload *cfg_next_on_node(const struct cfg_snapshot *s, const char *node,
                                            struct cfg_iter *it)
{
    return cfg_index_next(&s->pods_by_node, node, strlen(node), it);
}

const struct cfg_workload *cfg_pod_identity_on_node(const struct cfg_snapshot *s, const char *node,
                                                    const char *ns, const char *sa)
{
    char key[768];
    int n = cfg_identity_key(key, sizeof(key), node, ns, sa);
    return n > 0 ? cfg_index_get(&s->pod_identities, key, (size_t)n) : NULL;
}

const struct cfg_virtual_service *cfg_next_vs_for_host(const struct cfg_snapshot *s,
                                                       const char *fqdn, struct cfg_iter *it)
{
    return cfg_index_next(&s->vs_by_host, fqdn, strlen(fqdn), it);
}

const struct cfg_destination_rule *cfg_next_dr_for_host(const struct cfg_snapshot *s,
                                                        const char *fqdn, struct cfg_iter *it)
{
    return cfg_index_next(&s->dr_by_host, fqdn, strlen(fqdn), it);
}

static const struct cfg_meta *next_wildcard(const struct cfg_wild_hosts *w, const char *fqdn,
                                            size_t *it)
{
    size_t len = strlen(fqdn);
    while (*it < w->n) {
        const struct cfg_wild_host *h = &w->v[(*it)++];
        /* "*.example.com" matches "a.example.com", not "example.com". */
        if (h->len < len && memcmp(fqdn + len - h->len, h->suffix, h->len) == 0)
            return h->m;
    }
    return NULL;
}

const struct cfg_virtual_service *cfg_next_vs_wildcard(const struct cfg_snapshot *s,
                                                       const char *fqdn, size_t *it)
{
    return (const struct cfg_virtual_service *)next_wildcard(&s->vs_wild, fqdn, it);
}

const struct cfg_destination_rule *cfg_next_dr_wildcard(const struct cfg_snapshot *s,
                                                        const char *fqdn, size_t *it)
{
    return (const struct cfg_destination_rule *)next_wildcard(&s->dr_wild, fqdn, it);
}

bool cfg_svc_visible(const struct cfg_svc *svc, const char *ns)
{
    const struct cfg_strs *e = svc->service ? &svc->service->export_to
                               : svc->entry ? &svc->entry->export_to
                                            : NULL;
    return !e || !ns || cfg_exported_to(e, svc->ns, ns);
}

bool cfg_namespace_in_mesh(const struct cfg_snapshot *s, const char *ns)
{
    const struct cfg_namespace *n = cfg_find(s, CFG_NAMESPACE, NULL, ns);
    if (!n)
        return false;
    /* An explicit dataplane mode decides; else the seed's sidecar label
     * (istio-injection=enabled) means "in the mesh" too: meshd has no
     * sidecars, and users of the seed's commands label namespaces so. */
    const char *mode = cfg_label(&n->meta.labels, "istio.io/dataplane-mode");
    if (mode)
        return strcmp(mode, "ambient") == 0;
    const char *inject = cfg_label(&n->meta.labels, "istio-injection");
    return inject && strcmp(inject, "enabled") == 0;
}

const struct cfg_other *cfg_find_other(const struct cfg_snapshot *s, const char *kind,
                                       const char *group, const char *ns, const char *name)
{
    for (size_t i = 0; i < s->others.n; i++) {
        const struct cfg_other *o = s->others.v[i];
        if (strcmp(o->kind, kind) == 0 && strcmp(o->group, group) == 0 &&
            strcmp(o->name, name) == 0 && (!ns || strcmp(o->ns ? o->ns : "default", ns) == 0))
            return o;
    }
    return NULL;
}
