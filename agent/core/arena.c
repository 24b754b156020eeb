/* Bump allocation in chunks (see arena.h). */
#include "core/arena.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK_MIN (64 * 1024)
#define ARENA_ALIGN     _Alignof(max_align_t)

struct arena_chunk {
    struct arena_chunk *next;
    size_t size; /* usable bytes in data[] */
    size_t off;
    _Alignas(max_align_t) unsigned char data[];
};

/* Lives in the arena itself, so registering allocates nothing else. */
struct arena_cleanup {
    struct arena_cleanup *next;
    void (*fn)(void *);
    void *arg;
};

void arena_init(struct arena *a, size_t limit)
{
    a->head = NULL;
    a->used = 0;
    a->limit = limit;
    a->cleanups = NULL;
}

void arena_free(struct arena *a)
{
    for (struct arena_cleanup *k = a->cleanups; k; k = k->next)
        k->fn(k->arg);
    a->cleanups = NULL;
    struct arena_chunk *c = a->head;
    while (c) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used = 0;
}

void *arena_alloc(struct arena *a, size_t size)
{
    if (size == 0)
        size = 1;
    if (size > SIZE_MAX / 2)
        return NULL;
    size_t rounded = (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (a->limit && (rounded > a->limit || a->used > a->limit - rounded))
        return NULL;
    struct arena_chunk *c = a->head;
    if (!c || c->size - c->off < rounded) {
        size_t want = rounded > ARENA_CHUNK_MIN ? rounded : ARENA_CHUNK_MIN;
        /* Grow chunk sizes with the arena so large snapshots need few. */
        if (c && want < c->size * 2 && c->size * 2 <= 16u * 1024 * 1024)
            want = c->size * 2;
        c = malloc(sizeof(*c) + want);
        if (!c)
            return NULL;
        c->size = want;
        c->off = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->off;
    c->off += rounded;
    a->used += rounded;
    memset(p, 0, size);
    return p;
}

void *arena_array(struct arena *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    return arena_alloc(a, n * size);
}

char *arena_strndup(struct arena *a, const char *s, size_t len)
{
    char *p = arena_alloc(a, len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

int arena_on_free(struct arena *a, void (*fn)(void *), void *arg)
{
    struct arena_cleanup *k = arena_alloc(a, sizeof(*k));
    if (!k)
        return -ENOMEM;
    *k = (struct arena_cleanup){a->cleanups, fn, arg};
    a->cleanups = k;
    return 0;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* clang 14's analyzer misreads va_start here (as in core/log.c). */
    int n = vsnprintf(NULL, 0, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = arena_alloc(a, (size_t)n + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}
