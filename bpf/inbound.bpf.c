/* Inbound capture: the eBPF replacement for istio-cni's PREROUTING REDIRECT.
 *
 * One instance per enrolled pod, attached to the pod's network namespace
 * (sk_lookup). A TCP connection to a pod address from outside the pod,
 * other than HBONE (15008) and other than loopback traffic, is assigned to the agent's 15006
 * listener held in this instance's sockmap; the accepted socket's local address is the original
 * destination.
 *
 * Fail closed: when the listener is gone (agent dead) the lookup is refused
 * (SK_DROP: the client gets a reset), never handed to the app in plaintext. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "meshd/capture.h"

#define IPPROTO_TCP 6

/* Slot 0: the IPv4 listener, slot 1: the IPv6 listener. */
struct {
    __uint(type, BPF_MAP_TYPE_SOCKMAP);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} meshd_in_lsn SEC(".maps");

/* meshd's own connections to the app, from the client's address: they
 * look like any inbound connection (a pod address from a foreign one), so
 * meshd names each here before connecting, and they go to the app. LRU:
 * an entry whose SYN never came must not leak. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 8192);
    __type(key, struct meshd_self_key);
    __type(value, __u8);
} meshd_in_self SEC(".maps");

const volatile __u16 hbone_port = MESHD_PORT_HBONE;

static __always_inline bool v4_loopback(__u32 ip)
{
    return (bpf_ntohl(ip) >> 24) == 127;
}

static __always_inline bool v6_loopback(const __u32 *a)
{
    if (a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == bpf_htonl(1))
        return true;
    return a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0xffff) && v4_loopback(a[3]);
}

/* One of meshd's transparent connections to the app: once, then forgotten. */
static __always_inline bool is_meshd_own(struct bpf_sk_lookup *ctx)
{
    struct meshd_self_key k = {.local_port = bpf_htons((__u16)ctx->local_port),
                               .remote_port = ctx->remote_port};
    if (ctx->family == MESHD_AF_INET) {
        k.family = MESHD_AF_INET;
        __u32 l = ctx->local_ip4, r = ctx->remote_ip4;
        __builtin_memcpy(k.local, &l, 4);
        __builtin_memcpy(k.remote, &r, 4);
    } else {
        k.family = MESHD_AF_INET6;
        __u32 l[4] = {ctx->local_ip6[0], ctx->local_ip6[1], ctx->local_ip6[2], ctx->local_ip6[3]};
        __u32 r[4] = {ctx->remote_ip6[0], ctx->remote_ip6[1], ctx->remote_ip6[2],
                      ctx->remote_ip6[3]};
        __builtin_memcpy(k.local, l, 16);
        __builtin_memcpy(k.remote, r, 16);
    }
    if (!bpf_map_lookup_elem(&meshd_in_self, &k))
        return false;
    bpf_map_delete_elem(&meshd_in_self, &k);
    return true;
}

SEC("sk_lookup")
int meshd_inbound(struct bpf_sk_lookup *ctx)
{
    if (ctx->protocol != IPPROTO_TCP || ctx->local_port == hbone_port)
        return SK_PASS;
    __u32 slot;
    if (ctx->family == MESHD_AF_INET) {
        if (v4_loopback(ctx->local_ip4) || v4_loopback(ctx->remote_ip4))
            return SK_PASS;
        slot = 0;
    } else {
        __u32 l[4] = {ctx->local_ip6[0], ctx->local_ip6[1], ctx->local_ip6[2], ctx->local_ip6[3]};
        __u32 r[4] = {ctx->remote_ip6[0], ctx->remote_ip6[1], ctx->remote_ip6[2],
                      ctx->remote_ip6[3]};
        /* Loopback, or the pod talking to itself: meshd reaches the app
         * over IPv6 from the pod's own address (::1 replies can leak). */
        if (v6_loopback(l) || v6_loopback(r) ||
            (l[0] == r[0] && l[1] == r[1] && l[2] == r[2] && l[3] == r[3]))
            return SK_PASS;
        slot = 1;
    }
    if (is_meshd_own(ctx))
        return SK_PASS;
    struct bpf_sock *sk = bpf_map_lookup_elem(&meshd_in_lsn, &slot);
    if (!sk)
        return SK_DROP;
    long err = bpf_sk_assign(ctx, sk, 0);
    bpf_sk_release(sk);
    return err ? SK_DROP : SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
