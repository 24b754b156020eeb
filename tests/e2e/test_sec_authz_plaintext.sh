#!/usr/bin/env bash
# Security (issue 13, item 2): a plaintext peer has no identity, so a DENY
# rule on a not-form (notNamespaces, notPrincipals, notServiceAccounts)
# catches it. The attack: under PERMISSIVE, a server pod protected by
# `DENY from notNamespaces: [default]` is reached in plaintext by pods
# outside the mesh, one on the server's node and one across nodes. Each attempt must be reset, recorded
# with flag DENY (connections and access log) and counted in the metrics,
# while a mesh client in namespace default (mTLS over HBONE, from the other
# node) keeps getting through at the same time.
#   node 1: pod-1-1 enrolled (default/sa-1-1, the legitimate client)
#           pod-1-2 not enrolled (plaintext attacker, across nodes)
#   node 2: pod-2-1 enrolled (default/sa-2-1, the server, PERMISSIVE)
#           pod-2-2 not enrolled (plaintext attacker, same node)
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 2
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
mesh_config "$E2E_TMP/config-1"
mesh_config "$E2E_TMP/config-2"
meshd_start 1 --ca-dir "$E2E_TMP/ca"
meshd_start 2 --ca-dir "$E2E_TMP/ca" --access-log
enroll 1 "1,1"
enroll 2 "2,1"
http_server "2,1" 8080 >/dev/null

SERVER="http://${POD_IP4[2,1]}:8080/"
policy="$E2E_TMP/config-2/policy.yaml"
policy_is() { # YAML: installs the policy on the server's node, waits for it
    printf '%s\n' "$1" >"$E2E_TMP/policy.yaml"
    config_apply 2 mv "$E2E_TMP/policy.yaml" "$policy"
}
metrics() { ip netns exec "${NODE_NS[2]}" curl -s -m 5 "http://${NODE_IP4[2]}:15020/metrics"; }
# denied_from IP: connection records on node 2 from IP with flag DENY.
denied_from() {
    connections_json 2 | jq --arg ip "$1" \
        '[.[] | select(.direction == "inbound" and .response_flags == "DENY" and (.src | startswith($ip + ":")))] | length'
}
# deny_metric: the inbound connections node 2 counted with flag DENY.
deny_metric() {
    metrics | awk '/^istio_tcp_connections_opened_total\{/ && /response_flags="DENY"/ { n += $NF } END { print n + 0 }'
}

# attack ROUND: N plaintext requests from each outside pod while the mesh
# client sends N of its own, all at once; each writes one status per line.
N=10
attack() {
    local round=$1 k
    for k in $(seq 1 "$N"); do http_get "1,1" "$SERVER"; echo; done >"$E2E_TMP/legit-$round" &
    local legit=$!
    for k in $(seq 1 "$N"); do http_get "1,2" "$SERVER"; echo; done >"$E2E_TMP/far-$round" &
    local far=$!
    for k in $(seq 1 "$N"); do http_get "2,2" "$SERVER"; echo; done >"$E2E_TMP/near-$round"
    wait "$far" "$legit"
}
count() { grep -c "^$1\$" "$2" || true; }
# deny_source FIELD VALUE: the server's policy, DENY from source FIELD: [VALUE].
deny_source() {
    policy_is "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-plaintext, namespace: default}
spec:
  selector: {matchLabels: {app: app-2-1}}
  action: DENY
  rules:
  - from:
    - source: {$1: [\"$2\"]}"
}
# expect_round ROUND: both attackers refused every time, the client never.
expect_round() {
    t_expect_eq "$(count 000 "$E2E_TMP/far-$1")" "$N" "every plaintext attempt across nodes is refused"
    t_expect_eq "$(count 000 "$E2E_TMP/near-$1")" "$N" "every plaintext attempt from the same node is refused"
    t_expect_eq "$(count 200 "$E2E_TMP/legit-$1")" "$N" "meanwhile the mesh client (default/sa-1-1) got every answer"
}

t_begin "before any policy: plaintext from outside the mesh is served (PERMISSIVE)"
t_expect_eq "$(http_get "1,2" "$SERVER")" 200 "pod-1-2 (outside the mesh, node 1) in plaintext"
t_expect_eq "$(http_get "2,2" "$SERVER")" 200 "pod-2-2 (outside the mesh, node 2) in plaintext"
t_expect_eq "$(http_get "1,1" "$SERVER")" 200 "pod-1-1 (mesh, default) over HBONE"
t_expect_eq "$(denied_from "${POD_IP4[1,2]}")" 0 "no DENY record yet"

t_begin "DENY notNamespaces [default]: the plaintext attacker is refused"
deny_source notNamespaces default
metric_before=$(deny_metric)
attack ns
expect_round ns
rc=0
in_pod "1,2" curl -s -m 5 -o /dev/null "$SERVER" || rc=$?
# 7: reset while connecting, 56: reset while receiving, 52: closed with no
# reply; never 28 (a timeout: the connection hung instead of being refused).
t_expect_ok "refused at once by a reset (curl exit $rc)" test "$rc" -eq 7 -o "$rc" -eq 56 -o "$rc" -eq 52
t_expect_ok "DENY records for pod-1-2 ($(denied_from "${POD_IP4[1,2]}"))" test "$(denied_from "${POD_IP4[1,2]}")" -ge "$N"
t_expect_ok "DENY records for pod-2-2 ($(denied_from "${POD_IP4[2,2]}"))" test "$(denied_from "${POD_IP4[2,2]}")" -ge "$N"
t_expect_eq "$(denied_from "${POD_IP4[1,1]}")" 0 "none for the mesh client"
legit_rec=$(connections_json 2 | jq -r --arg ip "${POD_IP4[1,1]}:" \
    '[.[] | select(.direction == "inbound" and (.src | startswith($ip)))] | last | "\(.response_flags) \(.peer_identity)"')
t_expect_eq "$legit_rec" "- spiffe://cluster.local/ns/default/sa/sa-1-1" "the mesh client came over mTLS as default/sa-1-1"
t_expect_contains "$(grep 'response_flags=DENY' "${MESHD_LOG[2]}" || true)" "src.addr=${POD_IP4[2,2]}:" "access log has the DENY"
metric_after=$(deny_metric)
t_expect_ok "counted in istio_tcp_connections_opened_total{response_flags=DENY} ($metric_before -> $metric_after)" \
    test "$metric_after" -ge $((metric_before + 2 * N))
t_expect_contains "$(cat "${MESHD_LOG[2]}")" "authz: ${POD_IP4[1,2]}:" "the denial is logged with the plaintext source"

t_begin "DENY notPrincipals [the mesh client]: plaintext refused, the named principal served"
deny_source notPrincipals cluster.local/ns/default/sa/sa-1-1
attack principal
expect_round principal

t_begin "DENY notServiceAccounts [sa-1-1] (the policy's namespace): the same"
deny_source notServiceAccounts sa-1-1
attack account
expect_round account

t_begin "removing the policy serves plaintext again (the refusals were the policy)"
policy_is '# no policy'
t_expect_eq "$(http_get "1,2" "$SERVER")" 200 "pod-1-2 in plaintext"
t_expect_eq "$(http_get "1,1" "$SERVER")" 200 "pod-1-1 over HBONE"

meshd_check_logs
t_summary
