#!/usr/bin/env bash
# Certificate rotation with traffic on it: workload certificates that live
# 4 s are renewed at half-life while a 6 s mTLS transfer runs; the transfer
# completes on the session it started with, the pooled session with the
# old certificate takes no new streams, and the next connection opens a
# new session (handshaking with the renewed certificate).
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 1 2
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
topo_spawn "${POD_NS[1,2]}" "$E2E_TMP/iperf3.log" iperf3 -s -p 5201 >/dev/null
topo_wait_tcp "${POD_NS[1,2]}" "${POD_IP4[1,2]}" 5201 10
http_server "1,2" 8080 >/dev/null
# Both pods are on this node: HBONE to itself, as the test is about mTLS
# (the same-node fast path would carry the transfer without TLS).
meshd_start 1 --ca-dir "$E2E_TMP/ca" --cert-ttl 4 --no-local-fast-path
for j in 1 2; do
    meshctl_at 1 enroll "default/pod-1-$j" --netns "/run/netns/${POD_NS[1,$j]}" --sa "sa-1-$j" \
        --ip "${POD_IP4[1,$j]}" >/dev/null
done

t_begin "a transfer across a renewal"
out=$(in_pod "1,1" iperf3 -c "${POD_IP4[1,2]}" -p 5201 -t 6 -J)
t_expect_eq "$(jq -r '.end.sum_received.bytes > 0 and (.error // "") == ""' <<<"$out")" true \
    "6 s iperf3 over mTLS completed ($(jq -r '.end.sum_received.bits_per_second / 1e9 | floor' <<<"$out") Gb/s)"
st=$(meshctl_at 1 status)
t_expect_eq "$(jq '.mesh.cert_renewals >= 2' <<<"$st")" true "certificates renewed during it ($(jq .mesh.cert_renewals <<<"$st"))"
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "renewed spiffe://cluster.local/ns/default/sa/sa-1-1" "renewal logged"
# iperf3 resets its data stream when the timed test ends (UC/DC): allowed.
# A tunnel that could not be established across a renewal (UF, NR, DENY)
# is not.
t_expect_eq "$(connections_json 1 | jq '[.[] | select(.response_flags | test("^(UF|NR|DENY)$"))] | length')" 0 \
    "every tunnel was established across the renewals"

t_begin "the next connection uses a new session"
before=$(jq .mesh.hbone_sessions_opened <<<"$st")
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[1,2]}:8080/")" 200 "curl after the renewal"
after=$(meshctl_at 1 status | jq .mesh.hbone_sessions_opened)
t_expect_eq "$([ "$after" -gt "$before" ] && echo new)" new "a new HBONE session was opened ($before -> $after)"
t_expect_eq "$(connections_json 1 | jq -r '[.[] | select(.direction == "inbound")][-1].peer_identity')" \
    "spiffe://cluster.local/ns/default/sa/sa-1-1" "still verified as the same workload"

meshd_check_logs
t_summary
