#!/usr/bin/env bash
# Istio-standard metrics, scraped by a real Prometheus server (Debian's
# package) from both nodes' agents: after a known transfer, PromQL returns
# exactly the bytes it moved, per source and destination workload, with
# both reporters, Istio's label set, and promtool accepting the exposition.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 1
# A file of known size behind a real HTTP server in pod-2-1.
mkdir -p "$E2E_TMP/www"
head -c 1048576 /dev/urandom >"$E2E_TMP/www/blob"
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/www.log" /usr/bin/python3 -m http.server --bind :: \
    --directory "$E2E_TMP/www" 8080 >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 8080 10
meshd_start 1
meshd_start 2
enroll 1 "1,1"
enroll 2 "2,1"

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

t_begin "a known transfer"
sizes=$(in_pod "1,1" curl -s -o /dev/null -m 10 -w '%{http_code} %{size_request} %{size_header} %{size_download}' \
    "http://${POD_IP4[2,1]}:8080/blob")
read -r code req hdr body <<<"$sizes"
t_expect_eq "$code" 200 "1 MiB downloaded through both agents"
resp=$((hdr + body))

t_begin "PromQL over the scraped series"
q_src='{reporter="source",source_workload="pod-1-1",source_workload_namespace="default"}'
q_dst='{reporter="destination",destination_workload="pod-2-1",destination_workload_namespace="default"}'
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
t_expect_eq "$(promql 'count(istio_tcp_sent_bytes_total{request_protocol="tcp",source_cluster="Kubernetes",destination_canonical_service="unknown"})')" 2 \
    "Istio's label set, unknown where meshd does not know"
t_expect_eq "$(promql 'sum(istio_tcp_sent_bytes_total{reporter="destination",connection_security_policy="none"})')" "$resp" \
    "plaintext inbound is connection_security_policy=none"

t_begin "the exposition itself"
for i in 1 2; do
    m=$(ip netns exec "${NODE_NS[$i]}" curl -s -m 5 "http://${NODE_IP4[$i]}:15020/metrics")
    out=$(promtool check metrics <<<"$m" 2>&1) && rc=0 || rc=$?
    t_expect_eq "$rc" 0 "node $i: promtool check metrics ($out)"
done

meshd_check_logs
t_summary
