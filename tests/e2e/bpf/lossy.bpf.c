/* Test-only tc program: drops about 5% of the packets leaving an
 * interface, so the e2e tests can show retransmits on real connections.
 * (This kernel has no sch_netem; clsact + BPF is what it has.) */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define TC_ACT_OK   0
#define TC_ACT_SHOT 2

SEC("tc")
int lossy(struct __sk_buff *skb)
{
    return bpf_get_prandom_u32() % 100 < 5 ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
