/* A bump allocator for data that lives and dies together: a parsed YAML
 * document, a configuration snapshot. Allocation is a pointer bump in
 * chunks of at least 64 KiB; everything is freed at once by arena_free().
 * The arena has a byte limit: an allocation past it fails (NULL) instead
 * of growing without bound on hostile input. Not thread-safe. */
#ifndef MESHD_CORE_ARENA_H
#define MESHD_CORE_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
    struct arena_chunk *head;
    size_t used;  /* bytes handed out, for accounting */
    size_t limit; /* 0: unlimited */
};

void arena_init(struct arena *a, size_t limit);
void arena_free(struct arena *a);
/* Zeroed, aligned to max_align_t. NULL when out of memory or over limit. */
void *arena_alloc(struct arena *a, size_t size);
void *arena_array(struct arena *a, size_t n, size_t size);
/* A NUL-terminated copy of s[0..len). */
char *arena_strndup(struct arena *a, const char *s, size_t len);
char *arena_strdup(struct arena *a, const char *s);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
