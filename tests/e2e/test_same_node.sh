#!/usr/bin/env bash
# The same-node fast path (issue 19): two enrolled pods on one node, the
# server under STRICT mTLS. meshd carries their TCP connections without TLS
# to itself (no HBONE session, nothing on 15008), making the destination's
# decisions itself with the source's enrolled identity: AuthorizationPolicy
# by principal and by port enforced as across nodes (a denied connection is
# reset and never reaches the app), both reporters' metrics with
# connection_security_policy="none" and both principals, half-close and
# resets carried, an iperf3 run completes; a policy with HTTP fields keeps
# HBONE (the destination decides per request). --no-local-fast-path sends the
# same connections over HBONE again.
#   pod-1-1 (sa-1-1) and pod-1-3 (sa-1-3): clients; pod-1-2 (sa-1-2): server
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 1 3
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
mesh_config "$E2E_TMP/config-1"
policy="$E2E_TMP/config-1/policy.yaml"
strict='apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: default}
spec:
  selector: {matchLabels: {app: app-1-2}}
  mtls: {mode: STRICT}'
printf '%s\n' "$strict" >"$policy"
meshd_start 1 --ca-dir "$E2E_TMP/ca"
for j in 1 2 3; do enroll 1 "1,$j"; done
SRV=${POD_IP4[1,2]}
applog="$E2E_TMP/app.log"
: >"$applog"
for port in 9000 9001; do
    topo_spawn "${POD_NS[1,2]}" "$E2E_TMP/srv-$port.log" /usr/bin/python3 tests/e2e/lib/samenode.py serve "$port" "$applog" >/dev/null
    topo_wait_tcp "${POD_NS[1,2]}" "$SRV" "$port" 10
done
topo_spawn "${POD_NS[1,2]}" "$E2E_TMP/iperf3.log" iperf3 -s -p 5201 >/dev/null
topo_wait_tcp "${POD_NS[1,2]}" "$SRV" 5201 10

# client "i,j" PORT CMD [ADDR]: one connection from pod (i,j) to the server.
client() { in_pod "$1" /usr/bin/python3 tests/e2e/lib/samenode.py client "${4:-$SRV}" "$2" "$3"; }
policy_is() { # YAML: STRICT plus this policy, applied and waited for
    printf '%s\n---\n%s\n' "$strict" "$1" >"$E2E_TMP/policy.yaml"
    config_apply 1 mv "$E2E_TMP/policy.yaml" "$policy"
}
metrics() { ip netns exec "${NODE_NS[1]}" curl -s -m 5 "http://${NODE_IP4[1]}:15020/metrics"; }
app_saw() { grep -c "$1" "$applog" || true; } # connections the app accepted from IP
# hbone_sockets NS: TCP sockets to or from 15008 in a pod (listeners aside).
hbone_sockets() { ip netns exec "$1" ss -Htn state established '( sport = :15008 or dport = :15008 )' | wc -l; }

t_begin "STRICT: the fast path carries the connection, nothing on 15008"
t_expect_eq "$(client "1,1" 9000 ECHO)" ok "pod-1-1 -> pod-1-2:9000 echoes (IPv4)"
t_expect_eq "$(client "1,1" 9000 ECHO "${POD_IP6[1,2]}")" ok "and over IPv6"
t_expect_eq "$(app_saw "${POD_IP4[1,1]}")" 1 "the app saw the client's own address"
flag="$E2E_TMP/held.flag"
topo_spawn "${POD_NS[1,1]}" "$E2E_TMP/held.log" /usr/bin/python3 tests/e2e/lib/tally.py hold "$SRV" 9000 "$flag" >/dev/null
for _ in $(seq 1 50); do grep -q srv "$E2E_TMP/held.log" 2>/dev/null && break; sleep 0.1; done
t_expect_contains "$(cat "$E2E_TMP/held.log")" srv "a connection held open"
t_expect_eq "$(hbone_sockets "${POD_NS[1,1]}")$(hbone_sockets "${POD_NS[1,2]}")" 00 \
    "no socket on 15008 in either pod while it is open"
touch "$flag"
t_expect_eq "$(meshctl_at 1 status | jq .mesh.hbone_sessions_opened)" 0 "no HBONE session was ever opened"
recs=$(connections_json 1)
# The first one, finished (the held one may still be open).
first='[.[] | select(.direction == $dir and .original_dst == $d and .state == "closed")][0]'
out=$(jq -c --arg d "$SRV:9000" --arg dir outbound "$first" <<<"$recs")
in=$(jq -c --arg d "$SRV:9000" --arg dir inbound "$first" <<<"$recs")
t_expect_eq "$(jq -r '"\(.local) \(.hbone) \(.peer_identity)"' <<<"$out")" \
    "true null spiffe://cluster.local/ns/default/sa/sa-1-2" "source record: local, no HBONE, the server's identity"
t_expect_eq "$(jq -r '"\(.local) \(.pod) \(.peer_identity) \(.response_flags)"' <<<"$in")" \
    "true default/pod-1-2 spiffe://cluster.local/ns/default/sa/sa-1-1 -" "destination record: the client's identity"
t_expect_eq "$(jq -r '.bytes_sent == 10 and .bytes_received == 9' <<<"$in")" true "with the bytes both ways"

t_begin "metrics: both reporters, connection_security_policy none, both principals"
m=$(metrics)
for r in source destination; do
    line=$(grep '^istio_tcp_connections_opened_total{' <<<"$m" | grep "reporter=\"$r\"" | grep 'destination_workload="pod-1-2"' | grep 'source_workload="pod-1-1"' || true)
    t_expect_contains "$line" 'connection_security_policy="none"' "reporter=$r: none (no TLS happened)"
    t_expect_contains "$line" 'source_principal="spiffe://cluster.local/ns/default/sa/sa-1-1"' "reporter=$r: source principal"
    t_expect_contains "$line" 'destination_principal="spiffe://cluster.local/ns/default/sa/sa-1-2"' "reporter=$r: destination principal"
done
t_expect_eq "$(grep '^istio_tcp_connections_opened_total{' <<<"$m" | grep -c mutual_tls || true)" 0 "nothing claims mutual_tls"

t_begin "half-close and reset propagate"
t_expect_eq "$(client "1,1" 9000 HALF)" "got 100000" "the client's FIN reached the app after its bytes, the reply came back"
t_expect_eq "$(client "1,1" 9000 RESET)" reset "the app's reset reached the client"

t_begin "ALLOW by principal: the other client is reset, nothing reaches the app"
policy_is 'apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-sa-1-1, namespace: default}
spec:
  selector: {matchLabels: {app: app-1-2}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/default/sa/sa-1-1"]}'
t_expect_eq "$(client "1,1" 9000 ECHO)" ok "sa-1-1 allowed"
t_expect_eq "$(client "1,3" 9000 ECHO)" reset "sa-1-3 reset"
t_expect_eq "$(app_saw "${POD_IP4[1,3]}")" 0 "the app never saw pod-1-3"
recs=$(connections_json 1)
t_expect_eq "$(jq --arg s "${POD_IP4[1,3]}:" '[.[] | select(.direction == "inbound" and .local and .response_flags == "DENY" and (.src | startswith($s)))] | length' <<<"$recs")" 1 \
    "the destination record of the denial: DENY"
t_expect_eq "$(jq '[.[] | select(.direction == "outbound" and .local and .response_flags == "DENY")] | length' <<<"$recs")" 1 \
    "the source record: DENY"
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "authz: cluster.local/ns/default/sa/sa-1-3 -> default/pod-1-2" "logged with the principal"
t_expect_ok "counted DENY by the destination reporter" \
    grep -q 'reporter="destination".*response_flags="DENY"' <<<"$(metrics | grep '^istio_tcp_connections_opened_total{')"

t_begin "DENY by principal"
policy_is 'apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-sa-1-1, namespace: default}
spec:
  selector: {matchLabels: {app: app-1-2}}
  action: DENY
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/default/sa/sa-1-1"]}'
before=$(app_saw "${POD_IP4[1,1]}")
t_expect_eq "$(client "1,1" 9000 ECHO)" reset "sa-1-1 reset"
t_expect_eq "$(app_saw "${POD_IP4[1,1]}")" "$before" "the app saw nothing of it"
t_expect_eq "$(client "1,3" 9000 ECHO)" ok "sa-1-3 allowed"

t_begin "ALLOW by port"
policy_is 'apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-9001, namespace: default}
spec:
  selector: {matchLabels: {app: app-1-2}}
  rules:
  - to:
    - operation: {ports: ["9001"]}'
t_expect_eq "$(client "1,1" 9001 ECHO)" ok "port 9001 allowed"
before=$(app_saw "${POD_IP4[1,1]}")
t_expect_eq "$(client "1,1" 9000 ECHO)" reset "port 9000 reset"
t_expect_eq "$(app_saw "${POD_IP4[1,1]}")" "$before" "the app saw nothing on 9000"

t_begin "a policy applied while a fast-path connection is open closes it"
policy_is '# STRICT only'
rm -f "$flag"
topo_spawn "${POD_NS[1,3]}" "$E2E_TMP/held3.log" /usr/bin/python3 tests/e2e/lib/tally.py hold "$SRV" 9000 "$flag" >/dev/null
for _ in $(seq 1 50); do grep -q srv "$E2E_TMP/held3.log" 2>/dev/null && break; sleep 0.1; done
t_expect_contains "$(cat "$E2E_TMP/held3.log")" srv "pod-1-3 holds a connection"
policy_is 'apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-sa-1-3, namespace: default}
spec:
  selector: {matchLabels: {app: app-1-2}}
  action: DENY
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/default/sa/sa-1-3"]}'
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "authz: 1 open connection closed" "revalidated on reload"
touch "$flag"
recs=$(connections_json 1)
t_expect_eq "$(jq --arg s "${POD_IP4[1,3]}:" '[.[] | select(.direction == "inbound" and .local and .state == "failed" and .response_flags == "DENY" and .bytes_sent > 0 and (.src | startswith($s)))] | length' <<<"$recs")" 1 \
    "its destination record: closed with DENY after carrying bytes"

t_begin "a connection to the other pod's meshd port is a self-call"
t_expect_eq "$(client "1,1" 15006 ECHO)" reset "pod-1-1 -> pod-1-2:15006 reset"
t_expect_eq "$(connections_json 1 | jq -r --arg d "$SRV:15006" '[.[] | select(.direction == "inbound" and .original_dst == $d)] | last | "\(.local) \(.response_flags)"')" \
    "true SELF" "the destination record says SELF"

t_begin "meshctl status counts the fast path"
st=$(meshctl_at 1 status)
t_expect_eq "$(jq -c '.local_fast_path | [.denied, .self_calls]' <<<"$st")" "[3,1]" \
    "three denials (ALLOW and DENY by principal, by port), one self-call"
t_expect_ok "connections carried: $(jq .local_fast_path.connections <<<"$st")" test "$(jq .local_fast_path.connections <<<"$st")" -ge 8

t_begin "a policy with HTTP fields: the destination decides per request, over HBONE"
policy_is 'apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: default}
spec:
  selector: {matchLabels: {app: app-1-2}}
  action: DENY
  rules:
  - to:
    - operation: {paths: ["/admin"]}'
client "1,1" 9000 ECHO >/dev/null || true # not HTTP: the destination's HTTP carrier refuses it
rec=$(connections_json 1 | jq -c --arg d "$SRV:9000" '[.[] | select(.direction == "outbound" and .original_dst == $d)] | last')
t_expect_eq "$(jq -r '"\(.local) \(.hbone)"' <<<"$rec")" "null $SRV:15008" "the connection went through 15008, not the fast path"

t_begin "iperf3 over the fast path"
policy_is '# STRICT only'
sessions=$(meshctl_at 1 status | jq .mesh.hbone_sessions_opened)
out=$(in_pod "1,1" iperf3 -c "$SRV" -p 5201 -t 3 -J)
t_expect_eq "$(jq -r '.end.sum_received.bytes > 0 and (.error // "") == ""' <<<"$out")" true \
    "3 s iperf3 completed ($(jq -r '.end.sum_received.bits_per_second / 1e9 * 10 | floor / 10' <<<"$out") Gb/s)"
t_expect_eq "$(meshctl_at 1 status | jq .mesh.hbone_sessions_opened)" "$sessions" "no new HBONE session for it"

t_begin "--no-local-fast-path: the same connection over HBONE"
topo_kill "${MESHD_PID[1]}" TERM # a handover: the pods stay enrolled
meshd_start 1 --ca-dir "$E2E_TMP/ca" --no-local-fast-path
t_expect_eq "$(client "1,1" 9000 ECHO)" ok "pod-1-1 -> pod-1-2:9000"
rec=$(connections_json 1 | jq -c --arg d "$SRV:9000" '[.[] | select(.direction == "outbound" and .original_dst == $d)] | last')
t_expect_eq "$(jq -r '"\(.local) \(.hbone)"' <<<"$rec")" "null $SRV:15008" "through 15008, not local"
t_expect_eq "$(metrics | grep '^istio_tcp_connections_opened_total{' | grep -c 'connection_security_policy="mutual_tls"' || true)" 2 \
    "both reporters say mutual_tls"

meshd_check_logs
t_summary
