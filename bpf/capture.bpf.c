/* Outbound capture: the eBPF replacement for istio-cni's nat OUTPUT REDIRECT.
 *
 * cgroup/connect4 and connect6, attached at the cgroup2 root, see every
 * connect() on the host. For a TCP socket in a network namespace this agent
 * enrolled, not the agent's own, and not bound for loopback, they remember
 * the original destination under the socket cookie and rewrite the
 * destination to the agent's listener on the pod's loopback (15001).
 *
 * "The agent's own" is decided by the socket-local storage meshd_own, which
 * the agent fills from user space (bpf_map_update_elem with the socket's fd)
 * before it connects the socket, never by SO_MARK: any process in a pod with
 * CAP_NET_RAW or CAP_NET_ADMIN (containerd's default set has NET_RAW) can
 * set the mark, but only a holder of the map's fd can add an entry. The
 * storage is freed with the socket, so there is nothing to clean up, and
 * bpf_sk_storage_get is available to cgroup/connect programs on 6.1
 * (sock_addr_func_proto). A marked socket without an entry is captured like
 * any other and counted (connect_forged_mark). Rejected alternatives: the
 * agent's cgroup (bpf_get_current_cgroup_id) needs the agent in a cgroup of
 * its own and cannot tell two agents on one host apart; a set of socket
 * cookies would need deleting on close and could leak or fill up.
 *
 * sockops TCP_CONNECT_CB runs once the kernel has chosen the source port,
 * before the SYN: it moves the entry to meshd_orig_dst keyed by what the
 * agent will see as the peer of its accepted socket. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/maps.h"

#define SOCK_STREAM 1
#define IPPROTO_TCP 6

/* Set by the agent through the skeleton before load. sock_mark only tells
 * a forged mark apart in the counters; it exempts nothing. */
const volatile __u32 sock_mark = MESHD_SOCK_MARK;
const volatile __u16 outbound_port = MESHD_PORT_OUTBOUND;

/* Returns the pod id when this socket should be captured, 0 otherwise. */
static __always_inline __u32 capture_pod(struct bpf_sock_addr *ctx)
{
    if (ctx->type != SOCK_STREAM || (ctx->protocol != IPPROTO_TCP && ctx->protocol != 0))
        return 0;
    __u64 netns = bpf_get_netns_cookie(ctx);
    struct meshd_pod_info *pod = bpf_map_lookup_elem(&meshd_enrolled, &netns);
    if (!pod)
        return 0;
    stat_inc(MESHD_STAT_CONNECT_SEEN);
    struct bpf_sock *sk = ctx->sk;
    if (!sk)
        return 0;
    if (bpf_sk_storage_get(&meshd_own, sk, 0, 0)) {
        stat_inc(MESHD_STAT_CONNECT_SKIP_OWN);
        return 0;
    }
    /* The mark alone proves nothing: captured, and counted as an attempt. */
    if (sk->mark == sock_mark)
        stat_inc(MESHD_STAT_CONNECT_FORGED_MARK);
    return pod->pod_id;
}

static __always_inline int remember(struct bpf_sock_addr *ctx, struct meshd_orig_dst *od)
{
    __u64 cookie = bpf_get_socket_cookie(ctx);
    if (bpf_map_update_elem(&meshd_pending, &cookie, od, BPF_ANY) != 0) {
        stat_inc(MESHD_STAT_MAP_FULL);
        return -1;
    }
    stat_inc(MESHD_STAT_CONNECT_CAPTURED);
    return 0;
}

SEC("cgroup/connect4")
int meshd_connect4(struct bpf_sock_addr *ctx)
{
    __u32 pod_id = capture_pod(ctx);
    if (!pod_id)
        return 1;
    __u32 dst = ctx->user_ip4;
    /* 127.0.0.0/8 and 0.0.0.0 stay in the pod: Istio does not capture them. */
    if ((bpf_ntohl(dst) >> 24) == 127 || dst == 0) {
        stat_inc(MESHD_STAT_CONNECT_SKIP_LOCAL);
        return 1;
    }
    struct meshd_orig_dst od = {.pod_id = pod_id};
    od.dst.family = MESHD_AF_INET;
    od.dst.port = (__u16)ctx->user_port;
    __builtin_memcpy(od.dst.addr, &dst, 4);
    od.sock_cookie = bpf_get_socket_cookie(ctx);
    /* Fail closed: if the original destination cannot be stored the
     * connection is still sent to the agent, which refuses it. */
    remember(ctx, &od);
    ctx->user_ip4 = bpf_htonl(0x7f000001);
    ctx->user_port = bpf_htons(outbound_port);
    return 1;
}

static __always_inline bool ip6_is_local(const __u32 a[4])
{
    /* :: and ::1 */
    if (a[0] == 0 && a[1] == 0 && a[2] == 0 && (a[3] == 0 || a[3] == bpf_htonl(1)))
        return true;
    /* ::ffff:127.0.0.0/104 and ::ffff:0.0.0.0 */
    if (a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0xffff))
        return (bpf_ntohl(a[3]) >> 24) == 127 || a[3] == 0;
    return false;
}

SEC("cgroup/connect6")
int meshd_connect6(struct bpf_sock_addr *ctx)
{
    __u32 pod_id = capture_pod(ctx);
    if (!pod_id)
        return 1;
    __u32 dst[4] = {ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3]};
    if (ip6_is_local(dst)) {
        stat_inc(MESHD_STAT_CONNECT_SKIP_LOCAL);
        return 1;
    }
    struct meshd_orig_dst od = {.pod_id = pod_id};
    od.dst.family = MESHD_AF_INET6;
    od.dst.port = (__u16)ctx->user_port;
    __builtin_memcpy(od.dst.addr, dst, 16);
    od.sock_cookie = bpf_get_socket_cookie(ctx);
    remember(ctx, &od);
    ctx->user_ip6[0] = 0;
    ctx->user_ip6[1] = 0;
    ctx->user_ip6[2] = 0;
    ctx->user_ip6[3] = bpf_htonl(1);
    ctx->user_port = bpf_htons(outbound_port);
    return 1;
}

static __always_inline bool remote_is_loopback(struct bpf_sock_ops *ctx)
{
    if (ctx->family == MESHD_AF_INET)
        return (bpf_ntohl(ctx->remote_ip4) >> 24) == 127;
    return ctx->remote_ip6[0] == 0 && ctx->remote_ip6[1] == 0 &&
           ((ctx->remote_ip6[2] == 0 && ctx->remote_ip6[3] == bpf_htonl(1)) ||
            (ctx->remote_ip6[2] == bpf_htonl(0xffff) &&
             (bpf_ntohl(ctx->remote_ip6[3]) >> 24) == 127));
}

static __always_inline void sockops_addr(struct meshd_addr *a, struct bpf_sock_ops *ctx, bool local)
{
    a->family = ctx->family == MESHD_AF_INET ? MESHD_AF_INET : MESHD_AF_INET6;
    if (ctx->family == MESHD_AF_INET) {
        __u32 ip = local ? ctx->local_ip4 : ctx->remote_ip4;
        __builtin_memcpy(a->addr, &ip, 4);
    } else {
        __u32 ip6[4];
        if (local) {
            ip6[0] = ctx->local_ip6[0], ip6[1] = ctx->local_ip6[1];
            ip6[2] = ctx->local_ip6[2], ip6[3] = ctx->local_ip6[3];
        } else {
            ip6[0] = ctx->remote_ip6[0], ip6[1] = ctx->remote_ip6[1];
            ip6[2] = ctx->remote_ip6[2], ip6[3] = ctx->remote_ip6[3];
        }
        __builtin_memcpy(a->addr, ip6, 16);
    }
    /* local_port is host order; remote_port is the network-order port in
     * the upper 16 bits (sock_ops' context layout). */
    a->port = local ? bpf_htons((__u16)ctx->local_port) : (__u16)(ctx->remote_port >> 16);
}

/* An enrolled pod's connection is established: remember when, and ask for
 * the state-change callback that reports it at close. */
static __always_inline void telemetry_start(struct bpf_sock_ops *ctx, bool active)
{
    __u64 netns = bpf_get_netns_cookie(ctx);
    struct meshd_pod_info *pod = bpf_map_lookup_elem(&meshd_enrolled, &netns);
    struct bpf_sock *sk = ctx->sk;
    if (!pod || !sk || remote_is_loopback(ctx))
        return;
    struct meshd_sk_start *st =
        bpf_sk_storage_get(&meshd_sk_start, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
    if (!st)
        return;
    st->start_ns = bpf_ktime_get_ns();
    st->pod_id = pod->pod_id;
    st->active = active;
    bpf_sock_ops_cb_flags_set(ctx, ctx->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

/* The connection is closing: one event, or a counted drop if the ring is
 * full. Never blocks, never retries. */
static __always_inline void telemetry_end(struct bpf_sock_ops *ctx)
{
    struct bpf_sock *sk = ctx->sk;
    if (!sk)
        return;
    struct meshd_sk_start *st = bpf_sk_storage_get(&meshd_sk_start, sk, 0, 0);
    if (!st || st->start_ns == 0)
        return;
    struct meshd_conn_event *ev = bpf_ringbuf_reserve(&meshd_events, sizeof(*ev), 0);
    if (!ev) {
        stat_inc(MESHD_STAT_EVENT_DROPS);
        return;
    }
    __builtin_memset(ev, 0, sizeof(*ev));
    ev->sock_cookie = bpf_get_socket_cookie(ctx);
    ev->netns_cookie = bpf_get_netns_cookie(ctx);
    ev->start_ns = st->start_ns;
    ev->end_ns = bpf_ktime_get_ns();
    ev->bytes_acked = ctx->bytes_acked;
    ev->bytes_received = ctx->bytes_received;
    ev->srtt_us = ctx->srtt_us >> 3; /* the kernel keeps srtt << 3 */
    ev->total_retrans = ctx->total_retrans;
    ev->pod_id = st->pod_id;
    ev->active = st->active;
    sockops_addr(&ev->local, ctx, true);
    sockops_addr(&ev->remote, ctx, false);
    st->start_ns = 0; /* one event per connection */
    bpf_ringbuf_submit(ev, 0);
    stat_inc(MESHD_STAT_EVENTS);
}

SEC("sockops")
int meshd_sockops(struct bpf_sock_ops *ctx)
{
    switch (ctx->op) {
    case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
        telemetry_start(ctx, true);
        return 1;
    case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
        telemetry_start(ctx, false);
        return 1;
    case BPF_SOCK_OPS_STATE_CB:
        if (ctx->args[1] == BPF_TCP_CLOSE)
            telemetry_end(ctx);
        return 1;
    case BPF_SOCK_OPS_TCP_CONNECT_CB:
        break;
    default:
        return 1;
    }
    __u64 cookie = bpf_get_socket_cookie(ctx);
    struct meshd_orig_dst *od = bpf_map_lookup_elem(&meshd_pending, &cookie);
    if (!od)
        return 1;
    struct meshd_flow_key key = {.netns_cookie = bpf_get_netns_cookie(ctx)};
    if (ctx->family == MESHD_AF_INET) {
        __u32 ip = ctx->local_ip4;
        key.src.family = MESHD_AF_INET;
        __builtin_memcpy(key.src.addr, &ip, 4);
    } else {
        __u32 ip6[4] = {ctx->local_ip6[0], ctx->local_ip6[1], ctx->local_ip6[2], ctx->local_ip6[3]};
        key.src.family = MESHD_AF_INET6;
        __builtin_memcpy(key.src.addr, ip6, 16);
    }
    key.src.port = bpf_htons((__u16)ctx->local_port);
    struct meshd_orig_dst val = *od;
    if (bpf_map_update_elem(&meshd_orig_dst, &key, &val, BPF_ANY) == 0)
        stat_inc(MESHD_STAT_ORIG_DST_STORED);
    else
        stat_inc(MESHD_STAT_MAP_FULL);
    bpf_map_delete_elem(&meshd_pending, &cookie);
    return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
