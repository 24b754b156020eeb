#!/usr/bin/env bash
# gRPC and HTTP/2 upstreams behind the ingress gateway's h2 edge (issue
# 17): a real gRPC client (@grpc/grpc-js over TLS, ALPN h2) to the seed's
# Gateway (app.example.com, SIMPLE TLS, credentialName app-tls) on node
# 1's gateway pod, routed per request by the seed's VirtualService (two
# gRPC routes added before its prefix /) to gRPC servers on node 2
# (grpc_echo.js) through HBONE, as HTTP/2 end to end:
#
#   client (pod 1,3) --TLS h2--> gateway (pod 1,1) --HBONE h2--> grpc-echo (pod 2,1)
#                                                \--HBONE h2--> grpc-app (pod 2,2)
#                                                \--HBONE HTTP/1.1--> my-service (pod 2,3)
#
#  - the route's per-request policy on gRPC: a header edit, a timeout
#    (504 UT at the gateway: UNAVAILABLE), the edge's x-forwarded-proto;
#  - a port named grpc (grpc-echo) and one named otherwise with
#    appProtocol: grpc (grpc-app) both get HTTP/2 (a gRPC server refuses
#    anything else): unary calls with grpc-status 0 in the trailers, a
#    server's error status and message passed through;
#  - a server-streaming call of 2 MiB and a client-streaming call of
#    2 MiB (far past the 64 KiB stream windows: flow control end to end),
#    a client-streaming call the server fails, a bidirectional ping-pong
#    (each message sent after the previous one's echo: streaming both
#    ways, not buffered);
#  - curl --http2 to the seed's my-service (HTTP/1.1 only, a port named
#    http) still served, as HTTP/1.1 (my-service sees HTTP/1.1);
#  - telemetry at the gateway: reporter=source, the gateway's labels,
#    request_protocol grpc with grpc_response_status; the destination
#    counts the gRPC requests too (its h2 session served them);
#  - a capture on node 2's underlay: only 15008 toward the backends.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh
source tests/e2e/lib/gateway_seed.sh

VIP_E=10.96.0.41 # grpc-echo: port named grpc
VIP_A=10.96.0.42 # grpc-app: port named rpc, appProtocol grpc
VIP_P=10.96.0.43 # plain: my-service's pod on an unnamed port (L4 at the destination)
NODE_BIN=$(command -v node)
seed_topology
for i in 1 2; do
    d="$E2E_TMP/config-$i"
    sed -i 's/app: app-2-1/app: grpc-echo/' "$d/pod-2-1.yaml"
    sed -i 's/app: app-2-2/app: grpc-app/' "$d/pod-2-2.yaml"
    sed -i 's/app: app-2-3/app: my-service/' "$d/pod-2-3.yaml"
    # Two gRPC routes before the seed's prefix /: by the x-backend header,
    # then by the Echo service's path.
    python3 - "$d/gateway-seed.yaml" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
old = "  http:\n  - match:\n    - uri:\n        prefix: /  "
new = """  http:
  - match:
    - headers: {x-backend: {exact: plain}}
    route:
    - destination: {host: plain.default.svc.cluster.local, port: {number: 80}}
  - match:
    - headers: {x-backend: {exact: app}}
    route:
    - destination: {host: grpc-app.default.svc.cluster.local, port: {number: 7070}}
  - match:
    - uri: {prefix: /meshd.test.Echo/}
    timeout: 2s
    headers: {request: {set: {x-edge-route: grpc-echo}}}
    route:
    - destination: {host: grpc-echo.default.svc.cluster.local, port: {number: 50051}}
  - match:
    - uri:
        prefix: /  """
assert old in s
open(p, "w").write(s.replace(old, new, 1))
PY
    cat >"$d/grpc.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: grpc-echo, namespace: default}
spec:
  clusterIP: $VIP_E
  selector: {app: grpc-echo}
  ports: [{name: grpc, port: 50051, targetPort: 50051}]
---
apiVersion: v1
kind: Service
metadata: {name: grpc-app, namespace: default}
spec:
  clusterIP: $VIP_A
  selector: {app: grpc-app}
  ports: [{name: rpc, appProtocol: grpc, port: 7070, targetPort: 50052}]
---
apiVersion: v1
kind: Service
metadata: {name: plain, namespace: default}
spec:
  clusterIP: $VIP_P
  selector: {app: my-service}
  ports: [{port: 80, targetPort: 8080}]
YAML
done

meshd_start 1 --ca-dir "$E2E_TMP/ca" --access-log
meshd_start 2 --ca-dir "$E2E_TMP/ca" --access-log
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/grpc-echo.log" "$NODE_BIN" tests/e2e/lib/grpc_echo.js serve 50051 echo >/dev/null
topo_spawn "${POD_NS[2,2]}" "$E2E_TMP/grpc-app.log" "$NODE_BIN" tests/e2e/lib/grpc_echo.js serve 50052 app >/dev/null
topo_spawn "${POD_NS[2,3]}" "$E2E_TMP/my-service.log" /usr/bin/python3 tests/e2e/lib/httpd.py 8080 my-service \
    "$E2E_TMP/my-service.req" >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 50051 15
topo_wait_tcp "${POD_NS[2,2]}" "${POD_IP4[2,2]}" 50052 15
topo_wait_tcp "${POD_NS[2,3]}" "${POD_IP4[2,3]}" 8080 10
seed_gateway_enroll 1 1 1
for j in 1 2 3; do enroll_pod 2 2 "$j" "sa-2-$j"; done
GW=${POD_IP4[1,1]}
# Served once the gateway pod is enrolled: the first HTTPS request, waited for (10 s).
for _ in $(seq 1 50); do
    [ "$(seed_gateway_curl "1,3" 1 1 /ready -o /dev/null -w '%{http_code}' || true)" = 200 ] && break
    sleep 0.2
done

# grpcc BACKEND MODE ARGS...: the gRPC client in pod (1,3), outside the mesh.
grpcc() {
    in_pod "1,3" timeout 30 "$NODE_BIN" tests/e2e/lib/grpc_edge.js "$GW:8443" "$SEED_PKI/ca.pem" \
        app.example.com "$@"
}

# Node 2's underlay, for the whole gRPC part: which ports reach its pods.
cap="$E2E_TMP/underlay-2.pcap"
topo_spawn "${NODE_NS[2]}" "$E2E_TMP/tshark.log" tshark -q -i "${NODE_UNDERLAY_IF[2]}" -f tcp -w "$cap" >/dev/null
tshark_pid=$TOPO_LAST_PID
for _ in $(seq 1 600); do grep -q "Capturing on" "$E2E_TMP/tshark.log" 2>/dev/null && break; sleep 0.1; done

t_begin "unary gRPC over the h2 edge: grpc-status in the trailers, a server's error passed through"
out=$(grpcc echo unary hello 20)
echo "    $out"
t_expect_eq "$(jq -c '[.ok, .codes, .servers]' <<<"$out")" '[20,{"0":20},{"echo":20}]' \
    "20 calls to the port named grpc answered by grpc-echo, status 0"
out=$(grpcc app unary hello 5)
echo "    $out"
t_expect_eq "$(jq -c '[.ok, .servers]' <<<"$out")" '[5,{"app":5}]' \
    "the x-backend route to the appProtocol grpc port: grpc-app, over HTTP/2 too"
out=$(grpcc echo unary fail:5 3)
echo "    $out"
t_expect_eq "$(jq -c '[.codes, .details]' <<<"$out")" '[{"5":3},"failed as asked"]' \
    "the server's NOT_FOUND and its grpc-message reach the client"

t_begin "the route's policy applies per gRPC request: a header edit, the timeout (2 s)"
t_expect_eq "$(grpcc echo unary meta:x-edge-route 1 | jq -r .text)" grpc-echo \
    "the route's request header set reached the server"
t_expect_eq "$(grpcc echo unary meta:x-forwarded-proto 1 | jq -r .text)" https "x-forwarded-proto: https (the edge's)"
out=$(grpcc echo unary sleep:3000 1)
echo "    $out"
t_expect_eq "$(jq -c '.codes | keys' <<<"$out")" '["14"]' "a call past the route's timeout: UNAVAILABLE (the gateway's 504)"
t_expect_eq "$(grpcc echo unary sleep:200 1 | jq -r .text)" late "one within it is answered"

t_begin "streaming through the edge: server and client streams past the windows, a bidirectional ping-pong"
out=$(grpcc echo server-stream 128 16384)
echo "    $out"
t_expect_eq "$(jq -c '[.code, .messages, .bytes]' <<<"$out")" '[0,128,2097152]' \
    "server streaming: 128 messages of 16 KiB (2 MiB), status 0"
out=$(grpcc echo client-stream 128 16384)
echo "    $out"
t_expect_eq "$(jq -c '[.code, .text]' <<<"$out")" '[0,"128:2097152"]' \
    "client streaming: the server counted 128 messages, 2 MiB"
out=$(grpcc echo client-stream 3 10 fail:9)
echo "    $out"
t_expect_eq "$(jq -c '[.code, .details]' <<<"$out")" '[9,"failed as asked"]' \
    "a client stream the server fails: FAILED_PRECONDITION (9) passed through"
out=$(grpcc echo bidi 50)
echo "    $out"
t_expect_eq "$(jq -c '[.code, .echoed, .inorder]' <<<"$out")" '[0,50,true]' \
    "bidirectional: 50 messages each echoed before the next was sent, in order"

t_begin "curl --http2 to the HTTP/1.1 backend (my-service, port named http) is served as HTTP/1.1"
r=$(seed_gateway_curl "1,3" 1 1 /h2/plain --http2 -o /dev/null -w '%{http_version} %{http_code}')
t_expect_eq "$r" "2 200" "the client speaks h2 and gets 200"
t_expect_contains "$(cat "$E2E_TMP/my-service.req" 2>/dev/null)" "/h2/plain" "my-service got the request"
r=$(seed_gateway_curl "1,3" 1 1 /h1/plain --http1.1 -o /dev/null -w '%{http_version} %{http_code}')
t_expect_eq "$r" "1.1 200" "and an HTTP/1.1 client too"

topo_kill "$tshark_pid" TERM
t_begin "node 2's underlay: only HBONE (15008) toward the backends, no gRPC path in plaintext"
to_pods="ip.dst==${POD_IP4[2,1]} or ip.dst==${POD_IP4[2,2]} or ip.dst==${POD_IP4[2,3]}"
ports=$(tshark -r "$cap" -T fields -e tcp.dstport -Y "$to_pods" 2>/dev/null | sort -u | tr '\n' ' ')
t_expect_eq "$ports" "15008 " "destination ports toward node 2's pods"
t_expect_eq "$(grep -ac "meshd.test.Echo" "$cap" || true)" 0 "the gRPC method never appears in plaintext"

t_begin "telemetry: the gateway reports gRPC as reporter=source with its labels; the destination counts it"
m1=$(ip netns exec "${NODE_NS[1]}" curl -s -m 5 "http://${NODE_IP4[1]}:15020/metrics")
src=$(grep '^istio_requests_total{reporter="source"' <<<"$m1" | grep 'source_workload="istio-ingressgateway"' |
    grep 'request_protocol="grpc"' || true)
t_expect_contains "$src" 'destination_service_name="grpc-echo"' "gRPC to grpc-echo counted at the gateway"
t_expect_contains "$src" 'grpc_response_status="5"' "with grpc_response_status 5 for the failed calls"
t_expect_contains "$src" 'grpc_response_status="0"' "and 0 for the others"
t_expect_contains "$src" 'destination_service_name="grpc-app"' "gRPC to grpc-app too"
t_expect_contains "$(grep '^istio_requests_total{reporter="source"' <<<"$m1" |
    grep 'destination_service_name="my-service"')" 'response_code="200"' "the HTTP/1.1 backend's requests too"
m2=$(ip netns exec "${NODE_NS[2]}" curl -s -m 5 "http://${NODE_IP4[2]}:15020/metrics")
t_expect_contains "$(grep '^istio_requests_total{reporter="destination"' <<<"$m2" | grep 'request_protocol="grpc"')" \
    'destination_service_name="grpc-echo"' "grpc-echo's node served them as gRPC (HTTP/2 at the destination)"

t_begin "the destination's policy denies the gateway: 403 to the h2 client, PERMISSION_DENIED to gRPC"
deny() {
    local app
    for app in my-service grpc-app; do
        cat <<YAML
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-gateway-$app, namespace: default}
spec:
  selector: {matchLabels: {app: $app}}
  action: DENY
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"]}
YAML
    done >"$E2E_TMP/deny.yaml"
    mv "$E2E_TMP/deny.yaml" "$E2E_TMP/config-2/deny.yaml"
}
t_expect_ok "node 2 applies the policy" config_apply 2 deny
r=$(seed_gateway_curl "1,3" 1 1 /denied/plain --http2 -H "x-backend: plain" -w ' %{http_code}')
t_expect_eq "$r" "RBAC: access denied 403" \
    "unnamed port (the tunnel refused, 401): the gateway answers the h2 client 403 over HTTP/1.1's path"
r=$(seed_gateway_curl "1,3" 1 1 /denied/http --http2 -o /dev/null -w '%{http_code}')
t_expect_eq "$r" 403 "port named http (refused per request at the destination): 403"
out=$(grpcc app unary hello 1)
echo "    $out"
t_expect_eq "$(jq -c .codes <<<"$out")" '{"7":1}' "gRPC to grpc-app: PERMISSION_DENIED (7)"
t_expect_eq "$(jq -r .ok <<<"$(grpcc echo unary hello 1)")" 1 "grpc-echo, not selected, still served"

meshd_check_logs
t_summary
