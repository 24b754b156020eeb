#!/usr/bin/env bash
# Tracing through the ingress gateway (issue 18's acceptance): real HTTPS
# into the seed's Gateway (app.example.com, SIMPLE TLS, credentialName
# app-tls) on node 1's gateway pod, routed by the seed's VirtualService to
# my-service (service A: lib/trace_app.py on node 2, which calls service b
# propagating the trace headers), then to b (lib/httpd.py on node 1). Both
# agents export to a collector the test runs (lib/otlp_collector.py).
#
#   client (pod 1,3, outside the mesh) --HTTPS--> gateway (pod 1,1)
#     --HBONE--> my-service (pod 2,1) --HBONE--> b (pod 1,2)
#
# Checked, each request yielding four spans of one trace, each the parent
# of the next: the gateway's (CLIENT, as Istio's gateway reports its one
# span, istio-ingressgateway, upstream_cluster outbound|80||my-service...),
# my-service's SERVER and CLIENT, b's SERVER; Istio's attributes on each
# (my-service's port unnamed, the seed's YAML as written: the gateway's
# carrier says x-meshd-protocol: http, so my-service's agent serves and
# traces each request, and reports it as the destination);
# one x-request-id across them, the gateway's own (the client's replaced,
# as Envoy's edge does), and the traceparent my-service got naming its
# SERVER span as the parent.
#  - no client context: the gateway's span is the root of a new trace;
#  - a client traceparent: the gateway's span is its child, same trace,
#    tracestate passed on;
#  - the same over h2 at the edge (curl --http2: ALPN h2);
#  - a client B3 context (x-b3-*): honoured at the edge too;
#  - customTags from a request header (x-client), with its default;
#  - disableSpanReporting for my-service (its own Telemetry): its spans
#    are not reported, the trace goes on through it to b;
#  - the gateway's own Telemetry at 0% (over the mesh's 100%): nothing
#    sampled down the chain, no span from any agent.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh
source tests/e2e/lib/gateway_seed.sh
source tests/e2e/lib/trace_spans.sh

VIP_B=10.96.0.31
TRACE=4bf92f3577b34da6a3ce929d0e0e4736
CLIENT_SPAN=00f067aa0ba902b7
seed_topology
for i in 1 2; do
    d="$E2E_TMP/config-$i"
    sed -i 's/app: app-2-1/app: my-service/' "$d/pod-2-1.yaml"
    cat >"$d/b.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: b, namespace: default}
spec:
  clusterIP: $VIP_B
  selector: {app: app-1-2}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  tracing:
  - randomSamplingPercentage: 100
    customTags:
      suite: {literal: {value: e2e-gateway}}
      client: {header: {name: x-client, defaultValue: none}}
YAML
done

COLLECTOR="${NODE_IP4[1]}:4318"
COLLECTOR_NS=${NODE_NS[1]}
topo_spawn "${NODE_NS[1]}" "$E2E_TMP/collector.log" \
    /usr/bin/python3 tests/e2e/lib/otlp_collector.py "${NODE_IP4[1]}" 4318 >/dev/null
topo_wait_tcp "${NODE_NS[1]}" "${NODE_IP4[1]}" 4318 10
meshd_start 1 --ca-dir "$E2E_TMP/ca" --trace-collector "$COLLECTOR"
meshd_start 2 --ca-dir "$E2E_TMP/ca" --trace-collector "$COLLECTOR"
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/app-a.log" /usr/bin/python3 tests/e2e/lib/trace_app.py 8080 my-service \
    "http://$VIP_B/next" >/dev/null
topo_spawn "${POD_NS[1,2]}" "$E2E_TMP/app-b.log" /usr/bin/python3 tests/e2e/lib/httpd.py 8080 b "$E2E_TMP/b.log" >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 8080 10
topo_wait_tcp "${POD_NS[1,2]}" "${POD_IP4[1,2]}" 8080 10
seed_gateway_enroll 1 1 1
enroll_pod 2 2 1 sa-2-1
enroll_pod 1 1 2 sa-1-2

# gw_call [CURL ARGS...]: HTTPS from pod (1,3), outside the mesh, to the
# gateway pod as app.example.com; prints what my-service received (its
# JSON body), then the status.
gw_call() { seed_gateway_curl "1,3" 1 1 /hello -w '\n%{http_code}\n' "$@"; }
# The chain from the span whose parent is FIRST_PARENT ("" = the root):
# one line a hop, then what every hop must carry.
chain() { # SPANS_JSON FIRST_PARENT
    span_chain "$2" <<<"$1" | jq -r --argjson n "$(jq length <<<"$1")" "$span_kind"'
        (.[] | .attributes as $a | [span_kind, ($a.node_id // "?")[-2:], .name, .service,
            $a["istio.canonical_service"], $a["istio.namespace"], $a.upstream_cluster,
            $a["http.status_code"], $a.suite] | map(tostring) | join(" ")),
        "hops \(length) of \($n) request ids \([.[].attributes["guid:x-request-id"]] | unique | length)",
        "attributes \([to_entries[] | .key as $i | .value | .attributes as $a |
            select(($a["http.method"] == "GET" and $a["istio.mesh_id"] == "cluster.local" and
                $a["peer.address"] and $a.component == "proxy" and $a.response_flags == "-" and
                ($a["http.url"] | endswith(if $i < 2 then "/hello" else "/next" end)) and
                (.startTimeUnixNano | tonumber) <= (.endTimeUnixNano | tonumber)) | not) | .name] |
            if length == 0 then "ok" else "missing on " + join(",") end)",
        # A child starts after its parent (the clock grain aside, it ends before).
        "nested \([range(1; length) as $i | (.[$i].startTimeUnixNano | tonumber) >= (.[$i - 1].startTimeUnixNano | tonumber)] | all)"'
}

MS=my-service.default.svc.cluster.local
WANT_CHAIN="CLIENT n1 $MS:80/* istio-ingressgateway.istio-system istio-ingressgateway istio-system outbound|80||$MS 200 e2e-gateway
SERVER n2 $MS:8080/* my-service.default my-service default inbound|8080|| 200 e2e-gateway
CLIENT n2 b.default.svc.cluster.local:80/* my-service.default my-service default outbound|80||b.default.svc.cluster.local 200 e2e-gateway
SERVER n1 b.default.svc.cluster.local:8080/* app-1-2.default app-1-2 default inbound|8080|| 200 e2e-gateway
hops 4 of 4 request ids 1
attributes ok
nested true"

# server_span SPANS SERVICE: the spanId of SERVICE's SERVER span.
server_span() { jq -r --arg s "$2" '[.[] | select(.kind == 2 and .attributes["istio.canonical_service"] == $s)][0].spanId' <<<"$1"; }
span_attr() { # SPANS SERVICE KIND ATTR
    jq -r --arg s "$2" --argjson k "$3" --arg a "$4" \
        '[.[] | select(.kind == $k and .attributes["istio.canonical_service"] == $s)][0].attributes[$a]' <<<"$1"
}

t_begin "HTTPS through the gateway, no trace context: the gateway's span is the root of four"
t_expect_ok "the seed's YAML as written: my-service's port unnamed" \
    cmp -s tests/e2e/data/gateway-seed.yaml "$E2E_TMP/config-2/gateway-seed.yaml"
t_expect_eq "$(sed -n '/name: my-service$/,$p' tests/e2e/data/gateway-seed.yaml | grep -c 'name: http')" 0 \
    "(no port name under my-service)"
out=$(gw_call -H "x-request-id: client-chosen" -H "x-client: mobile")
t_expect_eq "$(tail -1 <<<"$out")" 200 "served: gateway -> my-service -> b"
seen=$(head -1 <<<"$out")
t_expect_eq "$(jq -r .next <<<"$seen")" 200 "my-service reached b"
tp=$(jq -r '.headers.traceparent' <<<"$seen")
t_expect_ok "my-service got a sampled W3C traceparent ($tp)" grep -Eq '^00-[0-9a-f]{32}-[0-9a-f]{16}-01$' <<<"$tp"
rid=$(jq -r '.headers["x-request-id"]' <<<"$seen")
t_expect_ok "a fresh x-request-id from the gateway ($rid), not the client's" \
    grep -Eq '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' <<<"$rid"
t_expect_eq "$(jq -r '.headers["x-forwarded-proto"]' <<<"$seen")" https "x-forwarded-proto: https (Envoy's edge)"
trace=$(cut -d- -f2 <<<"$tp")
spans=$(spans_of "$trace" 4)
t_expect_eq "$(chain "$spans" "")" "$WANT_CHAIN" "gateway -> my-service (SERVER, CLIENT) -> b, each the parent of the next"
t_expect_eq "$(cut -d- -f3 <<<"$tp")" "$(server_span "$spans" my-service)" \
    "the parent in my-service's traceparent is my-service's SERVER span"
dest=$(ip netns exec "${NODE_NS[2]}" curl -s -m 5 "http://${NODE_IP4[2]}:15020/metrics" |
    grep '^istio_requests_total{reporter="destination"' | grep 'destination_app="my-service"' || true)
t_expect_contains "$dest" 'source_principal="spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"' \
    "my-service's agent counts the gateway's request as its destination"
t_expect_eq "$(span_attr "$spans" istio-ingressgateway 3 guid:x-request-id)" "$rid" \
    "the gateway's span carries the x-request-id it sent"
t_expect_eq "$(span_attr "$spans" istio-ingressgateway 3 http.url)" "https://app.example.com:8443/hello" \
    "the gateway's http.url: the scheme the client used"
t_expect_eq "$(span_attr "$spans" istio-ingressgateway 3 peer.address)" "${POD_IP4[1,3]}" \
    "the gateway's peer.address: the external client"
t_expect_eq "$(span_attr "$spans" istio-ingressgateway 3 upstream.address)" "${POD_IP4[2,1]}:8080" \
    "and its upstream: my-service's pod"
t_expect_eq "$(for k in istio-ingressgateway:3 my-service:2 my-service:3 app-1-2:2; do
    span_attr "$spans" "${k%:*}" "${k#*:}" client
done | paste -sd' ')" "mobile mobile none none" \
    "customTags header x-client: the client's where it came (the app does not pass it on), else the default"

t_begin "a client traceparent at the edge: the gateway's span is its child"
out=$(gw_call -H "traceparent: 00-$TRACE-$CLIENT_SPAN-01" -H "tracestate: congo=t61rcWkgMzE")
t_expect_eq "$(tail -1 <<<"$out")" 200 "served"
seen=$(head -1 <<<"$out")
t_expect_contains "$(jq -r '.headers.traceparent' <<<"$seen")" "00-$TRACE-" "my-service got the client's trace id"
t_expect_eq "$(jq -r '.headers.tracestate' <<<"$seen")" "congo=t61rcWkgMzE" "tracestate passed on"
spans=$(spans_of $TRACE 4)
t_expect_eq "$(chain "$spans" $CLIENT_SPAN)" "$WANT_CHAIN" "the same four, the first the child of the client's span"

t_begin "over h2 at the edge (ALPN h2): the same four spans, the client's context honoured"
trace_h2=0af7651916cd43dd8448eb211c80319c
out=$(gw_call --http2 -H "traceparent: 00-$trace_h2-$CLIENT_SPAN-01")
t_expect_eq "$(tail -1 <<<"$out")" 200 "served over h2 (HTTP/1.1 to my-service)"
t_expect_contains "$(jq -r '.headers.traceparent' <<<"$(head -1 <<<"$out")")" "00-$trace_h2-" \
    "my-service got the client's trace id"
spans=$(spans_of $trace_h2 4)
t_expect_eq "$(chain "$spans" $CLIENT_SPAN)" "$WANT_CHAIN" "the same four, the first the child of the client's span"

t_begin "a client B3 context at the edge: honoured, B3 sent on"
b3=a3ce929d0e0e4736
out=$(gw_call -H "x-b3-traceid: $b3" -H "x-b3-spanid: $CLIENT_SPAN" -H "x-b3-sampled: 1")
seen=$(head -1 <<<"$out")
t_expect_eq "$(jq -r '.headers["x-b3-traceid"]' <<<"$seen")" $b3 "x-b3-traceid kept"
spans=$(spans_of "0000000000000000$b3" 4)
t_expect_eq "$(jq -r '.headers["x-b3-spanid"]' <<<"$seen")" "$(server_span "$spans" my-service)" \
    "x-b3-spanid: my-service's SERVER span"
t_expect_eq "$(chain "$spans" $CLIENT_SPAN)" "$WANT_CHAIN" "four spans, from the client's B3 span"

t_begin "disableSpanReporting for my-service: its spans unreported, the trace goes on through it"
quiet() {
    cat >"$E2E_TMP/quiet.tmp" <<YAML
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: my-service-quiet, namespace: default}
spec:
  selector: {matchLabels: {app: my-service}}
  tracing: [{disableSpanReporting: true}]
YAML
    mv "$E2E_TMP/quiet.tmp" "$E2E_TMP/config-$1/quiet.yaml"
}
config_apply 1 quiet 1
config_apply 2 quiet 2
out=$(gw_call)
t_expect_eq "$(tail -1 <<<"$out")" 200 "served"
tp=$(head -1 <<<"$out" | jq -r .headers.traceparent)
t_expect_eq "$(cut -d- -f4 <<<"$tp")" 01 "my-service still gets a sampled traceparent"
trace=$(cut -d- -f2 <<<"$tp")
spans=$(spans_of "$trace" 2)
sleep 1.5 # a flush interval: my-service's spans would have arrived
spans=$(collector "/spans?trace=$trace")
t_expect_eq "$(jq -r '[.[] | "\(.attributes["istio.canonical_service"]):\(.kind)"] | sort | join(" ")' <<<"$spans")" \
    "app-1-2:2 istio-ingressgateway:3" "only the gateway's and b's spans are reported"
gw_id=$(jq -r '[.[] | select(.kind == 3)][0].spanId' <<<"$spans")
b_parent=$(jq -r '[.[] | select(.kind == 2)][0].parentSpanId // ""' <<<"$spans")
t_expect_ok "my-service's traceparent names its own (unreported) span, not the gateway's" \
    test "$(cut -d- -f3 <<<"$tp")" != "$gw_id"
t_expect_ok "b's span is the child of an unreported span of my-service ($b_parent), not a root" \
    test -n "$b_parent" -a "$b_parent" != "$gw_id"

t_begin "the gateway's decision goes down the chain: sampling 0 there, no span anywhere"
# The gateway's own Telemetry (istio-system, selecting it) overrides the
# mesh-wide 100%; the services' agents honour the unsampled traceparent.
gw_zero() {
    cat >"$E2E_TMP/tel.tmp" <<YAML
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: gateway, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  tracing: [{randomSamplingPercentage: 0}]
YAML
    mv "$E2E_TMP/tel.tmp" "$E2E_TMP/config-$1/gateway-telemetry.yaml"
}
config_apply 1 gw_zero 1
config_apply 2 gw_zero 2
before=$(collector /spans | jq length)
tps=""
for _ in 1 2 3; do
    out=$(gw_call)
    [[ $(tail -1 <<<"$out") == 200 ]] || t_fail "a request failed with the gateway at 0%"
    tps+="$(head -1 <<<"$out" | jq -r .headers.traceparent | cut -d- -f4) "
done
t_expect_eq "$tps" "00 00 00 " "my-service got traceparents flagged not sampled"
sleep 1.5 # a flush interval: spans would have arrived
t_expect_eq "$(collector /spans | jq length)" "$before" "and no agent reported a span of them"

meshd_check_logs
t_summary
