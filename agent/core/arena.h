/* A bump allocator for data that lives and dies together: a parsed YAML
 * document, a configuration snapshot. Allocation is a pointer bump in
 * chunks of at least 64 KiB; everything is freed at once by arena_free().
 * The arena has a byte limit: an allocation past it fails (NULL) instead
 * of growing without bound on hostile input. What lives outside the arena
 * but dies with it (a compiled regex) registers a cleanup. Not thread-safe. */
#ifndef MESHD_CORE_ARENA_H
#define MESHD_CORE_ARENA_H

#include <stddef.h>

struct arena_chunk;
struct arena_cleanup;

struct arena {
    struct arena_chunk *head;
    size_t used;  /* bytes handed out, for accounting */
    size_t limit; /* 0: unlimited */
    struct arena_cleanup *cleanups;
};

void arena_init(struct arena *a, size_t limit);
void arena_free(struct arena *a);
/* Zeroed, aligned to max_align_t. NULL when out of memory or over limit. */
void *arena_alloc(struct arena *a, size_t size);
void *arena_array(struct arena *a, size_t n, size_t size);
/* A NUL-terminated copy of s[0..len). */
char *arena_strndup(struct arena *a, const char *s, size_t len);
char *arena_strdup(struct arena *a, const char *s);
/* Calls fn(arg) when the arena is freed, the last registered first. 0, or
 * -ENOMEM: not registered, the caller still owns arg. */
int arena_on_free(struct arena *a, void (*fn)(void *), void *arg);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
