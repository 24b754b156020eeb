#!/usr/bin/env bash
# Istio-standard metrics, scraped by a real Prometheus server (Debian's
# package) from both nodes' agents: after a known transfer over mTLS
# through a Service VIP, PromQL returns exactly the bytes it moved, per
# source and destination workload, with both reporters, Istio's whole
# label set from the YAML (Deployments, app/version, principals, the
# Service), and promtool accepting the exposition.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh
source tests/e2e/lib/workloads.sh

topo_init
topo_create 2 2
# A file of known size behind a real HTTP server in pod-2-1.
mkdir -p "$E2E_TMP/www"
head -c 1048576 /dev/urandom >"$E2E_TMP/www/blob"
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/www.log" /usr/bin/python3 -m http.server --bind :: \
    --directory "$E2E_TMP/www" 8080 >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 8080 10
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/api.log" /usr/bin/python3 tests/e2e/lib/httpd.py 8081 api >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 8081 10
# The cluster as YAML: a sleep client (pod-1-1), httpbin v1 (pod-2-1)
# behind Service httpbin, and pod-1-2, a plaintext client outside the mesh.
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
for i in 1 2; do
    mkdir -p "$E2E_TMP/config-$i"
    {
        sleep_httpbin_yaml
        pod_yaml 1 2 '{app: legacy, istio.io/dataplane-mode: none}' legacy
    } >"$E2E_TMP/config-$i/cluster.yaml"
done
meshd_start 1 --ca-dir "$E2E_TMP/ca"
meshd_start 2 --ca-dir "$E2E_TMP/ca"
meshctl_at 1 enroll default/pod-1-1 --netns "/run/netns/${POD_NS[1,1]}" --sa sleep --ip "${POD_IP4[1,1]}" >/dev/null
meshctl_at 2 enroll default/pod-2-1 --netns "/run/netns/${POD_NS[2,1]}" --sa httpbin --ip "${POD_IP4[2,1]}" >/dev/null

# The monitoring host: Prometheus on the underlay, scraping both agents.
ip -n "$TOPO_UNDERLAY_NS" addr add 198.51.100.2/24 dev "$TOPO_UNDERLAY_BR"
ip -n "$TOPO_UNDERLAY_NS" link set lo up
cat >"$E2E_TMP/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: meshd
    static_configs:
      - targets: ['${NODE_IP4[1]}:15020', '${NODE_IP4[2]}:15020']
YML
topo_spawn "$TOPO_UNDERLAY_NS" "$E2E_TMP/prometheus.log" prometheus \
    --config.file="$E2E_TMP/prometheus.yml" --storage.tsdb.path="$E2E_TMP/tsdb" \
    --web.listen-address=127.0.0.1:9090 >/dev/null
topo_wait_tcp "$TOPO_UNDERLAY_NS" 127.0.0.1 9090 30
promql() { # prints the single value of an instant query, or "none"
    ip netns exec "$TOPO_UNDERLAY_NS" curl -s -m 5 --data-urlencode "query=$1" \
        http://127.0.0.1:9090/api/v1/query | jq -r '.data.result[0].value[1] // "none"'
}

t_begin "a known transfer, through the Service VIP"
sizes=$(in_pod "1,1" curl -s -o /dev/null -m 10 -w '%{http_code} %{size_request} %{size_header} %{size_download}' \
    "http://10.96.0.30/blob")
read -r code req hdr body <<<"$sizes"
t_expect_eq "$code" 200 "1 MiB downloaded through both agents over HBONE"
resp=$((hdr + body))
t_expect_eq "$(http_get "1,2" "http://${POD_IP4[2,1]}:8080/")" 200 "and a plaintext request from outside the mesh"

t_begin "three requests on the HTTP port: 200, 404, 503"
for p in /x /status/404 /status/503; do
    in_pod "1,1" curl -s -o /dev/null -m 10 "http://10.96.0.30:8000$p" || true
done

t_begin "PromQL over the scraped series"
# Both reporters, labelled from the YAML: workloads are the Deployments.
labels='source_workload="sleep",source_workload_namespace="default",destination_workload="httpbin-v1",destination_workload_namespace="default",connection_security_policy="mutual_tls"'
q_src="{reporter=\"source\",$labels}"
q_dst="{reporter=\"destination\",$labels}"
v=none
for _ in $(seq 1 60); do
    v=$(promql "sum(istio_tcp_sent_bytes_total$q_dst)")
    [ "$v" = "$resp" ] && [ "$(promql "sum(istio_tcp_sent_bytes_total$q_src)")" = "$resp" ] && break
    sleep 0.5
done
t_expect_eq "$(promql "sum(istio_tcp_sent_bytes_total$q_src)")" "$resp" "source reporter: response bytes"
t_expect_eq "$(promql "sum(istio_tcp_received_bytes_total$q_src)")" "$req" "source reporter: request bytes"
t_expect_eq "$(promql "sum(istio_tcp_sent_bytes_total$q_dst)")" "$resp" "destination reporter: response bytes"
t_expect_eq "$(promql "sum(istio_tcp_received_bytes_total$q_dst)")" "$req" "destination reporter: request bytes"
t_expect_eq "$(promql "sum(istio_tcp_connections_opened_total$q_src)")" 1 "one connection opened"
t_expect_eq "$(promql "sum(istio_tcp_connections_closed_total$q_dst)")" 1 "one connection closed"
t_expect_eq "$(promql "sum(istio_tcp_connections_failed_total$q_src)")" 0 "none failed"
for r in source destination; do
    t_expect_eq "$(promql "count(istio_tcp_sent_bytes_total{reporter=\"$r\",$labels,source_app=\"sleep\",source_version=\"v1\",source_canonical_service=\"sleep\",source_canonical_revision=\"v1\",source_principal=\"spiffe://cluster.local/ns/default/sa/sleep\",destination_app=\"httpbin\",destination_version=\"v1\",destination_canonical_service=\"httpbin\",destination_principal=\"spiffe://cluster.local/ns/default/sa/httpbin\",destination_service=\"httpbin.default.svc.cluster.local\",destination_service_name=\"httpbin\",destination_service_namespace=\"default\",request_protocol=\"tcp\",source_cluster=\"Kubernetes\"})")" 1 \
        "reporter=$r: Istio's whole label set from the YAML"
done
plain='{reporter="destination",connection_security_policy="none",source_workload="pod-1-2",source_app="legacy",source_principal="unknown",destination_workload="httpbin-v1"}'
t_expect_ok "plaintext from outside the mesh: policy none, no source principal" \
    test "$(promql "sum(istio_tcp_connections_opened_total$plain)")" = 1

t_begin "Istio's request metrics, both reporters"
rq='source_workload="sleep",destination_workload="httpbin-v1",destination_service="httpbin.default.svc.cluster.local",request_protocol="http"'
v=none
for _ in $(seq 1 60); do
    v=$(promql "sum(istio_requests_total{reporter=\"destination\",$rq})")
    [ "$v" = 5 ] && break
    sleep 0.5
done
# The source counts the client's 3 requests; the destination every attempt
# that reached it: the 503 was retried twice (Istio's default policy).
for r in source:3 destination:5; do
    n=${r#*:} r=${r%:*}
    t_expect_eq "$(promql "sum(istio_requests_total{reporter=\"$r\",$rq})")" "$n" "reporter=$r: $n requests"
    t_expect_eq "$(promql "sum(istio_requests_total{reporter=\"$r\",$rq,response_code=\"404\"})")" 1 "reporter=$r: one 404"
    t_expect_eq "$(promql "sum(istio_request_duration_milliseconds_count{reporter=\"$r\",$rq})")" "$n" \
        "reporter=$r: $n durations observed"
done
t_expect_eq "$(promql "sum(istio_requests_total{reporter=\"source\",$rq,response_code=\"503\"})")" 1 \
    "the app's own 503 is passed on (Istio's default retries it twice, on the one endpoint)"

t_begin "the exposition itself"
for i in 1 2; do
    m=$(ip netns exec "${NODE_NS[$i]}" curl -s -m 5 "http://${NODE_IP4[$i]}:15020/metrics")
    # Istio's name has a unit promtool's lint dislikes; nothing else may.
    out=$(promtool check metrics <<<"$m" 2>&1 | grep -v 'istio_request_duration_milliseconds use base unit' || true)
    t_expect_eq "$out" "" "node $i: promtool check metrics"
done

meshd_check_logs
t_summary
