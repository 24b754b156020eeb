/* Outbound capture: the eBPF replacement for istio-cni's nat OUTPUT REDIRECT.
 *
 * cgroup/connect4 and connect6, attached at the cgroup2 root, see every
 * connect() on the host. For a TCP socket in a network namespace this agent
 * enrolled, not marked as the agent's own, and not bound for loopback, they
 * remember the original destination under the socket cookie and rewrite the
 * destination to the agent's listener on the pod's loopback (15001).
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

/* Set by the agent through the skeleton before load. */
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
    if (sk->mark == sock_mark) {
        stat_inc(MESHD_STAT_CONNECT_SKIP_MARK);
        return 0;
    }
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

SEC("sockops")
int meshd_sockops(struct bpf_sock_ops *ctx)
{
    if (ctx->op != BPF_SOCK_OPS_TCP_CONNECT_CB)
        return 1;
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
