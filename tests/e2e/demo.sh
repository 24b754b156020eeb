#!/usr/bin/env bash
# make demo: meshd on its embedded default topology. Two simulated nodes of
# two pods each (network namespaces), the cluster as Kubernetes YAML (the
# default namespace in ambient mode, one Pod per pod), a mesh CA, one meshd
# per node, every pod enrolled with its service account; a real HTTP server
# and real curl: pod-to-pod traffic on one node and across nodes goes over
# mutual TLS (HBONE) with verified SPIFFE identities. Then it shows the
# configuration (meshctl proxy-config config, meshctl analyze), the seed's
# payments canary split per request over keep-alive connections, meshd's
# records, metrics and BPF state, and cleans up.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/meshd.sh

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

topo_init
say "topology: 2 nodes x 2 pods (run $TOPO_RUN)"
topo_create 2 2
for i in 1 2; do
    for j in 1 2; do
        printf '  node %s pod %s  %-14s %-22s netns %s\n' "$i" "$j" "${POD_IP4[$i,$j]}" \
            "${POD_IP6[$i,$j]}" "${POD_NS[$i,$j]}"
    done
done

say "mesh CA (meshctl ca init)"
"$MESHCTL_BIN" ca init "$E2E_TMP/ca"

say "the cluster as YAML, one copy per node (--config)"
for i in 1 2; do
    d="$E2E_TMP/config-$i"
    mesh_config "$d"
    # The seed's canary as written: pod-2-1 runs payments v1, pod-1-2 v2;
    # only the Service gets the ClusterIP an API server would allocate.
    sed -i 's/app: app-2-1/app: payments/' "$d/pod-2-1.yaml"
    sed -i -e 's/app: app-1-2/app: payments/' -e 's/version: v1/version: v2/' "$d/pod-1-2.yaml"
    sed "s/^  selector:\$/  clusterIP: 10.96.0.10\n  selector:/" deploy/examples/payments-canary.yaml \
        >"$d/payments-canary.yaml"
done
ls "$E2E_TMP/config-1" | sed 's/^/  /'

say "meshd per node"
for i in 1 2; do
    meshd_start "$i" --ca-dir "$E2E_TMP/ca"
    printf '  node %s: meshd pid %s, admin %s\n' "$i" "${MESHD_PID[$i]}" "${MESHD_SOCK[$i]}"
done

say "web servers in pod-2-1 (payments v1) and pod-1-2 (payments v2)"
# Started before enrolling: once enrolled, a readiness probe from inside the
# pod is answered by meshd's own listener and proves nothing about the app.
for p in "2,1 v1" "1,2 v2"; do
    set -- $p
    topo_spawn "${POD_NS[$1]}" "$E2E_TMP/web-$2.log" /usr/bin/python3 tests/e2e/lib/httpd.py 8080 "$2" >/dev/null
    topo_wait_tcp "${POD_NS[$1]}" "${POD_IP4[$1]}" 8080 10
done
echo "  an HTTP/1.1 server on port 8080 in both (it names itself in x-served-by)"

say "enroll every pod with its node's meshd"
for i in 1 2; do
    for j in 1 2; do
        meshctl_at "$i" enroll "default/pod-$i-$j" --netns "/run/netns/${POD_NS[$i,$j]}" \
            --sa "sa-$i-$j" --ip "${POD_IP4[$i,$j]}" --ip "${POD_IP6[$i,$j]}"
    done
done

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

say "the configuration node 1 serves (meshctl proxy-config config), and meshctl analyze"
meshctl_at 1 proxy-config config
"$MESHCTL_BIN" analyze "$E2E_TMP/config-1" || true

say "pod-2-1's mTLS as node 2 enforces it (meshctl authn tls-check)"
meshctl_at 2 authn tls-check pod-2-1.default

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
# On the underlay's loopback, so it goes with the topology.
ip -n "$TOPO_UNDERLAY_NS" link set lo up
topo_spawn "$TOPO_UNDERLAY_NS" "$E2E_TMP/kiali.log" "$MESHCTL_BIN" dashboard kiali --browser=false \
    --port 20001 --interval 1 --agent "${MESHD_SOCK[1]}" --agent "${MESHD_SOCK[2]}" >/dev/null
topo_wait_tcp "$TOPO_UNDERLAY_NS" 127.0.0.1 20001 5 && sleep 1.5
topo_exec "$TOPO_UNDERLAY_NS" curl -s -m 5 http://127.0.0.1:20001/api/graph |
    jq -c '.edges[] | {id, requests_total, mtls}' | sed 's/^/  /' || true
echo "  with the topology up, each prints its URL (--browser=false: only the URL):"
for d in "kiali        (the service graph)          http://127.0.0.1:20001/" \
    "jaeger       (traces; OTLP/HTTP JSON in)  http://127.0.0.1:16686/  POST /v1/traces" \
    "prometheus   (scraping every agent)       http://127.0.0.1:9090/graph"; do
    printf '  %s dashboard %s\n' "$MESHCTL_BIN" "$d"
done
echo "  (agents: --agent ${MESHD_SOCK[1]} --agent ${MESHD_SOCK[2]})"

say "cleaning up"
