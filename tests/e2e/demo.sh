#!/usr/bin/env bash
# make demo: meshd on its embedded default topology. Two simulated nodes of
# two pods each (network namespaces), one meshd per node, every pod
# enrolled, a real HTTP server and real curl through the mesh; then it shows
# meshd's records and BPF counters, and cleans everything up.
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

say "meshd per node"
for i in 1 2; do
    meshd_start "$i"
    printf '  node %s: meshd pid %s, admin %s\n' "$i" "${MESHD_PID[$i]}" "${MESHD_SOCK[$i]}"
done

say "a web server in pod-2-1"
# Started before enrolling: once enrolled, a readiness probe from inside the
# pod is answered by meshd's own listener and proves nothing about the app.
http_server "2,1" 8080 >/dev/null
echo "  python3 -m http.server on ${POD_IP4[2,1]}:8080 and [${POD_IP6[2,1]}]:8080"

say "enroll every pod with its node's meshd"
for i in 1 2; do
    for j in 1 2; do
        meshctl_at "$i" enroll "default/pod-$i-$j" --netns "/run/netns/${POD_NS[$i,$j]}"
    done
done

say "curl from pod-1-1 (node 1) to pod-2-1 (node 2)"
in_pod "1,1" curl -sS -m 5 -o /dev/null -w '  IPv4: HTTP %{http_code} in %{time_total}s\n' "http://${POD_IP4[2,1]}:8080/"
in_pod "1,1" curl -sS -m 5 -o /dev/null -w '  IPv6: HTTP %{http_code} in %{time_total}s\n' "http://[${POD_IP6[2,1]}]:8080/"

say "node 1's meshd captured the client side (meshctl connections)"
meshctl_at 1 connections
say "node 2's meshd captured the server side"
meshctl_at 2 connections

say "BPF counters on node 1 (meshctl status)"
meshctl_at 1 status | jq '{pods, bpf, connections}'

say "the programs, as bpftool sees them"
bpftool prog show name meshd_connect4 | head -2
bpftool link show pinned "/sys/fs/bpf/meshd/${MESHD_NODE[1]}/link_connect4"

say "cleaning up"
