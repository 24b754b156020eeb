/* Per-connection telemetry from the kernel: one event per TCP connection of
 * an enrolled pod's netns (not loopback), written by the sockops program to
 * the meshd_events ring buffer when the socket reaches TCP_CLOSE. Shared by
 * bpf/capture.bpf.c and agent/telemetry/. */
#ifndef MESHD_TELEMETRY_H
#define MESHD_TELEMETRY_H

#include "meshd/capture.h"

/* Default ring size (bytes, a power of two of pages): 4096 events. */
#define MESHD_RING_BYTES (512u * 1024)

struct meshd_conn_event {
    __u64 sock_cookie;
    __u64 netns_cookie;
    __u64 start_ns; /* established, CLOCK_MONOTONIC */
    __u64 end_ns;   /* closed */
    __u64 bytes_acked;
    __u64 bytes_received;
    struct meshd_addr local;
    struct meshd_addr remote;
    __u32 srtt_us; /* smoothed RTT, microseconds */
    __u32 total_retrans;
    __u32 pod_id;
    __u8 active; /* 1: we connected, 0: we accepted */
    __u8 pad[3];
};
_Static_assert(sizeof(struct meshd_conn_event) == 104, "meshd_conn_event layout");

/* Socket-local storage: when the connection was established. */
struct meshd_sk_start {
    __u64 start_ns;
    __u32 pod_id;
    __u8 active;
    __u8 pad[3];
};
_Static_assert(sizeof(struct meshd_sk_start) == 16, "meshd_sk_start layout");

#endif
