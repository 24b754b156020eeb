/* The agent's proxied connections: admission (a global cap), the upstream
 * connect from inside a pod netns, the byte relay, and the record each
 * connection leaves behind. Outbound and inbound proxies only decide where
 * a connection goes; this module carries it there. */
#ifndef MESHD_PROXY_CONNS_H
#define MESHD_PROXY_CONNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/upstream.h"
#include "proxy/records.h"

struct loop;
struct conns;
struct conn;

/* Told when a connection starts carrying bytes and when it ends (for
 * metrics). A connection that failed before opening is reported opened and
 * closed at its end, so opened == closed + active always holds. */
struct conns_observer {
    void (*opened)(void *ctx, const struct conn_record *rec);
    void (*closed)(void *ctx, const struct conn_record *rec);
    void *ctx;
};

struct conns_opts {
    size_t max_conns;            /* active connections; beyond, new ones are reset */
    size_t records;              /* finished records kept */
    struct upstream_owner owner; /* every upstream socket is meshd's own */
    struct conns_observer observer;
};

struct conns_stats {
    uint64_t accepted, forwarded, failed, refused, overflow, active;
    uint64_t self_calls; /* refused as aimed at meshd itself (of `refused`) */
};

int conns_new(struct loop *loop, const struct conns_opts *opts, struct conns **out);
/* Resets every active connection. Accepts NULL. */
void conns_free(struct conns *t);

/* Admits an accepted socket (taken over). NULL when over the cap or out of
 * memory: the socket has then been reset and counted. */
struct conn *conn_begin(struct conns *t, int down_fd, const char *direction, const char *pod,
                        const struct meshd_addr *src);
struct conn_record *conn_record(struct conn *c);
/* Connects to `dst` (NULL: rec->orig_dst) from inside `netns_fd` (binding
 * `bind_src` when not NULL) and relays. Failures finish the connection
 * with a reset (flag UF). */
struct upstream_tuning;
struct upstream_source;
void conn_forward(struct conn *c, int netns_fd, const struct meshd_addr *dst,
                  const struct upstream_source *bind_src, const struct upstream_tuning *tuning);

/* Told how an attempt ended: err 0 once connected (the relay starts when
 * this returns; the result is ignored), or -errno while the connection is
 * still connecting with its app socket untouched. Then it returns true
 * when it took the connection on (forwarded it again: a retry), false to
 * let the failure finish it as conn_forward() would. -ECANCELED: the
 * table is being freed; release your own state and nothing else. */
typedef bool (*conn_attempt_fn)(void *ctx, struct conn *c, int err);
/* conn_forward(), with `done` told of the attempt's end. */
void conn_forward_attempt(struct conn *c, int netns_fd, const struct meshd_addr *dst,
                          const struct upstream_source *bind_src,
                          const struct upstream_tuning *tuning, conn_attempt_fn done, void *ctx);
/* Told how a conn_connect() ended: the connected socket, now the
 * caller's (the record is marked open), or -errno (the record untouched:
 * flag and end it as the caller's protocol says). */
typedef void (*conn_connected_fn)(void *ctx, struct conn *c, int fd_or_err);
/* The same upstream connect as conn_forward()'s, for a carrier that moves
 * the bytes itself (the HBONE server's stream): 0 and `done` told once,
 * or -errno at once with nothing told. */
int conn_connect(struct conn *c, int netns_fd, const struct meshd_addr *dst,
                 const struct upstream_source *bind_src, const struct upstream_tuning *tuning,
                 conn_connected_fn done, void *ctx);
/* Stops a connect in progress, telling no one. */
void conn_cancel_connect(struct conn *c);
/* Ends a connect in progress as failed with `err` (a deadline passed:
 * flag UT). Returns -EALREADY when no connect is in progress. */
int conn_abort_connect(struct conn *c, int err);
/* The app socket while the table holds it (-1 once a carrier took it):
 * to watch it, e.g. for the first bytes, never to close it. */
int conn_app_fd(const struct conn *c);
/* Hands the app socket to another carrier (an HBONE stream): the caller
 * then reports the end with conn_end(). Returns the fd. */
int conn_take_fd(struct conn *c);
/* A connection whose app socket a carrier took goes on as raw bytes
 * between `down_fd` and `up_fd` (both taken over), after the carrier moved
 * bytes_sent/bytes_received itself (an HTTP upgrade: WebSocket). The relay
 * ends the record as for any relayed connection (UC, DC). */
void conn_relay_raw(struct conn *c, int down_fd, int up_fd, uint64_t bytes_sent,
                    uint64_t bytes_received);
/* conn_take_fd() for a carrier that reports the connection open later,
 * once it knows where it goes (the HTTP carrier, at its first request:
 * the record's labels are then the upstream's). */
int conn_detach_fd(struct conn *c);
/* The relay this connection gets once connected moves bytes with
 * splice(2) (relay_start_splice): both ends are plain local sockets. */
void conn_set_splice(struct conn *c);
/* The app socket back in the table, from a carrier that took it and gave
 * it back before any byte moved (HBONE's give_back), for a carrier that
 * relays from the table (the same-node fast path). */
void conn_return_fd(struct conn *c, int fd);
/* The connection now carries bytes (an HBONE server answering 200). */
void conn_mark_open(struct conn *c);
/* Ends a connection carried elsewhere, or one whose attempts all failed
 * (its app socket, still held here, is reset): err 0 is a clean close.
 * RESP_FLAG_NONE keeps the flag the record has. */
void conn_end(struct conn *c, int err, uint64_t bytes_sent, uint64_t bytes_received,
              enum resp_flag flag);
/* Ends a connection that will not be forwarded: reset, flagged, counted. */
void conn_refuse(struct conn *c, int err, enum resp_flag flag);
/* conn_refuse() of a connection aimed at meshd itself (one of its in-pod
 * ports, or a socket meshd opened; ztunnel's "self-call"): flag SELF,
 * counted apart. */
void conn_refuse_self_call(struct conn *c);

/* The destination side of a connection meshd carries between two pods of
 * this node (proxy/local_path.c): `twin`, begun with no socket, is marked
 * open with `c` and ends with it (its bytes, flag and error). Unlink it
 * with conn_untwin() to end either one apart. */
void conn_twin(struct conn *c, struct conn *twin);
/* The twin of `c`, unlinked; NULL if it has none. */
struct conn *conn_untwin(struct conn *c);
/* Re-decides the relayed connections that have a twin, by the twin's
 * record (the destination's view: its pod, peer identity, source): each
 * one `keep` rejects is reset, both records flagged DENY and finished.
 * Returns how many were closed. */
size_t conns_revalidate_twins(struct conns *t,
                              bool (*keep)(void *ctx, const struct conn_record *rec), void *ctx);

/* Re-decides the open connections of `direction` that this module relays
 * (not those carried by HBONE streams): each one `keep` rejects is reset,
 * flagged DENY and finished. Returns how many were closed. */
size_t conns_revalidate(struct conns *t, const char *direction,
                        bool (*keep)(void *ctx, const struct conn_record *rec), void *ctx);

/* Active connections first, then finished records, oldest first. */
void conns_foreach(const struct conns *t, void (*fn)(const struct conn_record *, void *),
                   void *arg);
void conns_get_stats(const struct conns *t, struct conns_stats *st);

struct meshd_conn_event;
/* Joins a kernel connection event to the record of the connection whose
 * socket it was (active or finished). Returns that record, or NULL. */
const struct conn_record *conns_kernel_event(struct conns *t, const struct meshd_conn_event *ev);

#endif
