/* Building a snapshot's indexes, and its lifetime (see config.h): names,
 * workloads, services and VIPs, hosts, compiled authorization; the reads
 * of the built snapshot are in lookup.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/internal.h"

size_t cfg_ip_key(const struct meshd_addr *a, bool with_port, unsigned char key[20])
{
    memset(key, 0, 20);
    key[0] = a->family;
    memcpy(key + 1, a->addr, a->family == MESHD_AF_INET ? 4 : 16);
    if (!with_port)
        return 17;
    memcpy(key + 17, &a->port, 2);
    return 19;
}

static const char *name_key(struct arena *a, const struct cfg_meta *m)
{
    return m->ns ? arena_printf(a, "%s/%s", m->ns, m->name) : m->name;
}

/* Drops later duplicates of (kind, namespace, name), reporting each. */
static int index_names(struct cfg_snapshot *s, struct cfg_diags *diags)
{
    for (int k = 0; k < CFG_KIND_COUNT; k++) {
        struct cfg_list *l = &s->kinds[k];
        if (cfg_index_init(&s->by_name[k], &s->arena, l->n) ||
            cfg_index_init(&s->by_ns[k], &s->arena, l->n))
            return -ENOMEM;
        size_t kept = 0;
        for (size_t i = 0; i < l->n; i++) {
            const struct cfg_meta *m = l->v[i];
            const char *key = name_key(&s->arena, m);
            if (!key)
                return -ENOMEM;
            const struct cfg_meta *first = cfg_index_get_str(&s->by_name[k], key);
            if (first) {
                cfg_diag_add(diags, CFG_ERROR, MSH_DUPLICATE, m, NULL,
                             "duplicate resource: %s %s is also defined at %s:%u",
                             cfg_kind_name(m->kind), key, first->pos.file, first->pos.line);
                continue;
            }
            if (cfg_index_put_str(&s->by_name[k], &s->arena, key, m) ||
                (m->ns && cfg_index_put_str(&s->by_ns[k], &s->arena, m->ns, m)))
                return -ENOMEM;
            ((struct cfg_meta *)m)->ord = (uint32_t)kept; /* still being built */
            l->v[kept++] = m;
        }
        l->n = kept;
    }
    return 0;
}

static int label_key(char *buf, size_t len, const char *ns, const struct cfg_kv *kv)
{
    int n = snprintf(buf, len, "%s%c%s%c%s", ns, 0, kv->key, 0, kv->value);
    return n > 0 && (size_t)n < len ? n : -1;
}

int cfg_identity_key(char *buf, size_t len, const char *node, const char *ns, const char *sa)
{
    int n = snprintf(buf, len, "%s%c%s%c%s", node, 0, ns, 0, sa);
    return n > 0 && (size_t)n < len ? n : -1;
}

static int add_workload(struct cfg_snapshot *s, struct cfg_workload *w)
{
    unsigned char key[20];
    for (size_t i = 0; i < w->ips.n; i++) {
        size_t kl = cfg_ip_key(&w->ips.v[i], false, key);
        /* First wins: a stale duplicate IP in the manifests should not
         * silently steal traffic (analyze reports it). */
        if (!cfg_index_get(&s->workload_by_ip, key, kl) &&
            cfg_index_put(&s->workload_by_ip, &s->arena, key, kl, w))
            return -ENOMEM;
    }
    if (w->node && cfg_index_put_str(&s->pods_by_node, &s->arena, w->node, w))
        return -ENOMEM;
    char buf[768];
    if (w->pod && w->node) {
        int n = cfg_identity_key(buf, sizeof(buf), w->node, w->ns, w->service_account);
        if (n > 0 && !cfg_index_get(&s->pod_identities, buf, (size_t)n) &&
            cfg_index_put(&s->pod_identities, &s->arena, buf, (size_t)n, w))
            return -ENOMEM;
    }
    for (size_t i = 0; i < w->labels.n; i++) {
        int n = label_key(buf, sizeof(buf), w->ns, &w->labels.v[i]);
        if (n > 0 && cfg_index_put(&s->workloads_by_label, &s->arena, buf, (size_t)n, w))
            return -ENOMEM;
    }
    return 0;
}

static void workload_from_entry(struct cfg_workload *w, const struct cfg_meta *m,
                                const struct cfg_workload_entry_spec *e)
{
    *w = (struct cfg_workload){
        .meta = m,
        .ns = m->ns,
        .name = m->name,
        .labels = e->labels,
        .service_account = e->service_account ? e->service_account : "default",
        .ips = {e->has_ip ? &e->ip : NULL, e->has_ip ? 1 : 0},
        .ready = true,
        .entry = e,
    };
}

static int index_workloads(struct cfg_snapshot *s)
{
    size_t npods = s->kinds[CFG_POD].n, nwe = s->kinds[CFG_WORKLOAD_ENTRY].n, nse_eps = 0;
    for (size_t i = 0; i < s->kinds[CFG_SERVICE_ENTRY].n; i++)
        nse_eps += ((const struct cfg_service_entry *)s->kinds[CFG_SERVICE_ENTRY].v[i])->nendpoints;
    size_t total = npods + nwe + nse_eps;
    s->workloads = arena_array(&s->arena, total ? total : 1, sizeof(*s->workloads));
    if (!s->workloads || cfg_index_init(&s->workload_by_ip, &s->arena, total * 2) ||
        cfg_index_init(&s->pods_by_node, &s->arena, npods) ||
        cfg_index_init(&s->pod_identities, &s->arena, npods) ||
        cfg_index_init(&s->workloads_by_label, &s->arena, total * 4))
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < npods; i++) {
        const struct cfg_pod *p = s->kinds[CFG_POD].v[i];
        s->workloads[n] = (struct cfg_workload){
            .meta = &p->meta,
            .ns = p->meta.ns,
            .name = p->meta.name,
            .labels = p->meta.labels,
            .service_account = p->service_account,
            .node = p->node,
            .ips = p->ips,
            .ready = p->ready,
            .pod = p,
        };
        if (add_workload(s, &s->workloads[n++]))
            return -ENOMEM;
    }
    for (size_t i = 0; i < nwe; i++) {
        const struct cfg_workload_entry *we = s->kinds[CFG_WORKLOAD_ENTRY].v[i];
        workload_from_entry(&s->workloads[n], &we->meta, &we->spec);
        if (add_workload(s, &s->workloads[n++]))
            return -ENOMEM;
    }
    /* Inline ServiceEntry endpoints are workloads of that entry only: by
     * IP, not by label (their labels are for subsets). */
    for (size_t i = 0; i < s->kinds[CFG_SERVICE_ENTRY].n; i++) {
        const struct cfg_service_entry *se = s->kinds[CFG_SERVICE_ENTRY].v[i];
        for (size_t j = 0; j < se->nendpoints; j++)
            workload_from_entry(&s->workloads[n++], &se->meta, &se->endpoints[j]);
    }
    s->nworkloads = n;
    return 0;
}

/* Workloads in `ns` matching a non-empty selector, via the label index:
 * candidates carry the selector's first label, then all must match. */
static int select_workloads(struct cfg_snapshot *s, const char *ns, const struct cfg_labels *sel,
                            const struct cfg_workload *const **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (!sel->n)
        return 0;
    char buf[768];
    int kl = label_key(buf, sizeof(buf), ns, &sel->v[0]);
    if (kl < 0)
        return 0;
    size_t count = 0;
    struct cfg_iter it = {0};
    const struct cfg_workload *w;
    while ((w = cfg_index_next(&s->workloads_by_label, buf, (size_t)kl, &it)))
        count += cfg_labels_match(sel, &w->labels);
    if (!count)
        return 0;
    const struct cfg_workload **v = arena_array(&s->arena, count, sizeof(*v));
    if (!v)
        return -ENOMEM;
    size_t n = 0;
    it = (struct cfg_iter){0};
    while ((w = cfg_index_next(&s->workloads_by_label, buf, (size_t)kl, &it)))
        if (cfg_labels_match(sel, &w->labels))
            v[n++] = w;
    *out = v;
    *nout = n;
    return 0;
}

/* Istio's ResolveShortnameToFQDN (pilot/pkg/model/config.go): only a
 * name without a dot is short and completes in the namespace of the
 * resource that names it; anything with a dot ("github.com", "httpbin.foo",
 * "reviews.prod.svc"), "*" and an IP literal are taken as written. So
 * "httpbin.foo" is never Service httpbin in namespace foo, and a
 * two-label external host stays itself. */
const char *cfg_fqdn(const struct cfg_snapshot *s, const char *host, const char *ctx_ns, char *buf,
                     size_t len)
{
    unsigned char ip[16];
    int n;
    if (strchr(host, '.') || strcmp(host, "*") == 0 || inet_pton(AF_INET6, host, ip) == 1)
        n = snprintf(buf, len, "%s", host);
    else
        n = snprintf(buf, len, "%s.%s.svc.%s", host, ctx_ns ? ctx_ns : "default", s->domain);
    return n > 0 && (size_t)n < len ? buf : NULL;
}

static int add_vip(struct cfg_snapshot *s, const struct meshd_addr *ip, uint16_t port,
                   struct cfg_svc *svc, const struct cfg_service_port *sp,
                   const struct cfg_named_port *ep)
{
    struct cfg_vip *v = arena_alloc(&s->arena, sizeof(*v));
    if (!v)
        return -ENOMEM;
    v->addr = *ip;
    v->addr.port = htons(port);
    v->svc = svc;
    v->port = sp;
    v->entry_port = ep;
    unsigned char key[20];
    size_t kl = cfg_ip_key(&v->addr, true, key);
    if (cfg_index_get(&s->vip, key, kl))
        return 0; /* first wins; analyze reports the clash */
    return cfg_index_put(&s->vip, &s->arena, key, kl, v);
}

static int range_cmp(const void *a, const void *b)
{
    const struct cfg_vip_range *x = a, *y = b;
    if (x->net.prefix != y->net.prefix)
        return x->net.prefix > y->net.prefix ? -1 : 1;
    const struct cfg_meta *mx = &x->vip.svc->entry->meta, *my = &y->vip.svc->entry->meta;
    return (mx->ord > my->ord) - (mx->ord < my->ord);
}

/* The blocks of every ServiceEntry's first host, once per port. */
static int index_vip_ranges(struct cfg_snapshot *s, const struct cfg_service_entry *se,
                            struct cfg_svc *v)
{
    for (size_t a = 0; a < se->cidrs.n; a++) {
        for (size_t p = 0; p < se->nports; p++) {
            struct cfg_vip_range *r = &s->vip_ranges[s->nvip_ranges++];
            r->net = se->cidrs.v[a];
            r->vip = (struct cfg_vip){
                .addr = se->cidrs.v[a].addr, .svc = v, .entry_port = &se->ports[p]};
            r->vip.addr.port = htons(se->ports[p].number);
        }
    }
    return 0;
}

static int index_services(struct cfg_snapshot *s)
{
    size_t nsvc = s->kinds[CFG_SERVICE].n, nse = s->kinds[CFG_SERVICE_ENTRY].n;
    if (cfg_index_init(&s->svc_by_host, &s->arena, nsvc + nse * 2) ||
        cfg_index_init(&s->vip, &s->arena, nsvc * 2 + nse * 2))
        return -ENOMEM;
    size_t nranges = 0;
    for (size_t i = 0; i < nse; i++) {
        const struct cfg_service_entry *se = s->kinds[CFG_SERVICE_ENTRY].v[i];
        nranges += se->hosts.n ? se->cidrs.n * se->nports : 0;
    }
    s->nvip_ranges = 0;
    s->vip_ranges = nranges ? arena_array(&s->arena, nranges, sizeof(*s->vip_ranges)) : NULL;
    if (nranges && !s->vip_ranges)
        return -ENOMEM;
    char fqdn[512];
    for (size_t i = 0; i < nsvc; i++) {
        const struct cfg_service *svc = s->kinds[CFG_SERVICE].v[i];
        struct cfg_svc *v = arena_alloc(&s->arena, sizeof(*v));
        if (!v || !cfg_fqdn(s, svc->meta.name, svc->meta.ns, fqdn, sizeof(fqdn)))
            return -ENOMEM;
        v->fqdn = arena_strdup(&s->arena, fqdn);
        v->ns = svc->meta.ns;
        v->name = svc->meta.name;
        v->service = svc;
        if (!v->fqdn ||
            (svc->selector.set && select_workloads(s, svc->meta.ns, &svc->selector.match,
                                                   &v->endpoints, &v->nendpoints)) ||
            cfg_index_put_str(&s->svc_by_host, &s->arena, v->fqdn, v))
            return -ENOMEM;
        for (size_t a = 0; a < svc->cluster_ips.n; a++)
            for (size_t p = 0; p < svc->nports; p++)
                if (add_vip(s, &svc->cluster_ips.v[a], svc->ports[p].port, v, &svc->ports[p], NULL))
                    return -ENOMEM;
    }
    for (size_t i = 0; i < nse; i++) {
        const struct cfg_service_entry *se = s->kinds[CFG_SERVICE_ENTRY].v[i];
        const struct cfg_workload *const *eps = NULL;
        size_t neps = 0;
        if (se->nendpoints) {
            /* The inline endpoints, in the order index_workloads laid them out. */
            for (size_t w = 0; w < s->nworkloads; w++) {
                if (s->workloads[w].meta == &se->meta) {
                    const struct cfg_workload **v =
                        arena_array(&s->arena, se->nendpoints, sizeof(*v));
                    if (!v)
                        return -ENOMEM;
                    for (size_t j = 0; j < se->nendpoints; j++)
                        v[j] = &s->workloads[w + j];
                    eps = v;
                    neps = se->nendpoints;
                    break;
                }
            }
        } else if (se->workload_selector.set &&
                   select_workloads(s, se->meta.ns, &se->workload_selector.match, &eps, &neps)) {
            return -ENOMEM;
        }
        for (size_t h = 0; h < se->hosts.n; h++) {
            struct cfg_svc *v = arena_alloc(&s->arena, sizeof(*v));
            if (!v)
                return -ENOMEM;
            *v = (struct cfg_svc){.fqdn = se->hosts.v[h],
                                  .ns = se->meta.ns,
                                  .name = se->meta.name,
                                  .entry = se,
                                  .endpoints = eps,
                                  .nendpoints = neps};
            if (cfg_index_put_str(&s->svc_by_host, &s->arena, v->fqdn, v))
                return -ENOMEM;
            for (size_t a = 0; h == 0 && a < se->addresses.n; a++)
                for (size_t p = 0; p < se->nports; p++)
                    if (add_vip(s, &se->addresses.v[a], se->ports[p].number, v, NULL,
                                &se->ports[p]))
                        return -ENOMEM;
            if (h == 0)
                index_vip_ranges(s, se, v);
        }
    }
    if (s->nvip_ranges > 1)
        qsort(s->vip_ranges, s->nvip_ranges, sizeof(*s->vip_ranges), range_cmp);
    return 0;
}

static int wild_cmp(const void *a, const void *b)
{
    const struct cfg_wild_host *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return (x->m->ord > y->m->ord) - (x->m->ord < y->m->ord);
}

static struct cfg_strs resource_hosts(const struct cfg_meta *m, const char **one)
{
    if (m->kind == CFG_VIRTUAL_SERVICE)
        return ((const struct cfg_virtual_service *)m)->hosts;
    *one = ((const struct cfg_destination_rule *)m)->host;
    return (struct cfg_strs){one, 1};
}

/* Exact hosts go to `ix` by FQDN; wildcards to `wild`, most specific
 * first (Istio picks the closest match). */
static int index_hosts(struct cfg_snapshot *s, enum cfg_kind kind, struct cfg_index *ix,
                       struct cfg_wild_hosts *wild)
{
    const struct cfg_list *l = &s->kinds[kind];
    if (cfg_index_init(ix, &s->arena, l->n * 2))
        return -ENOMEM;
    char fqdn[512];
    size_t nwild = 0;
    const char *one;
    for (size_t i = 0; i < l->n; i++) {
        struct cfg_strs hosts = resource_hosts(l->v[i], &one);
        for (size_t h = 0; h < hosts.n; h++)
            nwild += hosts.v[h][0] == '*';
    }
    wild->v = nwild ? arena_alloc(&s->arena, nwild * sizeof(*wild->v)) : NULL;
    wild->n = 0;
    if (nwild && !wild->v)
        return -ENOMEM;
    for (size_t i = 0; i < l->n; i++) {
        const struct cfg_meta *m = l->v[i];
        struct cfg_strs hosts = resource_hosts(m, &one);
        for (size_t h = 0; h < hosts.n; h++) {
            const char *host = hosts.v[h];
            /* Wildcards are taken as written, as Istio does. */
            const char *f = host[0] == '*' ? host : cfg_fqdn(s, host, m->ns, fqdn, sizeof(fqdn));
            if (!f)
                continue;
            if (f[0] == '*') {
                const char *suffix = arena_strdup(&s->arena, f + 1);
                if (!suffix)
                    return -ENOMEM;
                wild->v[wild->n++] = (struct cfg_wild_host){suffix, strlen(suffix), m};
            } else if (cfg_index_put_str(ix, &s->arena, f, m)) {
                return -ENOMEM;
            }
        }
    }
    if (wild->n > 1)
        qsort(wild->v, wild->n, sizeof(*wild->v), wild_cmp);
    return 0;
}

int cfg_snapshot_index(struct cfg_snapshot *s, struct cfg_diags *diags)
{
    if (index_names(s, diags) || index_workloads(s) || index_services(s) ||
        index_hosts(s, CFG_VIRTUAL_SERVICE, &s->vs_by_host, &s->vs_wild) ||
        index_hosts(s, CFG_DESTINATION_RULE, &s->dr_by_host, &s->dr_wild) || cfg_authz_compile(s))
        return -ENOMEM;
    return 0;
}

struct cfg_snapshot *cfg_snapshot_ref(struct cfg_snapshot *s)
{
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void cfg_snapshot_unref(struct cfg_snapshot *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (int k = 0; k < CFG_KIND_COUNT; k++)
        free(s->kinds[k].v);
    free(s->others.v);
    arena_free(&s->arena);
    free(s);
}
