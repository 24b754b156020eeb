/* Endpoint choice per connection (see lb.h). */
#include "route/lb.h"

#include <string.h>

void lb_state_init(struct lb_state *st, uint64_t seed)
{
    st->rr_next = 0;
    st->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

uint64_t lb_random(struct lb_state *st)
{
    /* xorshift64*: fast, good enough for load spreading (not security). */
    uint64_t x = st->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    st->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, n) without modulo bias. */
static uint64_t random_below(struct lb_state *st, uint64_t n)
{
    if (n <= 1)
        return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, r;
    do
        r = lb_random(st);
    while (r >= limit);
    return r % n;
}

int lb_weighted_pick(const uint32_t *weights, size_t n, struct lb_state *st)
{
    if (n == 1)
        return 0;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += weights[i];
    if (total == 0)
        return -1;
    uint64_t r = random_below(st, total);
    for (size_t i = 0; i < n; i++) {
        if (r < weights[i])
            return (int)i;
        r -= weights[i];
    }
    return -1; /* unreachable */
}

/* 64-bit FNV-1a then a finalizer: the rendezvous score of (source, endpoint). */
static uint64_t hrw_score(const struct meshd_addr *src, const struct meshd_addr *ep)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const uint8_t *parts[2] = {src->addr, ep->addr};
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < 16; i++)
            h = (h ^ parts[p][i]) * 0x100000001b3ull;
    h ^= ep->port;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

int lb_pick(enum lb_policy policy, struct lb_state *st, const struct lb_endpoint *eps, size_t n,
            const struct meshd_addr *src, const struct outlier_config *oc, uint64_t now_ns,
            int exclude)
{
    if (n == 0)
        return -1;
    size_t ejected = 0;
    for (size_t i = 0; i < n; i++)
        ejected += outlier_is_ejected(&eps[i].outlier, now_ns);
    bool skip_ejected = outlier_active(oc, n, ejected);
    size_t usable = 0;
    for (size_t i = 0; i < n; i++)
        usable += !(skip_ejected && outlier_is_ejected(&eps[i].outlier, now_ns));
    if (usable == 0)
        return -1;
    /* A retry avoids the endpoint that just failed, when it can. */
    bool avoid = exclude >= 0 && (size_t)exclude < n && usable > 1;
#define USABLE(i)                                                                                  \
    (!(skip_ejected && outlier_is_ejected(&eps[i].outlier, now_ns)) &&                             \
     !(avoid && (int)(i) == exclude))

    switch (policy) {
    case LB_PASSTHROUGH:
        return -1;
    case LB_CONSISTENT_HASH_SOURCE_IP: {
        /* Rendezvous hashing: the same source keeps its endpoint while it
         * is usable, and only the keys of a removed endpoint move. */
        int best = -1;
        uint64_t best_score = 0;
        struct meshd_addr s = *src;
        s.port = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t sc = hrw_score(&s, &eps[i].addr);
            if (USABLE(i) && (best < 0 || sc > best_score))
                best = (int)i, best_score = sc;
        }
        return best;
    }
    case LB_LEAST_REQUEST: {
        /* Fewest active connections; ties broken at random so equal
         * endpoints share the load. */
        int best = -1;
        uint32_t ties = 0;
        for (size_t i = 0; i < n; i++) {
            if (!USABLE(i))
                continue;
            if (best < 0 || eps[i].active < eps[best].active) {
                best = (int)i;
                ties = 1;
            } else if (eps[i].active == eps[best].active && random_below(st, ++ties) == 0) {
                best = (int)i;
            }
        }
        return best;
    }
    case LB_RANDOM: {
        size_t cands = 0;
        for (size_t i = 0; i < n; i++)
            cands += USABLE(i);
        uint64_t k = random_below(st, cands);
        for (size_t i = 0; i < n; i++)
            if (USABLE(i) && k-- == 0)
                return (int)i;
        return -1;
    }
    case LB_ROUND_ROBIN:
        for (size_t tries = 0; tries < n; tries++) {
            size_t i = (size_t)(st->rr_next++ % n);
            if (USABLE(i))
                return (int)i;
        }
        return -1;
    }
#undef USABLE
    return -1;
}
