#!/usr/bin/env bash
# A Service port with no name (the seed's YAML writes its ports so), served
# per request at the destination (issue 18): the client's agent sniffs
# HTTP and says so in its CONNECT (x-meshd-protocol: http), and the
# destination agent then serves each request as Istio does after sniffing
# an unnamed inbound port. Yet the connection is admitted first exactly as
# on L4: the source's word chooses the parser, never the admission.
#  - no policy: destination request metrics (reporter="destination");
#  - an L7 DENY (paths): 403 "RBAC: access denied" per request, on one
#    keep-alive connection, the destination counting its 403s;
#  - an L4 DENY beside it (by principal): that peer's connection is
#    refused (its CONNECT answered 401, recorded DENY as on L4), not
#    served per request; another peer is still decided per request;
#  - a reload denying a peer closes its open stream, as L4 revalidates;
#  - a plaintext client (PERMISSIVE) under an L4 DENY (ipBlocks): reset,
#    as on L4, while another plaintext one gets the L7 403;
#  - a port named tcp beside them stays bytes under that HTTP policy: a
#    client-first protocol that is not HTTP passes untouched (no 400),
#    and a DENY whose HTTP-only rule names no port refuses it at L4, as
#    Istio judges HTTP-only rules on TCP.
# Clients: pod-1-1 (sa-1-1) and pod-1-2 (sa-1-2) on node 1; the server
# pod-2-1 on node 2; pod-2-2 is outside the mesh (plaintext).
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

VIP=10.96.0.22
topo_init
topo_create 2 2
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
for i in 1 2; do
    d="$E2E_TMP/config-$i"
    mesh_config "$d"
    cat >"$d/app.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: app, namespace: default}
spec:
  clusterIP: $VIP
  selector: {app: app-2-1}
  ports:
  - port: 80
    targetPort: 8080
  - name: tcp-echo
    port: 9000
    targetPort: 9000
YAML
done
meshd_start 1 --ca-dir "$E2E_TMP/ca"
meshd_start 2 --ca-dir "$E2E_TMP/ca"
enroll 1 "1,1"
enroll 1 "1,2"
enroll 2 "2,1"
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/httpd.out" /usr/bin/python3 tests/e2e/lib/httpd.py 8080 app "$E2E_TMP/app.log" >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 8080 10
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/tally.out" /usr/bin/python3 tests/e2e/lib/tally.py serve 9000 echo >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 9000 10

policy="$E2E_TMP/config-2/policy.yaml"
policy_is() {
    printf '%s\n' "$1" >"$E2E_TMP/policy.yaml"
    config_apply 2 mv "$E2E_TMP/policy.yaml" "$policy"
}
# deny NAME RULE...: a DENY AuthorizationPolicy for app-2-1, one rule a line.
deny() {
    local name=$1 rule
    shift
    printf 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n'
    printf 'metadata: {name: %s, namespace: default}\n' "$name"
    printf 'spec:\n  selector: {matchLabels: {app: app-2-1}}\n  action: DENY\n  rules:\n'
    for rule in "$@"; do printf '  - %s\n' "$rule"; done
}
ADMIN='to: [{operation: {paths: ["/admin*"]}}]'
# paths "i,j" URL...: GETs on one connection (curl reuses it): one
# "CODE NEW_CONNECTIONS" line each.
paths() {
    local pod=$1 u args=()
    shift
    for u in "$@"; do args+=(-o /dev/null "$u"); done
    in_pod "$pod" curl -s -m 5 -w '%{http_code} %{num_connects}\n' "${args[@]}" || true
}
# curl_exit "i,j" URL: curl's exit code for one GET.
curl_exit() {
    local rc=0
    in_pod "$1" curl -s -m 5 -o /dev/null "$2" || rc=$?
    echo "$rc"
}
# dest_requests CODE [MATCH]: node 2's istio_requests_total as the
# destination reports it for app-2-1, response CODE, on series matching MATCH.
dest_requests() {
    ip netns exec "${NODE_NS[2]}" curl -s -m 5 "http://${NODE_IP4[2]}:15020/metrics" |
        grep '^istio_requests_total{reporter="destination"' | grep 'destination_workload="pod-2-1"\|destination_app="app-2-1"' |
        grep "response_code=\"$1\"" | grep -e "${2:-.}" | awk '{n += $NF} END {print n + 0}'
}
# denied_conns PEER: node 2's inbound connections from PEER refused DENY.
denied_conns() {
    connections_json 2 | jq --arg p "$1" \
        '[.[] | select(.direction == "inbound" and .peer_identity == $p and .response_flags == "DENY")] | length'
}
SA11=spiffe://cluster.local/ns/default/sa/sa-1-1
SA12=spiffe://cluster.local/ns/default/sa/sa-1-2

t_begin "no policy: the unnamed port is served per request at the destination"
t_expect_eq "$(paths "1,1" "http://$VIP/public/a")" "200 1" "GET via the Service"
t_expect_eq "$(dest_requests 200 "$SA11")" 1 "reporter=\"destination\" counted it, from sa-1-1"
t_expect_contains "$(tail -1 "$E2E_TMP/app.log")" '"x-request-id"' "the destination's carrier forwarded it (request id)"

t_begin "an L7 DENY on paths: 403 per request, the connection goes on"
policy_is "$(deny deny-admin "$ADMIN")"
out=$(paths "1,1" "http://$VIP/public/b" "http://$VIP/admin/x" "http://$VIP/public/c")
t_expect_eq "$(tr '\n' ',' <<<"$out")" "200 1,403 0,200 0," "allowed, denied, allowed: one connection"
t_expect_not_contains "$(cat "$E2E_TMP/app.log")" '"/admin' "the denied request never reached the app"
t_expect_eq "$(dest_requests 403 'response_flags="DENY"')" 1 "the destination counted its 403 (flag DENY)"
t_expect_eq "$(denied_conns "$SA11")" 0 "no connection refused"

t_begin "an L4 DENY beside it: that peer's connection is refused as on L4"
policy_is "$(deny deny-admin "$ADMIN")
---
$(deny deny-web 'from: [{source: {principals: ["cluster.local/ns/default/sa/sa-1-1"]}}]')"
before=$(dest_requests 403)
# The client's agent answers a refused tunnel 403, as Envoy answers an
# RBAC denial (test_authz); the destination refused the CONNECT itself.
t_expect_eq "$(paths "1,1" "http://$VIP/public/d")" "403 1" "sa-1-1 answered 403 by its own agent"
t_expect_ok "node 2 refused sa-1-1's connection (DENY record)" test "$(denied_conns "$SA11")" -ge 1
t_expect_contains "$(cat "${MESHD_LOG[2]}")" "authz: cluster.local/ns/default/sa/sa-1-1 -> default/pod-2-1" "logged"
t_expect_eq "$(dest_requests 403)" "$before" "no request of it was served, so none counted at the destination"
t_expect_not_contains "$(cat "$E2E_TMP/app.log")" '"/public/d"' "nothing reached the app"
out=$(paths "1,2" "http://$VIP/public/e" "http://$VIP/admin/y")
t_expect_eq "$(tr '\n' ',' <<<"$out")" "200 1,403 0," "sa-1-2: still decided per request"
t_expect_eq "$(dest_requests 403 "$SA12")" 1 "that 403 is the destination's"
t_expect_eq "$(denied_conns "$SA12")" 0 "sa-1-2's connection was admitted"

t_begin "a reload that denies a peer closes its open hinted stream, as on L4"
flag="$E2E_TMP/held.flag"
# One keep-alive connection from pod-1-2: a GET, then (once FLAG exists) another.
topo_spawn "${POD_NS[1,2]}" "$E2E_TMP/held.log" /usr/bin/python3 -c '
import http.client, os, sys, time
c = http.client.HTTPConnection(sys.argv[1], 80, timeout=5)
c.request("GET", "/public/held-1"); r = c.getresponse(); r.read(); print(r.status, flush=True)
for _ in range(100):
    if os.path.exists(sys.argv[2]):
        break
    time.sleep(0.1)
try:
    c.request("GET", "/public/held-2"); r = c.getresponse(); r.read(); print(r.status, flush=True)
except OSError as e:
    print("error", e, flush=True)
' "$VIP" "$flag" >/dev/null
for _ in $(seq 1 50); do
    [ -s "$E2E_TMP/held.log" ] && break
    sleep 0.1
done
t_expect_eq "$(head -1 "$E2E_TMP/held.log")" 200 "sa-1-2's held connection served a request"
denied12=$(denied_conns "$SA12")
policy_is "$(deny deny-other 'from: [{source: {principals: ["cluster.local/ns/default/sa/sa-1-2"]}}]')"
sleep 0.5
t_expect_contains "$(cat "${MESHD_LOG[2]}")" "open connection closed: no longer allowed" "node 2 closed the open stream"
t_expect_ok "recorded DENY" test "$(denied_conns "$SA12")" -gt "$denied12"
touch "$flag"
for _ in $(seq 1 50); do
    [ "$(wc -l <"$E2E_TMP/held.log")" -ge 2 ] && break
    sleep 0.1
done
t_expect_eq "$(sed -n 2p "$E2E_TMP/held.log")" 403 "its next request is refused (its agent's new CONNECT is denied)"
t_expect_not_contains "$(cat "$E2E_TMP/app.log")" '"/public/held-2"' "and never reached the app"

t_begin "plaintext (PERMISSIVE): an L4 DENY by ipBlocks resets, others get the L7 403"
policy_is "$(deny deny-admin "$ADMIN" "from: [{source: {ipBlocks: [\"${POD_IP6[2,2]}\"]}}]")"
out=$(paths "2,2" "http://${POD_IP4[2,1]}:8080/public/f" "http://${POD_IP4[2,1]}:8080/admin/z")
t_expect_eq "$(tr '\n' ',' <<<"$out")" "200 1,403 0," "over IPv4: allowed, then the L7 403"
rc=$(curl_exit "2,2" "http://[${POD_IP6[2,1]}]:8080/public/g")
# 56: reset after the connect returned; 7: the reset won the race with it.
t_expect_ok "over IPv6 (blocked): reset, no answer (curl exit $rc)" test "$rc" = 56 -o "$rc" = 7
t_expect_eq "$(connections_json 2 | jq --arg s "[${POD_IP6[2,2]}]:" \
    '[.[] | select(.direction == "inbound" and (.src | startswith($s)) and .response_flags == "DENY")] | length')" 1 \
    "node 2 refused it at the connection (DENY record)"
t_expect_not_contains "$(cat "$E2E_TMP/app.log")" '"/public/g"' "nothing reached the app"

t_begin "a port named tcp stays bytes under an HTTP policy"
tcp_echo() { in_pod "1,1" /usr/bin/python3 tests/e2e/lib/tally.py count "$VIP" 9000 2; }
policy_is "$(deny deny-admin 'to: [{operation: {ports: ["8080"], paths: ["/admin*"]}}]')"
t_expect_eq "$(paths "1,1" "http://$VIP/admin/w")" "403 1" "the HTTP port: the L7 DENY answers 403"
t_expect_eq "$(tcp_echo)" '{"failed": 0, "echo": 2}' "the tcp port: a non-HTTP protocol passes untouched"
policy_is "$(deny deny-admin "$ADMIN")"
denied11=$(denied_conns "$SA11")
t_expect_eq "$(tcp_echo)" '{"failed": 2}' "a DENY naming no port refuses the tcp port (HTTP-only rules on TCP)"
t_expect_ok "at L4: DENY records" test "$(denied_conns "$SA11")" -ge $((denied11 + 2))

meshd_check_logs
t_summary
