#!/usr/bin/env bash
# The same-node row of make bench (issue 19): two pods on one simulated
# node, measured in one run without a mesh and through meshd.
#
#   direct    no pod enrolled: the kernel's own path over the node's bridge
#   fast      both pods enrolled, in the mesh (STRICT): meshd's same-node fast
#             path (no TLS; policy decided by meshd; relayed)
#   hbone     the same with --no-local-fast-path: HBONE mTLS to itself
#
# Metrics: iperf3 one stream (Gb/s); request/response latency on one
# keep-alive connection (wrk -c1 to nginx on a port a Service names tcp-:
# carried as bytes, so the fast path, not the HTTP carrier), p50/p99; meshd
# CPU seconds over the scenario. Goals: fast >= 0.7x direct throughput,
# p50 added <= 10 us. Prints a markdown table on stdout (make bench appends
# it to its results); runs alone too: MESHD_BUILD=build bench/same_node.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/meshd.sh
source bench/lib.sh

DUR=${BENCH_SECONDS:-5}
topo_init
topo_create 1 2
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
cfg="$E2E_TMP/config-1"
mesh_config "$cfg"
cat >"$cfg/services.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: web-tcp, namespace: default}
spec:
  clusterIP: 10.96.0.31
  selector: {app: app-1-2}
  ports: [{name: tcp-web, port: 80, targetPort: 8091}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: default}
spec: {mtls: {mode: STRICT}}
YAML
SRV=${POD_IP4[1,2]}
nginx_server "1,2" 8091
topo_spawn "${POD_NS[1,2]}" "$E2E_TMP/iperf3.log" iperf3 -s -p 5201 >/dev/null
topo_wait_tcp "${POD_NS[1,2]}" "$SRV" 5201 10

declare -A R
measure() { # scenario
    local s=$1 cpu0=0 cpu1=0 gbit lat
    [ -n "${MESHD_PID[1]:-}" ] && topo_alive "${MESHD_PID[1]}" && cpu0=$(cpu_seconds "${MESHD_PID[1]}")
    gbit=$(in_pod "1,1" iperf3 -c "$SRV" -p 5201 -t "$DUR" -J | jq '.end.sum_received.bits_per_second / 1e9')
    lat=$(in_pod "1,1" wrk -t1 -c1 -d"${DUR}s" --latency "http://$SRV:8091/" |
        awk '$1=="50%" {p50=$2} $1=="99%" {p99=$2} END {print p50, p99}')
    [ -n "${MESHD_PID[1]:-}" ] && topo_alive "${MESHD_PID[1]}" && cpu1=$(cpu_seconds "${MESHD_PID[1]}")
    R[$s,gbit]=$(printf '%.2f' "$gbit")
    R[$s,p50]=$(to_us "${lat% *}" 1)
    R[$s,p99]=$(to_us "${lat#* }" 1)
    R[$s,cpu]=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {printf "%.2f", b - a}')
    echo "  same node, $s: ${R[$s,gbit]} Gb/s, p50 ${R[$s,p50]} us, p99 ${R[$s,p99]} us, meshd cpu ${R[$s,cpu]} s" >&2
}
added() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f", a - b }'; }
# carried_as CHECK: the last outbound record to the server satisfies jq CHECK.
carried_as() {
    connections_json 1 | jq -e --arg d "$SRV:8091" "[.[] | select(.direction == \"outbound\" and .original_dst == \$d)] | last | $1" >/dev/null
}

echo "bench: same node, ${DUR}s per measurement" >&2
measure direct
meshd_start 1 --log-level info --ca-dir "$E2E_TMP/ca"
enroll 1 "1,1"
enroll 1 "1,2"
measure fast
carried_as '.local == true and .hbone == null' || { echo "bench: the fast scenario did not use the fast path" >&2; exit 1; }
topo_kill "${MESHD_PID[1]}" TERM # a handover: the pods stay enrolled
meshd_start 1 --log-level info --ca-dir "$E2E_TMP/ca" --no-local-fast-path
measure hbone
carried_as '.hbone != null' || { echo "bench: the hbone scenario did not use HBONE" >&2; exit 1; }

echo
echo "Same node (two pods of one netns node; $(nproc) cores, shared: noisy; ${DUR}s per measurement):"
echo
echo "| metric | direct (no mesh) | meshd fast path | ratio / added | meshd HBONE to itself | ratio / added |"
echo "|---|---|---|---|---|---|"
echo "| throughput, 1 stream (Gb/s) | ${R[direct,gbit]} | ${R[fast,gbit]} | $(ratio "${R[fast,gbit]}" "${R[direct,gbit]}") | ${R[hbone,gbit]} | $(ratio "${R[hbone,gbit]}" "${R[direct,gbit]}") |"
for m in "p50:latency p50, 1 conn, tcp- port (us)" "p99:latency p99, 1 conn, tcp- port (us)"; do
    k=${m%%:*}
    echo "| ${m#*:} | ${R[direct,$k]} | ${R[fast,$k]} | $(added "${R[fast,$k]}" "${R[direct,$k]}") | ${R[hbone,$k]} | $(added "${R[hbone,$k]}" "${R[direct,$k]}") |"
done
echo "| meshd CPU seconds in the scenario | - | ${R[fast,cpu]} | | ${R[hbone,cpu]} | |"
