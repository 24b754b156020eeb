/* The append-only text buffer (see textbuf.h). */
#include "core/textbuf.h"

#include <stdio.h>
#include <stdlib.h>

void textbuf_vprintf(struct textbuf *b, const char *fmt, va_list ap)
{
    if (b->oom)
        return;
    size_t limit = b->limit ? b->limit : TEXTBUF_MAX;
    for (;;) {
        va_list aq;
        va_copy(aq, ap);
        char *dst = b->data ? b->data + b->len : NULL;
        size_t room = b->data ? b->cap - b->len : 0;
        /* clang 14's analyzer misreads va_copy here (as in core/log.c). */
        int n = vsnprintf(dst, room, fmt, aq); // NOLINT(clang-analyzer-valist.Uninitialized)
        va_end(aq);
        if (n < 0 || b->len + (size_t)n > limit) {
            if (b->data)
                b->data[b->len] = '\0'; /* vsnprintf may have written a part */
            b->oom = true;
            return;
        }
        if (b->data && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap <= b->len + (size_t)n)
            cap *= 2;
        if (cap > limit + 1)
            cap = limit + 1; /* room for the NUL after `limit` bytes */
        char *nd = realloc(b->data, cap);
        if (!nd) {
            b->oom = true;
            return;
        }
        b->data = nd;
        b->cap = cap;
    }
}

void textbuf_printf(struct textbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    textbuf_vprintf(b, fmt, ap);
    va_end(ap);
}

const char *textbuf_str(const struct textbuf *b)
{
    return b->data ? b->data : "";
}

void textbuf_free(struct textbuf *b)
{
    free(b->data);
    size_t limit = b->limit;
    *b = (struct textbuf){.limit = limit};
}
