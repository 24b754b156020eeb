#!/usr/bin/env bash
# Tracing (issue 18): spans out of the node agents, in OTLP/HTTP JSON, to a
# collector the test runs (lib/otlp_collector.py on node 1's underlay
# address; node 1 names it with --trace-collector, node 2 in an Istio
# MeshConfig's extensionProviders, chosen by the Telemetry resource).
#
#   client (pod 1,1) -> service a (pod 2,1: lib/trace_app.py, which calls b
#   propagating the trace headers) -> service b (pod 1,2: lib/httpd.py)
#
# One request crosses four agent hops: node 1's source (CLIENT), node 2's
# destination (SERVER), node 2's source (CLIENT), node 1's destination
# (SERVER). Checked:
#  - a client traceparent: four spans of its trace, each the parent of the
#    next, the first the child of the client's span; Istio's attributes;
#  - no traceparent: a new trace, its root at node 1's source span;
#  - B3 in, B3 out (the app sees x-b3-* with meshd's span);
#  - Telemetry randomSamplingPercentage 0: no spans, traceparent sent
#    with flags 00; a sampled traceparent is still honoured; 100 again: all;
#  - a collector that is down costs nothing but counted drops: requests
#    are served, meshd_trace_spans_dropped_total and export errors grow.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh
source tests/e2e/lib/trace_spans.sh

VIP_A=10.96.0.30
VIP_B=10.96.0.31
VIP_T=10.96.0.32 # t: a port named tcp-*, carried as bytes
TRACE=4bf92f3577b34da6a3ce929d0e0e4736
CLIENT_SPAN=00f067aa0ba902b7
topo_init
topo_create 2 2
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null

telemetry_yaml() { # PERCENT
    cat <<YAML
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  tracing:
  - providers: [{name: otel}]
    randomSamplingPercentage: $1
    customTags:
      suite: {literal: {value: e2e}}
YAML
}

for i in 1 2; do
    d="$E2E_TMP/config-$i"
    mesh_config "$d"
    cat >"$d/services.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: a, namespace: default}
spec:
  clusterIP: $VIP_A
  selector: {app: app-2-1}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: default}
spec:
  clusterIP: $VIP_B
  selector: {app: app-1-2}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: t, namespace: default}
spec:
  clusterIP: $VIP_T
  selector: {app: app-2-1}
  ports: [{name: tcp-data, port: 9000, targetPort: 9000}]
YAML
    telemetry_yaml 100 >"$d/telemetry.yaml"
done

COLLECTOR="${NODE_IP4[1]}:4318"
COLLECTOR_NS=${NODE_NS[1]}
collector_start() {
    COLLECTOR_PID=$(topo_spawn "${NODE_NS[1]}" "$E2E_TMP/collector.log" \
        /usr/bin/python3 tests/e2e/lib/otlp_collector.py "${NODE_IP4[1]}" 4318)
    topo_wait_tcp "${NODE_NS[1]}" "${NODE_IP4[1]}" 4318 10
}
collector_start
# Node 1 names its collector with the flag; node 2 reads Istio's MeshConfig,
# whose default provider is a black hole: spans reach the collector only
# because the Telemetry resource names "otel".
cat >"$E2E_TMP/mesh-2.yaml" <<YAML
defaultProviders: {tracing: [blackhole]}
extensionProviders:
- name: blackhole
  opentelemetry: {service: 127.0.0.1, port: 9, http: {path: /v1/traces}}
- name: otel
  opentelemetry:
    service: ${NODE_IP4[1]}
    port: 4318
    http: {path: /v1/traces, timeout: 2s}
- name: zipkin
  zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411}
YAML
meshd_start 1 --ca-dir "$E2E_TMP/ca" --trace-collector "otel=$COLLECTOR"
meshd_start 2 --ca-dir "$E2E_TMP/ca" --mesh-config "$E2E_TMP/mesh-2.yaml"
t_begin "node 2 reads the MeshConfig's providers"
t_expect_contains "$(cat "${MESHD_LOG[2]}")" "tracing providers not used: zipkin (not opentelemetry)" "zipkin skipped, by name"
t_expect_contains "$(cat "${MESHD_LOG[2]}")" "tracing: 2 providers, default blackhole" "two OTLP/HTTP providers, the default as configured"
enroll 1 "1,1"
enroll 1 "1,2"
enroll 2 "2,1"
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/app-a.log" /usr/bin/python3 tests/e2e/lib/trace_app.py 8080 a "http://$VIP_B/next" >/dev/null
topo_spawn "${POD_NS[1,2]}" "$E2E_TMP/app-b.log" /usr/bin/python3 tests/e2e/lib/httpd.py 8080 b "$E2E_TMP/b.log" >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 8080 10
topo_wait_tcp "${POD_NS[1,2]}" "${POD_IP4[1,2]}" 8080 10
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/app-t.log" /usr/bin/python3 -m http.server --bind :: 9000 >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 9000 10

# call_a [CURL ARGS...]: a request from the client to service a; prints
# the status line then the body (what app a received).
call_a() { in_pod "1,1" curl -s -m 10 -w '\n%{http_code}\n' "$@" "http://$VIP_A/hello"; }
metric() { # NODE NAME
    ip netns exec "${NODE_NS[$1]}" curl -s -m 5 "http://${NODE_IP4[$1]}:15020/metrics" |
        awk -v n="$2" '$1 == n {print $2}'
}

# The chain of four spans, from the first (node 1's CLIENT) on: one line
# a hop, then what every hop must carry.
chain() { # SPANS_JSON FIRST_PARENT(""=root)
    span_chain "$2" <<<"$1" | jq -r "$span_kind"'
        (.[] | .attributes as $a | [span_kind, ($a.node_id // "?")[-2:], .name, $a["istio.canonical_service"],
            $a["http.status_code"], $a.component, $a.suite, .service] | map(tostring) | join(" ")),
        "request ids \([.[].attributes["guid:x-request-id"]] | unique | length)",
        "attributes \(if all(.[]; .attributes as $a | $a["http.method"] == "GET" and
            $a["istio.mesh_id"] == "cluster.local" and $a.upstream_cluster and $a["peer.address"] and
            (.endTimeUnixNano | tonumber) >= (.startTimeUnixNano | tonumber)) then "ok" else "missing" end)"'
}

WANT_CHAIN="CLIENT n1 a.default.svc.cluster.local:80/* app-1-1 200 proxy e2e app-1-1.default
SERVER n2 a.default.svc.cluster.local:8080/* app-2-1 200 proxy e2e app-2-1.default
CLIENT n2 b.default.svc.cluster.local:80/* app-2-1 200 proxy e2e app-2-1.default
SERVER n1 b.default.svc.cluster.local:8080/* app-1-2 200 proxy e2e app-1-2.default
request ids 1
attributes ok"

t_begin "a client's traceparent: four spans of its trace, parent to child across both nodes"
out=$(call_a -H "traceparent: 00-$TRACE-$CLIENT_SPAN-01" -H "tracestate: congo=t61rcWkgMzE")
t_expect_eq "$(tail -1 <<<"$out")" 200 "the request is served through a and b"
seen=$(head -1 <<<"$out")
t_expect_contains "$(jq -r '.headers.traceparent' <<<"$seen")" "00-$TRACE-" "app a got the client's trace id"
t_expect_not_contains "$(jq -r '.headers.traceparent' <<<"$seen")" "$CLIENT_SPAN" "with meshd's span as its parent, not the client's"
t_expect_eq "$(jq -r '.headers.tracestate' <<<"$seen")" "congo=t61rcWkgMzE" "tracestate passed as sent"
spans=$(spans_of $TRACE 4)
t_expect_eq "$(jq length <<<"$spans")" 4 "four spans reached the collector"
t_expect_eq "$(chain "$spans" $CLIENT_SPAN)" "$WANT_CHAIN" "one chain from the client's span, with Istio's attributes"
t_expect_eq "$(jq -r '[.[] | select(.attributes["istio.canonical_service"] == "app-2-1" and .kind == 2)][0].parentSpanId' <<<"$spans")" \
    "$(jq -r '[.[] | select(.attributes.node_id | endswith("n1")) | select(.kind == 3)][0].spanId' <<<"$spans")" \
    "node 2's SERVER span is the child of node 1's CLIENT span"
t_expect_eq "$(jq -r '.headers.traceparent | split("-")[2]' <<<"$seen")" \
    "$(jq -r '[.[] | select(.attributes["istio.canonical_service"] == "app-2-1" and .kind == 2)][0].spanId' <<<"$spans")" \
    "the parent app a sees is node 2's SERVER span"

t_begin "no traceparent: a new trace, rooted at node 1's source span"
out=$(call_a)
t_expect_eq "$(tail -1 <<<"$out")" 200 "served"
tp=$(head -1 <<<"$out" | jq -r '.headers.traceparent')
new_trace=$(cut -d- -f2 <<<"$tp")
t_expect_eq "$(cut -d- -f4 <<<"$tp")" 01 "sampled (Telemetry: 100%)"
spans=$(spans_of "$new_trace" 4)
t_expect_eq "$(chain "$spans" "")" "$WANT_CHAIN" "a chain of four from a root span"

t_begin "B3 in, B3 out"
b3_trace=a3ce929d0e0e4736
out=$(call_a -H "x-b3-traceid: $b3_trace" -H "x-b3-spanid: $CLIENT_SPAN" -H "x-b3-sampled: 1")
seen=$(head -1 <<<"$out")
t_expect_eq "$(jq -r '.headers["x-b3-traceid"]' <<<"$seen")" $b3_trace "x-b3-traceid kept (64-bit)"
t_expect_not_contains "$(jq -r '.headers["x-b3-spanid"]' <<<"$seen")" $CLIENT_SPAN "x-b3-spanid is meshd's"
t_expect_eq "$(jq -r '.headers["x-b3-sampled"]' <<<"$seen")" 1 "x-b3-sampled 1"
spans=$(spans_of "0000000000000000$b3_trace" 4)
t_expect_eq "$(jq length <<<"$spans")" 4 "its four spans, under the 128-bit form of the trace id"

t_begin "a connection carried as bytes: a span of its own (the Telemetry resource covers it)"
t_expect_eq "$(in_pod "1,1" curl -s -o /dev/null -m 5 -w '%{http_code}' "http://$VIP_T:9000/")" 200 "served over tcp-data"
tcp=""
for _ in $(seq 1 50); do
    tcp=$(collector /spans | jq -c '[.[] | select(.name | startswith("tcp ") and endswith(":9000"))]')
    [[ $(jq length <<<"$tcp") -ge 2 ]] && break
    sleep 0.1
done
t_expect_eq "$(jq -r '[.[].kind] | sort | join(",")' <<<"$tcp")" "2,3" "one CLIENT span and one SERVER span"
t_expect_eq "$(jq -r '[.[] | select(.kind == 3)][0].name' <<<"$tcp")" "tcp t.default.svc.cluster.local:9000" "the client's named for the service"
t_expect_eq "$(jq -r '[.[] | select(.kind == 3)][0].attributes["istio.canonical_service"]' <<<"$tcp")" app-1-1 "the client's from the source workload"
t_expect_eq "$(jq -r '[.[] | select(.kind == 2)][0].attributes["istio.canonical_service"]' <<<"$tcp")" app-2-1 "the server's from the destination workload"
t_expect_ok "bytes counted" test "$(jq -r '[.[] | select(.kind == 3)][0].attributes.response_size' <<<"$tcp")" -gt 0
t_expect_eq "$(jq -r '[.[] | select(.parentSpanId)] | length' <<<"$tcp")" 0 "each the root of its own trace"

t_begin "randomSamplingPercentage 0: no spans; a sampled traceparent is still honoured"
for i in 1 2; do
    telemetry_yaml 0 >"$E2E_TMP/tel.tmp"
    config_apply "$i" mv "$E2E_TMP/tel.tmp" "$E2E_TMP/config-$i/telemetry.yaml"
done
before=$(collector /spans | jq length)
traces=""
for _ in 1 2 3 4 5; do
    out=$(call_a)
    [[ $(tail -1 <<<"$out") == 200 ]] || t_fail "a request failed with sampling 0"
    traces+="$(head -1 <<<"$out" | jq -r '.headers.traceparent') "
done
t_expect_not_contains "$traces" "-01 " "every traceparent the app got says not sampled (flags 00)"
honoured="1111111111111111$(cut -c17- <<<$TRACE)"
out=$(call_a -H "traceparent: 00-$honoured-$CLIENT_SPAN-01")
spans=$(spans_of "$honoured" 4)
t_expect_eq "$(jq length <<<"$spans")" 4 "the client's sampled decision honoured: four spans"
sleep 1.5 # a flush interval: the unsampled would have arrived by now
t_expect_eq "$(collector /spans | jq length)" "$((before + 4))" "and nothing of the five unsampled requests"
for i in 1 2; do
    telemetry_yaml 100 >"$E2E_TMP/tel.tmp"
    config_apply "$i" mv "$E2E_TMP/tel.tmp" "$E2E_TMP/config-$i/telemetry.yaml"
done

t_begin "the agents' metrics count exported spans"
t_expect_ok "node 1 exported spans" test "$(metric 1 meshd_trace_spans_exported_total)" -ge 8
t_expect_ok "node 2 exported spans" test "$(metric 2 meshd_trace_spans_exported_total)" -ge 8
t_expect_eq "$(metric 1 meshd_trace_spans_dropped_total)" 0 "node 1 dropped none"

t_begin "a collector that is down costs nothing but counted drops"
topo_kill "$COLLECTOR_PID" TERM
codes=""
for _ in $(seq 1 10); do
    codes+="$(call_a | tail -1) "
done
t_expect_eq "$codes" "200 200 200 200 200 200 200 200 200 200 " "every request served"
for _ in $(seq 1 40); do
    [[ $(metric 1 meshd_trace_spans_dropped_total) -gt 0 && $(metric 2 meshd_trace_spans_dropped_total) -gt 0 ]] && break
    sleep 0.1
done
t_expect_ok "node 1 counts dropped spans" test "$(metric 1 meshd_trace_spans_dropped_total)" -gt 0
t_expect_ok "node 2 counts dropped spans" test "$(metric 2 meshd_trace_spans_dropped_total)" -gt 0
t_expect_ok "and failed exports" test "$(metric 1 meshd_trace_export_errors_total)" -gt 0
collector_start
back="2222222222222222$(cut -c17- <<<$TRACE)"
call_a -H "traceparent: 00-$back-$CLIENT_SPAN-01" >/dev/null
t_expect_eq "$(spans_of "$back" 4 | jq length)" 4 "a collector back: the next request's four spans arrive"

meshd_check_logs
t_summary
