#!/usr/bin/env bash
# DestinationRule traffic policy on real connections (issue 5): service
# "echo" (VIP 10.96.0.20) has three endpoints on node 2 (e1, e2, e3); the
# client is on node 1. Round-robin spreads evenly, consistent hash pins the
# client, least-request follows load, maxConnections refuses the overflow
# (UO, counted) and recovers as connections close, and an endpoint that
# fails is ejected by outlier detection and comes back after the ejection
# time. Each policy is a YAML edit applied to the running agents.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh
source tests/e2e/lib/workloads.sh

VIP=10.96.0.20
topo_init
topo_create 2 3
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null

for i in 1 2; do
    d="$E2E_TMP/config-$i"
    mkdir -p "$d"
    {
        printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {istio.io/dataplane-mode: ambient}}\n'
        printf -- '---\napiVersion: v1\nkind: Service\nmetadata: {name: echo}\n'
        printf 'spec: {clusterIP: %s, selector: {app: echo}, ports: [{port: 80, targetPort: 8080}]}\n' "$VIP"
        pod_yaml 1 1 '{app: client}' sa-1-1
        for j in 1 2 3; do pod_yaml 2 "$j" '{app: echo}' "sa-2-$j"; done
    } >"$d/mesh.yaml"
done
for j in 1 2 3; do
    topo_spawn "${POD_NS[2,$j]}" "$E2E_TMP/tally-e$j.log" /usr/bin/python3 tests/e2e/lib/tally.py serve 8080 "e$j" >/dev/null
    declare "SERVER_PID_$j=$TOPO_LAST_PID"
    topo_wait_tcp "${POD_NS[2,$j]}" "${POD_IP4[2,$j]}" 8080 10
done
meshd_start 1 --ca-dir "$E2E_TMP/ca"
meshd_start 2 --ca-dir "$E2E_TMP/ca"
meshctl_at 1 enroll default/pod-1-1 --netns "/run/netns/${POD_NS[1,1]}" --sa sa-1-1 --ip "${POD_IP4[1,1]}" --ip "${POD_IP6[1,1]}" >/dev/null
for j in 1 2 3; do
    meshctl_at 2 enroll "default/pod-2-$j" --netns "/run/netns/${POD_NS[2,$j]}" --sa "sa-2-$j" --ip "${POD_IP4[2,$j]}" --ip "${POD_IP6[2,$j]}" >/dev/null
done

# rule YAML: the DestinationRule for echo on node 1 (where routing happens).
rule() {
    printf 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: echo}\nspec:\n  host: echo\n  trafficPolicy:\n%s\n' "$1" \
        >"$E2E_TMP/rule.yaml"
    config_apply 1 mv "$E2E_TMP/rule.yaml" "$E2E_TMP/config-1/rule.yaml"
}
# echo_vs RETRIES: echo's VirtualService on node 1, an http route with them.
echo_vs() {
    printf 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: echo}\nspec:\n  hosts: [echo]\n  http:\n  - route: [{destination: {host: echo}}]\n    retries: %s\n' "$1" \
        >"$E2E_TMP/vs.yaml"
    config_apply 1 mv "$E2E_TMP/vs.yaml" "$E2E_TMP/config-1/vs.yaml"
}
count() { in_pod "1,1" /usr/bin/python3 tests/e2e/lib/tally.py count "$VIP" 80 "$@"; }
hold() { # NAME: a connection held open until $E2E_TMP/NAME.flag exists
    topo_spawn "${POD_NS[1,1]}" "$E2E_TMP/$1.log" /usr/bin/python3 tests/e2e/lib/tally.py hold "$VIP" 80 "$E2E_TMP/$1.flag" >/dev/null
    for _ in $(seq 1 50); do [ -s "$E2E_TMP/$1.log" ] && return 0; sleep 0.1; done
}
release() { # NAME
    touch "$E2E_TMP/$1.flag"
    for _ in $(seq 1 50); do grep -q '^echo:' "$E2E_TMP/$1.log" && return 0; sleep 0.1; done
}

# timed CMD...: CMD's output in $c, how long it took in $ms.
timed() {
    local t0
    t0=$(date +%s%N)
    c=$("$@")
    ms=$((($(date +%s%N) - t0) / 1000000))
}
blackhole() { # I J: pod-I-J's node-side link silently drops everything
    ip netns exec "${NODE_NS[$1]}" tc qdisc add dev "${POD_HOST_IF[$1,$2]}" clsact
    ip netns exec "${NODE_NS[$1]}" tc filter add dev "${POD_HOST_IF[$1,$2]}" egress bpf da \
        obj "$MESHD_BUILD/tests/bpf/blackhole.bpf.o" sec tc
}

t_begin "ROUND_ROBIN spreads evenly"
rule '    loadBalancer: {simple: ROUND_ROBIN}'
c=$(count 300)
echo "    $c"
t_expect_eq "$(jq -c '[.["e1"], .["e2"], .["e3"], .failed]' <<<"$c")" "[100,100,100,0]" "100 connections each"

t_begin "consistentHash on the source IP pins the client"
rule '    loadBalancer: {consistentHash: {useSourceIp: true}}'
c=$(count 100)
echo "    $c"
t_expect_eq "$(jq '[to_entries[] | select(.key != "failed" and .value > 0)] | length' <<<"$c")" 1 "one endpoint got every connection"
t_expect_eq "$(jq '[.[]] | add' <<<"$c")" 100 "none failed"

t_begin "LEAST_REQUEST follows load"
rule '    loadBalancer: {simple: ROUND_ROBIN}'
hold h1
hold h2
busy=$(cat "$E2E_TMP/h1.log" "$E2E_TMP/h2.log" | sort | tr '\n' ' ')
t_expect_ok "two held connections on two endpoints ($busy)" test "$(head -1 "$E2E_TMP/h1.log")" != "$(head -1 "$E2E_TMP/h2.log")"
free=$(printf 'e1\ne2\ne3\n' | grep -vxF -f <(cat "$E2E_TMP/h1.log" "$E2E_TMP/h2.log"))
rule '    loadBalancer: {simple: LEAST_REQUEST}'
# 50 ms apart: each short connection's close is counted before the next.
c=$(count 20 50)
echo "    $c"
t_expect_eq "$(jq -r ".[\"$free\"]" <<<"$c")" 20 "every new connection goes to the idle endpoint ($free)"

t_begin "maxConnections: the overflow is refused (UO) and counted; it recovers"
rule '    connectionPool: {tcp: {maxConnections: 2}}'
c=$(count 1)
echo "    $c"
t_expect_eq "$(jq -r .failed <<<"$c")" 1 "a third connection is refused"
uo=$(connections_json 1 | jq '[.[] | select(.response_flags == "UO")] | length')
t_expect_eq "$uo" 1 "recorded with response flag UO"
t_expect_eq "$(meshctl_at 1 -o json status | jq -r .mesh.refused_overflow)" 1 "counted"
release h1
c=$(count 1)
t_expect_eq "$(jq -r .failed <<<"$c")" 0 "one closed: a new one is admitted"
release h2

t_begin "outlier detection ejects a failing endpoint and lets it back"
# Long enough for the counts below to run while e3 is out (emulated
# kernels, vmtest, are ~10x slower).
eject_s=$([ "${MESHVM_TCG:-0}" = 1 ] && echo 30 || echo 3)
rule "    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {consecutiveGatewayErrors: 2, interval: 1s, baseEjectionTime: ${eject_s}s, maxEjectionPercent: 100}"
topo_kill "$SERVER_PID_3" TERM # e3 now refuses: its HBONE server answers 503
c=$(count 12)
echo "    before ejection: $c"
t_expect_eq "$(jq -r .failed <<<"$c")" 2 "two failures reach e3, then it is ejected"
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "ejected after 2 consecutive connect failures (1 time)" "logged"
c=$(count 30)
echo "    while ejected: $c"
t_expect_eq "$(jq -c '[.failed, (.["e3"] // 0)]' <<<"$c")" "[0,0]" "no failure while e3 is out"
topo_spawn "${POD_NS[2,3]}" "$E2E_TMP/tally-e3b.log" /usr/bin/python3 tests/e2e/lib/tally.py serve 8080 e3 >/dev/null
topo_wait_tcp "${POD_NS[2,3]}" "${POD_IP4[2,3]}" 8080 10
sleep "$eject_s.5" # the ejection time passes
c=$(count 30)
echo "    after the ejection time: $c"
t_expect_eq "$(jq -r '.["e3"] // 0' <<<"$c")" 10 "e3 is back in the rotation"
t_expect_eq "$(meshctl_at 1 -o json status | jq -r .mesh.ejections)" 1 "one ejection counted"

t_begin "retries: the app sees no failure while an endpoint refuses"
topo_kill "$TOPO_LAST_PID" TERM # e3 refuses again
rule '    loadBalancer: {simple: ROUND_ROBIN}'
echo_vs '{attempts: 3, perTryTimeout: 2s}'
c=$(count 30)
echo "    with retries: $c"
t_expect_eq "$(jq -c '[.failed, (.["e3"] // 0)]' <<<"$c")" "[0,0]" "no failure reaches the app; e3 never answers"
t_expect_ok "failed attempts were retried on another endpoint" test "$(meshctl_at 1 -o json status | jq -r .connections.retries)" -ge 10

t_begin "perTryTimeout: an attempt that hangs is abandoned for another endpoint"
# e3's node-side link now drops everything: the HBONE connect hangs.
blackhole 2 3
echo_vs '{attempts: 2, perTryTimeout: 300ms}'
timeouts0=$(meshctl_at 1 -o json status | jq -r .connections.timeouts)
timed count 6
echo "    with perTryTimeout: $c in ${ms} ms"
t_expect_eq "$(jq -c '[.failed, (.["e3"] // 0)]' <<<"$c")" "[0,0]" "no failure reaches the app"
t_expect_ok "each hung attempt was cut at ~300 ms (6 connections in ${ms} ms)" test "$ms" -lt 4000
t_expect_ok "timeouts counted" test "$(meshctl_at 1 -o json status | jq -r .connections.timeouts)" -gt "$timeouts0"

t_begin "retries for plain-TCP endpoints: an endpoint outside the mesh refuses"
# Service "plain" has two endpoints outside the mesh on node 1: pod-1-3
# serves, pod-1-2 has nothing listening (each connect there is reset).
topo_spawn "${POD_NS[1,3]}" "$E2E_TMP/tally-p3.log" /usr/bin/python3 tests/e2e/lib/tally.py serve 8080 p3 >/dev/null
topo_wait_tcp "${POD_NS[1,3]}" "${POD_IP4[1,3]}" 8080 10
plain_yaml() { # RETRIES-YAML
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: plain}\n'
    printf 'spec: {clusterIP: 10.96.0.22, selector: {app: plain}, ports: [{port: 80, targetPort: 8080}]}\n'
    for j in 2 3; do
        # pod-1-2 is also the next test's "slow" endpoint.
        printf -- '---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-1-%s\n' "$j"
        printf '  labels: {app: plain, pod: pod-1-%s, istio.io/dataplane-mode: none}\n' "$j"
        printf 'status: {podIP: %s}\n' "${POD_IP4[1,$j]}"
    done
    printf -- '---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: plain}\n'
    printf 'spec: {host: plain, trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}}\n'
    printf -- '---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: plain}\n'
    printf 'spec:\n  hosts: [plain]\n%s\n' "$1"
}
apply_plain() { # RETRIES-YAML
    plain_yaml "$1" >"$E2E_TMP/plain.yaml"
    config_apply 1 mv "$E2E_TMP/plain.yaml" "$E2E_TMP/config-1/plain.yaml"
}
count_plain() { in_pod "1,1" /usr/bin/python3 tests/e2e/lib/tally.py count 10.96.0.22 80 "$@"; }
# A tcp route has no retries: half the connections fail.
apply_plain '  tcp: [{route: [{destination: {host: plain}}]}]'

c=$(count_plain 20)
echo "    without retries: $c"
t_expect_eq "$(jq -c '[.failed, .["p3"]]' <<<"$c")" "[10,10]" "round robin sends every other connection to the refusing endpoint"
retries0=$(meshctl_at 1 -o json status | jq -r .connections.retries)
apply_plain '  http: [{route: [{destination: {host: plain}}], retries: {attempts: 2}}]'
c=$(count_plain 20)
echo "    with retries: $c"
t_expect_eq "$(jq -c '[.failed, .["p3"]]' <<<"$c")" "[0,20]" "no failure reaches the app"
t_expect_ok "refused attempts were retried on the other endpoint" test "$(meshctl_at 1 -o json status | jq -r .connections.retries)" -ge $((retries0 + 10))
rec=$(connections_json 1 | jq -c '[.[] | select(.original_dst == "10.96.0.22:80")] | last')
t_expect_eq "$(jq -r '.upstream + " " + .response_flags' <<<"$rec")" "${POD_IP4[1,3]}:8080 -" "the record names the endpoint that answered"

t_begin "perTryTimeout for plain-TCP endpoints: a hung connect is abandoned"
# pod-1-2 now silently drops everything (also the next test's endpoint).
blackhole 1 2
apply_plain '  http: [{route: [{destination: {host: plain}}], retries: {attempts: 2, perTryTimeout: 300ms}}]'
timeouts0=$(meshctl_at 1 -o json status | jq -r .connections.timeouts)
timed count_plain 6
echo "    with perTryTimeout: $c in ${ms} ms"
t_expect_eq "$(jq -c '[.failed, .["p3"]]' <<<"$c")" "[0,6]" "no failure reaches the app"
t_expect_ok "each hung attempt was cut at ~300 ms (6 connections in ${ms} ms)" test "$ms" -lt 4000
t_expect_ok "timeouts counted" test "$(meshctl_at 1 -o json status | jq -r .connections.timeouts)" -ge $((timeouts0 + 3))

t_begin "connectTimeout bounds a connect to an endpoint that never answers"
# pod-1-2 is outside the mesh (plain TCP) and drops everything (above).
{
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: slow}\n'
    printf 'spec: {clusterIP: 10.96.0.21, selector: {pod: pod-1-2}, ports: [{port: 80, targetPort: 8080}]}\n'
    printf -- '---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: slow}\n'
    printf 'spec:\n  host: slow\n  trafficPolicy:\n    connectionPool:\n      tcp:\n        connectTimeout: 300ms\n'
    printf '        tcpKeepalive: {time: 30s, interval: 5s, probes: 3}\n'
} >"$E2E_TMP/slow.yaml"
config_apply 1 mv "$E2E_TMP/slow.yaml" "$E2E_TMP/config-1/slow.yaml"
timed in_pod "1,1" /usr/bin/python3 tests/e2e/lib/tally.py count 10.96.0.21 80 1
t_expect_eq "$(jq -r .failed <<<"$c")" 1 "the connection fails"
# The kernel checks the timeout when the first SYN retransmission is due
# (1 s); without it, six retransmissions take over two minutes.
t_expect_ok "within 3 s (${ms} ms)" test "$ms" -lt 3000
rec=$(connections_json 1 | jq -c '[.[] | select(.original_dst == "10.96.0.21:80")][0]')
t_expect_eq "$(jq -r '.response_flags + " " + .error' <<<"$rec")" "UF Connection timed out" "recorded: UF, timed out"

meshd_check_logs
t_summary
