#!/usr/bin/env bash
# Access logs: with --access-log each connection leaves one line at close
# on meshd's stdout: JSON objects that parse (--log-format json) or
# key=value text; failures carry their response flags and error. Also
# proves a non-default --ring-bytes is taken.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 1
http_server "2,1" 8080 >/dev/null
meshd_start 1 --access-log --log-format json --ring-bytes 1048576
meshd_start 2 --access-log
enroll 1 "1,1"
enroll 2 "2,1"

t_begin "JSON lines (node 1, outbound)"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "a connection"
in_pod "1,1" curl -s -o /dev/null -m 5 "http://${POD_IP4[2,1]}:9999/" || true
sleep 0.3
lines=$(grep '^{' "${MESHD_LOG[1]}" || true)
t_expect_eq "$(jq -s length <<<"$lines")" 2 "one line per connection, each valid JSON"
ok=$(jq -s -c '.[0]' <<<"$lines")
t_expect_eq "$(jq -r '."dst.addr"' <<<"$ok")" "${POD_IP4[2,1]}:8080" "destination"
t_expect_eq "$(jq -r .direction <<<"$ok")" outbound "direction"
t_expect_eq "$(jq -r .pod <<<"$ok")" default/pod-1-1 "pod"
t_expect_eq "$(jq -r '.bytes_recv > 0 and .bytes_sent > 0' <<<"$ok")" true "bytes each way"
failed=$(jq -s -c '.[1]' <<<"$lines")
# Node 2 accepts on 15006 and then resets: node 1 sees a failed connect (UF)
# or an upstream reset (UC), depending on which arrives first.
t_expect_eq "$(jq -r '.response_flags | test("^U[FC]$")' <<<"$failed")" true "the failure's response flag ($(jq -r .response_flags <<<"$failed"))"
t_expect_eq "$(jq -r '.error != null' <<<"$failed")" true "and its error"
t_expect_eq "$(bpftool map show pinned "/sys/fs/bpf/meshd/${MESHD_NODE[1]}/meshd_events" -j | jq .max_entries)" 1048576 \
    "--ring-bytes sized the ring"
t_expect_eq "$(meshctl_at 1 status | jq -r .bpf.conn_events)" 2 "both connections reached the ring"

t_begin "text lines (node 2, inbound)"
line=$(grep -m1 'access connection complete' "${MESHD_LOG[2]}")
t_expect_contains "$line" "direction=inbound" "direction"
t_expect_contains "$line" "dst.addr=${POD_IP4[2,1]}:8080" "destination"
t_expect_contains "$line" "src.addr=${POD_IP4[1,1]}:" "source"
m=$(ip netns exec "${NODE_NS[2]}" curl -s -m 5 "http://${NODE_IP4[2]}:15020/metrics")
t_expect_contains "$m" 'meshd_access_log_lines_total{outcome="written"} 2' "lines counted (one 200, one refused)"

meshd_check_logs
t_summary
