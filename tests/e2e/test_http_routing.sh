#!/usr/bin/env bash
# HTTP in the node agent (issue 15): requests, not connections, are routed.
#  - the seed's payments canary as written (unnamed port 80, sniffed as
#    HTTP): 2,000 requests over 4 keep-alive connections split 99/1 per
#    request; after an edit to 50/50 every connection sees both versions;
#  - header and path matches choose subsets, first match wins;
#  - a 503-answering endpoint is retried on another: the client sees 200;
#  - at the destination an app's 503 is passed on, never retried there;
#  - fault abort and delay, a route timeout (504 UT);
#  - a server-first protocol on the same unnamed port still works (bytes).
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh
source tests/e2e/lib/workloads.sh

VIP=10.96.0.10     # payments (the seed's)
VIP_R=10.96.0.11   # reviews: matches
VIP_F=10.96.0.12   # flaky: retries
topo_init
topo_create 2 3
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null


write_config() {
    local d=$1
    mkdir -p "$d"
    printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n  labels: {istio.io/dataplane-mode: ambient}\n' >"$d/namespace.yaml"
    {
        pod_yaml 1 1 '{app: client, version: v1}' client
        pod_yaml 2 1 '{app: payments, version: v1}' payments-v1
        pod_yaml 1 2 '{app: payments, version: v2}' payments-v2
        pod_yaml 2 2 '{app: flaky, version: good}' flaky
        pod_yaml 2 3 '{app: flaky, version: bad}' flaky
    } >"$d/pods.yaml"
    sed "s/^  selector:\$/  clusterIP: $VIP\n  selector:/" deploy/examples/payments-canary.yaml >"$d/payments-canary.yaml"
    cat >"$d/routes.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  clusterIP: $VIP_R
  selector: {app: payments}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - name: jason
    match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - name: abort
    match: [{uri: {prefix: /teapot}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: reviews, subset: v1}}]
  - name: slow
    match: [{uri: {prefix: /slow}}]
    fault: {delay: {fixedDelay: 1s, percentage: {value: 100}}}
    route: [{destination: {host: reviews, subset: v1}}]
  - name: timeout
    match: [{uri: {prefix: /delay}}]
    timeout: 500ms
    route: [{destination: {host: reviews, subset: v1}}]
  - name: mirrored
    match: [{uri: {prefix: /mirrored}}]
    route: [{destination: {host: reviews, subset: v1}}]
    mirror: {host: reviews, subset: v2}
    mirrorPercentage: {value: 100}
  - name: v2-path
    match: [{uri: {regex: "/api/v[2]/.*"}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
    corsPolicy:
      allowOrigins: [{exact: "https://shop.example"}]
      allowMethods: [GET, POST]
      allowHeaders: [x-custom]
      exposeHeaders: [x-served-by]
      maxAge: 1h
      allowCredentials: true
---
apiVersion: v1
kind: Service
metadata: {name: flaky, namespace: default}
spec:
  clusterIP: $VIP_F
  selector: {app: flaky}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: slow, namespace: default}
spec:
  clusterIP: 10.96.0.13
  selector: {app: flaky, version: good}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: slow, namespace: default}
spec:
  host: slow
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1}
---
apiVersion: v1
kind: Service
metadata: {name: budget, namespace: default}
spec:
  clusterIP: 10.96.0.15
  selector: {app: flaky}
  ports: [{name: http, port: 80, targetPort: 8081}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: budget, namespace: default}
spec:
  host: budget
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool:
      http: {maxRetries: 1, idleTimeout: 1s}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  clusterIP: 10.96.0.16
  selector: {app: payments, version: v1}
  ports: [{name: http, port: 80, targetPort: 8082}]
YAML
}
for i in 1 2; do write_config "$E2E_TMP/config-$i"; done
meshd_start 1 --ca-dir "$E2E_TMP/ca"
meshd_start 2 --ca-dir "$E2E_TMP/ca"
enroll_pod 1 1 1 client
enroll_pod 1 1 2 payments-v2
enroll_pod 2 2 1 payments-v1
enroll_pod 2 2 2 flaky
enroll_pod 2 2 3 flaky
backend() { # I J NAME [PORT]
    local port=${4:-8080}
    topo_spawn "${POD_NS[$1,$2]}" "$E2E_TMP/httpd-$1-$2-$port.out" /usr/bin/python3 tests/e2e/lib/httpd.py "$port" "$3" \
        "$E2E_TMP/httpd-$1-$2${4:+-$4}.log" >/dev/null
    topo_wait_tcp "${POD_NS[$1,$2]}" "${POD_IP4[$1,$2]}" "$port" 10
}
backend 2 1 v1
backend 1 2 v2
backend 2 2 good
backend 2 3 fail-bad
backend 2 2 good 8081
backend 2 3 fail-bad 8081
backend 2 1 v1 8082
httpc() { in_pod "1,1" /usr/bin/python3 tests/e2e/lib/httpc.py "$@"; }

t_begin "the seed's canary per request: 2,000 requests over 4 keep-alive connections, 99/1"
counts=$(httpc count "$VIP" 80 / 2000 4)
echo "    counts: $counts"
v1=$(jq -r '.v1 // 0' <<<"$counts") v2=$(jq -r '.v2 // 0' <<<"$counts")
t_expect_eq "$(jq -r .failed <<<"$counts")" 0 "no request failed"
t_expect_eq "$(jq -r '.status["200"]' <<<"$counts")" 2000 "every request got 200"
t_expect_eq "$(jq -r .connections <<<"$counts")" 4 "over 4 connections, kept alive throughout"
# 99.9%: |v2 - 20| <= 3.29 * sqrt(2000 * 0.01 * 0.99) = 14.6
t_expect_ok "v2 got $v2 of 2000 (expected 20 +- 14)" test "$v2" -ge 6 -a "$v2" -le 34
t_expect_eq "$((v1 + v2))" 2000 "every request reached a version"

t_begin "50/50 in the YAML: every keep-alive connection sees both versions"
fifty_fifty() {
    for i in 1 2; do
        sed -i -e 's/weight: 99/weight: 50/' -e 's/weight: 1$/weight: 50/' "$E2E_TMP/config-$i/payments-canary.yaml"
    done
}
config_apply 1 fifty_fifty
counts=$(httpc count "$VIP" 80 / 400 4)
echo "    counts: $counts"
v2=$(jq -r '.v2 // 0' <<<"$counts")
# 99.9%: |v2 - 200| <= 3.29 * sqrt(400 * 0.25) = 32.9
t_expect_ok "v2 got $v2 of 400 (expected 200 +- 33)" test "$v2" -ge 167 -a "$v2" -le 233
t_expect_eq "$(jq -c '.per_connection' <<<"$counts")" '[["v1","v2"],["v1","v2"],["v1","v2"],["v1","v2"]]' \
    "each of the 4 connections was served by both"

t_begin "matches: a header and a regex path choose v2, the rest v1"
t_expect_eq "$(httpc count "$VIP_R" 80 / 20 2 end-user:jason | jq -c '{v1, v2}')" '{"v1":null,"v2":20}' "end-user: jason -> v2"
t_expect_eq "$(httpc count "$VIP_R" 80 /api/v2/items 20 2 | jq -c '{v1, v2}')" '{"v1":null,"v2":20}' "/api/v2/... -> v2"
t_expect_eq "$(httpc count "$VIP_R" 80 /api/v3/items 20 2 | jq -c '{v1, v2}')" '{"v1":20,"v2":null}' "anything else -> v1"

t_begin "corsPolicy: an allowed origin's preflight answered by meshd, its requests get the headers"
pre=$(HTTPC_METHOD=OPTIONS httpc get "$VIP_R" 80 /cors Origin:https://shop.example Access-Control-Request-Method:POST)
t_expect_eq "$(jq -r .status <<<"$pre")" 200 "preflight: 200"
t_expect_eq "$(jq -r '.headers["access-control-allow-origin"]' <<<"$pre")" "https://shop.example" "the origin allowed"
t_expect_eq "$(jq -r '.headers["access-control-allow-methods"] + " " + .headers["access-control-max-age"]' <<<"$pre")" \
    "GET,POST 3600" "methods and max age"
t_expect_not_contains "$(cat "$E2E_TMP/httpd-2-1.log")" '"OPTIONS"' "the preflight never reached the app"
got=$(httpc get "$VIP_R" 80 /cors Origin:https://shop.example)
t_expect_eq "$(jq -r '.headers["access-control-allow-origin"] + " " + .headers["access-control-expose-headers"]' <<<"$got")" \
    "https://shop.example x-served-by" "a request from the allowed origin gets the CORS headers"
t_expect_eq "$(httpc get "$VIP_R" 80 /cors Origin:https://evil.example | jq -r '.headers["access-control-allow-origin"] // "none"')" \
    none "another origin gets none"

t_begin "faults and timeouts"
t_expect_eq "$(httpc get "$VIP_R" 80 /teapot | jq -r .status)" 418 "abort: 418 from the fault"
t_expect_not_contains "$(cat "$E2E_TMP/httpd-2-1.log")" '"/teapot"' "an aborted request never reached the app"
start=$(date +%s%N)
t_expect_eq "$(httpc get "$VIP_R" 80 /slow | jq -r .status)" 200 "delay: answered"
ms=$((($(date +%s%N) - start) / 1000000))
t_expect_ok "after the 1 s delay (took $ms ms)" test "$ms" -ge 1000
start=$(date +%s%N)
t_expect_eq "$(httpc get "$VIP_R" 80 /delay/3000 | jq -r .status)" 504 "a 3 s answer past the 500 ms timeout: 504"
ms=$((($(date +%s%N) - start) / 1000000))
t_expect_ok "within the timeout's reach (took $ms ms)" test "$ms" -lt 2500

t_begin "retries: a 503-answering endpoint is retried on the other (Istio's default policy)"
counts=$(httpc count "$VIP_F" 80 / 40 2)
echo "    counts: $counts"
t_expect_eq "$(jq -r '.status["200"]' <<<"$counts")" 40 "all 40 requests answered 200"
t_expect_eq "$(jq -r '.good' <<<"$counts")" 40 "by the good endpoint"
t_expect_ok "the bad endpoint was tried (and retried away from)" test "$(wc -l <"$E2E_TMP/httpd-2-3.log")" -ge 1

t_begin "a mirror gets a copy of each request (fire and forget)"
t_expect_eq "$(httpc get "$VIP_R" 80 /mirrored/1 | jq -r '.headers["x-served-by"]')" v1 "the request is answered by v1"
for _ in $(seq 1 30); do grep -q '"/mirrored/1"' "$E2E_TMP/httpd-1-2.log" 2>/dev/null && break; sleep 0.1; done
t_expect_contains "$(grep '"/mirrored/1"' "$E2E_TMP/httpd-1-2.log")" '-shadow' \
    "v2 received the copy, its authority marked -shadow as Envoy marks it"

t_begin "connectionPool.http: past maxConnections + http1MaxPendingRequests, 503 UO; then it recovers"
for k in 1 2 3; do
    in_pod "1,1" /usr/bin/python3 tests/e2e/lib/httpc.py get 10.96.0.13 80 /delay/1500 >"$E2E_TMP/uo-$k.json" &
    eval "uo_$k=\$!"
    sleep 0.1
done
wait "$uo_1" "$uo_2" "$uo_3" || true
codes=$(cat "$E2E_TMP"/uo-*.json | jq -r .status | sort | tr '\n' ' ')
t_expect_eq "$codes" "200 200 503 " "two in flight (one connection, one pending), the third overflows"
t_expect_contains "$(cat "$E2E_TMP"/uo-*.json)" "overflow" "Envoy's overflow reply"
t_expect_eq "$(httpc get 10.96.0.13 80 /x | jq -r .status)" 200 "once they finished, requests are served again"

t_begin "connectionPool.http maxRetries: 1 retry in flight for the cluster; past it the failure stands"
# Round robin over a 503-answering endpoint and a slow good one: the first
# request that meets the bad one is retried (on the good one, 1.5 s, so its
# retry stays in flight); the others that meet it while it is get its 503.
for k in 1 2 3 4 5 6; do
    in_pod "1,1" /usr/bin/python3 tests/e2e/lib/httpc.py get 10.96.0.15 80 /delay/1500 >"$E2E_TMP/budget-$k.json" &
    eval "budget_$k=\$!"
    sleep 0.1
done
wait "$budget_1" "$budget_2" "$budget_3" "$budget_4" "$budget_5" "$budget_6" || true
codes=$(cat "$E2E_TMP"/budget-*.json | jq -r .status | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')
echo "    status:count $codes"
ok=$(cat "$E2E_TMP"/budget-*.json | jq -r .status | grep -c '^200$' || true)
refused=$(cat "$E2E_TMP"/budget-*.json | jq -r .status | grep -c '^503$' || true)
t_expect_ok "some answered by the good endpoint ($ok)" test "$ok" -ge 2
t_expect_ok "some met the bad one with no retry left: its 503 ($refused)" test "$refused" -ge 1
t_expect_eq "$((ok + refused))" 6 "nothing else"
t_expect_eq "$(httpc count 10.96.0.15 80 /x 10 1 | jq -r '.status["200"]')" 10 \
    "with no retry in flight, every failure is retried again"

t_begin "connectionPool.http idleTimeout: an idle upstream connection closes after it"
app_conns() { ip netns exec "${POD_NS[2,2]}" ss -Htn state established '( sport = :8081 )' | wc -l; }
t_expect_eq "$(httpc get 10.96.0.15 80 /delay/10 | jq -r .status)" 200 "a request to the good endpoint"
t_expect_ok "its upstream connection is kept for the next request ($(app_conns))" test "$(app_conns)" -ge 1
sleep 2.5
t_expect_eq "$(app_conns)" 0 "closed once idle for the DestinationRule's 1 s"

t_begin "the destination passes the app's own 503 on: no retry of its own, the connection kept"
# One keep-alive connection to echo (its port named http there: served
# per request at the destination, v1 across nodes): the source
# retries a 503 twice (Istio's default), the destination never; its app
# connection stays, so the next request on it is served.
seq_out=$(in_pod "1,1" /usr/bin/python3 -c "
import http.client
c = http.client.HTTPConnection('10.96.0.16', 80, timeout=10)
out = []
for p in ['/x', '/status/503', '/x', '/fail-then-ok/d1', '/x']:
    c.request('GET', p)
    r = c.getresponse()
    r.read()
    out.append(str(r.status))
print(' '.join(out))")
t_expect_eq "$seq_out" "200 503 200 200 200" "the client sees the app's answers after the source's retries"
m2=$(ip netns exec "${NODE_NS[2]}" curl -s -m 5 "http://${NODE_IP4[2]}:15020/metrics" |
    grep '^istio_requests_total{reporter="destination"' | grep 'destination_app="payments"' |
    grep 'destination_version="v1"' || true)
n503=$(grep 'response_code="503"' <<<"$m2" | grep 'response_flags="-"' | awk '{s += $NF} END {print s + 0}' || true)
t_expect_eq "$n503" 4 "the destination counts the app's 503s (3 attempts, then 1), flagged -"
t_expect_eq "$(grep -c 'response_flags="U' <<<"$m2" || true)" 0 "and no local 503 UF/URX of its own"

t_begin "a server-first protocol on the unnamed port still gets through as bytes"
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/tally-v1.log" /usr/bin/python3 tests/e2e/lib/tally.py serve 9090 banner >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 9090 10
out=$(in_pod "1,1" /usr/bin/python3 -c "
import socket,sys
c = socket.create_connection(('${POD_IP4[2,1]}', 9090), timeout=5)
print(c.recv(64).decode().strip())")
t_expect_eq "$out" "banner" "the server spoke first; the client got its banner after the sniffing wait"

meshd_check_logs
t_summary
