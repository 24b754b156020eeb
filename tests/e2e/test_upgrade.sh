#!/usr/bin/env bash
# Upgrades and flag changes across the pinned maps. SIGTERM leaves the pins
# for the next agent, which may be a newer meshd whose maps differ (a
# counter added, a field grown) or run with another --ring-bytes. libbpf
# refuses a pinned map whose layout differs, so without care every node
# would fail to start after a rollout. meshd replaces counters and
# in-flight state, carries the enrolled pods over into the new enrollment
# map before the links switch programs, and refuses to start (pins left,
# pods failing closed) only when the old enrollment map cannot be read.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 1
http_server "2,1" 8080 >/dev/null
meshd_start 1
enroll 1 "1,1"
pin_dir="/sys/fs/bpf/meshd/${MESHD_NODE[1]}"
captured() { bpf_stat 1 connect_captured; }
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "captured before the upgrade"
cookie=$(bpftool map dump pinned "$pin_dir/meshd_enrolled" -j | jq -r '.[0].formatted.key // .[0].key')

# swap_pin NAME BPFTOOL-CREATE-ARGS...: an older meshd's map under our pin.
swap_pin() {
    local name=$1
    shift
    rm -f "$pin_dir/$name"
    bpftool map create "$pin_dir/$name" "$@" name "$name"
}

t_begin "an older meshd's maps differ: replaced, the pods carried over"
topo_kill "${MESHD_PID[1]}" TERM
swap_pin meshd_stats type percpu_array key 4 value 8 entries 3
# The enrollment map of a meshd whose pod info was 16 bytes, holding the pod.
swap_pin meshd_enrolled type hash key 8 value 16 entries 4096
key=$(printf '%016x' "$cookie" | sed 's/../& /g' | awk '{for (i = NF; i > 0; i--) printf "0x%s ", $i}')
# shellcheck disable=SC2086 # one word per byte
bpftool map update pinned "$pin_dir/meshd_enrolled" key $key value 0x01 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
t_expect_ok "the new agent starts" meshd_start 1
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "meshd_stats (type 6, key 4, value 8, 3 entries) differs from this meshd's; replaced" "the old counters replaced"
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "its pods are carried over" "the old enrollment map read"
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "1 enrolled pod carried over" "the pod carried over before the switch"
t_expect_eq "$(bpftool map show pinned "$pin_dir/meshd_enrolled" -j | jq .bytes_value)" 8 "a map of today's layout is pinned"
t_expect_eq "$(meshctl_at 1 -o json pods | jq length)" 1 "the pod is served"
before=$(captured)
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "its traffic still works"
t_expect_eq "$(($(captured) - before))" 1 "and is still captured"

t_begin "another --ring-bytes: the ring is replaced, not a failed start"
topo_kill "${MESHD_PID[1]}" TERM
t_expect_ok "starts with a smaller ring" meshd_start 1 --ring-bytes 8192
t_expect_eq "$(bpftool map show pinned "$pin_dir/meshd_events" -j | jq .max_entries)" 8192 "the ring has the new size"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "traffic works"

t_begin "an enrollment map meshd cannot read: no start, pins and pods left as they were"
topo_kill "${MESHD_PID[1]}" TERM
swap_pin meshd_enrolled type hash key 4 value 8 entries 16
t_expect_fail "the agent refuses to start" meshd_start 1 --ring-bytes 8192
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "is no enrollment map meshd can read; not starting" "and says why"
t_expect_eq "$(ls "$pin_dir" | grep -c '^link_')" 3 "the links are still pinned"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 000 "the pod's connects are refused, not sent direct"
# Clean up what the harness cannot (its uninstall wants a readable map).
rm -f "$pin_dir/meshd_enrolled"

meshd_check_logs
t_summary
