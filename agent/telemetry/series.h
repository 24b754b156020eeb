/* The bounded series table behind Istio's istio_tcp_* and istio_request*
 * families: one entry per distinct label set (the TCP label set of
 * tcp_metrics.h plus up to SERIES_EXTRA_MAX extra labels, such as
 * response_code), each carrying a caller-sized payload (counters,
 * histograms).
 *
 * Past `max` label sets, new ones are counted as dropped, not added, so a
 * peer cannot grow the table. Entries not updated for the expiry time, and
 * not busy by the schema's say (an open connection), are removed so
 * deleted workloads disappear. Label values are rendered for the text
 * exposition: empty TCP labels as "unknown" (Istio's default), empty extra
 * labels as "" (grpc_response_status of a non-gRPC request); \ " and
 * newline escaped; other control and non-ASCII bytes as '?' (Kubernetes
 * names and SPIFFE ids are ASCII; anything else is hostile). */
#ifndef MESHD_TELEMETRY_SERIES_H
#define MESHD_TELEMETRY_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "telemetry/tcp_metrics.h"

#define SERIES_EXTRA_MAX 2
#define SERIES_EXTRA_LEN 16 /* longer extra values are truncated */
/* Room for every label of one series, escaped, without braces. */
#define SERIES_LABELS_MAX 8192

struct series_schema {
    size_t nextra;                  /* extra labels, <= SERIES_EXTRA_MAX */
    const char *const *extra_names; /* nextra names */
    /* Render order: i < TL__COUNT is tcp_label i, TL__COUNT + j extra j.
     * NULL: the TCP labels in enum order, then the extras. */
    const int *order;
    size_t norder;
    size_t payload;                    /* bytes of per-series data, zeroed at creation */
    void (*init)(void *payload);       /* optional: after zeroing */
    bool (*busy)(const void *payload); /* optional: true keeps a series past expiry */
};

struct series_table;

/* `schema` is borrowed and must outlive the table (a static). */
int series_table_new(const struct series_schema *schema, size_t max, uint64_t expiry_ns,
                     struct series_table **out);
void series_table_free(struct series_table *t); /* accepts NULL */

/* The payload of the series for these labels (`extra`: schema->nextra
 * strings, NULL when there are none), created if there is room, its
 * update time set to now_ns. NULL when the table is full or out of
 * memory: counted as dropped. */
void *series_table_get(struct series_table *t, const struct tcp_labels *l, const char *const *extra,
                       uint64_t now_ns);
/* The same for `l` with label `label`'s value replaced by `value` (the
 * stored series holds it, truncated to TCP_LABEL_MAX - 1 as a label is);
 * label -1 or value NULL: none replaced. */
void *series_table_get_with(struct series_table *t, const struct tcp_labels *l, int label,
                            const char *value, const char *const *extra, uint64_t now_ns);
/* Sets the update time of the series whose payload `payload` is (a
 * series_table_get answer, not expired since). */
void series_table_touch(void *payload, uint64_t now_ns);
/* Removes series idle past the expiry and not busy. */
void series_table_expire(struct series_table *t, uint64_t now_ns);

size_t series_table_count(const struct series_table *t);
uint64_t series_table_dropped(const struct series_table *t);

/* Calls fn for every series with its labels rendered `k="v",...` (no
 * braces, schema order, escaped) and its payload. */
typedef void (*series_fn)(void *ctx, const char *labels, const void *payload);
void series_table_each(const struct series_table *t, series_fn fn, void *ctx);

#endif
