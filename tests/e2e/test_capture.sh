#!/usr/bin/env bash
# Outbound capture, end to end on the running kernel: an enrolled pod's
# connects (IPv4 and IPv6) go through its node's meshd to the original
# destination on another node; non-enrolled pods, meshd's own upstream
# sockets and unenrolled pods are not captured; two agents on one host keep
# to their own pods.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 2
meshd_start 1
meshd_start 2
http_server "2,1" 8080 >/dev/null
http_server "1,2" 8080 >/dev/null

t_begin "enrolled pod, IPv4, cross-node"
enroll 1 "1,1"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "curl through meshd"
rec=$(connections_json 1 | jq -c '.[0]')
t_expect_eq "$(jq -r .original_dst <<<"$rec")" "${POD_IP4[2,1]}:8080" "original destination recorded"
t_expect_eq "$(jq -r .pod <<<"$rec")" "default/pod-1-1" "record names the pod"
t_expect_eq "$(jq -r .state <<<"$rec")" "closed" "connection closed cleanly"
t_expect_eq "$(jq -r '.bytes_received > 0' <<<"$rec")" "true" "response bytes relayed"
t_expect_eq "$(bpf_stat 1 connect_captured)" 1 "BPF counted one capture"

t_begin "the kernel reports the upstream connection's RTT (sockops ring buffer)"
rtt=null
for _ in $(seq 1 50); do
    rtt=$(connections_json 1 | jq -r '.[0].rtt_us // "null"')
    [ "$rtt" != null ] && break
    sleep 0.1
done
t_expect_eq "$([ "$rtt" != null ] && [ "$rtt" -gt 0 ] && echo measured)" measured "rtt_us joined to the record ($rtt us)"
t_expect_eq "$(connections_json 1 | jq -r '.[0].retransmits')" 0 "no retransmits on a clean path"
t_expect_eq "$(meshctl_at 1 status | jq '.telemetry.matched >= 1 and .bpf.conn_event_drops == 0')" true "event matched, none dropped"

t_begin "enrolled pod, IPv6, cross-node"
t_expect_eq "$(http_get "1,1" "http://[${POD_IP6[2,1]}]:8080/")" 200 "curl over IPv6"
rec=$(connections_json 1 | jq -c '.[-1]')
t_expect_eq "$(jq -r .original_dst <<<"$rec")" "[${POD_IP6[2,1]}]:8080" "IPv6 original destination"
t_expect_eq "$(jq -r .src <<<"$rec" | cut -d']' -f1)" "[::1" "accepted on the IPv6 loopback listener"

t_begin "meshd's own upstream sockets are not captured (no loop)"
t_expect_eq "$(connections_json 1 | jq length)" 2 "exactly one record per app connection"
t_expect_eq "$(bpf_stat 1 connect_skip_own)" 2 "both upstream connects skipped as meshd's own (meshd_own)"

t_begin "loopback inside an enrolled pod is not captured"
topo_spawn "${POD_NS[1,1]}" "$E2E_TMP/lo.log" /usr/bin/python3 -m http.server --bind 127.0.0.1 9090 >/dev/null
topo_wait_tcp "${POD_NS[1,1]}" 127.0.0.1 9090 10
t_expect_eq "$(http_get "1,1" "http://127.0.0.1:9090/")" 200 "localhost works"
t_expect_eq "$(connections_json 1 | jq length)" 2 "no record for localhost"

t_begin "a pod that is not enrolled is not captured"
t_expect_eq "$(http_get "1,2" "http://${POD_IP4[2,1]}:8080/")" 200 "direct curl"
t_expect_eq "$(connections_json 1 | jq length)" 2 "no record on node 1"
t_expect_eq "$(connections_json 2 | jq length)" 0 "no record on node 2"

t_begin "two agents on one host keep to their own pods"
enroll 2 "2,2"
t_expect_eq "$(http_get "2,2" "http://${POD_IP4[1,2]}:8080/")" 200 "curl from node 2's pod"
t_expect_eq "$(connections_json 2 | jq -r '.[0].original_dst')" "${POD_IP4[1,2]}:8080" "recorded by node 2"
t_expect_eq "$(connections_json 1 | jq length)" 2 "not seen by node 1"
t_expect_eq "$(bpf_stat 1 connect_captured)" 2 "node 1's programs ignored node 2's pod"

t_begin "bpftool shows named programs and BTF-typed maps"
pins="/sys/fs/bpf/meshd/${MESHD_NODE[1]}"
for p in meshd_connect4 meshd_connect6 meshd_sockops; do
    t_expect_eq "$(bpftool prog show name "$p" -j | jq -s 'flatten | length >= 1')" true "program $p loaded"
done
t_expect_eq "$(bpftool link show pinned "$pins/link_connect4" -j | jq -r .attach_type)" cgroup_inet4_connect "connect4 link"
t_expect_eq "$(bpftool link show pinned "$pins/link_sockops" -j | jq -r .attach_type)" cgroup_sock_ops "sockops link"
dump=$(bpftool map dump pinned "$pins/meshd_enrolled" -j)
t_expect_eq "$(jq -r '.[0].formatted.value.pod_id // .[0].value.pod_id' <<<"$dump")" 1 "enrollment map dumps BTF field names"
t_expect_eq "$(jq -r '.[0].formatted.key // .[0].key' <<<"$dump")" \
    "$(meshctl_at 1 -o json pods | jq -r '.[0].netns_cookie')" "keyed by the pod's netns cookie"

t_begin "istioctl-style views"
t_expect_contains "$(meshctl_at 1 proxy-status)" "${MESHD_NODE[1]}" "proxy-status names the node"
t_expect_contains "$(meshctl_at 1 proxy-config connections)" "${POD_IP4[2,1]}:8080" "proxy-config connections"
t_expect_contains "$(meshctl_at 1 proxy-config pods)" "default/pod-1-1" "proxy-config pods"
t_expect_contains "$(meshctl_at 1 bpf status)" "connect_captured" "bpf status"
out=$(meshctl_at 1 proxy-config clusters 2>&1 || true)
t_expect_contains "$out" "unknown section" "an unknown section is an error"

t_begin "enrolling twice, bad names and bad paths are refused"
out=$(meshctl_at 1 enroll default/pod-1-1 --netns "/run/netns/${POD_NS[1,1]}" 2>&1 || true)
t_expect_contains "$out" "already enrolled" "duplicate enrollment"
out=$(meshctl_at 1 enroll default/other --netns "/run/netns/${POD_NS[1,1]}" 2>&1 || true)
t_expect_contains "$out" "already enrolled as default/pod-1-1" "same netns under another name"
out=$(meshctl_at 1 enroll Bad/Name --netns "/run/netns/${POD_NS[1,2]}" 2>&1 || true)
t_expect_contains "$out" "invalid pod reference" "invalid Kubernetes name"
out=$(meshctl_at 1 enroll default/x --netns /etc/passwd 2>&1 || true)
t_expect_contains "$out" "is not a network namespace" "a file that is not a netns"
out=$(meshctl_at 1 enroll default/x --netns /nonexistent 2>&1 || true)
t_expect_contains "$out" "is not a network namespace" "a missing path"
out=$(meshctl_at 1 enroll default/y --netns "/run/netns/${POD_NS[1,2]}" --sa Bad_SA 2>&1 || true)
t_expect_contains "$out" "invalid service account" "a service account that is not a Kubernetes name"
out=$(meshctl_at 1 enroll default/y --netns "/run/netns/${POD_NS[1,2]}" --ip 10.0.0.300 2>&1 || true)
t_expect_contains "$out" "is not an IP address" "a malformed pod IP"

t_begin "after unenroll, traffic is direct again"
unenroll 1 "1,1"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "curl after unenroll"
t_expect_eq "$(connections_json 1 | jq length)" 2 "no new record"
t_expect_eq "$(meshctl_at 1 -o json pods | jq length)" 0 "no pods enrolled"

meshd_check_logs
t_summary
