# shellcheck shell=bash
# The seed's story for make demo (sourced by tests/e2e/demo.sh after
# topology.sh and meshd.sh): one function per chapter, each a short header
# and a line or two of real output. The topology they expect (demo.sh):
#   pod-1-1 a mesh client; pod-2-1 payments v1, pod-1-2 payments v2;
#   pod-2-2 my-service (the seed's backend, lib/trace_app.py: it calls
#   payments, passing the trace on); pod-1-3 the ingress gateway
#   (istio-system, istio: ingressgateway); pod-2-3 outside the mesh.
# The dashboards live on the underlay: kiali and jaeger on its loopback,
# jaeger's OTLP collector on DEMO_DASH_IP, where the agents export spans.

source tests/e2e/lib/gateway_seed.sh

DEMO_DASH_IP=198.51.100.2
DEMO_TRACE=4bf92f3577b34da6a3ce929d0e0e4736
DEMO_PKI=$E2E_TMP/pki

# demo_pki: the app-tls certificate, as an operator would make it.
demo_pki() { seed_pki "$DEMO_PKI"; }

# demo_gateway_config DIR: the seed's Gateway YAML (lib/gateway_seed.sh:
# its Service, Gateway, VirtualService and my-service, whose port is
# named http), istio-system in ambient mode, the gateway pod (pod-1-3
# becomes istio-ingressgateway-1), my-service's pod (pod-2-2 relabelled)
# and the app-tls Secret.
demo_gateway_config() {
    seed_gateway_config "$1" "$DEMO_PKI" 1 3
    sed -i 's/app: app-2-2/app: my-service/' "$1/pod-2-2.yaml"
}

# demo_dashboards_start: kiali (the graph, from both agents' admin sockets)
# and jaeger (traces; its OTLP/HTTP collector is where the agents export)
# on the underlay, so they go with the topology. HOLD=1 adds prometheus.
demo_dashboards_start() {
    local agents=(--agent "${MESHD_SOCK[1]}" --agent "${MESHD_SOCK[2]}")
    topo_spawn "$TOPO_UNDERLAY_NS" "$E2E_TMP/kiali.log" "$MESHCTL_BIN" dashboard kiali --browser=false \
        --port 20001 --interval 1 "${agents[@]}" >/dev/null
    if ((${HOLD:-0})); then
        topo_spawn "$TOPO_UNDERLAY_NS" "$E2E_TMP/prometheus.log" "$MESHCTL_BIN" dashboard prometheus \
            --browser=false --port 9090 --interval 1 "${agents[@]}" >/dev/null
    fi
    topo_wait_tcp "$TOPO_UNDERLAY_NS" 127.0.0.1 20001 5
}

demo_jaeger_start() {
    ip -n "$TOPO_UNDERLAY_NS" addr add "$DEMO_DASH_IP/24" dev "$TOPO_UNDERLAY_BR"
    ip -n "$TOPO_UNDERLAY_NS" link set lo up
    topo_spawn "$TOPO_UNDERLAY_NS" "$E2E_TMP/jaeger.log" "$MESHCTL_BIN" dashboard jaeger --browser=false \
        --address "$DEMO_DASH_IP" --port 16686 --spans 1000 >/dev/null
    topo_wait_tcp "$TOPO_UNDERLAY_NS" "$DEMO_DASH_IP" 16686 5
}

# demo_apply FILE: puts FILE in both nodes' configuration, waits for both
# agents to serve it (no restart).
demo_apply() {
    local i
    for i in 1 2; do
        cp "$1" "$E2E_TMP/.apply.tmp"
        config_apply "$i" mv "$E2E_TMP/.apply.tmp" "$E2E_TMP/config-$i/$(basename "$1")"
    done
}

demo_strict() {
    say "the seed's PeerAuthentication STRICT (namespace default), applied live"
    demo_apply deploy/examples/peerauthentication-strict.yaml
    printf '  plaintext from pod-2-3 (outside the mesh) to payments v1: HTTP %s (refused)\n' \
        "$(http_get "2,3" "http://${POD_IP4[2,1]}:8080/")"
    printf '  pod-1-1 (in the mesh, HBONE) to the same pod:           HTTP %s\n' \
        "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")"
    connections_json 2 | jq -c '[.[] | select(.response_flags == "DENY")][0] |
        {direction, pod, original_dst, response_flags}' | sed 's/^/  node 2 records: /'
    meshctl_at 2 authn tls-check pod-2-1.default | sed 's/^/  /'
}

demo_access_logs() {
    say "access logs switched on by the seed's Telemetry resource (provider envoy), no restart"
    demo_apply deploy/examples/telemetry-access-logs.yaml
    in_pod "1,1" curl -s -o /dev/null -m 5 http://10.96.0.10/checkout?demo=access-log
    local line=""
    for _ in $(seq 1 20); do
        line=$(grep -a -m1 '^\[.*"GET /checkout?demo=access-log ' "${MESHD_LOG[1]}" || true)
        [ -n "$line" ] && break
        sleep 0.1
    done
    echo "  node 1, Envoy's default format:"
    printf '  %s\n' "${line:-(no line)}"
}

# gw_curl PATH [CURL ARGS...]: from pod-2-3 (outside the mesh) to the
# gateway pod, as a client resolving app.example.com to the load balancer.
demo_gw_curl() {
    local path=$1
    shift
    SEED_PKI=$DEMO_PKI seed_gateway_curl "2,3" 1 3 "$path" -S "$@"
}

demo_gateway() {
    say "the seed's ingress Gateway for app.example.com (SIMPLE TLS, credentialName app-tls)"
    local out
    printf '  $ curl --cacert ca.pem --resolve app.example.com:8443:%s https://app.example.com:8443/hello\n' \
        "${POD_IP4[1,3]}"
    out=$(demo_gw_curl /hello -w '\n%{http_code} %{ssl_verify_result}')
    printf '  HTTP %s, certificate verified: %s; answered by %s (pod-2-2, node 2)\n' \
        "$(tail -1 <<<"$out" | cut -d' ' -f1)" "$([ "$(tail -1 <<<"$out" | cut -d' ' -f2)" = 0 ] && echo yes || echo no)" \
        "$(head -n -1 <<<"$out" | jq -r .name)"
    ip netns exec "${NODE_NS[1]}" curl -s -m 5 "http://${NODE_IP4[1]}:15020/metrics" |
        grep '^istio_requests_total{' | grep 'destination_service="my-service' | head -1 |
        grep -o 'source_principal="[^"]*"\|destination_principal="[^"]*"\|connection_security_policy="[^"]*"' |
        paste -sd' ' | sed 's/^/  node 1 (the gateway, over HBONE): /'
}

demo_trace() {
    say "a trace through the gateway: a sampled traceparent, gateway -> my-service -> payments, spans at jaeger"
    demo_gw_curl /traced -o /dev/null -H "traceparent: 00-$DEMO_TRACE-00f067aa0ba902b7-01"
    local t="" n=0
    for _ in $(seq 1 30); do # the gateway's, my-service's two, payments'
        t=$(topo_exec "$TOPO_UNDERLAY_NS" curl -s -m 5 "http://$DEMO_DASH_IP:16686/api/traces/$DEMO_TRACE" || true)
        n=$(jq '.spans | length' <<<"$t" 2>/dev/null || echo 0)
        ((${n:-0} >= 4)) && break
        sleep 0.2
    done
    echo "  trace $DEMO_TRACE: $n spans, each indented under its parent (the first under the client's span):"
    # Each span indented by its depth under the client's span.
    jq -r '.spans as $s | ($s | map({(.spanId): .parentSpanId}) | add) as $p |
        $s[] | . as $x |
        ([limit(8; $x.parentSpanId | recurse($p[.] // empty))] | length) as $d |
        "  " + ([range($d)] | map("  ") | add // "") +
        "\({"2": "SERVER", "3": "CLIENT"}[.kind | tostring] // .kind) \(.service)  \(.name)  " +
        "\(.attributes["upstream_cluster"])  \(.attributes["http.status_code"])  \(.durationUs / 1000 | . * 100 | round / 100) ms"' \
        <<<"$t" 2>/dev/null || true
    echo "  jaeger: http://$DEMO_DASH_IP:16686/#trace=$DEMO_TRACE"
}

demo_stop() {
    trap '' HUP INT TERM
    say "stopping: cleaning up (agents, dashboards, namespaces)"
    exit 0
}

# demo_hold: HOLD=1 keeps everything up until SIGINT/SIGTERM/SIGHUP, which
# run the cleanup (demo_stop, then topology.sh's EXIT trap). The wait is
# interruptible: a trap runs as soon as the signal arrives.
demo_hold() {
    ((${HOLD:-0})) || return 0
    topo_wait_tcp "$TOPO_UNDERLAY_NS" 127.0.0.1 9090 30 || true
    say "HOLD=1: the topology, both agents and the dashboards stay up"
    echo "  the dashboards listen in the underlay namespace $TOPO_UNDERLAY_NS; reach them with e.g."
    echo "    ip netns exec $TOPO_UNDERLAY_NS curl -s http://127.0.0.1:20001/api/graph"
    echo "    ip netns exec $TOPO_UNDERLAY_NS chromium --no-sandbox http://$DEMO_DASH_IP:16686/"
    echo "  agents: $MESHCTL_BIN --agent ${MESHD_SOCK[1]} status (and ${MESHD_SOCK[2]})"
    echo "  stop: Ctrl-C, or kill -INT $$ (everything is cleaned up)"
    # Ctrl-C is how a held demo ends: a clean exit (status 0), whose EXIT
    # trap (topology.sh) cleans up without dumping the logs of a failure.
    trap 'demo_stop' HUP INT TERM
    # Bounded: a day at most.
    # shellcheck disable=SC2016 # expanded when cleanup runs
    topo_on_cleanup 'kill "$DEMO_SLEEP" 2>/dev/null || true'
    for _ in $(seq 1 1440); do
        sleep 60 &
        DEMO_SLEEP=$!
        wait "$DEMO_SLEEP" || true
    done
}
