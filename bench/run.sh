#!/usr/bin/env bash
# make bench: pod-to-pod across two simulated nodes, with and without meshd,
# measured in one run so the ratios compare like with like.
#
#   direct    no pod enrolled: the kernel's own path (the baseline)
#   capture   client pod enrolled: connect4 capture + meshd's outbound relay
#   both      both pods enrolled: outbound relay on node 1, sk_lookup +
#             inbound relay on node 2 (meshd's full plaintext path)
#   mesh      the pods' namespace in the mesh (YAML): HBONE with mTLS
#             between the agents, sessions pooled and warm
#
# Metrics: iperf3 single-stream throughput; wrk request latency on one
# keep-alive connection (p50/p99); new connections per second (wrk with
# "Connection: close"); meshd CPU seconds and peak RSS over the scenario;
# in the mesh, the memory an open idle connection costs (both agents'
# RSS with BENCH_IDLE connections held, each having carried a few bytes).
# Then HTTP keep-alive through meshd's L7 and L4 paths, direct and an
# HAProxy mTLS pair (bench/http.sh); then HTTPS at the ingress gateway
# against nginx and HAProxy (bench/gateway.sh). Every load is bounded in time;
# traffic stays inside the test's netns.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/meshd.sh
source bench/lib.sh
source bench/http.sh
source bench/gateway.sh

DUR=${BENCH_SECONDS:-5}
OUT_DIR=bench/results
mkdir -p "$OUT_DIR"
OUT="$OUT_DIR/$(date -u +%Y%m%dT%H%M%SZ).md"

topo_init
topo_create 2 2 # pods (x,2): never enrolled, the HTTP rows' direct and HAProxy pair
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
meshd_start 1 --log-level info --ca-dir "$E2E_TMP/ca"
meshd_start 2 --log-level info --ca-dir "$E2E_TMP/ca"
SRV=${POD_IP4[2,1]}

nginx_server "2,1" 8080
http_nginx "2,1" 8090
http_nginx "2,1" 8091
http_nginx "2,2" 8090
http_haproxy_pair
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/iperf3.log" iperf3 -s -p 5201 >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "$SRV" 5201 10

meshd_cpu() { echo "$(cpu_seconds "${MESHD_PID[1]}") $(cpu_seconds "${MESHD_PID[2]}")" | awk '{print $1 + $2}'; }
meshd_rss_kib() { awk '/VmHWM/ {s += $2} END {print s}' "/proc/${MESHD_PID[1]}/status" "/proc/${MESHD_PID[2]}/status"; }
meshd_rss_now_kib() { awk '/VmRSS/ {s += $2} END {print s}' "/proc/${MESHD_PID[1]}/status" "/proc/${MESHD_PID[2]}/status"; }

declare -A R
measure() { # scenario
    local s=$1 cpu0 cpu1 gbit lat conn
    cpu0=$(meshd_cpu)
    gbit=$(in_pod "1,1" iperf3 -c "$SRV" -p 5201 -t "$DUR" -J | jq '.end.sum_received.bits_per_second / 1e9')
    lat=$(in_pod "1,1" wrk -t1 -c1 -d"${DUR}s" --latency "http://$SRV:8080/" |
        awk '$1=="50%" {p50=$2} $1=="99%" {p99=$2} END {print p50, p99}')
    conn=$(in_pod "1,1" wrk -t2 -c32 -d"${DUR}s" -H 'Connection: close' "http://$SRV:8080/" |
        awk '/Requests\/sec/ {print $2}')
    cpu1=$(meshd_cpu)
    R[$s,gbit]=$(printf '%.2f' "$gbit")
    R[$s,p50]=$(to_us "${lat% *}")
    R[$s,p99]=$(to_us "${lat#* }")
    R[$s,conn]=$(printf '%.0f' "$conn")
    R[$s,cpu]=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {printf "%.2f", b - a}')
    R[$s,rss]=$(( $(meshd_rss_kib) / 1024 ))
    echo "  $s: ${R[$s,gbit]} Gb/s, p50 ${R[$s,p50]} us, p99 ${R[$s,p99]} us, ${R[$s,conn]} conn/s, meshd cpu ${R[$s,cpu]} s" >&2
}

echo "bench: ${DUR}s per measurement" >&2
measure direct
enroll 1 "1,1"
measure capture
enroll 2 "2,1"
measure both
# The pods' namespace joins the mesh (ambient): pod to pod is now HBONE,
# mTLS with verified SPIFFE identities, over a pool kept warm.
for i in 1 2; do
    config_apply "$i" mesh_config "$E2E_TMP/config-$i"
done
measure mesh
[ "$(connections_json 1 | jq '[.[] | select(.hbone != null)] | length')" -gt 0 ] ||
    { echo "bench: the mesh scenario did not use HBONE" >&2; exit 1; }

# HTTP keep-alive: one Service per meshd path in front of pod (2,1)'s
# nginx (only the HTTP carrier adds an x-request-id, so each is checked),
# measured in rounds with direct and the HAProxy pair between the pods
# (x,2), which stay outside the mesh.
for i in 1 2; do
    config_apply "$i" http_services "$E2E_TMP/config-$i"
done
http_check_carriers
http_rounds

# HTTPS at the edge: the meshd gateway against nginx and HAProxy
# terminating TLS with the same certificate to the same backend.
gw_bench_setup
gw_bench_rounds

# Idle connections through the mesh: what each one costs both agents.
IDLE=${BENCH_IDLE:-1000}
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/idle-server.log" /usr/bin/python3 tests/e2e/lib/tally.py serve 9090 idle >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "$SRV" 9090 10
rss0=$(meshd_rss_now_kib)
topo_spawn "${POD_NS[1,1]}" "$E2E_TMP/idle.log" /usr/bin/python3 tests/e2e/lib/tally.py holdmany "$SRV" 9090 "$IDLE" "$E2E_TMP/idle.flag" >/dev/null
for _ in $(seq 1 1200); do grep -q '^held' "$E2E_TMP/idle.log" 2>/dev/null && break; sleep 0.1; done
grep -q "^held $IDLE" "$E2E_TMP/idle.log" || { echo "bench: could not hold $IDLE connections" >&2; exit 1; }
rss1=$(meshd_rss_now_kib)
touch "$E2E_TMP/idle.flag"
idle_kib=$(awk -v a="$rss0" -v b="$rss1" -v n="$IDLE" 'BEGIN {printf "%.1f", (b - a) / n}')
echo "  mesh: $IDLE idle connections: $(( (rss1 - rss0) / 1024 )) MiB, ${idle_kib} KiB each (both agents)" >&2

{
    echo "# meshd bench $(date -u +%FT%TZ)"
    echo
    echo "Kernel $(uname -r), $(nproc) cores; ${DUR}s per measurement; pod to pod across two netns nodes."
    echo
    echo "| metric | direct (baseline) | capture | ratio | both ends | ratio | mesh (HBONE mTLS) | ratio |"
    echo "|---|---|---|---|---|---|---|---|"
    for m in "gbit:throughput, 1 stream (Gb/s)" "p50:latency p50, 1 conn (us)" "p99:latency p99, 1 conn (us)" "conn:new connections/s (Connection: close)"; do
        k=${m%%:*}
        echo "| ${m#*:} | ${R[direct,$k]} | ${R[capture,$k]} | $(ratio "${R[capture,$k]}" "${R[direct,$k]}") | ${R[both,$k]} | $(ratio "${R[both,$k]}" "${R[direct,$k]}") | ${R[mesh,$k]} | $(ratio "${R[mesh,$k]}" "${R[direct,$k]}") |"
    done
    echo "| meshd CPU seconds in the scenario | ${R[direct,cpu]} | ${R[capture,cpu]} | | ${R[both,cpu]} | | ${R[mesh,cpu]} | |"
    echo "| meshd peak RSS, both agents (MiB) | ${R[direct,rss]} | ${R[capture,rss]} | | ${R[both,rss]} | | ${R[mesh,rss]} | |"
    echo
    echo "An open idle connection through the mesh costs both agents ${idle_kib} KiB ($IDLE held)."
    http_table
    gw_bench_table
} | tee "$OUT"
# Same node: its own one-node topology (bench/same_node.sh).
MESHD_BUILD=$MESHD_BUILD BENCH_SECONDS=$DUR bench/same_node.sh | tee -a "$OUT"
echo "bench: results in $OUT" >&2
