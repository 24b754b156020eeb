#!/usr/bin/env bash
# One node of the two-guest test (tests/vm/matrix.sh boots both, each on
# its own kernel): run inside a vmtest guest as `tests/vm/twonode.sh I SHARE`.
#
# The guest is node I (1 or 2) and its root netns is the node's: eth0, the
# virtio NIC on qemu's socket link to the other guest, is the underlay
# (198.51.100.1I/24, fd00:5133:6400::1I/64, set by guest.sh from VM_IP). Two
# pods per node as tests/e2e/lib/topology.sh builds them (netns, veth,
# 10.244.I.1J, routed through the node; the other node's pod CIDRs via its
# underlay address), one meshd in the root netns, both pods enrolled. Both
# guests serve the same YAML (ambient namespace, the four pods, a DENY of
# the sa-*-2 identities), each with its node CA (SHARE/node-I, signed by
# the mesh CA matrix.sh made) from SHARE, a 9p dir both guests mount
# writable, where they also meet: each writes ready-I
# when its agent serves, waits for the other's, runs its clients, writes
# done-I, waits again, then checks its own inbound side. Every wait is
# bounded (PAIR_WAIT_S, default 300 s).
#
# Checked from each side: pod-I-1 -> pod-O-1 (IPv4 and IPv6) over mTLS
# HBONE with the peer's SPIFFE identity verified at both ends; pod-I-2 ->
# pod-O-1 denied by the AuthorizationPolicy at the destination (403 at the
# client, DENY recorded there); the metrics of both reporters (requests at
# the source, tunnels at the destination).
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

me=${1:-}
share=${2:-}
[[ $me == 1 || $me == 2 ]] || { echo "usage: $0 1|2 SHARE" >&2; exit 2; }
[[ -d $share/node-$me ]] || { echo "twonode: no node CA in $share/node-$me (matrix.sh makes it)" >&2; exit 2; }
peer=$((3 - me))
: "${PAIR_WAIT_S:=300}"

# give_up: the summary so far, and a failed exit.
give_up() {
    t_summary || true
    exit 1
}

topo_init
ip link show eth0 >/dev/null 2>&1 || { echo "twonode: no eth0 (VM_NET not set?)" >&2; exit 2; }
sysctl -q -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 >/dev/null
for i in 1 2; do
    NODE_IP4[i]=198.51.100.$((10 + i))
    NODE_IP6[i]=fd00:5133:6400::$((10 + i))
    for j in 1 2; do
        POD_IP4[$i,$j]=10.244.$i.$((10 + j))
        POD_IP6[$i,$j]=fd00:10:244:$i::$((10 + j))
    done
done

# The pods of this node: the same wiring as topo_create's, with the guest's
# root netns as the node.
for j in 1 2; do
    p=m${TOPO_RUN}p$me$j hif=m${TOPO_RUN}p$me$j
    topo_netns_add "$p"
    ip link add "$hif" type veth peer name eth0 netns "$p"
    ip addr add "10.244.$me.1/24" dev "$hif" noprefixroute
    ip addr add "fd00:10:244:$me::1/64" dev "$hif" nodad noprefixroute
    ip link set "$hif" up
    ip route add "${POD_IP4[$me,$j]}/32" dev "$hif" src "10.244.$me.1"
    ip -6 route add "${POD_IP6[$me,$j]}/128" dev "$hif"
    ip -n "$p" addr add "${POD_IP4[$me,$j]}/24" dev eth0 noprefixroute
    ip -n "$p" addr add "${POD_IP6[$me,$j]}/64" dev eth0 nodad noprefixroute
    ip -n "$p" link set eth0 up
    ip -n "$p" route add "10.244.$me.1/32" dev eth0 scope link
    ip -n "$p" route add default via "10.244.$me.1" dev eth0
    ip -n "$p" -6 route add "fd00:10:244:$me::1/128" dev eth0
    ip -n "$p" -6 route add default via "fd00:10:244:$me::1" dev eth0
    POD_NS[$me,$j]=$p
done
ip route add "10.244.$peer.0/24" via "${NODE_IP4[peer]}" dev eth0
ip -6 route add "fd00:10:244:$peer::/64" via "${NODE_IP6[peer]}" dev eth0
TOPO_NODES=2 TOPO_PODS=2
# The app, started now: python takes many seconds to listen under TCG.
topo_spawn "${POD_NS[$me,1]}" "$E2E_TMP/http-$me-1.log" /usr/bin/python3 -m http.server --bind :: 8080 >/dev/null

# The cluster as both agents see it.
cfg=$E2E_TMP/config-$me
mkdir -p "$cfg"
{
    printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {istio.io/dataplane-mode: ambient}}\n'
    for i in 1 2; do
        for j in 1 2; do
            printf -- '---\napiVersion: v1\nkind: Pod\nmetadata: {name: pod-%s-%s, namespace: default, labels: {app: app-%s-%s}}\n' "$i" "$j" "$i" "$j"
            printf 'spec: {nodeName: meshvm-node-%s, serviceAccountName: sa-%s-%s}\n' "$i" "$i" "$j"
            printf 'status:\n  phase: Running\n  podIPs: [{ip: %s}, {ip: "%s"}]\n' "${POD_IP4[$i,$j]}" "${POD_IP6[$i,$j]}"
        done
    done
    cat <<'YAML'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-second-pods, namespace: default}
spec:
  action: DENY
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/default/sa/sa-1-2", "cluster.local/ns/default/sa/sa-2-2"]}
YAML
} >"$cfg/cluster.yaml"

# meshd in the guest's own netns, named and laid out as meshd_start's
# agents are (so meshctl_at, meshd_uninstall and meshd_check_logs apply).
node=meshvm-node-$me
state=$E2E_TMP/state-$me
mkdir -p "$state"
MESHD_NODE[$me]=$node
MESHD_SOCK[$me]=$state/meshd.sock
MESHD_LOG[$me]=$E2E_TMP/meshd-$me.log
topo_on_cleanup "rm -rf '/sys/fs/bpf/meshd/$node'"
topo_on_cleanup "meshd_uninstall $me >/dev/null 2>&1 || true"
MESHD_PID[$me]=$(topo_spawn_here "${MESHD_LOG[$me]}" "$MESHD_BIN" --config "$cfg" --node "$node" \
    --state-dir "$state" --ca-dir "$share/node-$me" --log-level debug --drain-seconds "$MESHD_DRAIN_SECONDS")
up=0
for _ in $(seq 1 300); do
    if [ -S "${MESHD_SOCK[$me]}" ] && meshctl_at "$me" status >/dev/null 2>&1; then up=1; break; fi
    topo_alive "${MESHD_PID[$me]}" || break
    sleep 0.1
done
t_begin "meshd serves on $(uname -r) (node $me)"
t_expect_eq "$up" 1 "the agent came up (admin socket answers)"
if ((!up)); then
    # The agent's own words name what failed (a BPF program the kernel
    # refused, an attach): say them, and let the peer stop waiting.
    grep -E ' (error|warn) ' "${MESHD_LOG[$me]}" | tail -n 20 | sed 's/^/    /' || true
    echo "failed" >"$share/ready-$me"
    give_up
fi
for j in 1 2; do enroll_pod "$me" "$me" "$j" "sa-$me-$j"; done
topo_wait_tcp "${POD_NS[$me,1]}" "${POD_IP4[$me,1]}" 8080 120

# barrier NAME: writes NAME-me (this kernel's release), waits for NAME-peer.
barrier() {
    uname -r >"$share/$1-$me.tmp" && mv "$share/$1-$me.tmp" "$share/$1-$me"
    local deadline=$((SECONDS + PAIR_WAIT_S))
    while [[ ! -s $share/$1-$peer ]]; do
        if ((SECONDS >= deadline)); then
            echo "twonode: node $peer never wrote $1-$peer in ${PAIR_WAIT_S}s" >&2
            return 1
        fi
        sleep 0.5
    done
    [[ $(<"$share/$1-$peer") != failed ]] || { echo "twonode: node $peer failed to start" >&2; return 1; }
}

t_begin "the other guest is up"
t_expect_ok "node $peer's agent serves (barrier)" barrier ready
((T_FAILED == 0)) || give_up
peer_kernel=$(<"$share/ready-$peer")
reached=0
for _ in $(seq 1 30); do
    timeout 5 bash -c "exec 3<>/dev/tcp/${NODE_IP4[peer]}/15020" 2>/dev/null && { reached=1; break; }
    sleep 1
done
t_expect_eq "$reached" 1 "node $peer's agent (${NODE_IP4[peer]}:15020) answers on the virtio link"

t_begin "pod-$me-1 ($(uname -r)) -> pod-$peer-1 ($peer_kernel) over mTLS HBONE"
get() { # POD URL: the status, retried a few times (the first connect warms TCG)
    local s=000
    for _ in 1 2 3; do
        s=$(in_pod "$1" curl -s -o /dev/null -m 20 -w '%{http_code}' "$2" || true)
        [[ $s == 000 ]] || break
    done
    echo "$s"
}
t_expect_eq "$(get "$me,1" "http://${POD_IP4[$peer,1]}:8080/")" 200 "IPv4"
t_expect_eq "$(get "$me,1" "http://[${POD_IP6[$peer,1]}]:8080/")" 200 "IPv6"
out=$(connections_json "$me" | jq -c "[.[] | select(.direction == \"outbound\" and .pod == \"default/pod-$me-1\")][0]")
t_expect_eq "$(jq -r .hbone <<<"$out")" "${POD_IP4[$peer,1]}:15008" "tunnelled to the pod's HBONE port"
t_expect_eq "$(jq -r .peer_identity <<<"$out")" "spiffe://cluster.local/ns/default/sa/sa-$peer-1" "the server's identity verified"

t_begin "pod-$me-2 -> pod-$peer-1: denied by the AuthorizationPolicy at node $peer"
t_expect_eq "$(get "$me,2" "http://${POD_IP4[$peer,1]}:8080/")" 403 "403 at the client"

t_begin "both guests are done with their clients"
t_expect_ok "barrier" barrier "done"

t_begin "node $me's inbound side"
c=$(connections_json "$me")
in=$(jq -c "[.[] | select(.direction == \"inbound\" and .peer_identity == \"spiffe://cluster.local/ns/default/sa/sa-$peer-1\")][0]" <<<"$c")
t_expect_eq "$(jq -r .original_dst <<<"$in")" "${POD_IP4[$me,1]}:8080" "pod-$peer-1's connection arrived, identity verified"
denied=$(jq "[.[] | select(.direction == \"inbound\" and .response_flags == \"DENY\" and .peer_identity == \"spiffe://cluster.local/ns/default/sa/sa-$peer-2\")] | length" <<<"$c")
t_expect_ok "pod-$peer-2's connection is recorded DENY ($denied)" test "$denied" -ge 1

t_begin "metrics"
m=$(curl -s -m 10 "http://${NODE_IP4[me]}:15020/metrics" || true)
# The client's agent carries HTTP request by request: its side is in
# istio_requests_total (its TCP series only once the pooled tunnel closes);
# the destination opened the tunnels.
n=$(grep '^istio_requests_total{reporter="source"' <<<"$m" | grep 'response_code="200"' |
    grep "destination_principal=\"spiffe://cluster.local/ns/default/sa/sa-$peer-1\"" |
    grep -c 'connection_security_policy="mutual_tls"' || true)
t_expect_ok "istio_requests_total reporter=source, 200 from sa-$peer-1, mutual_tls ($n series)" test "$n" -ge 1
n=$(grep '^istio_tcp_connections_opened_total{reporter="destination"' <<<"$m" | grep -c 'connection_security_policy="mutual_tls"' || true)
t_expect_ok "istio_tcp_connections_opened_total reporter=destination, mutual_tls ($n series)" test "$n" -ge 1
t_expect_contains "$(grep '^istio_requests_total{reporter="source"' <<<"$m" | grep 'response_code="403"')" \
    "destination_principal=\"spiffe://cluster.local/ns/default/sa/sa-$peer-1\"" "the source side counts the 403 from node $peer"

meshd_check_logs
t_summary
