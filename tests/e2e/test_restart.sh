#!/usr/bin/env bash
# Lifecycle: SIGKILL leaves enrolled pods failing closed (no silent bypass);
# a restarted meshd takes the pinned programs over and re-enrolls its pods;
# SIGTERM detaches everything and leaves nothing pinned.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 1
meshd_start 1
http_server "2,1" 8080 >/dev/null
http_server "1,1" 8080 >/dev/null
server_log="$E2E_TMP/http-2-1-8080.log"
meshctl_at 1 enroll default/pod-1-1 --netns "/run/netns/${POD_NS[1,1]}" --sa sa-1-1 \
    --ip "${POD_IP4[1,1]}" --ip "${POD_IP6[1,1]}" >/dev/null
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "captured curl before the kill"

t_begin "SIGKILL: enrolled pod fails closed"
pin_dir="/sys/fs/bpf/meshd/${MESHD_NODE[1]}"
topo_kill "${MESHD_PID[1]}" KILL
requests_before=$(grep -c '"GET / ' "$server_log" || true)
code=$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")
t_expect_eq "$code" 000 "connect refused while meshd is down"
t_expect_eq "$(grep -c '"GET / ' "$server_log" || true)" "$requests_before" "server saw no request (no bypass)"
code=$(http_get "1,1" "http://[${POD_IP6[2,1]}]:8080/")
t_expect_eq "$code" 000 "IPv6 connect refused too"
t_expect_eq "$(ls "$pin_dir" | grep -v '^inbound_' | sort | tr '\n' ' ')" \
    "link_connect4 link_connect6 link_sockops meshd_enrolled meshd_events meshd_orig_dst meshd_own meshd_pending meshd_stats " \
    "programs and maps stay pinned"
t_expect_eq "$(ls "$pin_dir" | grep -c '^inbound_')" 1 "the pod's inbound sk_lookup link stays pinned"
code=$(http_get "2,1" "http://${POD_IP4[1,1]}:8080/")
t_expect_eq "$code" 000 "inbound to the enrolled pod refused too (no plaintext bypass)"

t_begin "restart: pins taken over, pod re-enrolled"
link_id=$(bpftool link show pinned "$pin_dir/link_connect4" -j | jq .id)
prog_before=$(bpftool link show pinned "$pin_dir/link_connect4" -j | jq .prog_id)
meshd_start 1
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "programs taken over" "links updated in place"
t_expect_eq "$(meshctl_at 1 -o json pods | jq -r '.[0].name')" "pod-1-1" "pod restored from state"
t_expect_eq "$(meshctl_at 1 -o json pods | jq -r '.[0].sa + " " + (.[0].ips | join(" "))')" \
    "sa-1-1 ${POD_IP4[1,1]} ${POD_IP6[1,1]}" "with its service account and IPs"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "captured curl after restart"
t_expect_eq "$(connections_json 1 | jq -r '.[0].original_dst')" "${POD_IP4[2,1]}:8080" "recorded by the new agent"
t_expect_eq "$(bpftool link show pinned "$pin_dir/link_connect4" -j | jq .id)" "$link_id" \
    "the same kernel link, now running the new program"
prog_after=$(bpftool link show pinned "$pin_dir/link_connect4" -j | jq .prog_id)
t_expect_eq "$([ "$prog_after" != "$prog_before" ] && echo swapped)" swapped \
    "the link now runs the restarted agent's program"
links_after=$(find "$pin_dir" -name 'link_*' | wc -l)
t_expect_eq "$links_after" 3 "still exactly three pinned links"

t_begin "restart drops pods whose netns is gone"
topo_kill "${MESHD_PID[1]}" KILL
ip netns add "m${TOPO_RUN}gone"
ip -n "m${TOPO_RUN}gone" link set lo up
meshd_start 1
meshctl_at 1 enroll default/gone --netns "/run/netns/m${TOPO_RUN}gone" >/dev/null
topo_kill "${MESHD_PID[1]}" KILL
ip netns del "m${TOPO_RUN}gone"
meshd_start 1
t_expect_eq "$(meshctl_at 1 -o json pods | jq -r '[.[].name] | sort | join(",")')" "pod-1-1" "only the live pod is back"
t_expect_eq "$(bpftool map dump pinned "$pin_dir/meshd_enrolled" | jq length)" 1 "stale BPF enrollment pruned"

t_begin "SIGTERM: everything detached, traffic direct"
link_ids=$(for l in connect4 connect6 sockops; do bpftool link show pinned "$pin_dir/link_$l" -j | jq .id; done)
topo_kill "${MESHD_PID[1]}" TERM
t_expect_eq "$(test -e "$pin_dir" && echo present || echo gone)" gone "pin directory removed"
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "BPF programs detached" "clean shutdown logged"
left=0
for id in $link_ids; do
    bpftool link show id "$id" >/dev/null 2>&1 && left=$((left + 1))
done
t_expect_eq "$left" 0 "no meshd link of this instance remains"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "direct curl after shutdown"
t_expect_eq "$(test -e "$E2E_TMP/state-1/pods.json" && echo kept || echo removed)" removed "state forgotten"

meshd_check_logs
t_summary
