#!/usr/bin/env bash
# The HTTP keep-alive rows of `make bench` (issue 15), sourced by
# bench/run.sh, or run by itself (`bench/http.sh`: its own topology,
# these rows only); the topology has two pods per node.
#
#   direct   wrk in pod (1,2) to nginx in pod (2,2): neither is enrolled,
#            no proxy at all
#   haproxy  an HAProxy pair in HTTP mode between the same two pods, mTLS
#            between them with workload certificates of the mesh CA meshd
#            uses: the client-side proxy on pod (1,2)'s loopback, the
#            server-side one on pod (2,2)'s address, keep-alive to nginx
#            (like a sidecar pair)
#   l7       meshd: wrk in pod (1,1) to a Service port named http in front
#            of pod (2,1)'s nginx: requests carried one by one by the HTTP
#            carrier, upstream over HBONE, node 1 to node 2
#   l4       meshd: the same, a Service port named tcp-web: bytes over HBONE
#
# The enrolled and the outside pairs run side by side, so the four paths are
# measured in interleaved rounds (BENCH_HTTP_ROUNDS, 3) and the table shows
# each path's median: the machine's load drifts less between rounds than
# between the start and the end of the bench. Each nginx is the same
# configuration; on pod (2,1) one instance per port (8090 for L7, 8091 for
# L4, so the L7 Service never names the L4 one's target port). nginx echoes
# the x-request-id it received: only the HTTP carrier adds one, which is how
# the bench proves the L7 path went through it and the L4 one did not.
#
# A round of one path: a 1 s warm-up (the proxies' connections, TLS
# included, are open before the measured run, as the mesh's pooled sessions
# are), wrk -t2 with BENCH_HTTP_CONNS connections (32) for
# BENCH_HTTP_SECONDS (5), then one keep-alive connection for
# BENCH_HTTP_LAT_SECONDS (3): 32 connections saturate the 2-core machine,
# so their p99 is mostly queueing, while one connection's p99 is what a path
# adds to a request. The proxies' CPU per request is utime+stime of the
# proxy processes (both agents, or both HAProxies) over the 32-connection
# runs, divided by the requests wrk made in them.

HTTP_DUR=${BENCH_HTTP_SECONDS:-5}
HTTP_ROUNDS=${BENCH_HTTP_ROUNDS:-3}
HTTP_CONNS=${BENCH_HTTP_CONNS:-32}
HTTP_LAT_DUR=${BENCH_HTTP_LAT_SECONDS:-3}
HTTP_VIP_L7=10.96.0.20
HTTP_VIP_L4=10.96.0.21
HTTP_HAPROXY_PORT=15001 # the client-side HAProxy, on pod (1,2)'s loopback
HTTP_MTLS_PORT=15443    # the server-side HAProxy, on pod (2,2)'s address
declare -gA HR
declare -ga HTTP_HAPROXY_PIDS=()

# http_nginx "i,j" PORT: like nginx_server, plus the x-request-id echo.
http_nginx() {
    nginx_pod "$1" "$E2E_TMP/nginx-http-${1/,/-}-$2" "$2" "    server {
        listen $2 reuseport;
        location / { add_header x-seen-request-id \$http_x_request_id; return 200 \"ok\\n\"; }
    }" >/dev/null
}

# http_haproxy_pair: the anchor (see above). Certificates from the mesh CA
# ($E2E_TMP/ca) for sa-1-2 and sa-2-2, as meshd's own workload certificates.
http_haproxy_pair() {
    local d="$E2E_TMP/haproxy" srv=${POD_IP4[2,2]} side
    mkdir -p "$d"
    for side in 1-2 2-2; do
        "$MESHCTL_BIN" ca issue "$E2E_TMP/ca" --ns default --sa "sa-$side" --out "$d/$side" >/dev/null
        cat "$d/$side.pem" "$d/$side-key.pem" >"$d/$side-crt.pem"
    done
    # One thread each, as meshd runs one event loop per node.
    local common="global
    nbthread 1
    maxconn 4096
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s"
    printf '%s\n%s\n' "$common" "frontend app
    bind 127.0.0.1:$HTTP_HAPROXY_PORT
    default_backend peer
backend peer
    server s2 $srv:$HTTP_MTLS_PORT ssl verify required ca-file $E2E_TMP/ca/root-cert.pem crt $d/1-2-crt.pem alpn http/1.1" >"$d/client.cfg"
    printf '%s\n%s\n' "$common" "frontend mtls
    bind $srv:$HTTP_MTLS_PORT ssl crt $d/2-2-crt.pem ca-file $E2E_TMP/ca/root-cert.pem verify required alpn http/1.1
    default_backend app
backend app
    server nginx $srv:8090" >"$d/server.cfg"
    if ! haproxy -c -q -f "$d/client.cfg" || ! haproxy -c -q -f "$d/server.cfg"; then
        echo "bench: HAProxy refused its configuration" >&2
        return 1
    fi
    HTTP_HAPROXY_PIDS+=("$(topo_spawn "${POD_NS[2,2]}" "$d/server.log" haproxy -db -f "$d/server.cfg")")
    topo_wait_tcp "${POD_NS[2,2]}" "$srv" "$HTTP_MTLS_PORT" 10
    HTTP_HAPROXY_PIDS+=("$(topo_spawn "${POD_NS[1,2]}" "$d/client.log" haproxy -db -f "$d/client.cfg")")
    topo_wait_tcp "${POD_NS[1,2]}" 127.0.0.1 "$HTTP_HAPROXY_PORT" 10
}

# http_services DIR: the two Services in front of pod (2,1)'s nginx.
http_services() {
    cat >"$1/bench-http.yaml.tmp" <<YAML
apiVersion: v1
kind: Service
metadata: {name: web-http, namespace: default}
spec:
  clusterIP: $HTTP_VIP_L7
  selector: {app: app-2-1}
  ports: [{name: http, port: 80, targetPort: 8090}]
---
apiVersion: v1
kind: Service
metadata: {name: web-tcp, namespace: default}
spec:
  clusterIP: $HTTP_VIP_L4
  selector: {app: app-2-1}
  ports: [{name: tcp-web, port: 80, targetPort: 8091}]
YAML
    mv "$1/bench-http.yaml.tmp" "$1/bench-http.yaml"
}

# http_check_carriers: fails unless the http port went through the HTTP
# carrier (an x-request-id reached nginx) and the tcp- one did not.
# The first request may time out while the agents' tunnel comes up (under
# valgrind, on a loaded machine): three tries.
http_check_carriers() {
    local try id=""
    for try in 1 2 3; do
        id=$(http_request_id "http://$HTTP_VIP_L7/")
        [ -z "$id" ] || break
    done
    [ -n "$id" ] || { echo "bench: the http port was not carried as HTTP" >&2; return 1; }
    [ -z "$(http_request_id "http://$HTTP_VIP_L4/")" ] ||
        { echo "bench: the tcp- port was parsed as HTTP" >&2; return 1; }
}

# http_mesh_pods: pods (1,1) and (2,1) enrolled, the namespace in the mesh
# and the two Services on both agents, the carriers checked.
http_mesh_pods() {
    local i
    enroll 1 "1,1"
    enroll 2 "2,1"
    for i in 1 2; do
        config_apply "$i" mesh_config "$E2E_TMP/config-$i"
        config_apply "$i" http_services "$E2E_TMP/config-$i"
    done
    http_check_carriers
}

# http_request_id URL: the x-request-id the backend saw for one request ('' if none).
http_request_id() {
    in_pod "1,1" curl -s -m 5 -D - -o /dev/null "$1" | tr -d '\r' |
        awk -F': ' 'tolower($1) == "x-seen-request-id" {print $2}'
}

# http_measure NAME CLIENT URL PID...: one round of one path from pod
# CLIENT; PIDs are the proxy processes whose CPU is counted (none: direct).
# Appends to HR[NAME,rps|p50|p99|p50_1|p99_1] and adds to HR[NAME,n|cpu].
http_measure() {
    local s=$1 client=$2 url=$3 out c0 c1 n bad k
    shift 3
    in_pod "$client" wrk -t2 -c"$HTTP_CONNS" -d1s "$url" >/dev/null
    c0=$(pids_cpu "$@")
    out=$(in_pod "$client" wrk -t2 -c"$HTTP_CONNS" -d"${HTTP_DUR}s" --latency "$url")
    c1=$(pids_cpu "$@")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    bad=$(awk '/Non-2xx/ {b += $NF} /Socket errors/ {gsub(",", ""); b += $4 + $6 + $8 + $10} END {print b + 0}' <<<"$out")
    if [ -z "$n" ] || [ "$n" -eq 0 ] || [ "$bad" -gt 0 ]; then
        echo "bench: $s: $bad failed of ${n:-0} requests:" >&2
        echo "$out" >&2
        return 1
    fi
    local rps p50 p99 p50_1 p99_1
    rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    out=$(in_pod "$client" wrk -t1 -c1 -d"${HTTP_LAT_DUR}s" --latency "$url")
    p50_1=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    p99_1=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    for k in rps p50 p99 p50_1 p99_1; do HR[$s,$k]+="${!k} "; done
    HR[$s,n]=$((${HR[$s,n]:-0} + n))
    HR[$s,cpu]=$(awk -v a="$c0" -v b="$c1" -v t="${HR[$s,cpu]:-0}" 'BEGIN {print t + b - a}')
    echo "  http $s: $rps req/s, p50 $p50 us, p99 $p99 us ($n requests); 1 conn: p50 $p50_1 us, p99 $p99_1 us" >&2
}

# http_rounds: the four paths, interleaved, HTTP_ROUNDS times; then
# HM[NAME,KEY] holds each path's medians and its CPU per request (us).
declare -gA HM
http_rounds() {
    local r s k agents=("${MESHD_PID[1]}" "${MESHD_PID[2]}")
    for r in $(seq 1 "$HTTP_ROUNDS"); do
        echo "  http round $r of $HTTP_ROUNDS" >&2
        http_measure direct "1,2" "http://${POD_IP4[2,2]}:8090/"
        http_measure haproxy "1,2" "http://127.0.0.1:$HTTP_HAPROXY_PORT/" "${HTTP_HAPROXY_PIDS[@]}"
        http_measure l4 "1,1" "http://$HTTP_VIP_L4/" "${agents[@]}"
        http_measure l7 "1,1" "http://$HTTP_VIP_L7/" "${agents[@]}"
    done
    for s in direct haproxy l4 l7; do
        for k in rps p50 p99 p50_1 p99_1; do
            HM[$s,$k]=$(tr ' ' '\n' <<<"${HR[$s,$k]}" | grep . | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
        done
        HM[$s,cpu]=$(awk -v c="${HR[$s,cpu]}" -v n="${HR[$s,n]}" -v d="$s" 'BEGIN {if (d == "direct") print "-"; else printf "%.1f", c * 1e6 / n}')
    done
}

# pids_cpu PID...: their utime+stime added up, in seconds.
pids_cpu() {
    local p s=0
    for p in "$@"; do s=$(awk -v s="$s" -v c="$(cpu_seconds "$p")" 'BEGIN {print s + c}'); done
    echo "$s"
}

# goal TEXT VALUE OP LIMIT: "TEXT: VALUE (goal OP LIMIT): met" or "not met".
goal() {
    awk -v t="$1" -v v="$2" -v op="$3" -v l="$4" 'BEGIN {
        ok = (op == ">=") ? v >= l : (op == "<=") ? v <= l : v < l
        printf "- %s: %s (goal %s %s): %s\n", t, v, op, l, ok ? "met" : "NOT met" }'
}

http_table() {
    local s name added l7_direct l7_ha cpu_ratio
    echo
    echo "HTTP keep-alive (issue 15): wrk -t2 -c$HTTP_CONNS for ${HTTP_DUR}s and -c1 for ${HTTP_LAT_DUR}s per path and round, medians of $HTTP_ROUNDS interleaved rounds; nginx keep-alive backend; a pod on node 1 to a pod on node 2."
    echo
    echo "| path | requests/s, $HTTP_CONNS conns | vs direct | vs HAProxy | p50 (us) | p99 (us) | p50, 1 conn (us) | p99, 1 conn (us) | added p99, 1 conn (us) | proxy CPU per request (us) |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for s in "direct:direct (no proxy)" "haproxy:HAProxy HTTP mTLS pair (anchor)" \
        "l4:meshd L4 (tcp- port, bytes over HBONE)" "l7:meshd L7 (http port, HTTP carrier over HBONE)"; do
        name=${s#*:} s=${s%%:*}
        added=$((HM[$s,p99_1] - HM[direct,p99_1]))
        echo "| $name | ${HM[$s,rps]} | $(ratio "${HM[$s,rps]}" "${HM[direct,rps]}") | $(ratio "${HM[$s,rps]}" "${HM[haproxy,rps]}") | ${HM[$s,p50]} | ${HM[$s,p99]} | ${HM[$s,p50_1]} | ${HM[$s,p99_1]} | $added | ${HM[$s,cpu]} |"
    done
    l7_direct=$(awk -v a="${HM[l7,rps]}" -v b="${HM[direct,rps]}" 'BEGIN {printf "%.2f", a / b}')
    l7_ha=$(awk -v a="${HM[l7,rps]}" -v b="${HM[haproxy,rps]}" 'BEGIN {printf "%.2f", a / b}')
    cpu_ratio=$(awk -v a="${HM[l7,cpu]}" -v b="${HM[l4,cpu]}" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
    echo
    echo "Goals (issue 15):"
    goal "L7 requests/s vs the HAProxy pair (x)" "$l7_ha" ">=" 2
    goal "L7 requests/s vs direct (x)" "$l7_direct" ">=" 0.5
    goal "L7 agent CPU per request vs L4 (x)" "$cpu_ratio" "<=" 1.5
    goal "L7 added p99, 1 conn (us) vs the HAProxy pair's" "$((HM[l7,p99_1] - HM[direct,p99_1]))" "<" "$((HM[haproxy,p99_1] - HM[direct,p99_1]))"
    goal "L7 added p99, $HTTP_CONNS conns (us) vs the HAProxy pair's" "$((HM[l7,p99] - HM[direct,p99]))" "<" "$((HM[haproxy,p99] - HM[direct,p99]))"
}

# Run by itself (bench/http.sh, BENCH_HTTP_* as above): its own topology
# and only these rows, as bench/run.sh would measure them.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    cd "$(dirname "$0")/.."
    source tests/e2e/lib/topology.sh
    source tests/e2e/lib/meshd.sh
    source bench/lib.sh
    topo_init
    topo_create 2 2
    "$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
    meshd_start 1 --log-level info --ca-dir "$E2E_TMP/ca"
    meshd_start 2 --log-level info --ca-dir "$E2E_TMP/ca"
    http_nginx "2,1" 8090
    http_nginx "2,1" 8091
    http_nginx "2,2" 8090
    http_haproxy_pair
    http_mesh_pods
    http_rounds
    http_table
fi
