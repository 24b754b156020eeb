/* Exponential backoff with jitter for the Kubernetes API watchers: each
 * failure doubles the delay from `base_ms` up to `cap_ms`, and the delay
 * handed out is drawn uniformly from [d/2, d] ("equal jitter"), so many
 * agents that lost the API server at the same moment do not come back in
 * step. A success resets it. The random state is the caller's (a seed),
 * so tests are reproducible. */
#ifndef MESHD_KUBE_BACKOFF_H
#define MESHD_KUBE_BACKOFF_H

#include <stdint.h>

struct kube_backoff {
    uint32_t base_ms, cap_ms;
    uint32_t cur_ms; /* the ceiling of the next delay; 0: base */
    uint64_t rng;    /* xorshift state, never 0 */
};

void kube_backoff_init(struct kube_backoff *b, uint32_t base_ms, uint32_t cap_ms, uint64_t seed);
/* The delay before the next attempt, in ms, and the ceiling doubled. */
uint32_t kube_backoff_next(struct kube_backoff *b);
void kube_backoff_reset(struct kube_backoff *b);

#endif
