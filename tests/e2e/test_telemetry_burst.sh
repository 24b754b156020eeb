#!/usr/bin/env bash
# A burst of new connections through the capture path (wrk, Connection:
# close, against nginx) for several seconds: the kernel's connection-event
# ring at its default size drops nothing, and the counters add up — every
# forwarded connection's upstream socket produced exactly one event that
# joined its record.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 1
nginx_server "2,1" 8080
meshd_start 1 --log-level info
enroll 1 "1,1"

t_begin "burst"
out=$(in_pod "1,1" wrk -t2 -c32 -d4s -H 'Connection: close' "http://${POD_IP4[2,1]}:8080/")
rate=$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$out")
t_ok "wrk: $rate new connections/s through meshd for 4 s"
# Sanitizer builds and qemu TCG (make vmtest) run several times slower.
floor=$([ "${MESHD_SANITIZE:-0}" = 1 ] || [ "${MESHVM_TCG:-0}" = 1 ] && echo 300 || echo 3000)
t_expect_eq "$([ "$rate" -ge "$floor" ] && echo yes)" yes "a real burst (>= $floor conn/s on this machine)"

t_begin "counters add up"
st=$(meshctl_at 1 status)
for _ in $(seq 1 50); do # let the last closes reach the ring and the agent
    prev=$st
    sleep 0.2
    st=$(meshctl_at 1 status)
    [ "$(jq .telemetry.events <<<"$st")" = "$(jq .telemetry.events <<<"$prev")" ] && break
done
fwd=$(jq .connections.forwarded <<<"$st")
t_ok "status: $(jq -c '{bpf: {conn_events: .bpf.conn_events, drops: .bpf.conn_event_drops}, telemetry, connections}' <<<"$st")"
t_expect_eq "$(jq .bpf.conn_event_drops <<<"$st")" 0 "no ring-buffer drop at the default size"
t_expect_eq "$(jq .bpf.conn_events <<<"$st")" "$(jq .telemetry.events <<<"$st")" "every event written was read"
t_expect_eq "$(jq .telemetry.matched <<<"$st")" "$fwd" "one joined event per forwarded connection"
# wrk aborts its 32 open connections when the run ends: those (and only
# those) may be recorded as failed.
t_expect_eq "$(jq '.connections.failed <= 32' <<<"$st")" true "failures only from wrk's final aborts ($(jq .connections.failed <<<"$st"))"
t_expect_eq "$(jq '.connections.accepted == .connections.forwarded' <<<"$st")" true "every accepted connection was forwarded"

meshd_check_logs
t_summary
