/* Bounded string copies for the data path, where snprintf("%s") would run
 * the whole printf machinery per field (a profile of the HTTP carrier
 * showed it). Leaf header. */
#ifndef MESHD_CORE_STR_H
#define MESHD_CORE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Copies `src` into dst[cap], truncated to cap - 1 bytes, always
 * NUL-terminated (cap > 0). Returns strlen(src), as strlcpy: >= cap when
 * it was cut. */
static inline size_t str_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    size_t k = n < cap ? n : cap - 1;
    memcpy(dst, src, k);
    dst[k] = '\0';
    return n;
}

/* Appends `src` whole at dst[*len] (dst[cap], NUL-terminated), moving
 * *len past it; false, with nothing appended, when it does not fit. */
static inline bool str_append(char *dst, size_t cap, size_t *len, const char *src)
{
    size_t n = strlen(src);
    if (*len + n >= cap)
        return false;
    memcpy(dst + *len, src, n + 1);
    *len += n;
    return true;
}

/* Writes `v` in decimal at `out` (room for 20 digits and the NUL);
 * returns the digits written. */
static inline size_t str_u64(char *out, unsigned long long v)
{
    char tmp[21];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

#endif
