/* Inbound capture: the eBPF replacement for istio-cni's PREROUTING REDIRECT.
 *
 * One instance per enrolled pod, attached to the pod's network namespace
 * (sk_lookup). A TCP connection to a pod address, other than HBONE (15008)
 * and other than loopback traffic, is assigned to the agent's 15006 listener
 * held in this instance's sockmap; the accepted socket's local address is
 * the original destination.
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
    struct bpf_sock *sk = bpf_map_lookup_elem(&meshd_in_lsn, &slot);
    if (!sk)
        return SK_DROP;
    long err = bpf_sk_assign(ctx, sk, 0);
    bpf_sk_release(sk);
    return err ? SK_DROP : SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
