/* Types shared by the BPF capture programs (bpf/capture.bpf.c) and the agent.
 *
 * Everything that crosses the kernel/user boundary is defined once here with
 * fixed-width types and a size assertion, so both sides agree on the layout. */
#ifndef MESHD_CAPTURE_H
#define MESHD_CAPTURE_H

#ifdef __BPF__
/* vmlinux.h already provides __u8..__u64 */
#else
#include <linux/types.h>
#endif

/* SO_MARK on every socket meshd opens inside a pod, as Istio marks its
 * proxy's sockets. Not trusted: a pod with CAP_NET_RAW or CAP_NET_ADMIN can
 * set it too. What exempts meshd's sockets from capture is their entry in
 * meshd_own (struct meshd_own); a marked socket without one is captured and
 * counted as MESHD_STAT_CONNECT_FORGED_MARK. */
#define MESHD_SOCK_MARK 0x539
/* Istio's in-pod ports. */
#define MESHD_PORT_OUTBOUND 15001
#define MESHD_PORT_INBOUND  15006
#define MESHD_PORT_HBONE    15008

/* The ports meshd listens on inside a pod: never a destination meshd
 * proxies to (a self-call, ztunnel's "illegal ports"). */
static inline int meshd_port_in_pod(__u16 port)
{
    return port == MESHD_PORT_OUTBOUND || port == MESHD_PORT_INBOUND || port == MESHD_PORT_HBONE;
}
/* The agent's own endpoints, in its (node) netns. */
#define MESHD_PORT_ADMIN   15000
#define MESHD_PORT_METRICS 15020
#define MESHD_PORT_HEALTH  15021

#define MESHD_AF_INET  2
#define MESHD_AF_INET6 10

/* Upper bounds of the maps; all are LRU or explicitly bounded. */
#define MESHD_MAX_ENROLLED 4096
#define MESHD_MAX_PENDING  65536
#define MESHD_MAX_ORIG_DST 65536

/* An address of either family. IPv4 is stored in addr[0..3]. */
struct meshd_addr {
    __u8 addr[16];
    __u16 port;  /* network byte order */
    __u8 family; /* MESHD_AF_INET or MESHD_AF_INET6 */
    __u8 pad;
};
_Static_assert(sizeof(struct meshd_addr) == 20, "meshd_addr layout");

/* Value of meshd_enrolled, keyed by netns cookie (__u64). */
struct meshd_pod_info {
    __u32 pod_id; /* the agent's handle for the pod, for logs and records */
    __u32 flags;  /* reserved */
};
_Static_assert(sizeof(struct meshd_pod_info) == 8, "meshd_pod_info layout");

/* Key of meshd_orig_dst: the captured connection as the agent sees it on its
 * accepted socket, i.e. the app socket's local address in the pod netns. */
struct meshd_flow_key {
    __u64 netns_cookie;
    struct meshd_addr src; /* the app socket's local address */
    __u32 pad;
};
_Static_assert(sizeof(struct meshd_flow_key) == 32, "meshd_flow_key layout");

/* Value of meshd_orig_dst: where the app meant to go. */
struct meshd_orig_dst {
    struct meshd_addr dst;
    __u32 pod_id;
    __u64 sock_cookie; /* the app socket, to join telemetry later */
};
_Static_assert(sizeof(struct meshd_orig_dst) == 32, "meshd_orig_dst layout");

/* Value of meshd_own, a socket-local storage (BPF_MAP_TYPE_SK_STORAGE)
 * that only the agent writes, from user space with the socket's fd as key,
 * before it connects the socket. Its presence is what makes a socket
 * meshd's own; the storage dies with the socket. */
struct meshd_own {
    __u32 agent_pid; /* who registered it, for debugging */
    __u32 flags;     /* reserved */
};
_Static_assert(sizeof(struct meshd_own) == 8, "meshd_own layout");

/* Counters in meshd_stats (per-CPU array), indexed by this enum. */
enum meshd_stat {
    MESHD_STAT_CONNECT_SEEN,     /* connect() from an enrolled netns */
    MESHD_STAT_CONNECT_CAPTURED, /* rewritten to the outbound listener */
    MESHD_STAT_CONNECT_SKIP_OWN, /* meshd's own socket (in meshd_own): let through */
    MESHD_STAT_CONNECT_SKIP_LOCAL,
    MESHD_STAT_ORIG_DST_STORED,
    MESHD_STAT_ORIG_DST_MISSING, /* sockops saw a captured socket with no pending entry */
    MESHD_STAT_MAP_FULL,
    MESHD_STAT_EVENTS,              /* connection events written to the ring */
    MESHD_STAT_EVENT_DROPS,         /* ring full: event lost, counted, never blocks */
    MESHD_STAT_CONNECT_FORGED_MARK, /* SO_MARK 0x539 but not meshd's: captured */
    MESHD_STAT__MAX,
};

/* Key of a pod's meshd_in_self map: a connection meshd opens to the pod's
 * app from the client's own address (transparent), as the pod's sk_lookup
 * program sees it. Addresses and ports in network order; IPv4 in the first
 * four bytes. meshd writes it between bind() and connect(); the program
 * passes that connection to the app and deletes the entry. */
struct meshd_self_key {
    __u8 family; /* MESHD_AF_INET or MESHD_AF_INET6 */
    __u8 pad;
    __u16 local_port;  /* the app's port */
    __u16 remote_port; /* meshd's socket's port */
    __u16 pad2;
    __u8 local[16];  /* the pod's address */
    __u8 remote[16]; /* the client's address, meshd's socket is bound to */
};
_Static_assert(sizeof(struct meshd_self_key) == 40, "meshd_self_key layout");

#endif
