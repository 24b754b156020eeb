/* Exponential backoff with equal jitter (see backoff.h). */
#include "kube/backoff.h"

void kube_backoff_init(struct kube_backoff *b, uint32_t base_ms, uint32_t cap_ms, uint64_t seed)
{
    b->base_ms = base_ms ? base_ms : 1;
    b->cap_ms = cap_ms < b->base_ms ? b->base_ms : cap_ms;
    b->cur_ms = 0;
    b->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

uint32_t kube_backoff_next(struct kube_backoff *b)
{
    uint32_t d = b->cur_ms ? b->cur_ms : b->base_ms;
    b->cur_ms = d > b->cap_ms / 2 ? b->cap_ms : d * 2;
    uint32_t half = d / 2;
    return half + (uint32_t)(xorshift(&b->rng) % ((uint64_t)(d - half) + 1));
}

void kube_backoff_reset(struct kube_backoff *b)
{
    b->cur_ms = 0;
}
