/* Map definitions of the capture programs, written once.
 *
 * All maps are pinned by name under the instance's bpffs directory (the
 * agent sets pin_root_path per instance), so a restarted agent reuses them
 * and two agents on one host never share state. */
#ifndef MESHD_BPF_MAPS_H
#define MESHD_BPF_MAPS_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "meshd/capture.h"
#include "meshd/telemetry.h"

/* netns cookie -> pod: which network namespaces this agent captures. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MESHD_MAX_ENROLLED);
    __type(key, __u64);
    __type(value, struct meshd_pod_info);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} meshd_enrolled SEC(".maps");

/* socket cookie -> original destination, between connect() and the moment
 * the kernel picks the source port (sockops TCP_CONNECT_CB). LRU: a connect
 * that fails before that point must not leak an entry. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, MESHD_MAX_PENDING);
    __type(key, __u64);
    __type(value, struct meshd_orig_dst);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} meshd_pending SEC(".maps");

/* (netns, app local address) -> original destination, read and deleted by
 * the agent when it accepts the captured connection. LRU bounds it even if
 * the agent is gone. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, MESHD_MAX_ORIG_DST);
    __type(key, struct meshd_flow_key);
    __type(value, struct meshd_orig_dst);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} meshd_orig_dst SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, MESHD_STAT__MAX);
    __type(key, __u32);
    __type(value, __u64);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} meshd_stats SEC(".maps");

/* Connection events for the agent (sizing: the agent sets max_entries). */
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, MESHD_RING_BYTES);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} meshd_events SEC(".maps");

/* Per-socket start time, freed with the socket. */
struct {
    __uint(type, BPF_MAP_TYPE_SK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct meshd_sk_start);
} meshd_sk_start SEC(".maps");

/* meshd's own sockets: the agent adds an entry from user space (key: the
 * socket's fd) before it connects one; connect4/6 let a socket through only
 * when it has one. A pod cannot forge it: writing needs this map's fd. Not
 * BPF_F_CLONE, so sockets accepted from a registered one never inherit it.
 * Pinned like the others, so the programs a restarted agent swaps in read
 * the same map that agent writes. */
struct {
    __uint(type, BPF_MAP_TYPE_SK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct meshd_own);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} meshd_own SEC(".maps");

static __always_inline void stat_inc(enum meshd_stat idx)
{
    __u32 key = idx;
    __u64 *v = bpf_map_lookup_elem(&meshd_stats, &key);
    if (v)
        (*v)++;
}

#endif
