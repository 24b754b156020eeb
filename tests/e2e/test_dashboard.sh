#!/usr/bin/env bash
# meshctl dashboard kiali|jaeger|prometheus (issue 18), in headless
# Chromium while traffic flows over mTLS: HTTP and TCP from sleep (node 1)
# to httpbin (node 2), and HTTPS from outside the mesh (pod 1,3) into the
# seed's ingress gateway (pod 1,2) -> my-service (pod 2,2, lib/trace_app.py,
# which calls httpbin propagating the trace). The graph shows the
# workloads and Services with non-zero rates and the mTLS mark on every
# edge, and a workload's panel its connections; the trace page shows a
# real trace through the gateway, exported by the agents to meshctl's OTLP
# collector, its four spans in order (gateway -> my-service SERVER ->
# my-service CLIENT -> httpbin SERVER); the Prometheus meshctl starts
# answers istio_requests_total, and kiali reads it too (--prometheus). Any
# JavaScript error in a page fails the test. Also: the collector's bounds
# (415, 400, 413, a rejected span) and its ordering by start time, clear
# errors without an agent, and a clean exit on SIGTERM (Prometheus stopped
# with it).
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh
source tests/e2e/lib/workloads.sh
source tests/e2e/lib/gateway_seed.sh

NODE_MODULES=tests/node/node_modules
if [ ! -d "$NODE_MODULES/puppeteer-core" ] || [ ! -x /usr/bin/chromium ]; then
    # make test installs both first (make deps): missing is a failure.
    echo "FAIL: needs puppeteer-core and /usr/bin/chromium: run make deps" >&2
    exit 1
fi

topo_init
topo_create 2 3
SHOTS=${E2E_LOG_DIR:-/tmp}/meshd-dashboard-screenshots.$TOPO_RUN
mkdir -p "$SHOTS"
mkdir -p "$E2E_TMP/www"
head -c 65536 /dev/urandom >"$E2E_TMP/www/blob"
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/www.log" /usr/bin/python3 -m http.server --bind :: \
    --directory "$E2E_TMP/www" 8080 >/dev/null
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/api.log" /usr/bin/python3 tests/e2e/lib/httpd.py 8081 api >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 8080 10
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 8081 10
# my-service, behind the gateway: each request calls httpbin's HTTP port.
topo_spawn "${POD_NS[2,2]}" "$E2E_TMP/my-service.log" /usr/bin/python3 tests/e2e/lib/trace_app.py 8080 \
    my-service http://10.96.0.30:8000/get >/dev/null
topo_wait_tcp "${POD_NS[2,2]}" "${POD_IP4[2,2]}" 8080 10
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
SEED_PKI=$E2E_TMP/pki
seed_pki "$SEED_PKI"
for i in 1 2; do
    mkdir -p "$E2E_TMP/config-$i"
    seed_gateway_config "$E2E_TMP/config-$i" "$SEED_PKI" 1 2
    {
        sleep_httpbin_yaml
        deployment_yaml my-service my-service v1
        pod_yaml 2 2 '{app: my-service, version: v1}' my-service
        # Every request through the gateway sampled (the mesh's default
        # is Istio's 1%): the agents behind it honour the decision.
        printf -- '---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\n'
        printf 'metadata: {name: gateway, namespace: istio-system}\n'
        printf 'spec: {selector: {matchLabels: {istio: ingressgateway}}, tracing: [{randomSamplingPercentage: 100}]}\n'
        # Denied traffic for the graph to show: /admin on httpbin.
        printf -- '---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n'
        printf 'metadata: {name: httpbin-deny-admin, namespace: default}\n'
        printf 'spec: {selector: {matchLabels: {app: httpbin}}, action: DENY, rules: [{to: [{operation: {paths: ["/admin*"]}}]}]}\n'
    } >"$E2E_TMP/config-$i/cluster.yaml"
done

# The dashboards' host: the underlay, where the nodes reach 198.51.100.2.
ip -n "$TOPO_UNDERLAY_NS" addr add 198.51.100.2/24 dev "$TOPO_UNDERLAY_BR"
ip -n "$TOPO_UNDERLAY_NS" link set lo up
COLLECTOR=http://198.51.100.2:16686/v1/traces
# The agents export their own spans to meshctl's collector too.
trace_args=(--trace-collector 198.51.100.2:16686/v1/traces)
meshd_start 1 --ca-dir "$E2E_TMP/ca" "${trace_args[@]}"
meshd_start 2 --ca-dir "$E2E_TMP/ca" "${trace_args[@]}"
meshctl_at 1 enroll default/pod-1-1 --netns "/run/netns/${POD_NS[1,1]}" --sa sleep --ip "${POD_IP4[1,1]}" >/dev/null
meshctl_at 2 enroll default/pod-2-1 --netns "/run/netns/${POD_NS[2,1]}" --sa httpbin --ip "${POD_IP4[2,1]}" >/dev/null
meshctl_at 2 enroll default/pod-2-2 --netns "/run/netns/${POD_NS[2,2]}" --sa my-service --ip "${POD_IP4[2,2]}" >/dev/null
seed_gateway_enroll 1 1 2
agents=(--agent "${MESHD_SOCK[1]}" --agent "${MESHD_SOCK[2]}")
dash() { topo_exec "$TOPO_UNDERLAY_NS" timeout 10 "$MESHCTL_BIN" dashboard "$@"; }

t_begin "meshctl dashboard: usage and clear errors"
t_expect_contains "$(dash --help)" "kiali|jaeger|prometheus" "--help prints the usage"
for kind in kiali prometheus; do
    out=$(dash $kind --browser=false --agent "$E2E_TMP/none.sock" 2>&1) && rc=0 || rc=$?
    t_expect_eq "$rc" 1 "$kind, no agent reachable: exit 1"
    t_expect_contains "$out" "no agent answered (tried $E2E_TMP/none.sock); is meshd running?" \
        "and it says which socket it tried"
done
dash grafana >/dev/null 2>&1 && rc=0 || rc=$?
t_expect_eq "$rc" 2 "an unknown dashboard: usage error"

t_begin "a browser opened when there is a display; --browser=false only prints the URL"
# A fake xdg-open first on PATH records what it was given. The URL is a
# flag's (here --prometheus, a running one: meshctl only opens it), with a
# quote and a command substitution that must stay text.
mkdir -p "$E2E_TMP/bin"
printf '#!/bin/sh\nprintf "%%s\\n" "$@" >>"%s/opened"\n' "$E2E_TMP" >"$E2E_TMP/bin/xdg-open"
chmod +x "$E2E_TMP/bin/xdg-open"
url="http://127.0.0.1:9/x'\$(touch $E2E_TMP/pwned)'"
with_display() { env DISPLAY=:0 PATH="$E2E_TMP/bin:$PATH" timeout 10 "$MESHCTL_BIN" dashboard "$@"; }
t_expect_eq "$(with_display prometheus --prometheus "$url" --browser=false)" "prometheus: $url" \
    "--browser=false: the URL printed"
sleep 0.3
t_expect_fail "and no browser opened" test -e "$E2E_TMP/opened"
t_expect_eq "$(with_display prometheus --prometheus "$url")" "prometheus: $url" "a display: the URL printed"
for _ in $(seq 1 20); do [ -s "$E2E_TMP/opened" ] && break; sleep 0.1; done
t_expect_eq "$(cat "$E2E_TMP/opened" 2>/dev/null)" "$url" "and xdg-open given the URL, as one argument"
t_expect_fail "the URL's quote and \$(...) stayed text" test -e "$E2E_TMP/pwned"
rm -f "$E2E_TMP/opened"
env -u DISPLAY -u WAYLAND_DISPLAY PATH="$E2E_TMP/bin:$PATH" "$MESHCTL_BIN" dashboard prometheus --prometheus "$url" >/dev/null
sleep 0.3
t_expect_fail "no display and no --browser: no browser" test -e "$E2E_TMP/opened"

t_begin "traffic: HTTP and TCP from sleep to httpbin, continuously"
# Bounded: at most 900 rounds (~3 minutes); cleanup stops it first.
topo_spawn "${POD_NS[1,1]}" "$E2E_TMP/traffic.log" bash -c \
    'for i in $(seq 1 900); do curl -s -o /dev/null -m 2 http://10.96.0.30:8000/get
     [ $((i % 10)) = 0 ] && curl -s -o /dev/null -m 2 http://10.96.0.30:8000/status/503
     [ $((i % 10)) = 5 ] && curl -s -o /dev/null -m 2 http://10.96.0.30:8000/admin
     [ $((i % 5)) = 0 ] && curl -s -o /dev/null -m 2 http://10.96.0.30/blob; sleep 0.2; done' >/dev/null
# And HTTPS into the gateway from outside the mesh (pod 1,3), bounded too.
topo_spawn "${POD_NS[1,3]}" "$E2E_TMP/gw-traffic.log" bash -c \
    "for i in \$(seq 1 400); do curl -s -o /dev/null -m 2 --cacert '$SEED_PKI/ca.pem' \
       --resolve app.example.com:8443:${POD_IP4[1,2]} https://app.example.com:8443/shop; sleep 0.5; done" >/dev/null
t_expect_eq "$(http_get "1,1" http://10.96.0.30:8000/get)" 200 "a request through the mesh"
t_expect_eq "$(http_get "1,1" http://10.96.0.30:8000/admin)" 403 "/admin denied by httpbin's policy"
t_expect_eq "$(seed_gateway_curl "1,3" 1 2 /hello -o /dev/null -w '%{http_code}')" 200 \
    "HTTPS through the gateway to my-service, and on to httpbin"

t_begin "the dashboards, on the underlay with --browser=false"
topo_spawn "$TOPO_UNDERLAY_NS" "$E2E_TMP/kiali.log" "$MESHCTL_BIN" dashboard kiali \
    --browser=false --port 20001 --interval 1 "${agents[@]}" >/dev/null
kiali_pid=$TOPO_LAST_PID
topo_spawn "$TOPO_UNDERLAY_NS" "$E2E_TMP/jaeger.log" "$MESHCTL_BIN" dashboard jaeger \
    --browser=false --address 198.51.100.2 --port 16686 --spans 1000 >/dev/null
topo_spawn "$TOPO_UNDERLAY_NS" "$E2E_TMP/prometheus.log" "$MESHCTL_BIN" dashboard prometheus \
    --browser=false --port 9090 --interval 1 "${agents[@]}" >/dev/null
prom_pid=$TOPO_LAST_PID
topo_wait_tcp "$TOPO_UNDERLAY_NS" 127.0.0.1 20001 10
topo_wait_tcp "$TOPO_UNDERLAY_NS" 198.51.100.2 16686 10
topo_wait_tcp "$TOPO_UNDERLAY_NS" 127.0.0.1 9090 30
t_expect_contains "$(cat "$E2E_TMP/kiali.log")" "kiali: http://127.0.0.1:20001/" "kiali prints its URL"
t_expect_contains "$(cat "$E2E_TMP/jaeger.log")" "OTLP/HTTP JSON collector: $COLLECTOR" "jaeger prints its collector"
t_expect_contains "$(cat "$E2E_TMP/prometheus.log")" "prometheus: http://127.0.0.1:9090/graph" "prometheus prints its UI"
under() { topo_exec "$TOPO_UNDERLAY_NS" "$@"; }

t_begin "a real trace through the gateway: the agents' spans at meshctl's collector"
out=$(seed_gateway_curl "1,3" 1 2 /traced -w '\n%{http_code}')
t_expect_eq "$(tail -1 <<<"$out")" 200 "HTTPS through the gateway: served"
GW_TRACE=$(head -1 <<<"$out" | jq -r .headers.traceparent | cut -d- -f2)
t_expect_ok "my-service got the gateway's trace ($GW_TRACE)" grep -Eq '^[0-9a-f]{32}$' <<<"$GW_TRACE"
gw_spans=""
for _ in $(seq 1 30); do
    gw_spans=$(under curl -s -m 5 "http://198.51.100.2:16686/api/traces/$GW_TRACE" || true)
    [ "$(jq '.spans | length' <<<"$gw_spans" 2>/dev/null || echo 0)" -ge 4 ] && break
    sleep 0.2
done
GW_ORDER=istio-ingressgateway.istio-system,my-service.default,my-service.default,httpbin.default
t_expect_eq "$(jq -r '[.spans[].service] | join(",")' <<<"$gw_spans")" "$GW_ORDER" \
    "four spans: the gateway's, my-service's two, httpbin's"
t_expect_eq "$(jq -r '[.spans[] | {"2": "SERVER", "3": "CLIENT"}[.kind | tostring]] | join(",")' <<<"$gw_spans")" \
    CLIENT,SERVER,CLIENT,SERVER "their kinds, as Istio's gateway and sidecars report them"
t_expect_eq "$(jq -r '.spans as $s | [range(1; $s | length) | $s[.].parentSpanId == $s[. - 1].spanId] | all' <<<"$gw_spans")" \
    true "each the parent of the next"
t_expect_eq "$(jq -r '.spans[0].parentSpanId // ""' <<<"$gw_spans")" "" "the gateway's span is the root"

t_begin "the OTLP/HTTP JSON collector: its bounds, and a trace by start time"
TRACE=4bf92f3577b34da6a3ce929d0e0e4736
now=$(date +%s%N)
span() { # SERVICE SPAN PARENT NAME KIND START_OFFSET_US DURATION_US
    printf '{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"%s"}}]},' "$1"
    printf '"scopeSpans":[{"spans":[{"traceId":"%s","spanId":"%s","parentSpanId":"%s","name":"%s","kind":%s,' \
        "$TRACE" "$2" "$3" "$4" "$5"
    printf '"startTimeUnixNano":"%s","endTimeUnixNano":"%s","attributes":[' "$((now + $6 * 1000))" "$((now + ($6 + $7) * 1000))"
    printf '{"key":"http.method","value":{"stringValue":"GET"}},{"key":"http.status_code","value":{"intValue":"200"}},'
    printf '{"key":"istio.canonical_service","value":{"stringValue":"%s"}}]}]}]}' "$1"
}
# A trace an app's SDK posts (not an agent's), sent child first: the
# store orders by start time, not by arrival.
body=$(printf '{"resourceSpans":[%s,%s,%s]}' \
    "$(span posted-c 00f067aa0ba902b9 53995c3f42cd8ad8 'GET /c' 2 3000 1000)" \
    "$(span posted-a b7ad6b7169203331 '' 'GET /a' 2 0 6000)" \
    "$(span posted-b 53995c3f42cd8ad8 b7ad6b7169203331 'GET /b' 2 1000 4000)")
post() { under curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST -H "Content-Type: $1" --data-binary @- "$COLLECTOR"; }
t_expect_eq "$(post application/json <<<"$body")" 200 "the trace accepted"
t_expect_eq "$(post application/x-protobuf <<<"$body")" 415 "protobuf: 415 (JSON only)"
t_expect_eq "$(post application/json <<<'{"resourceSpans": 5}')" 400 "not an export: 400"
t_expect_eq "$(head -c 5000000 /dev/zero | post application/json)" 413 "a body past 4 MiB: 413"
bad='{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"00000000000000000000000000000000","spanId":"b7ad6b7169203331","name":"x","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}'
t_expect_contains "$(under curl -s -m 5 -X POST -H 'Content-Type: application/json' -d "$bad" "$COLLECTOR")" \
    '"rejectedSpans":1' "an all-zero trace id: the span rejected (partial success)"
t_expect_eq "$(under curl -s -m 5 "http://198.51.100.2:16686/api/traces/$TRACE" | jq -r '[.spans[].service] | join(",")')" \
    "posted-a,posted-b,posted-c" "the trace's spans by start time"

t_begin "headless Chromium loads each dashboard"
svc=svc:httpbin.default.svc.cluster.local
ms=svc:my-service.default.svc.cluster.local
gw=wl:istio-system/istio-ingressgateway
expect=$(jq -cn --arg s "$svc" --arg m "$ms" --arg g "$gw" '{
    nodes: ["wl:default/sleep", $s, "wl:default/httpbin-v1", $g, $m, "wl:default/my-service"],
    edges: [["wl:default/sleep", $s], [$s, "wl:default/httpbin-v1"],
        [$g, $m], [$m, "wl:default/my-service"], ["wl:default/my-service", $s]],
    denied: [[$s, "wl:default/httpbin-v1"]], panel: "wl:default/sleep"}')
out=$(under timeout 240 node tests/e2e/lib/dashboard_check.js --out "$SHOTS" \
    --kiali http://127.0.0.1:20001/ --expect "$expect" \
    --jaeger http://198.51.100.2:16686/ --trace "$GW_TRACE" --order "$GW_ORDER" --kinds client,server,client,server \
    --prometheus http://127.0.0.1:9090/ 2>&1) && rc=0 || rc=$?
printf '%s\n' "$out" | sed 's/^/    /'
t_expect_eq "$rc" 0 "the pages show what they should, without a JavaScript error"
t_expect_contains "$out" "ok: kiali edge wl:default/sleep -> $svc" "the graph: sleep -> httpbin, with rates and mTLS"
t_expect_contains "$out" "ok: kiali edge $gw -> $ms" "the gateway -> my-service, with rates and mTLS"
t_expect_contains "$out" "ok: kiali denied on $svc -> wl:default/httpbin-v1: " "httpbin's denials drawn on its edge"
t_expect_contains "$out" "ok: kiali edge wl:default/my-service -> $svc" "my-service -> httpbin, with rates and mTLS"
t_expect_contains "$out" "ok: jaeger waterfall istio-ingressgateway.istio-system: my-service.default.svc.cluster.local:80/* (client) | my-service.default: my-service.default.svc.cluster.local:8080/* (server) | my-service.default: httpbin.default.svc.cluster.local:8000/* (client) | httpbin.default: " \
    "the trace view: the gateway's trace, its spans in order"
t_expect_contains "$out" "ok: jaeger search by service istio-ingressgateway.istio-system: " "found by the search form"
t_expect_contains "$out" "ok: prometheus answers istio_requests_total" "Prometheus answers istio_requests_total"
for s in kiali jaeger prometheus; do
    t_expect_ok "screenshot $SHOTS/$s.png kept" test -s "$SHOTS/$s.png"
done

t_begin "the agents' own spans reach the collector (--trace-collector)"
# A request the client sampled: both agents honour it (Istio's 1% default
# would sample almost none of the background traffic).
AGENT_TRACE=4bf92f3577b34da6a3ce929d0e0e4737
in_pod "1,1" curl -s -o /dev/null -m 5 -H "traceparent: 00-$AGENT_TRACE-00f067aa0ba902b7-01" \
    http://10.96.0.30:8000/get
got=""
for _ in $(seq 1 30); do
    got=$(under curl -s -m 5 "http://198.51.100.2:16686/api/traces/$AGENT_TRACE" |
        jq -r '[.spans[] | "\(.service) \({"2": "SERVER", "3": "CLIENT"}[.kind | tostring]) \(.attributes["http.status_code"]) \(.attributes.response_flags)"] | join(", ")' 2>/dev/null || true)
    [[ $got == *CLIENT* && $got == *"SERVER 200"* ]] && break
    sleep 0.5
done
# Exactly these two: a destination applies no retry of its own, so a
# background /status/503 before it on the same connection leaves no
# failed attempt (once a 503 UF span, when the source's default retry
# policy was applied inbound).
t_expect_ok "the sampled request's spans: the source agent's, then the destination's ($got)" \
    grep -Eqx 'sleep.default CLIENT 200 -, httpbin.default SERVER 200 -' <<<"$got"

t_begin "denied and failed traffic in the graph"
g=$(under curl -s -m 5 http://127.0.0.1:20001/api/graph)
e=$(jq -c --arg s "$svc" '.edges[] | select(.source == $s and .target == "wl:default/httpbin-v1")' <<<"$g")
t_expect_eq "$(jq '.denied_total > 0' <<<"$e")" true "the /admin denials counted on the edge ($(jq .denied_total <<<"$e"))"
t_expect_eq "$(jq '.errors_total > 0' <<<"$e")" true "and the 503s as errors ($(jq .errors_total <<<"$e"))"

t_begin "kiali from a Prometheus (--prometheus URL: its /federate, no agent needed)"
topo_spawn "$TOPO_UNDERLAY_NS" "$E2E_TMP/kiali-prom.log" "$MESHCTL_BIN" dashboard kiali \
    --browser=false --port 20002 --interval 1 --prometheus http://127.0.0.1:9090 >/dev/null
topo_wait_tcp "$TOPO_UNDERLAY_NS" 127.0.0.1 20002 10
rps=0
for _ in $(seq 1 20); do
    rps=$(under curl -s -m 5 http://127.0.0.1:20002/api/graph |
        jq --arg s "$svc" '[.edges[] | select(.source == "wl:default/sleep" and .target == $s) | .rps] | first // 0')
    [ "$(jq -n "$rps > 0")" = true ] && break
    sleep 0.5
done
t_expect_eq "$(jq -n "$rps > 0")" true "the same edge, with a request rate, from Prometheus' series"

t_begin "SIGTERM: every dashboard exits cleanly"
prom_child=$(pgrep -P "$prom_pid" prometheus || true)
t_expect_ok "meshctl runs prometheus as its child" test -n "$prom_child"
kill -TERM "$kiali_pid" "$prom_pid"
for _ in $(seq 1 50); do
    kill -0 "$kiali_pid" 2>/dev/null || kill -0 "$prom_pid" 2>/dev/null || break
    sleep 0.1
done
t_expect_fail "kiali exited" kill -0 "$kiali_pid"
t_expect_fail "prometheus' meshctl exited" kill -0 "$prom_pid"
t_expect_fail "and its prometheus with it" kill -0 "${prom_child:-0}"
echo "screenshots: $SHOTS/kiali.png $SHOTS/jaeger.png $SHOTS/prometheus.png"

meshd_check_logs
t_summary
