/* The connection table's index of socket cookies: which record a kernel
 * event (sockops, telemetry/kevents.c) belongs to, in one lookup instead
 * of a scan of every active connection and every kept record.
 *
 * Keys are socket cookies (SO_COOKIE, never 0); values are the record the
 * socket belongs to, borrowed: an active connection's, then its copy in
 * the ring of finished records (proxy/records.h) until the ring evicts it.
 * The owner (proxy/conns.c) re-points and removes entries as records move;
 * nothing here knows about them. Open addressing with linear probing and
 * backward-shift deletion (no tombstones), grown at half full: the entries
 * are bounded by the owner's (two cookies per active connection and per
 * kept record). */
#ifndef MESHD_PROXY_COOKIES_H
#define MESHD_PROXY_COOKIES_H

#include <stddef.h>
#include <stdint.h>

struct conn_record;
struct cookie_index;

int cookie_index_new(struct cookie_index **out);
void cookie_index_free(struct cookie_index *ci); /* accepts NULL */
/* Maps `cookie` to `rec` (replacing what it mapped to). Cookie 0 (no
 * socket, or SO_COOKIE failed) is never indexed: 0. -ENOMEM: not indexed
 * (events for that socket go unjoined); the index stays as it was. */
int cookie_index_put(struct cookie_index *ci, uint64_t cookie, struct conn_record *rec);
/* The record of `cookie`, or NULL. */
struct conn_record *cookie_index_get(const struct cookie_index *ci, uint64_t cookie);
/* Removes `cookie` if it maps to `rec` (a later socket with a reused
 * record slot keeps its own entry). */
void cookie_index_del(struct cookie_index *ci, uint64_t cookie, const struct conn_record *rec);
size_t cookie_index_count(const struct cookie_index *ci);

#endif
