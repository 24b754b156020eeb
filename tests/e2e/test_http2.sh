#!/usr/bin/env bash
# HTTP/2 and gRPC in the node agent (issue 15): h2c prior-knowledge clients
# are carried stream by stream, not as bytes.
#  - curl --http2-prior-knowledge and nghttp through the mesh to an h2c
#    backend (Node's http2), on a port named http2: header edits, a fault
#    abort, a mirror;
#  - a 50/50 VirtualService split per request over ONE h2 connection
#    (h2load -c 1 -m 10): both versions, within a binomial bound;
#  - a 503-answering endpoint is retried on another (sniffed, unnamed port);
#  - an L7 DENY on a path at the destination: 403 RBAC for it while an
#    allowed path on the same connection is served;
#  - gRPC with @grpc/grpc-js on a port named grpc: calls succeed, an error
#    status shows as grpc_response_status with request_protocol="grpc".
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh
source tests/e2e/lib/workloads.sh

VIP=10.96.0.20   # web: http2-named, v1/v2
VIP_F=10.96.0.21 # flaky: unnamed (sniffed), good + broken
VIP_G=10.96.0.22 # echo: grpc-named
NODE_BIN=$(command -v node)
topo_init
topo_create 2 3
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null


write_config() {
    local d=$1
    mkdir -p "$d"
    printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n  labels: {istio.io/dataplane-mode: ambient}\n' >"$d/namespace.yaml"
    {
        pod_yaml 1 1 '{app: client, version: v1}' client
        pod_yaml 2 1 '{app: web, version: v1}' web
        pod_yaml 1 2 '{app: web, version: v2}' web
        pod_yaml 2 2 '{app: flaky, version: good}' flaky
        pod_yaml 2 3 '{app: flaky, version: bad}' flaky
    } >"$d/pods.yaml"
    cat >"$d/routes.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: $VIP
  selector: {app: web}
  ports: [{name: http2, port: 80, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: default}
spec:
  host: web
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: [web]
  http:
  - name: pinned
    match: [{uri: {prefix: /pinned}}]
    route: [{destination: {host: web, subset: v1}}]
    headers: {request: {set: {x-meshd-route: pinned}}}
  - name: mirrored
    match: [{uri: {prefix: /mirrored}}]
    route: [{destination: {host: web, subset: v1}}]
    mirror: {host: web, subset: v2}
    mirrorPercentage: {value: 100}
  - name: teapot
    match: [{uri: {prefix: /teapot}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: web, subset: v1}}]
  - route:
    - {destination: {host: web, subset: v1}, weight: 50}
    - {destination: {host: web, subset: v2}, weight: 50}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: web-deny-admin, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin*"]}}]
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
metadata: {name: echo, namespace: default}
spec:
  clusterIP: $VIP_G
  selector: {app: web, version: v1}
  ports: [{name: grpc, port: 50051, targetPort: 50051}]
YAML
}
for i in 1 2; do write_config "$E2E_TMP/config-$i"; done
meshd_start 1 --ca-dir "$E2E_TMP/ca"
meshd_start 2 --ca-dir "$E2E_TMP/ca"
enroll_pod 1 1 1 client
enroll_pod 1 1 2 web
enroll_pod 2 2 1 web
enroll_pod 2 2 2 flaky
enroll_pod 2 2 3 flaky
backend() { # I J NAME
    topo_spawn "${POD_NS[$1,$2]}" "$E2E_TMP/h2d-$1-$2.out" "$NODE_BIN" tests/e2e/lib/h2d.js 8080 "$3" \
        "$E2E_TMP/h2d-$1-$2.log" >/dev/null
    topo_wait_tcp "${POD_NS[$1,$2]}" "${POD_IP4[$1,$2]}" 8080 10
}
backend 2 1 v1
backend 1 2 v2
backend 2 2 good
backend 2 3 fail-bad
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/grpc.out" "$NODE_BIN" tests/e2e/lib/grpc_echo.js serve 50051 echo-v1 >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 50051 10
h2curl() { in_pod "1,1" curl -s -m 5 --http2-prior-knowledge "$@"; }
lines() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }

t_begin "curl --http2-prior-knowledge through the mesh: per request, answered over HTTP/2"
out=$(h2curl -o /dev/null -w '%{http_code} %{http_version}\n' "http://$VIP/pinned/a")
t_expect_eq "$out" "200 2" "200 over HTTP/2"
t_expect_contains "$(tail -n1 "$E2E_TMP/h2d-2-1.log")" '"x-meshd-route":"pinned"' \
    "the route's header edit reached the app (v1)"
t_expect_contains "$(tail -n1 "$E2E_TMP/h2d-2-1.log")" '"x-request-id"' "x-request-id was added"
t_expect_eq "$(h2curl -o /dev/null -w '%{http_code}' "http://$VIP/teapot")" 418 "a fault abort answered by meshd over HTTP/2"
t_expect_not_contains "$(cat "$E2E_TMP/h2d-2-1.log")" '"/teapot"' "the aborted request never reached the app"

t_begin "a mirror gets a copy of each HTTP/2 request (fire and forget)"
t_expect_eq "$(h2curl "http://$VIP/mirrored/1" | jq -r .name)" v1 "the request is answered by v1"
for _ in $(seq 1 30); do grep -q '"/mirrored/1"' "$E2E_TMP/h2d-1-2.log" 2>/dev/null && break; sleep 0.1; done
t_expect_contains "$(grep '"/mirrored/1"' "$E2E_TMP/h2d-1-2.log")" '-shadow' \
    "v2 received the copy, its authority marked -shadow as Envoy marks it"

t_begin "nghttp (nghttp2-client) through the mesh"
out=$(in_pod "1,1" nghttp -n -s "http://$VIP/pinned/n1" "http://$VIP/pinned/n2" 2>&1 || true)
t_expect_contains "$out" "/pinned/n2" "both requests answered on one connection"
t_expect_eq "$(grep -c '"/pinned/n' "$E2E_TMP/h2d-2-1.log")" 2 "both reached v1"

t_begin "50/50 per request over ONE h2 connection (h2load -n 400 -c 1 -m 10)"
b1=$(lines "$E2E_TMP/h2d-2-1.log") b2=$(lines "$E2E_TMP/h2d-1-2.log")
out=$(in_pod "1,1" h2load -n 400 -c 1 -m 10 "http://$VIP/split" 2>&1)
t_expect_contains "$out" "400 succeeded" "400 requests succeeded"
t_expect_contains "$out" "status codes: 400 2xx" "all 2xx"
v1=$(($(lines "$E2E_TMP/h2d-2-1.log") - b1)) v2=$(($(lines "$E2E_TMP/h2d-1-2.log") - b2))
echo "    v1=$v1 v2=$v2"
# 99.9%: |v2 - 200| <= 3.29 * sqrt(400 * 0.25) = 32.9
t_expect_ok "v2 got $v2 of 400 (expected 200 +- 33)" test "$v2" -ge 167 -a "$v2" -le 233
t_expect_eq "$((v1 + v2))" 400 "every request reached a version"

t_begin "retries: a 503-answering endpoint is retried on the other (sniffed h2, unnamed port)"
out=$(in_pod "1,1" h2load -n 40 -c 1 -m 4 "http://$VIP_F/r" 2>&1)
t_expect_contains "$out" "status codes: 40 2xx" "all 40 answered 2xx"
t_expect_ok "the broken endpoint was tried (and retried away from)" test "$(lines "$E2E_TMP/h2d-2-3.log")" -ge 1

t_begin "L7 authorization at the destination: a denied path on the same connection as allowed ones"
# (curl 7.88 cannot send a second request on a reused h2c connection: a
# Node client does the sequence.)
out=$(in_pod "1,1" "$NODE_BIN" tests/e2e/lib/h2c.js "$VIP:80" /pinned/ok /admin/x /pinned/ok2 /admin/../admin/y)
t_expect_eq "$(cut -c1-3 <<<"$out" | tr '\n' ' ')" "200 403 200 403 " \
    "200, 403, 200, 403 in turn on one connection (/admin/../admin/y normalized, denied)"
t_expect_eq "$(sed -n 2p <<<"$out")" "403 RBAC: access denied" "Envoy's body"
t_expect_not_contains "$(cat "$E2E_TMP/h2d-2-1.log" "$E2E_TMP/h2d-1-2.log")" '"/admin' \
    "the denied request reached no app"

t_begin "gRPC with @grpc/grpc-js through the mesh (port named grpc)"
grpcc() { in_pod "1,1" "$NODE_BIN" tests/e2e/lib/grpc_echo.js call "$VIP_G:50051" "$@"; }
out=$(grpcc hello 20)
echo "    $out"
t_expect_eq "$(jq -r .ok <<<"$out")" 20 "20 calls succeeded"
t_expect_eq "$(jq -r '.servers["echo-v1"]' <<<"$out")" 20 "answered by the server"
out=$(grpcc fail:5 3)
echo "    $out"
t_expect_eq "$(jq -c .codes <<<"$out")" '{"5":3}' "a server's NOT_FOUND reaches the client as 5"
m1=$(ip netns exec "${NODE_NS[1]}" curl -s -m 5 "http://${NODE_IP4[1]}:15020/metrics")
grpc_lines=$(grep '^istio_requests_total{reporter="source"' <<<"$m1" | grep 'request_protocol="grpc"' || true)
t_expect_contains "$grpc_lines" 'grpc_response_status="5"' "istio_requests_total carries grpc_response_status 5"
t_expect_contains "$grpc_lines" 'grpc_response_status="0"' "and 0 for the calls that succeeded"
t_expect_contains "$(grep '^istio_requests_total{reporter="source"' <<<"$m1" | grep 'destination_service_name="web"')" \
    'request_protocol="http"' "plain HTTP/2 requests are request_protocol http"

meshd_check_logs
t_summary
