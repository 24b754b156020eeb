/* The HTTP carrier's route memo (see mesh/internal.h). A request whose
 * route is the service itself (no VirtualService http[] route applies:
 * Istio's default route) gets a cluster that depends on the snapshot, the
 * client pod (its namespace, and its labels, which the snapshot's Pod
 * object holds) and the original destination only; on a keep-alive
 * connection every request asks for the same one. mesh_http_route keeps
 * that filled cluster (the VIP and VirtualService lookups, the
 * DestinationRule, the ready endpoints) and its Envoy name here, and the
 * next request of the same client pod to the same address under the same
 * snapshot takes it without the lookups; the load balancer still chooses
 * per request, from the live cluster state.
 *
 * Exact by construction: a slot is keyed by everything the lookups read,
 * and all slots belong to one snapshot, held by a reference (its strings
 * and workloads are what the clusters point at), so a new snapshot (a
 * reload, an endpoint change) empties the memo at the next request and at
 * most one replaced snapshot is held until then. Direct-mapped,
 * MEMO_SLOTS entries, allocated at first use. The loop thread only. */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/addr.h"
#include "core/str.h"
#include "enroll/pods.h"
#include "mesh/internal.h"

#define MEMO_SLOTS 8

struct memo_slot {
    bool used;
    char ns[POD_NS_MAX + 1], name[POD_NAME_MAX + 1];
    struct meshd_addr dst;
    char cluster_name[320];
    struct route_cluster c;
};

struct http_route_memo {
    struct cfg_snapshot *snap; /* a reference; every used slot is of it */
    struct memo_slot slot[MEMO_SLOTS];
    uint64_t hits, misses;
};

void http_route_memo_free(struct http_route_memo *memo)
{
    if (!memo)
        return;
    cfg_snapshot_unref(memo->snap);
    free(memo);
}

static struct memo_slot *slot_of(struct http_route_memo *memo, const struct pod *src,
                                 const struct meshd_addr *dst)
{
    /* FNV-1a over the address and the pod's name: a few dozen bytes. */
    uint32_t h = 2166136261u;
    const unsigned char *p = (const unsigned char *)dst->addr;
    for (size_t i = 0; i < sizeof(dst->addr); i++)
        h = (h ^ p[i]) * 16777619u;
    h = (h ^ dst->port) * 16777619u;
    for (const char *c = src->name; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    h ^= h >> 16; /* the port is in network order: its bits reach the slot's */
    h *= 0x45d9f3bu;
    h ^= h >> 16;
    return &memo->slot[h % MEMO_SLOTS];
}

static bool slot_is(const struct memo_slot *s, const struct pod *src, const struct meshd_addr *dst)
{
    return s->used && addr_equal(&s->dst, dst) && s->dst.port == dst->port &&
           strcmp(s->name, src->name) == 0 && strcmp(s->ns, src->ns) == 0;
}

struct route_cluster *http_route_memo_get(struct mesh *m, const struct cfg_snapshot *snap,
                                          const struct pod *src, const struct meshd_addr *dst,
                                          const char **cluster_name)
{
    struct http_route_memo *memo = m->route_memo;
    if (!memo || memo->snap != snap)
        return NULL;
    struct memo_slot *s = slot_of(memo, src, dst);
    if (!slot_is(s, src, dst)) {
        memo->misses++;
        return NULL;
    }
    memo->hits++;
    *cluster_name = s->cluster_name;
    return &s->c;
}

void http_route_memo_put(struct mesh *m, const struct cfg_snapshot *snap, const struct pod *src,
                         const struct meshd_addr *dst, const struct route_cluster *c,
                         const char *cluster_name)
{
    if (strlen(src->ns) >= sizeof(((struct memo_slot *)0)->ns) ||
        strlen(src->name) >= sizeof(((struct memo_slot *)0)->name) ||
        strlen(cluster_name) >= sizeof(((struct memo_slot *)0)->cluster_name))
        return; /* not kept: looked up again next time */
    if (!m->route_memo && !(m->route_memo = calloc(1, sizeof(*m->route_memo))))
        return;
    struct http_route_memo *memo = m->route_memo;
    if (memo->snap != snap) { /* another snapshot: what was kept is of the old one */
        for (size_t i = 0; i < MEMO_SLOTS; i++)
            memo->slot[i].used = false;
        cfg_snapshot_unref(memo->snap);
        memo->snap = cfg_snapshot_ref((struct cfg_snapshot *)snap);
    }
    struct memo_slot *s = slot_of(memo, src, dst);
    memcpy(s->ns, src->ns, strlen(src->ns) + 1);
    memcpy(s->name, src->name, strlen(src->name) + 1);
    memcpy(s->cluster_name, cluster_name, strlen(cluster_name) + 1);
    s->dst = *dst;
    /* The endpoints in use only: the arrays are ROUTE_MAX_ENDPOINTS long. */
    size_t head = offsetof(struct route_cluster, endpoints);
    memcpy(&s->c, c, head);
    memcpy(s->c.endpoints, c->endpoints, c->nendpoints * sizeof(c->endpoints[0]));
    memcpy(s->c.target_ports, c->target_ports, c->nendpoints * sizeof(c->target_ports[0]));
    s->c.nendpoints = c->nendpoints;
    s->used = true;
}

void http_route_memo_counts(const struct mesh *m, uint64_t *hits, uint64_t *misses)
{
    *hits = m->route_memo ? m->route_memo->hits : 0;
    *misses = m->route_memo ? m->route_memo->misses : 0;
}
