#!/usr/bin/env bash
# meshctl dashboard kiali|jaeger|prometheus (issue 18), in headless
# Chromium while HTTP and TCP traffic flows from sleep (node 1) to httpbin
# (node 2) over mTLS: the graph shows both workloads and the Service with
# non-zero rates and the mTLS mark, and a workload's panel its
# connections; the trace page shows a gateway -> A -> B trace (POSTed to
# meshctl's OTLP collector; agents' own spans too once meshd exports them)
# with its spans in order; the Prometheus meshctl starts answers
# istio_requests_total, and kiali reads it too (--prometheus). Any JavaScript error in a page fails the test.
# Also: the collector's bounds (415, 400, 413), clear errors without an
# agent, and a clean exit on SIGTERM (Prometheus stopped with it).
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh
source tests/e2e/lib/workloads.sh

NODE_MODULES=tests/node/node_modules
if [ ! -d "$NODE_MODULES/puppeteer-core" ] || [ ! -x /usr/bin/chromium ]; then
    # make test installs both first (make deps): missing is a failure.
    echo "FAIL: needs puppeteer-core and /usr/bin/chromium: run make deps" >&2
    exit 1
fi

topo_init
topo_create 2 2
SHOTS=${E2E_LOG_DIR:-/tmp}/meshd-dashboard-screenshots.$TOPO_RUN
mkdir -p "$SHOTS"
mkdir -p "$E2E_TMP/www"
head -c 65536 /dev/urandom >"$E2E_TMP/www/blob"
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/www.log" /usr/bin/python3 -m http.server --bind :: \
    --directory "$E2E_TMP/www" 8080 >/dev/null
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/api.log" /usr/bin/python3 tests/e2e/lib/httpd.py 8081 api >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 8080 10
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 8081 10
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
for i in 1 2; do
    mkdir -p "$E2E_TMP/config-$i"
    {
        sleep_httpbin_yaml
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
agents=(--agent "${MESHD_SOCK[1]}" --agent "${MESHD_SOCK[2]}")
dash() { topo_exec "$TOPO_UNDERLAY_NS" timeout 10 "$MESHCTL_BIN" dashboard "$@"; }

t_begin "meshctl dashboard: usage and clear errors"
t_expect_contains "$(dash --help)" "kiali|jaeger|prometheus" "--help prints the usage"
out=$(dash kiali --browser=false --agent "$E2E_TMP/none.sock" 2>&1) && rc=0 || rc=$?
t_expect_eq "$rc" 1 "no agent reachable: exit 1"
t_expect_contains "$out" "no agent answered (tried $E2E_TMP/none.sock)" "and it says which socket it tried"
dash grafana >/dev/null 2>&1 && rc=0 || rc=$?
t_expect_eq "$rc" 2 "an unknown dashboard: usage error"

t_begin "traffic: HTTP and TCP from sleep to httpbin, continuously"
# Bounded: at most 900 rounds (~3 minutes); cleanup stops it first.
topo_spawn "${POD_NS[1,1]}" "$E2E_TMP/traffic.log" bash -c \
    'for i in $(seq 1 900); do curl -s -o /dev/null -m 2 http://10.96.0.30:8000/get
     [ $((i % 10)) = 0 ] && curl -s -o /dev/null -m 2 http://10.96.0.30:8000/status/503
     [ $((i % 10)) = 5 ] && curl -s -o /dev/null -m 2 http://10.96.0.30:8000/admin
     [ $((i % 5)) = 0 ] && curl -s -o /dev/null -m 2 http://10.96.0.30/blob; sleep 0.2; done' >/dev/null
t_expect_eq "$(http_get "1,1" http://10.96.0.30:8000/get)" 200 "a request through the mesh"
t_expect_eq "$(http_get "1,1" http://10.96.0.30:8000/admin)" 403 "/admin denied by httpbin's policy"

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

t_begin "the OTLP/HTTP JSON collector: a gateway -> A -> B trace, and its bounds"
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
# Sent child first: the page orders by the tree, not by arrival.
body=$(printf '{"resourceSpans":[%s,%s,%s]}' \
    "$(span service-b 00f067aa0ba902b9 53995c3f42cd8ad8 'GET /b' 2 3000 1000)" \
    "$(span gateway b7ad6b7169203331 '' 'GET app.example.com/' 2 0 6000)" \
    "$(span service-a 53995c3f42cd8ad8 b7ad6b7169203331 'GET /a' 2 1000 4000)")
post() { under curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST -H "Content-Type: $1" --data-binary @- "$COLLECTOR"; }
t_expect_eq "$(post application/json <<<"$body")" 200 "the trace accepted"
t_expect_eq "$(post application/x-protobuf <<<"$body")" 415 "protobuf: 415 (JSON only)"
t_expect_eq "$(post application/json <<<'{"resourceSpans": 5}')" 400 "not an export: 400"
t_expect_eq "$(head -c 5000000 /dev/zero | post application/json)" 413 "a body past 4 MiB: 413"
bad='{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"00000000000000000000000000000000","spanId":"b7ad6b7169203331","name":"x","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}'
t_expect_contains "$(under curl -s -m 5 -X POST -H 'Content-Type: application/json' -d "$bad" "$COLLECTOR")" \
    '"rejectedSpans":1' "an all-zero trace id: the span rejected (partial success)"
t_expect_eq "$(under curl -s -m 5 "http://198.51.100.2:16686/api/traces/$TRACE" | jq -r '[.spans[].service] | join(",")')" \
    "gateway,service-a,service-b" "the trace's spans by start time"

t_begin "headless Chromium loads each dashboard"
svc=svc:httpbin.default.svc.cluster.local
expect=$(jq -cn --arg s "$svc" '{nodes: ["wl:default/sleep", $s, "wl:default/httpbin-v1"],
    edges: [["wl:default/sleep", $s], [$s, "wl:default/httpbin-v1"]], panel: "wl:default/sleep"}')
out=$(under timeout 240 node tests/e2e/lib/dashboard_check.js --out "$SHOTS" \
    --kiali http://127.0.0.1:20001/ --expect "$expect" \
    --jaeger http://198.51.100.2:16686/ --trace "$TRACE" --order gateway,service-a,service-b \
    --prometheus http://127.0.0.1:9090/ 2>&1) && rc=0 || rc=$?
printf '%s\n' "$out" | sed 's/^/    /'
t_expect_eq "$rc" 0 "the pages show what they should, without a JavaScript error"
t_expect_contains "$out" "ok: kiali edge wl:default/sleep -> $svc" "the graph: sleep -> httpbin, with rates and mTLS"
t_expect_contains "$out" "ok: jaeger waterfall gateway" "the trace view: gateway -> A -> B in order"
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
n=0
for _ in $(seq 1 30); do
    n=$(under curl -s -m 5 "http://198.51.100.2:16686/api/traces/$AGENT_TRACE" | jq '.spans | length' 2>/dev/null || echo 0)
    [ "${n:-0}" -ge 2 ] && break
    sleep 0.5
done
t_expect_ok "the sampled request's spans from the source and the destination agents ($n)" test "${n:-0}" -ge 2

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
