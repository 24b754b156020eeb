#!/usr/bin/env bash
# The L7 path's user-space cost per request, in instructions (issue 15):
# both agents under `valgrind --tool=callgrind`, a fixed number of
# keep-alive HTTP/1.1 requests through the L7 path (a Service port named
# http) and the same number through the L4 path (tcp-web), each agent's
# counters zeroed before and dumped after, divided by the requests made.
# Instructions barely depend on what else the 2-core machine runs (wall
# time and /proc CPU time do), so the L7/L4 ratio is reproducible while
# others build; they count user space only (libc, OpenSSL, nghttp2
# included), not the kernel.
#
# The topology is bench/http.sh's L7/L4 half: pod (1,1) on node 1 to
# nginx in pod (2,1) on node 2, HBONE mTLS between the agents. An idle
# window as long as the measured one is dumped too and subtracted (the
# agents' timers). Each dump stays in $PROFILE_OUT (default
# bench/results/profile-<time>) for callgrind_annotate.
#
# One connection by default: each request is then its own loop batch,
# TLS record and system calls on both agents, and the counts repeat within
# half a percent whatever the machine does. With several connections
# (PROFILE_CONNS=4, the previous session's setting) requests share
# batches and records, which costs less per request, by an amount that
# depends on timing: the L4 count moved by 10% between runs of one build.
#
#   MESHD_BUILD=build bench/l7_profile.sh
#   PROFILE_REQUESTS (2000), PROFILE_CONNS (1), PROFILE_OUT
set -euo pipefail
cd "$(dirname "$0")/.."
TOPO_WAIT_SCALE=${TOPO_WAIT_SCALE:-6} # valgrind starts the agents slowly
source tests/e2e/lib/topology.sh
source tests/e2e/lib/meshd.sh
source bench/http.sh

N=${PROFILE_REQUESTS:-2000}
C=${PROFILE_CONNS:-1}
OUT=${PROFILE_OUT:-bench/results/profile-$(date -u +%Y%m%dT%H%M%SZ)}
[[ $N =~ ^[1-9][0-9]{0,5}$ && $C =~ ^[1-9][0-9]?$ ]] ||
    { echo "l7_profile: PROFILE_REQUESTS 1..999999, PROFILE_CONNS 1..99" >&2; exit 2; }
mkdir -p "$OUT"
OUT=$(realpath "$OUT")

# Each agent runs under callgrind; nsenter and valgrind exec, so the
# spawned PID is the agent's.
real_meshd=$MESHD_BIN
MESHD_BIN="$E2E_TMP/meshd-callgrind"
cat >"$MESHD_BIN" <<SH
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.%p" "$real_meshd" "\$@"
SH
chmod +x "$MESHD_BIN"

topo_init
topo_create 2 1
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null 2>&1
meshd_start 1 --log-level info --ca-dir "$E2E_TMP/ca"
meshd_start 2 --log-level info --ca-dir "$E2E_TMP/ca"
http_nginx "2,1" 8090
http_nginx "2,1" 8091
http_mesh_pods

# cg_dump NAME: dumps both agents' counters (then zeroed by callgrind) and
# prints node 1's and node 2's instructions since the last zero.
cg_dump() {
    local i f ir=()
    for i in 1 2; do
        callgrind_control -d "$1" "${MESHD_PID[$i]}" >/dev/null 2>&1
        for _ in $(seq 1 100); do
            f=$(grep -l "^desc: Trigger: .*$1" "$OUT/cg.${MESHD_PID[$i]}".* 2>/dev/null | tail -1) || true
            [ -n "$f" ] && grep -q '^totals:' "$f" && break
            sleep 0.1
        done
        [ -n "$f" ] || { echo "l7_profile: node $i wrote no dump $1" >&2; return 1; }
        mv "$f" "$OUT/$1.node$i.cg"
        ir+=("$(awk '/^totals:/ {print $2}' "$OUT/$1.node$i.cg")")
    done
    echo "${ir[*]}"
}
cg_zero() { for i in 1 2; do callgrind_control -z "${MESHD_PID[$i]}" >/dev/null 2>&1; done; }

# load NAME URL: N requests on C keep-alive connections; prints "ir1 ir2 seconds".
load() {
    local out t0 t1 done_n
    in_pod "1,1" h2load --h1 -n 200 -c "$C" "$2" >/dev/null # warm: pools, TLS, memos
    cg_zero
    t0=$(date +%s.%N)
    out=$(in_pod "1,1" h2load --h1 -n "$N" -c "$C" -T 30 "$2")
    t1=$(date +%s.%N)
    done_n=$(awk '/^requests:/ {print $8}' <<<"$out")
    if [ "$done_n" != "$N" ] || ! grep -q "status codes: $N 2xx" <<<"$out"; then
        echo "l7_profile: $1: not $N 2xx:" >&2
        echo "$out" >&2
        return 1
    fi
    echo "$(cg_dump "$1") $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')"
}

read -r l7_1 l7_2 l7_s < <(load l7 "http://$HTTP_VIP_L7/")
read -r l4_1 l4_2 l4_s < <(load l4 "http://$HTTP_VIP_L4/")
cg_zero
sleep "$l7_s"
read -r idle_1 idle_2 < <(cg_dump idle)

awk -v n="$N" -v c="$C" -v a1="$l7_1" -v a2="$l7_2" -v as="$l7_s" -v b1="$l4_1" -v b2="$l4_2" -v bs="$l4_s" \
    -v i1="$idle_1" -v i2="$idle_2" -v is="$l7_s" -v out="$OUT" 'BEGIN {
    # idle instructions per second, scaled to each window
    r1 = i1 / is; r2 = i2 / is
    printf "instructions per request (callgrind, user space), %d keep-alive HTTP/1.1 requests on %d connections\n", n, c
    printf "| path | node 1 | node 2 | both | window (s) | both, idle subtracted |\n|---|---|---|---|---|---|\n"
    l7 = (a1 + a2) / n; l4 = (b1 + b2) / n
    l7i = (a1 + a2 - (r1 + r2) * as) / n; l4i = (b1 + b2 - (r1 + r2) * bs) / n
    printf "| L7 (http port) | %.0f | %.0f | %.0f | %s | %.0f |\n", a1 / n, a2 / n, l7, as, l7i
    printf "| L4 (tcp- port) | %.0f | %.0f | %.0f | %s | %.0f |\n", b1 / n, b2 / n, l4, bs, l4i
    printf "idle: %.0f and %.0f instructions/s (nodes 1 and 2)\n", r1, r2
    printf "L7/L4: %.2f (idle subtracted %.2f)\n", l7 / l4, l7i / l4i
    printf "dumps: %s/{l7,l4,idle}.node{1,2}.cg (callgrind_annotate)\n", out }'
