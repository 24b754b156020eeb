/* An append-only text buffer with printf, for everything that renders a
 * page (the Prometheus text of the telemetry/ metrics, admin's responses):
 * renderers write into it and know nothing of HTTP, so telemetry depends
 * on core only.
 *
 * The buffer grows on the heap up to `limit` bytes (0: TEXTBUF_MAX). An
 * append that fails (no memory, past the limit, a bad format) sets `oom`
 * and every later append is a no-op: the caller checks `oom` once, at the
 * end, and answers with an error instead of a truncated page (the text
 * before the failed append stays, NUL-terminated). The owner
 * frees `data` (textbuf_free). */
#ifndef MESHD_CORE_TEXTBUF_H
#define MESHD_CORE_TEXTBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* Far above what meshd renders, so no page is refused today; a bound so
 * that a runaway renderer fails instead of eating the node. (The metrics
 * page at the series caps is ~1.2 GB: 20000 HTTP series of histograms.) */
#define TEXTBUF_MAX ((size_t)2 << 30)

struct textbuf {
    char *data; /* NUL-terminated once anything was appended; may be NULL */
    size_t len, cap;
    size_t limit; /* the most `len` may reach; 0: TEXTBUF_MAX */
    bool oom;
};

void textbuf_printf(struct textbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void textbuf_vprintf(struct textbuf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* The text so far, "" if none (never NULL). */
const char *textbuf_str(const struct textbuf *b);
/* Frees the data and empties the buffer; the limit is kept. */
void textbuf_free(struct textbuf *b);

#endif
