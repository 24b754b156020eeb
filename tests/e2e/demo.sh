#!/usr/bin/env bash
# make demo: meshd on its embedded default topology. Two simulated nodes of
# two pods each (network namespaces), the cluster as Kubernetes YAML (the
# default namespace in ambient mode, one Pod per pod), a mesh CA, one meshd
# per node, every pod enrolled with its service account; a real HTTP server
# and real curl: pod-to-pod traffic on one node and across nodes goes over
# mutual TLS (HBONE) with verified SPIFFE identities. Then it shows the
# configuration (meshctl proxy-config config, meshctl analyze), then the
# seed's story in its order (tests/e2e/lib/demo_story.sh): the payments
# canary split per request over keep-alive connections, PeerAuthentication
# STRICT, access logs from the Telemetry resource, the ingress Gateway for
# app.example.com, a trace through it; meshd's records, metrics and BPF
# state, the dashboards' URLs, and cleans up. HOLD=1 keeps it all up until
# Ctrl-C (SIGINT or SIGTERM), which cleans up the same way.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/meshd.sh
source tests/e2e/lib/demo_story.sh

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

topo_init
say "topology: 2 nodes x 3 pods (run $TOPO_RUN)"
topo_create 2 3
for i in 1 2; do
    for j in 1 2 3; do
        printf '  node %s pod %s  %-14s %-22s netns %s\n' "$i" "$j" "${POD_IP4[$i,$j]}" \
            "${POD_IP6[$i,$j]}" "${POD_NS[$i,$j]}"
    done
done

say "mesh CA (meshctl ca init)"
"$MESHCTL_BIN" ca init "$E2E_TMP/ca"

say "the cluster as YAML, one copy per node (--config)"
demo_pki # the app-tls certificate (openssl), for the gateway
for i in 1 2; do
    d="$E2E_TMP/config-$i"
    mesh_config "$d"
    # The seed's canary as written: pod-2-1 runs payments v1, pod-1-2 v2;
    # only the Service gets the ClusterIP an API server would allocate.
    sed -i 's/app: app-2-1/app: payments/' "$d/pod-2-1.yaml"
    sed -i -e 's/app: app-1-2/app: payments/' -e 's/version: v1/version: v2/' "$d/pod-1-2.yaml"
    # Its port is unnamed, as written: the sniffing source tells payments'
    # agent it carries HTTP, which then serves (and traces) each request.
    sed -e "s/^  selector:\$/  clusterIP: 10.96.0.10\n  selector:/" deploy/examples/payments-canary.yaml \
        >"$d/payments-canary.yaml"
    demo_gateway_config "$d"
done
ls "$E2E_TMP/config-1" | sed 's/^/  /'

say "meshd per node (spans to jaeger's collector on the underlay, $DEMO_DASH_IP:16686)"
demo_jaeger_start
for i in 1 2; do
    meshd_start "$i" --ca-dir "$E2E_TMP/ca" --trace-collector "$DEMO_DASH_IP:16686/v1/traces"
    printf '  node %s: meshd pid %s, admin %s\n' "$i" "${MESHD_PID[$i]}" "${MESHD_SOCK[$i]}"
done

say "web servers in pod-2-1 (payments v1), pod-1-2 (payments v2), pod-2-2 (my-service)"
# Started before enrolling: once enrolled, a readiness probe from inside the
# pod is answered by meshd's own listener and proves nothing about the app.
for p in "2,1 v1" "1,2 v2"; do
    set -- $p
    topo_spawn "${POD_NS[$1]}" "$E2E_TMP/web-$2.log" /usr/bin/python3 tests/e2e/lib/httpd.py 8080 "$2" >/dev/null
    topo_wait_tcp "${POD_NS[$1]}" "${POD_IP4[$1]}" 8080 10
done
# my-service calls payments on each request, passing the trace headers on
# (as an instrumented app does): the gateway's trace continues through it.
topo_spawn "${POD_NS[2,2]}" "$E2E_TMP/web-my-service.log" /usr/bin/python3 tests/e2e/lib/trace_app.py 8080 \
    my-service http://10.96.0.10/ >/dev/null
topo_wait_tcp "${POD_NS[2,2]}" "${POD_IP4[2,2]}" 8080 10
echo "  an HTTP/1.1 server on port 8080 in each (it names itself); my-service calls payments"

say "enroll the pods with their node's meshd (pod-2-3 stays outside the mesh)"
for i in 1 2; do
    for j in 1 2; do
        meshctl_at "$i" enroll "default/pod-$i-$j" --netns "/run/netns/${POD_NS[$i,$j]}" \
            --sa "sa-$i-$j" --ip "${POD_IP4[$i,$j]}" --ip "${POD_IP6[$i,$j]}"
    done
done
meshctl_at 1 enroll istio-system/istio-ingressgateway-1 --netns "/run/netns/${POD_NS[1,3]}" \
    --sa istio-ingressgateway-service-account --ip "${POD_IP4[1,3]}" --ip "${POD_IP6[1,3]}"

say "curl from pod-1-1 to pod-1-2, same node: mutual TLS over HBONE"
in_pod "1,1" curl -sS -m 5 -o /dev/null -w '  IPv4: HTTP %{http_code} in %{time_total}s\n' "http://${POD_IP4[1,2]}:8080/"
in_pod "1,1" curl -sS -m 5 -o /dev/null -w '  IPv6: HTTP %{http_code} in %{time_total}s\n' "http://[${POD_IP6[1,2]}]:8080/"
connections_json 1 | jq -c '.[] | select(.hbone) | {direction, pod, original_dst, hbone, peer_identity, bytes_sent, bytes_received}'

say "curl from pod-1-1 (node 1) to pod-2-1 (node 2): mutual TLS across nodes"
in_pod "1,1" curl -sS -m 5 -o /dev/null -w '  IPv4: HTTP %{http_code} in %{time_total}s\n' "http://${POD_IP4[2,1]}:8080/"
in_pod "1,1" curl -sS -m 5 -o /dev/null -w '  IPv6: HTTP %{http_code} in %{time_total}s\n' "http://[${POD_IP6[2,1]}]:8080/"

say "the seed's canary, per request: 1,000 requests over 4 keep-alive connections to payments"
in_pod "1,1" /usr/bin/python3 tests/e2e/lib/httpc.py count 10.96.0.10 80 / 1000 4 |
    jq -c '{v1, v2, connections, status}' | sed 's/^/  /'
meshctl_at 1 proxy-config routes pod-1-1.default --service payments | sed 's/^/  /'

demo_strict
demo_access_logs
demo_gateway
demo_trace

say "the configuration node 1 serves (meshctl proxy-config config), and meshctl analyze"
meshctl_at 1 proxy-config config
"$MESHCTL_BIN" analyze "$E2E_TMP/config-1" || true

say "node 1's meshd captured the client side (meshctl connections)"
meshctl_at 1 connections
say "node 2's meshd captured the server side"
meshctl_at 2 connections

say "Istio request metrics on node 1, by destination version"
ip netns exec "${NODE_NS[1]}" curl -s -m 5 "http://${NODE_IP4[1]}:15020/metrics" |
    grep '^istio_requests_total{reporter="source"' |
    grep -o 'destination_version="[a-z0-9]*"\|response_code="[0-9]*"\|} [0-9]*' | paste - - - | sed 's/^/  /'

say "BPF counters on node 1 (meshctl status)"
meshctl_at 1 status | jq '{pods, bpf, connections}'

say "the programs, as bpftool sees them"
bpftool prog show name meshd_connect4 | sed -n 1,2p
bpftool link show pinned "/sys/fs/bpf/meshd/${MESHD_NODE[1]}/link_connect4"

say "the dashboards (meshctl dashboard, as istioctl dashboard): the service graph, live"
demo_dashboards_start && sleep 1.5
topo_exec "$TOPO_UNDERLAY_NS" curl -s -m 5 http://127.0.0.1:20001/api/graph |
    jq -c '.edges[] | {id, requests_total, mtls}' | sed 's/^/  /' || true
echo "  with the topology up, each prints its URL (--browser=false: only the URL):"
for d in "kiali        (the service graph)          http://127.0.0.1:20001/" \
    "jaeger       (traces; OTLP/HTTP JSON in)  http://$DEMO_DASH_IP:16686/  POST /v1/traces" \
    "prometheus   (scraping every agent)       http://127.0.0.1:9090/graph"; do
    printf '  %s dashboard %s\n' "$MESHCTL_BIN" "$d"
done
echo "  (agents: --agent ${MESHD_SOCK[1]} --agent ${MESHD_SOCK[2]})"

demo_hold
say "cleaning up"
