#!/usr/bin/env bash
# The app sees its real client (issue 13, item 7d). meshd reaches the app
# from the client's own address, as ztunnel's in-pod mode does: a
# transparent socket, and in the pod netns a mark rule that brings the
# app's replies back to meshd (agent/core/podroute.c). Plaintext from a pod
# outside the mesh and mTLS from an enrolled pod on another node, IPv4 and
# IPv6; the app's replies never leave the pod; unenrolling removes the rule.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 2
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
for i in 1 2; do mesh_config "$E2E_TMP/config-$i"; done
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/echo.log" /usr/bin/python3 tests/e2e/lib/peer_echo.py 8080 >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 8080 10
meshd_start 1 --ca-dir "$E2E_TMP/ca"
meshd_start 2 --ca-dir "$E2E_TMP/ca"
enroll 1 "1,1"
enroll 2 "2,1"
peer() { in_pod "$1" curl -s -m 5 "$2" || true; }

t_begin "plaintext from a pod outside the mesh: the app sees that pod"
t_expect_eq "$(peer "2,2" "http://${POD_IP4[2,1]}:8080/")" "::ffff:${POD_IP4[2,2]}" "IPv4 client address"
t_expect_eq "$(peer "2,2" "http://[${POD_IP6[2,1]}]:8080/")" "${POD_IP6[2,2]}" "IPv6 client address"
rec=$(connections_json 2 | jq -c '[.[] | select(.direction == "inbound")] | last')
t_expect_eq "$(jq -r .pod <<<"$rec")" "default/pod-2-1" "it went through meshd"

t_begin "mTLS from an enrolled pod on another node: the app sees that pod"
t_expect_eq "$(peer "1,1" "http://${POD_IP4[2,1]}:8080/")" "::ffff:${POD_IP4[1,1]}" "IPv4 client address"
t_expect_eq "$(peer "1,1" "http://[${POD_IP6[2,1]}]:8080/")" "${POD_IP6[1,1]}" "IPv6 client address"
rec=$(connections_json 2 | jq -c '[.[] | select(.direction == "inbound")] | last')
t_expect_eq "$(jq -r .peer_identity <<<"$rec")" "spiffe://cluster.local/ns/default/sa/sa-1-1" "over HBONE"

t_begin "the app's replies stay in the pod"
cap="$E2E_TMP/pod-2-1.pcap"
topo_spawn "${NODE_NS[2]}" "$E2E_TMP/tshark.log" tshark -q -i "${POD_HOST_IF[2,1]}" -f tcp -w "$cap" >/dev/null
tshark_pid=$TOPO_LAST_PID
for _ in $(seq 1 600); do grep -q "Capturing on" "$E2E_TMP/tshark.log" 2>/dev/null && break; sleep 0.1; done
t_expect_eq "$(peer "1,1" "http://${POD_IP4[2,1]}:8080/")" "::ffff:${POD_IP4[1,1]}" "a request over HBONE"
for _ in $(seq 1 100); do
    [ "$(tshark -r "$cap" -Y tcp.port==15008 2>/dev/null | wc -l)" -ge 6 ] && break
    sleep 0.2
done
topo_kill "$tshark_pid" TERM
t_expect_eq "$(tshark -r "$cap" -Y 'tcp.port == 8080' 2>/dev/null | wc -l)" 0 \
    "no packet from or to the app port on the pod's link (only the tunnel)"

t_begin "the pod routing is meshd's and goes with the enrollment"
t_expect_contains "$(ip -n "${POD_NS[2,1]}" rule)" "lookup 15006" "the mark rule in the pod"
t_expect_contains "$(ip -n "${POD_NS[2,1]}" -6 rule)" "lookup 15006" "and for IPv6"
unenroll 2 "2,1"
t_expect_not_contains "$(ip -n "${POD_NS[2,1]}" rule)" "lookup 15006" "removed at unenroll"
t_expect_eq "$(peer "2,2" "http://${POD_IP4[2,1]}:8080/")" "::ffff:${POD_IP4[2,2]}" "the app answers directly again"

meshd_check_logs
t_summary
