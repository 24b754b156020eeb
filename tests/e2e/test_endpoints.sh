#!/usr/bin/env bash
# meshd's own HTTP endpoints in the node netns: /healthz/ready (15021),
# Prometheus metrics (15020) that promtool accepts and that count what the
# agent did, /config_dump and /logging (15000, loopback only), and the
# HTTP errors a hostile client gets.
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
node=${NODE_NS[1]}
get() { ip netns exec "$node" curl -s -m 5 "$@"; }
code() { ip netns exec "$node" curl -s -o /dev/null -m 5 -w '%{http_code}' "$@" || true; }

t_begin "readiness"
t_expect_eq "$(code "http://${NODE_IP4[1]}:15021/healthz/ready")" 200 "ready on the node address"

t_begin "metrics"
# Program run counts only tick while the kernel's BPF stats are on.
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
topo_on_cleanup "sysctl -qw kernel.bpf_stats_enabled=$old_stats"
sysctl -qw kernel.bpf_stats_enabled=1
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "one captured connection"
m=$(get "http://${NODE_IP4[1]}:15020/metrics")
t_expect_contains "$m" "meshd_enrolled_pods 1" "enrolled pods gauge"
t_expect_contains "$m" 'meshd_connections_total{outcome="forwarded"} 1' "forwarded counter"
t_expect_contains "$m" 'meshd_bpf_events_total{event="connect_captured"} 1' "BPF counter exported"
runs=$(awk '/^meshd_bpf_program_runs_total\{program="meshd_connect4"\}/ {print $2}' <<<"$m")
t_expect_eq "$([ "${runs:-0}" -ge 1 ] && echo yes)" yes "connect4 run count from the kernel ($runs)"
t_expect_eq "$(get "http://${NODE_IP4[1]}:15020/stats/prometheus" | grep -c '^meshd_enrolled_pods')" 1 "Istio's alias path"
out=$(promtool check metrics <<<"$m" 2>&1) && rc=0 || rc=$?
t_expect_eq "$rc" 0 "promtool check metrics accepts the exposition ($out)"

t_begin "admin"
t_expect_eq "$(get http://127.0.0.1:15000/config_dump | jq -r '.pods[0].name')" pod-1-1 "config_dump lists the pod"
t_expect_eq "$(code "http://${NODE_IP4[1]}:15000/config_dump")" 000 "admin is loopback only"
t_expect_contains "$(get -X POST 'http://127.0.0.1:15000/logging?level=warn')" "level: warn" "log level changed"
t_expect_eq "$(code -X POST 'http://127.0.0.1:15000/logging?level=loud')" 400 "unknown level refused"
get -X POST "http://127.0.0.1:15000/logging?level=debug" >/dev/null

t_begin "hostile requests get errors, not hangs"
t_expect_eq "$(code http://127.0.0.1:15000/nope)" 404 "unknown path"
t_expect_eq "$(code -X DELETE http://127.0.0.1:15000/config_dump)" 405 "unknown method"
t_expect_eq "$(code -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)" http://127.0.0.1:15000/config_dump)" 431 "oversized head"
t_expect_eq "$(code "http://127.0.0.1:15000/$(head -c 600 /dev/zero | tr '\0' a)")" 414 "overlong path"

t_begin "the control socket refuses an oversized request with an error"
out=$(/usr/bin/python3 - "${MESHD_SOCK[1]}" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
try:
    s.sendall(b"a" * 70000)
except OSError:
    pass
print(s.recv(4096).decode(errors="replace"))
PY
)
t_expect_contains "$out" '"error":"request too large"' "64 KiB cap answered"
t_expect_eq "$(meshctl_at 1 -o json pods | jq length)" 1 "the agent serves on"

meshd_check_logs
t_summary
