/* Open-addressing table of cluster state, and the accounting of one
 * attempt through a cluster (see clusters.h). */
#include "route/clusters.h"

#include "core/addr.h"
#include "core/str.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS (CLUSTERS_MAX * 2) /* load factor <= 1/2 */

struct cluster_entry {
    struct cluster_state state;
    uint64_t hash;
    char key[]; /* "fqdn|subset|port" */
};

struct clusters {
    struct cluster_entry *slots[SLOTS];
    size_t n;
    uint64_t overflowed, seed;
    struct cluster_state overflow;
    struct cluster_entry *last; /* the last one asked for: entries live until clusters_free */
};

int clusters_new(uint64_t seed, struct clusters **out)
{
    struct clusters *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->seed = seed;
    lb_state_init(&t->overflow.lb, seed ^ 0x9e3779b97f4a7c15ULL);
    *out = t;
    return 0;
}

void clusters_free(struct clusters *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < SLOTS; i++) {
        if (t->slots[i])
            free(t->slots[i]->state.eps);
        free(t->slots[i]);
    }
    free(t->overflow.eps);
    free(t);
}

int cluster_endpoint(struct cluster_state *cs, const struct meshd_addr *addr)
{
    for (uint32_t i = 0; i < cs->neps; i++)
        if (addr_equal(&cs->eps[i].addr, addr))
            return (int)i;
    if (cs->neps == CLUSTER_MAX_ENDPOINTS)
        return -1;
    if (cs->neps == cs->cap) {
        uint32_t cap = cs->cap ? cs->cap * 2 : 8;
        struct endpoint_state *v = realloc(cs->eps, cap * sizeof(*v));
        if (!v)
            return -1;
        cs->eps = v;
        cs->cap = cap;
    }
    cs->eps[cs->neps] = (struct endpoint_state){.addr = *addr};
    return (int)cs->neps++;
}

void cluster_acquire(struct cluster_state *cs, int32_t endpoint)
{
    cs->active++;
    if (endpoint >= 0 && (uint32_t)endpoint < cs->neps)
        cs->eps[endpoint].active++;
}

bool cluster_release(struct cluster_state *cs, int32_t endpoint, const struct outlier_config *oc,
                     bool failed, uint64_t now_ns)
{
    if (cs->active)
        cs->active--;
    if (endpoint < 0 || (uint32_t)endpoint >= cs->neps)
        return false;
    struct endpoint_state *ep = &cs->eps[endpoint];
    if (ep->active)
        ep->active--;
    if (!oc || !oc->enabled)
        return false;
    size_t ejected = 0;
    for (uint32_t i = 0; i < cs->neps; i++)
        ejected += outlier_is_ejected(&cs->eps[i].outlier, now_ns);
    if (!outlier_report(&ep->outlier, oc, !failed, cs->neps, ejected, now_ns))
        return false;
    cs->ejections++;
    return true;
}

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* Whether a stored "fqdn|subset|port" is this one's, without building it. */
static bool key_is(const char *key, const char *fqdn, const char *subset, const char *num)
{
    const char *part[3] = {fqdn, subset ? subset : "", num};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(part[i]);
        if (strncmp(key, part[i], n) != 0 || key[n] != (i < 2 ? '|' : '\0'))
            return false;
        key += n + 1;
    }
    return true;
}

struct cluster_state *clusters_get(struct clusters *t, const char *fqdn, const char *subset,
                                   uint16_t port)
{
    char key[600], num[24];
    size_t n = 0;
    str_u64(num, port);
    /* Each request of a keep-alive connection asks for its cluster again. */
    if (t->last && key_is(t->last->key, fqdn, subset, num))
        return &t->last->state;
    if (!str_append(key, sizeof(key), &n, fqdn) || !str_append(key, sizeof(key), &n, "|") ||
        !str_append(key, sizeof(key), &n, subset ? subset : "") ||
        !str_append(key, sizeof(key), &n, "|") || !str_append(key, sizeof(key), &n, num))
        return &t->overflow;
    uint64_t h = hash_key(key);
    for (size_t i = 0; i < SLOTS; i++) {
        size_t at = (h + i) & (SLOTS - 1);
        struct cluster_entry *e = t->slots[at];
        if (e && e->hash == h && strcmp(e->key, key) == 0) {
            t->last = e;
            return &e->state;
        }
        if (e)
            continue;
        if (t->n >= CLUSTERS_MAX)
            break;
        e = calloc(1, sizeof(*e) + (size_t)n + 1);
        if (!e)
            break;
        e->hash = h;
        memcpy(e->key, key, (size_t)n + 1);
        lb_state_init(&e->state.lb, t->seed ^ h);
        t->slots[at] = e;
        t->n++;
        t->last = e;
        return &e->state;
    }
    t->overflowed++;
    return &t->overflow;
}

size_t clusters_count(const struct clusters *t)
{
    return t->n;
}

uint64_t clusters_overflowed(const struct clusters *t)
{
    return t->overflowed;
}
