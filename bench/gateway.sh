#!/usr/bin/env bash
# shellcheck shell=bash
# The ingress gateway rows of `make bench` (issue 17): HTTPS at the edge,
# TLS terminated by each proxy with the same certificate (ECDSA P-256)
# and the same HTTP/1.1 backend behind it, measured in one run.
#
#   meshd    pod (1,1) enrolled and labelled istio: ingressgateway, a
#            Gateway (SIMPLE, credentialName gw-bench-tls, hosts *) on
#            8443, a VirtualService to the Service gw-backend: nginx on pod
#            (2,2):8092, a pod outside the mesh (dataplane-mode none), so
#            the gateway speaks plain HTTP/1.1 to it as the others do
#   nginx    pod (1,2):8444, one worker, proxy_pass with an upstream
#            keepalive pool to the same backend
#   haproxy  pod (1,2):8445, one thread, mode http, http-reuse always
#
# The client is wrk in node 2's root netns (outside every pod): client ->
# node 1 underlay -> the proxy -> back to node 2's pod, the same path for
# the three. Per path and round: a 1 s warm-up, then wrk -t2 -c32 keep-alive
# for BENCH_GW_SECONDS (5): HTTPS requests/s and p99; then wrk -t2 -c32
# with "Connection: close" (each request a new TCP connection and a full
# TLS handshake: session tickets are off on all three, as meshd's gateway
# resumes no session): new TLS connections/s and p99.
# Then over h2 (ALPN h2 at each proxy, HTTP/1.1 to the backend still):
# h2load -c4 -m16 for BENCH_GW_SECONDS, requests/s and the proxy's CPU
# per request (the meshd gateway serves h2 with the carrier's HTTP/2
# session; the backend's port is http: HTTP/1.1 upstream).
# Rounds interleave the three paths (BENCH_GW_ROUNDS, 3); medians are
# shown. Every load is bounded in time; traffic stays in the test netns.
#
# Sourced by bench/run.sh (gw_bench_setup, gw_bench_rounds, gw_bench_table
# after the HTTP rows); run directly, it builds its own topology and runs
# only these rows.

GW_DUR=${BENCH_GW_SECONDS:-5}
GW_ROUNDS=${BENCH_GW_ROUNDS:-3}
GW_CONNS=${BENCH_GW_CONNS:-32}
GW_BACKEND_PORT=8092
declare -gA GR GM
declare -ga GW_NGINX_PIDS=() GW_HAPROXY_PIDS=()

# gw_bench_certs DIR: a CA and the one leaf every proxy presents.
gw_bench_certs() {
    local d=$1
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=Bench CA" \
        -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=gw.bench.example" \
        -keyout "$d/gw.key" -out "$d/gw.csr" 2>/dev/null
    printf 'subjectAltName=DNS:gw.bench.example\n' >"$d/gw.ext"
    openssl x509 -req -in "$d/gw.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -set_serial 7 -days 1 \
        -extfile "$d/gw.ext" -out "$d/gw.pem" 2>/dev/null
    cat "$d/gw.pem" "$d/gw.key" >"$d/gw-combined.pem"
}

# gw_bench_config DIR: the gateway's YAML next to mesh_config's: pod (1,1)
# becomes a gateway workload, pod (2,2) leaves the mesh.
gw_bench_config() {
    local dir=$1 pki=$E2E_TMP/gw-bench
    sed -i 's/^    app: app-1-1$/    app: app-1-1\n    istio: ingressgateway/' "$dir/pod-1-1.yaml"
    sed -i 's/^    app: app-2-2$/    app: app-2-2\n    istio.io\/dataplane-mode: none/' "$dir/pod-2-2.yaml"
    cat >"$dir/gw-bench.yaml.tmp" <<YAML
apiVersion: v1
kind: Secret
metadata: {name: gw-bench-tls, namespace: default}
type: kubernetes.io/tls
data:
  tls.crt: $(base64 -w0 "$pki/gw.pem")
  tls.key: $(base64 -w0 "$pki/gw.key")
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw-bench, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8443, name: https, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: gw-bench-tls}
    hosts: ['*']
---
apiVersion: v1
kind: Service
metadata: {name: gw-backend, namespace: default}
spec:
  selector: {app: app-2-2}
  ports: [{name: http, port: 80, targetPort: $GW_BACKEND_PORT}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: gw-bench, namespace: default}
spec:
  hosts: ['*']
  gateways: [default/gw-bench]
  http: [{route: [{destination: {host: gw-backend.default.svc.cluster.local, port: {number: 80}}}]}]
YAML
    mv "$dir/gw-bench.yaml.tmp" "$dir/gw-bench.yaml"
}

gw_nginx_proxy() { # the TLS-terminating nginx on pod (1,2):8444
    local pki=$E2E_TMP/gw-bench
    GW_NGINX_PIDS=("$(nginx_pod "1,2" "$E2E_TMP/gw-nginx" 8444 "    upstream backend { server ${POD_IP4[2,2]}:$GW_BACKEND_PORT; keepalive 64; }
    server {
        listen ${POD_IP4[1,2]}:8444 ssl http2;
        ssl_certificate $pki/gw.pem;
        ssl_certificate_key $pki/gw.key;
        ssl_session_tickets off; # no resumption, as meshd's gateway
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }")")
}

gw_haproxy_proxy() { # the TLS-terminating HAProxy on pod (1,2):8445
    local d=$E2E_TMP/gw-haproxy pki=$E2E_TMP/gw-bench
    mkdir -p "$d"
    cat >"$d/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend tls
    bind ${POD_IP4[1,2]}:8445 ssl crt $pki/gw-combined.pem no-tls-tickets alpn h2,http/1.1
    default_backend app
backend app
    server nginx ${POD_IP4[2,2]}:$GW_BACKEND_PORT
CFG
    haproxy -c -q -f "$d/haproxy.cfg" || { echo "bench: HAProxy refused its configuration" >&2; return 1; }
    GW_HAPROXY_PIDS=("$(topo_spawn "${POD_NS[1,2]}" "$d/out.log" haproxy -db -f "$d/haproxy.cfg")")
    topo_wait_tcp "${POD_NS[1,2]}" "${POD_IP4[1,2]}" 8445 10
}

gw_client() { ip netns exec "${NODE_NS[2]}" "$@"; }

# gw_bench_setup: pod (1,1) enrolled on node 1 (run.sh enrolled it; the
# standalone run too), the backend, both proxies, the gateway's config.
gw_bench_setup() {
    local i code
    gw_bench_certs "$E2E_TMP/gw-bench"
    http_nginx "2,2" "$GW_BACKEND_PORT"
    gw_nginx_proxy
    gw_haproxy_proxy
    for i in 1 2; do
        config_apply "$i" gw_bench_config "$E2E_TMP/config-$i"
    done
    for _ in $(seq 1 100); do
        code=$(gw_client curl -sk -m 2 -o /dev/null -w '%{http_code}' "https://${POD_IP4[1,1]}:8443/") || true
        [ "$code" = 200 ] && break
        sleep 0.1
    done
    [ "$code" = 200 ] || { echo "bench: the meshd gateway did not answer ($code)" >&2; return 1; }
    # Each path served the request through its own TLS and the backend.
    for i in 8444 8445; do
        code=$(gw_client curl -sk -m 2 -o /dev/null -w '%{http_code}' "https://${POD_IP4[1,2]}:$i/")
        [ "$code" = 200 ] || { echo "bench: the proxy on $i did not answer ($code)" >&2; return 1; }
    done
}

# pids_and_children PID...: the processes and their children (nginx's worker).
pids_and_children() {
    local p
    for p in "$@"; do
        echo "$p"
        pgrep -P "$p" || true
    done
}

# gw_measure NAME URL PID...: one round of one path; PIDs: the proxy's
# processes, whose CPU per request is counted.
gw_measure() {
    local s=$1 url=$2 out c0 c1 n bad k rps p99 cps cp99 pids
    shift 2
    mapfile -t pids < <(pids_and_children "$@")
    gw_client wrk -t2 -c"$GW_CONNS" -d1s "$url" >/dev/null
    c0=$(pids_cpu "${pids[@]}")
    out=$(gw_client wrk -t2 -c"$GW_CONNS" -d"${GW_DUR}s" --latency "$url")
    c1=$(pids_cpu "${pids[@]}")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    bad=$(awk '/Non-2xx/ {b += $NF} /Socket errors/ {gsub(",", ""); b += $4 + $6 + $8 + $10} END {print b + 0}' <<<"$out")
    if [ -z "$n" ] || [ "$n" -eq 0 ] || [ "$bad" -gt 0 ]; then
        echo "bench: gateway $s: $bad failed of ${n:-0} requests:" >&2
        echo "$out" >&2
        return 1
    fi
    rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    GR[$s,cpu]=$(awk -v a="$c0" -v b="$c1" -v n="$n" -v t="${GR[$s,cpu]:-}" 'BEGIN {printf "%s%.1f ", t, (b - a) * 1e6 / n}')
    out=$(gw_client wrk -t2 -c"$GW_CONNS" -d"${GW_DUR}s" --latency -H 'Connection: close' "$url")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    bad=$(awk '/Non-2xx/ {b += $NF} /Socket errors/ {gsub(",", ""); b += $4 + $6 + $8 + $10} END {print b + 0}' <<<"$out")
    cps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
    cp99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    # A new connection a request: wrk counts the server's close after the
    # response as a read error only when it cuts a response short.
    if [ -z "$n" ] || [ "$n" -eq 0 ]; then
        echo "bench: gateway $s: no request over new connections:" >&2
        echo "$out" >&2
        return 1
    fi
    GR[$s,errs]=$((${GR[$s,errs]:-0} + bad))
    for k in rps p99 cps cp99; do GR[$s,$k]+="${!k} "; done
    echo "  gateway $s: keep-alive $rps req/s p99 $p99 us; new TLS $cps conn/s p99 $cp99 us ($bad errors$(awk '/Socket errors/ {printf ": %s", $0}' <<<"$out"))" >&2
}

# gw_measure_h2 NAME URL PID...: one round of one path over h2.
gw_measure_h2() {
    local s=$1 url=$2 out c0 c1 n ok rps pids
    shift 2
    mapfile -t pids < <(pids_and_children "$@")
    c0=$(pids_cpu "${pids[@]}")
    out=$(gw_client h2load -c4 -m16 -t2 -D "$GW_DUR" "$url" 2>&1)
    c1=$(pids_cpu "${pids[@]}")
    n=$(awk '/^requests:/ {print $8}' <<<"$out") # succeeded
    ok=$(awk '/^status codes:/ {print $3}' <<<"$out")
    rps=$(awk '/^finished in/ {printf "%.0f", $4}' <<<"$out")
    if [ -z "$n" ] || [ "$n" -eq 0 ] || [ "${ok:-0}" -ne "$n" ]; then
        echo "bench: gateway $s over h2: ${ok:-0} of ${n:-0} requests 2xx:" >&2
        echo "$out" >&2
        return 1
    fi
    GR[$s,h2rps]+="$rps "
    GR[$s,h2cpu]=$(awk -v a="$c0" -v b="$c1" -v n="$n" -v t="${GR[$s,h2cpu]:-}" 'BEGIN {printf "%s%.1f ", t, (b - a) * 1e6 / n}')
    echo "  gateway $s over h2: $rps req/s" >&2
}

gw_bench_rounds() {
    local r s k agents=("${MESHD_PID[1]}")
    for r in $(seq 1 "$GW_ROUNDS"); do
        echo "  gateway round $r of $GW_ROUNDS" >&2
        gw_measure nginx "https://${POD_IP4[1,2]}:8444/" "${GW_NGINX_PIDS[@]}"
        gw_measure haproxy "https://${POD_IP4[1,2]}:8445/" "${GW_HAPROXY_PIDS[@]}"
        gw_measure meshd "https://${POD_IP4[1,1]}:8443/" "${agents[@]}"
        gw_measure_h2 nginx "https://${POD_IP4[1,2]}:8444/" "${GW_NGINX_PIDS[@]}"
        gw_measure_h2 haproxy "https://${POD_IP4[1,2]}:8445/" "${GW_HAPROXY_PIDS[@]}"
        gw_measure_h2 meshd "https://${POD_IP4[1,1]}:8443/" "${agents[@]}"
    done
    for s in nginx haproxy meshd; do
        for k in rps p99 cps cp99 cpu h2rps h2cpu; do
            GM[$s,$k]=$(tr ' ' '\n' <<<"${GR[$s,$k]}" | grep . | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
        done
    done
}

gw_bench_table() {
    local s name
    echo
    echo "Ingress gateway, HTTPS (issue 17): wrk -t2 -c$GW_CONNS for ${GW_DUR}s per path, metric and round, medians of $GW_ROUNDS interleaved rounds; TLS terminated with the same ECDSA P-256 certificate, HTTP/1.1 to the same nginx backend on node 2; the client in node 2's root netns. New connections: \"Connection: close\", a full handshake each (no resumption)."
    echo
    echo "| proxy | HTTPS requests/s, keep-alive | vs nginx | p99 (us) | new TLS connections/s | vs nginx | p99, new connections (us) | proxy CPU per keep-alive request (us) |"
    echo "|---|---|---|---|---|---|---|---|"
    for s in "nginx:nginx (1 worker)" "haproxy:HAProxy (1 thread)" "meshd:meshd gateway"; do
        name=${s#*:} s=${s%%:*}
        echo "| $name | ${GM[$s,rps]} | $(ratio "${GM[$s,rps]}" "${GM[nginx,rps]}") | ${GM[$s,p99]} | ${GM[$s,cps]} | $(ratio "${GM[$s,cps]}" "${GM[nginx,cps]}") | ${GM[$s,cp99]} | ${GM[$s,cpu]} |"
    done
    echo
    echo "Over h2 (ALPN h2 at the proxy, HTTP/1.1 to the backend): h2load -c4 -m16 for ${GW_DUR}s, medians of $GW_ROUNDS rounds."
    echo
    echo "| proxy | h2 requests/s | vs nginx | proxy CPU per request (us) |"
    echo "|---|---|---|---|"
    for s in "nginx:nginx (1 worker)" "haproxy:HAProxy (1 thread)" "meshd:meshd gateway"; do
        name=${s#*:} s=${s%%:*}
        echo "| $name | ${GM[$s,h2rps]} | $(ratio "${GM[$s,h2rps]}" "${GM[nginx,h2rps]}") | ${GM[$s,h2cpu]} |"
    done
    echo
    echo "Goals (issue 17):"
    goal "gateway keep-alive requests/s vs nginx (x)" "$(awk -v a="${GM[meshd,rps]}" -v b="${GM[nginx,rps]}" 'BEGIN {printf "%.2f", a / b}')" ">=" 1
    goal "gateway new TLS connections/s vs nginx (x)" "$(awk -v a="${GM[meshd,cps]}" -v b="${GM[nginx,cps]}" 'BEGIN {printf "%.2f", a / b}')" ">=" 0.8
    goal "gateway keep-alive p99 (us) vs nginx's" "${GM[meshd,p99]}" "<=" "${GM[nginx,p99]}"
    goal "gateway new-connection p99 (us) vs nginx's" "${GM[meshd,cp99]}" "<=" "${GM[nginx,cp99]}"
}

# Run directly: only these rows, on a topology of their own.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    cd "$(dirname "$0")/.."
    source tests/e2e/lib/topology.sh
    source tests/e2e/lib/meshd.sh
    source bench/http.sh # http_nginx, pids_cpu, goal
    source bench/lib.sh
    topo_init
    topo_create 2 2
    "$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
    meshd_start 1 --log-level info --ca-dir "$E2E_TMP/ca"
    meshd_start 2 --log-level info --ca-dir "$E2E_TMP/ca"
    enroll 1 "1,1"
    for i in 1 2; do config_apply "$i" mesh_config "$E2E_TMP/config-$i"; done
    gw_bench_setup
    gw_bench_rounds
    gw_bench_table
fi
