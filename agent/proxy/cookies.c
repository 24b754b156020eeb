/* Socket cookie -> connection record (see cookies.h). */
#include "proxy/cookies.h"

#include <errno.h>
#include <stdlib.h>

#define COOKIES_MIN 64 /* slots, a power of two */

struct cookie_slot {
    uint64_t cookie; /* 0: empty */
    struct conn_record *rec;
};

struct cookie_index {
    size_t cap, count; /* cap: a power of two */
    struct cookie_slot *slot;
};

/* SplitMix64's finalizer: cookies are sequential, the slots should not be. */
static size_t slot_of(const struct cookie_index *ci, uint64_t c)
{
    c ^= c >> 30;
    c *= 0xbf58476d1ce4e5b9ull;
    c ^= c >> 27;
    c *= 0x94d049bb133111ebull;
    c ^= c >> 31;
    return (size_t)c & (ci->cap - 1);
}

int cookie_index_new(struct cookie_index **out)
{
    struct cookie_index *ci = calloc(1, sizeof(*ci));
    if (!ci)
        return -ENOMEM;
    ci->cap = COOKIES_MIN;
    ci->slot = calloc(ci->cap, sizeof(ci->slot[0]));
    if (!ci->slot) {
        free(ci);
        return -ENOMEM;
    }
    *out = ci;
    return 0;
}

void cookie_index_free(struct cookie_index *ci)
{
    if (!ci)
        return;
    free(ci->slot);
    free(ci);
}

/* The slot holding `cookie`, or the empty one where it would go. */
static size_t find(const struct cookie_index *ci, uint64_t cookie)
{
    size_t i = slot_of(ci, cookie);
    while (ci->slot[i].cookie && ci->slot[i].cookie != cookie)
        i = (i + 1) & (ci->cap - 1);
    return i;
}

static int grow(struct cookie_index *ci)
{
    size_t cap = ci->cap * 2;
    struct cookie_slot *old = ci->slot, *s = calloc(cap, sizeof(*s));
    if (!s)
        return -ENOMEM;
    size_t old_cap = ci->cap;
    ci->slot = s;
    ci->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].cookie)
            ci->slot[find(ci, old[i].cookie)] = old[i];
    free(old);
    return 0;
}

int cookie_index_put(struct cookie_index *ci, uint64_t cookie, struct conn_record *rec)
{
    if (!cookie)
        return 0;
    size_t i = find(ci, cookie);
    if (ci->slot[i].cookie) {
        ci->slot[i].rec = rec;
        return 0;
    }
    if ((ci->count + 1) * 2 > ci->cap) { /* at most half full: short probes */
        if (grow(ci) != 0)
            return -ENOMEM;
        i = find(ci, cookie);
    }
    ci->slot[i] = (struct cookie_slot){.cookie = cookie, .rec = rec};
    ci->count++;
    return 0;
}

struct conn_record *cookie_index_get(const struct cookie_index *ci, uint64_t cookie)
{
    if (!cookie)
        return NULL;
    size_t i = find(ci, cookie);
    return ci->slot[i].cookie ? ci->slot[i].rec : NULL;
}

void cookie_index_del(struct cookie_index *ci, uint64_t cookie, const struct conn_record *rec)
{
    if (!cookie)
        return;
    size_t i = find(ci, cookie);
    if (!ci->slot[i].cookie || ci->slot[i].rec != rec)
        return;
    /* Backward shift: pull each later entry of the run into the hole when
     * its home slot does not lie cyclically in (hole, its slot]. */
    size_t mask = ci->cap - 1, hole = i;
    for (size_t j = (i + 1) & mask; ci->slot[j].cookie; j = (j + 1) & mask) {
        size_t home = slot_of(ci, ci->slot[j].cookie);
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            ci->slot[hole] = ci->slot[j];
            hole = j;
        }
    }
    ci->slot[hole] = (struct cookie_slot){0};
    ci->count--;
}

size_t cookie_index_count(const struct cookie_index *ci)
{
    return ci->count;
}
