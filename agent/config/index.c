/* Chained hash index (see index.h). FNV-1a: keys are the operator's own
 * configuration, not peer input, so flooding is not a concern here. */
#include "config/index.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct cfg_index_entry {
    struct cfg_index_entry *next;
    uint64_t hash;
    const void *value;
    size_t len;
    unsigned char key[];
};

static uint64_t hash_bytes(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

int cfg_index_init(struct cfg_index *ix, struct arena *a, size_t expected)
{
    size_t n = 16;
    while (n < expected * 2 && n < ((size_t)1 << 30))
        n <<= 1;
    ix->buckets = arena_array(a, n, sizeof(*ix->buckets));
    ix->tails = arena_array(a, n, sizeof(*ix->tails));
    if (!ix->buckets || !ix->tails)
        return -ENOMEM;
    ix->mask = n - 1;
    ix->n = 0;
    return 0;
}

int cfg_index_put(struct cfg_index *ix, struct arena *a, const void *key, size_t len,
                  const void *value)
{
    struct cfg_index_entry *e = arena_alloc(a, sizeof(*e) + len);
    if (!e)
        return -ENOMEM;
    e->hash = hash_bytes(key, len);
    e->value = value;
    e->len = len;
    memcpy(e->key, key, len);
    size_t b = e->hash & ix->mask;
    if (ix->tails[b])
        ix->tails[b]->next = e;
    else
        ix->buckets[b] = e;
    ix->tails[b] = e;
    ix->n++;
    return 0;
}

int cfg_index_put_str(struct cfg_index *ix, struct arena *a, const char *key, const void *value)
{
    return cfg_index_put(ix, a, key, strlen(key), value);
}

static bool entry_is(const struct cfg_index_entry *e, uint64_t h, const void *key, size_t len)
{
    return e->hash == h && e->len == len && memcmp(e->key, key, len) == 0;
}

const void *cfg_index_next(const struct cfg_index *ix, const void *key, size_t len,
                           struct cfg_iter *it)
{
    if (!ix->buckets || it->done)
        return NULL;
    uint64_t h = hash_bytes(key, len);
    const struct cfg_index_entry *e = it->at ? it->at->next : ix->buckets[h & ix->mask];
    for (; e; e = e->next) {
        if (entry_is(e, h, key, len)) {
            it->at = e;
            return e->value;
        }
    }
    it->done = 1;
    return NULL;
}

const void *cfg_index_get(const struct cfg_index *ix, const void *key, size_t len)
{
    struct cfg_iter it = {0};
    return cfg_index_next(ix, key, len, &it);
}

const void *cfg_index_get_str(const struct cfg_index *ix, const char *key)
{
    return cfg_index_get(ix, key, strlen(key));
}

int cfg_list_push(struct cfg_list *l, const void *v)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        const void **nv = realloc(l->v, cap * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
    return 0;
}
