#!/usr/bin/env bash
# Traffic through the mesh as the configuration says (issues 4 and 5):
#  - cross-node pod-to-pod goes over HBONE: on node 2's underlay link only
#    TLS to 15008, never the plaintext marker;
#  - the seed's payments canary as written (99/1 between v1 on node 2 and
#    v2 on node 1), through the Service VIP: 20,000 connections split
#    within a 99.9% binomial bound;
#  - weights edited to 50/50 in the YAML apply to new connections at once
#    and leave an open connection alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh
source tests/e2e/lib/workloads.sh

VIP=10.96.0.10
topo_init
topo_create 2 2
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null


for i in 1 2; do
    d="$E2E_TMP/config-$i"
    mkdir -p "$d"
    printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n  labels: {istio.io/dataplane-mode: ambient}\n' >"$d/namespace.yaml"
    {
        pod_yaml 1 1 '{app: client, version: v1}' client
        pod_yaml 2 1 '{app: payments, version: v1}' payments-v1
        pod_yaml 1 2 '{app: payments, version: v2}' payments-v2
    } >"$d/pods.yaml"
    # The seed's canary as written; only the Service gets the ClusterIP an
    # API server would have allocated.
    sed "s/^  selector:\$/  clusterIP: $VIP\n  selector:/" deploy/examples/payments-canary.yaml >"$d/payments-canary.yaml"
done
grep -q "clusterIP: $VIP" "$E2E_TMP/config-1/payments-canary.yaml"
meshd_start 1 --ca-dir "$E2E_TMP/ca"
meshd_start 2 --ca-dir "$E2E_TMP/ca"
enroll_pod 1 1 1 client
enroll_pod 1 1 2 payments-v2
enroll_pod 2 2 1 payments-v1
tally() { in_pod "1,1" /usr/bin/python3 tests/e2e/lib/tally.py "$@"; }
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/tally-v1.log" /usr/bin/python3 tests/e2e/lib/tally.py serve 8080 v1 >/dev/null
topo_spawn "${POD_NS[1,2]}" "$E2E_TMP/tally-v2.log" /usr/bin/python3 tests/e2e/lib/tally.py serve 8080 v2 >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 8080 10
topo_wait_tcp "${POD_NS[1,2]}" "${POD_IP4[1,2]}" 8080 10
http_server "2,1" 8081 >/dev/null

t_begin "cross-node: only TLS to 15008 on the underlay"
cap="$E2E_TMP/underlay-2.pcap"
topo_spawn "${NODE_NS[2]}" "$E2E_TMP/tshark.log" tshark -q -i "${NODE_UNDERLAY_IF[2]}" -f tcp -w "$cap" >/dev/null
tshark_pid=$TOPO_LAST_PID
for _ in $(seq 1 600); do grep -q "Capturing on" "$E2E_TMP/tshark.log" 2>/dev/null && break; sleep 0.1; done
marker="meshd-plaintext-marker-$RANDOM$RANDOM"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8081/$marker")" 404 "pod-1-1 -> pod-2-1 across nodes (IPv4)"
t_expect_eq "$(http_get "1,1" "http://[${POD_IP6[2,1]}]:8081/$marker")" 404 "and IPv6"
for _ in $(seq 1 100); do
    [ "$(tshark -r "$cap" -Y tcp.port==15008 2>/dev/null | wc -l)" -ge 10 ] && break
    sleep 0.2
done
topo_kill "$tshark_pid" TERM
ports=$(tshark -r "$cap" -T fields -e tcp.srcport -e tcp.dstport 2>/dev/null | tr '\t' '\n' | sort -u | tr '\n' ' ')
t_expect_contains "$ports" "15008" "the capture saw the tunnel"
t_expect_eq "$(tshark -r "$cap" -T fields -e tcp.srcport -e tcp.dstport 2>/dev/null | grep -vc 15008 || true)" 0 \
    "every TCP packet on the underlay is to or from 15008 (ports: $ports)"
t_expect_eq "$(grep -ac "$marker" "$cap" || true)" 0 "the plaintext marker never appears on the wire"
out=$(connections_json 1 | jq -c "[.[] | select(.direction == \"outbound\" and .original_dst == \"${POD_IP4[2,1]}:8081\")][0]")
t_expect_eq "$(jq -r .peer_identity <<<"$out")" "spiffe://cluster.local/ns/default/sa/payments-v1" \
    "server identity from the configuration, verified"
in=$(connections_json 2 | jq -c "[.[] | select(.direction == \"inbound\" and .original_dst == \"${POD_IP4[2,1]}:8081\" and (.src | startswith(\"${POD_IP4[1,1]}:\")))][0]")
t_expect_eq "$(jq -r .peer_identity <<<"$in")" "spiffe://cluster.local/ns/default/sa/client" "client identity verified on node 2"

t_begin "meshctl proxy-config routes shows the canary as the client gets it"
routes=$(meshctl_at 1 -o json proxy-config routes pod-1-1.default --service payments)
t_expect_eq "$(jq -c '[.routes[0].destinations[] | [.subset, .weight]]' <<<"$routes")" '[["v1",99],["v2",1]]' \
    "v1 99%, v2 1%"
t_expect_eq "$(jq -r '.routes[0] | .vip + " " + .virtual_service' <<<"$routes")" "$VIP:80 default/payments" \
    "on the VIP, from the seed's VirtualService"
t_expect_contains "$(meshctl_at 1 proxy-config routes pod-1-1.default)" "payments.default.svc.cluster.local|v2:80 1% (1 ready" \
    "the table names each destination with its ready endpoints"

t_begin "the seed's canary: 99/1 over 20,000 connections through the VIP"
counts=$(tally count "$VIP" 80 20000)
echo "    counts: $counts"
v1=$(jq -r '.v1 // 0' <<<"$counts") v2=$(jq -r '.v2 // 0' <<<"$counts")
t_expect_eq "$(jq -r .failed <<<"$counts")" 0 "no connection failed"
t_expect_eq "$((v1 + v2))" 20000 "every connection reached a version"
# 99.9%: |v2 - 200| <= 3.29 * sqrt(20000 * 0.01 * 0.99) = 46.3
t_expect_ok "v2 got $v2 (expected 200 +- 46)" test "$v2" -ge 154 -a "$v2" -le 246
t_expect_ok "both nodes served (v1 remote, v2 local)" test "$v1" -gt 0 -a "$v2" -gt 0

t_begin "50/50 in the YAML: new connections split evenly, an open one stays"
flag="$E2E_TMP/held.flag"
topo_spawn "${POD_NS[1,1]}" "$E2E_TMP/held.log" /usr/bin/python3 tests/e2e/lib/tally.py hold "$VIP" 80 "$flag" >/dev/null
held_pid=$TOPO_LAST_PID
for _ in $(seq 1 50); do [ -s "$E2E_TMP/held.log" ] && break; sleep 0.1; done
fifty_fifty() {
    for i in 1 2; do
        sed -i -e 's/weight: 99/weight: 50/' -e 's/weight: 1$/weight: 50/' "$E2E_TMP/config-$i/payments-canary.yaml"
    done
}
config_apply 1 fifty_fifty
t_expect_ok "the new version is applied" test "$(meshctl_at 1 -o json proxy-config config | jq -r .generation)" -ge 2
counts=$(tally count "$VIP" 80 2000)
echo "    counts: $counts"
v2=$(jq -r '.v2 // 0' <<<"$counts")
t_expect_eq "$(jq -r .failed <<<"$counts")" 0 "no connection failed"
# 99.9%: |v2 - 1000| <= 3.29 * sqrt(2000 * 0.25) = 73.6
t_expect_ok "v2 got $v2 of 2000 (expected 1000 +- 74)" test "$v2" -ge 926 -a "$v2" -le 1074
touch "$flag"
for _ in $(seq 1 50); do grep -q '^echo:' "$E2E_TMP/held.log" && break; sleep 0.1; done
t_expect_eq "$(grep '^echo:' "$E2E_TMP/held.log")" "echo:still-open" "the connection opened before the edit still carries bytes"
topo_alive "$held_pid" && topo_kill "$held_pid" TERM || true

meshd_check_logs
t_summary
