/* A build-once, read-many hash index from byte-string keys to values,
 * allocated in a snapshot's arena (internal to the config module). Keys
 * may repeat: lookups iterate every value under a key, in insertion order.
 * Immutable after building, so readers need no locks. Also the snapshot's
 * growable list (cfg_list). */
#ifndef MESHD_CONFIG_INDEX_H
#define MESHD_CONFIG_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

struct cfg_index_entry;

struct cfg_index {
    struct cfg_index_entry **buckets;
    struct cfg_index_entry **tails; /* per bucket, to keep insertion order */
    size_t mask;
    size_t n;
};

/* Sized for about `expected` entries. -ENOMEM on failure. */
int cfg_index_init(struct cfg_index *ix, struct arena *a, size_t expected);
/* The key is copied into the arena. */
int cfg_index_put(struct cfg_index *ix, struct arena *a, const void *key, size_t len,
                  const void *value);
int cfg_index_put_str(struct cfg_index *ix, struct arena *a, const char *key, const void *value);
/* Iteration over the values of one key: start from {0}. */
struct cfg_iter {
    const struct cfg_index_entry *at;
    int done;
};
/* The next value under key, NULL at the end (and on every call after). */
const void *cfg_index_next(const struct cfg_index *ix, const void *key, size_t len,
                           struct cfg_iter *it);
const void *cfg_index_get(const struct cfg_index *ix, const void *key, size_t len);
const void *cfg_index_get_str(const struct cfg_index *ix, const char *key);

/* A growable list of borrowed pointers, the other container of a snapshot. */
struct cfg_list {
    const void **v; /* heap (grows during the load), elements in the arena */
    size_t n, cap;
};

/* Appends v. 0 or -ENOMEM (the list unchanged). */
int cfg_list_push(struct cfg_list *l, const void *v);

#endif
