/* Test-only tc program: drops every packet leaving an interface, so a
 * connect to the address behind it hangs in SYN retransmissions (an
 * endpoint that is down without saying so), for connectTimeout tests. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define TC_ACT_SHOT 2

SEC("tc")
int blackhole(struct __sk_buff *skb)
{
    return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
