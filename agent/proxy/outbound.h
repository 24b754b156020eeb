/* Outbound proxy: accepts the connections the BPF capture redirected to the
 * pod's 127.0.0.1:15001 / [::1]:15001, recovers where the app meant to go,
 * and forwards the bytes from a socket in the same pod netns.
 *
 * Today the upstream is plain TCP to the original destination; routing and
 * HBONE/mTLS slot in between accept and connect. */
#ifndef MESHD_PROXY_OUTBOUND_H
#define MESHD_PROXY_OUTBOUND_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/records.h"

struct loop;
struct capture;
struct pod;
struct outbound;

struct outbound_opts {
    uint16_t port;    /* in-pod listener port (15001) */
    uint32_t mark;    /* SO_MARK on upstream sockets */
    size_t max_conns; /* active connections; beyond, new ones are refused */
    size_t records;   /* finished records kept */
};

struct outbound_stats {
    uint64_t accepted, forwarded, failed, no_orig_dst, overflow, active;
};

/* `loop` and `capture` are borrowed. */
int outbound_new(struct loop *loop, struct capture *capture, const struct outbound_opts *opts,
                 struct outbound **out);
/* Resets every active connection and frees. Accepts NULL. */
void outbound_free(struct outbound *ob);

/* pod_hooks for the enrollment registry. */
int outbound_attach_pod(void *ob, struct pod *pod);
void outbound_detach_pod(void *ob, struct pod *pod);

/* Calls fn for every active connection, then for every finished record. */
void outbound_foreach(const struct outbound *ob, void (*fn)(const struct conn_record *, void *),
                      void *arg);
void outbound_get_stats(const struct outbound *ob, struct outbound_stats *st);

#endif
