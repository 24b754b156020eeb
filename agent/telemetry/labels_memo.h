/* A memo of Istio labels by connection record. A request's labels are its
 * connection's as if it had gone where the request went, and on one
 * keep-alive connection nearly every request asks for the same ones;
 * computing them costs configuration lookups by pod, IP and Service and
 * a few dozen string copies. The last answers are kept, direct-mapped,
 * keyed by every record field the labels are made of and by the content
 * version of the snapshot they were computed against: a hit is exactly
 * what computing again would give. Bounded: LABELS_MEMO_SLOTS entries. */
#ifndef MESHD_TELEMETRY_LABELS_MEMO_H
#define MESHD_TELEMETRY_LABELS_MEMO_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/records.h"
#include "telemetry/tcp_metrics.h"

#define LABELS_MEMO_SLOTS 64

struct labels_memo;

int labels_memo_new(struct labels_memo **out);
void labels_memo_free(struct labels_memo *m); /* accepts NULL */

/* The labels kept for `rec` under snapshot `version` into *out, or false. */
bool labels_memo_get(struct labels_memo *m, const char *version, const struct conn_record *rec,
                     struct tcp_labels *out);
/* The same, with the kept set's id (*id): every set kept gets a new one,
 * never reused, so two lookups with one id gave equal labels. */
bool labels_memo_get_id(struct labels_memo *m, const char *version, const struct conn_record *rec,
                        struct tcp_labels *out, uint64_t *id);
/* Keeps `l`, computed for `rec` under `version` (replacing its slot's). */
void labels_memo_put(struct labels_memo *m, const char *version, const struct conn_record *rec,
                     const struct tcp_labels *l);
/* Lookups answered from the memo, and not. */
void labels_memo_counts(const struct labels_memo *m, uint64_t *hits, uint64_t *misses);

#endif
