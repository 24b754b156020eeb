#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The harness itself, without meshd: 2 nodes x 2 pods on plain routing. Pod
# to pod TCP across nodes and on one node, IPv4 and IPv6, then a cleanup that
# leaves nothing behind.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/topology.sh
source "$here/lib/topology.sh"
# shellcheck source=lib/assert.sh
source "$here/lib/assert.sh"

PORT=8080

topo_init
topo_create 2 2
echo "run $TOPO_RUN: underlay $TOPO_UNDERLAY_NS/$TOPO_UNDERLAY_BR, nodes ${NODE_NS[*]}"

# Our netns, by the run's name prefix.
run_netns() { ip netns list | awk -v re="^m[unp]?$1" '$1 ~ re { print $1 }'; }

t_begin "layout"
t_expect_eq "$(run_netns "$TOPO_RUN" | wc -l)" 7 "1 underlay + 2 node + 4 pod netns"
for i in 1 2; do
    t_expect_contains "$(ip -n "${NODE_NS[i]}" -br addr show dev "${NODE_UNDERLAY_IF[i]}")" \
        "${NODE_IP4[i]}/24 ${NODE_IP6[i]}/64" "node $i addresses on ${NODE_UNDERLAY_IF[i]}"
    t_expect_eq "$(ip netns exec "${NODE_NS[i]}" sysctl -n net.ipv4.ip_forward net.ipv6.conf.all.forwarding | tr '\n' ' ')" \
        "1 1 " "node $i forwards IPv4 and IPv6"
    # Nothing links the topology to the host: nodes have no default route.
    t_expect_fail "node $i has no route out" ip -n "${NODE_NS[i]}" route get 192.0.2.1
done
t_expect_contains "$(ip -n "${NODE_NS[1]}" route get 10.244.2.11)" "via ${NODE_IP4[2]} dev ${NODE_UNDERLAY_IF[1]}" \
    "node 1 routes node 2's pods via node 2"
t_expect_contains "$(ip -n "${NODE_NS[2]}" -6 route get fd00:10:244:1::12)" "via ${NODE_IP6[1]} dev ${NODE_UNDERLAY_IF[2]}" \
    "node 2 routes node 1's IPv6 pods via node 1"
t_expect_contains "$(ip -n "${POD_NS[2,2]}" -br addr show dev eth0)" "${POD_IP4[2,2]}/24 ${POD_IP6[2,2]}/64" \
    "pod 2,2 addresses"

# One server per pod address: pod 2,1 for cross-node, pod 1,1 for same-node.
www=$TOPO_TMP/www
mkdir -p "$www"
echo "hello-$TOPO_RUN" >"$www/hello.txt"
declare -A srv=()
for pod in 2,1 1,1; do
    for fam in 4 6; do
        if [[ $fam == 4 ]]; then addr=${POD_IP4[$pod]}; else addr=${POD_IP6[$pod]}; fi
        srv[$pod,$fam]=$(topo_spawn "${POD_NS[$pod]}" "$TOPO_TMP/http-$pod-v$fam.log" \
            /usr/bin/python3 -m http.server --bind "$addr" --directory "$www" "$PORT")
        topo_wait_tcp "${POD_NS[$pod]}" "$addr" "$PORT" 10
    done
done

# fetch FROM_POD URL: the body, or "" if curl failed. Two retries: on a
# loaded machine the very first IPv6 packets of a fresh topology were seen
# to be lost (neighbour discovery); a topology that is broken fails all three.
fetch() { topo_exec "${POD_NS[$1]}" curl -sg --max-time 5 --retry 2 --retry-delay 1 --retry-all-errors "$2" || true; }
want=hello-$TOPO_RUN

t_begin "cross-node pod to pod"
t_expect_eq "$(fetch 1,1 "http://${POD_IP4[2,1]}:$PORT/hello.txt")" "$want" "IPv4 1,1 -> 2,1"
t_expect_eq "$(fetch 1,2 "http://[${POD_IP6[2,1]}]:$PORT/hello.txt")" "$want" "IPv6 1,2 -> 2,1"
t_expect_eq "$(fetch 2,1 "http://${POD_IP4[1,1]}:$PORT/hello.txt")" "$want" "IPv4 2,1 -> 1,1 (reverse)"
t_expect_eq "$(fetch 2,2 "http://[${POD_IP6[1,1]}]:$PORT/hello.txt")" "$want" "IPv6 2,2 -> 1,1 (reverse)"
t_expect_contains "$(cat "$TOPO_TMP/http-2,1-v4.log")" "${POD_IP4[1,1]} - -" \
    "the server saw the client pod's own address (no NAT)"

t_begin "same-node pod to pod"
t_expect_eq "$(fetch 1,2 "http://${POD_IP4[1,1]}:$PORT/hello.txt")" "$want" "IPv4 1,2 -> 1,1"
t_expect_eq "$(fetch 1,2 "http://[${POD_IP6[1,1]}]:$PORT/hello.txt")" "$want" "IPv6 1,2 -> 1,1"

t_begin "harness helpers"
t_expect_fail "topo_wait_tcp gives up on a closed port" topo_wait_tcp "${POD_NS[2,2]}" "${POD_IP4[2,2]}" 9 1
t_expect_fail "topo_exec refuses a netns of another run" topo_exec mu0000 true
t_expect_fail "topo_kill refuses a PID it did not start" topo_kill $$
t_expect_ok "topo_alive sees a running server" topo_alive "${srv[1,1,4]}"
t_expect_ok "topo_kill stops a server" topo_kill "${srv[1,1,4]}"
t_expect_fail "the server is gone" topo_alive "${srv[1,1,4]}"
t_expect_eq "$(fetch 1,2 "http://${POD_IP4[1,1]}:$PORT/hello.txt")" "" "nothing answers after topo_kill"
t_expect_ok "topo_netns_add makes an extra netns" topo_netns_add "m${TOPO_RUN}extra"

t_begin "cleanup"
run=$TOPO_RUN
tmp=$TOPO_TMP
marker=$(mktemp -d /tmp/meshd-e2e-marker.XXXXXX)
topo_on_cleanup --rm "$marker"
hook_order=""
topo_on_cleanup 'hook_order+=first'
topo_on_cleanup 'hook_order+=second,'
topo_cleanup
t_expect_eq "$hook_order" "second,first" "cleanup commands ran, last registered first"
t_expect_eq "$(run_netns "$run")" "" "no netns of run $run left"
left=""
for k in "${!srv[@]}"; do
    if topo_alive "${srv[$k]}"; then left+=" ${srv[$k]}"; fi
done
t_expect_eq "$left" "" "no spawned process left"
t_expect_fail "state dir removed" test -e "$tmp"
t_expect_fail "registered path removed" test -e "$marker"
t_expect_ok "topo_cleanup is idempotent" topo_cleanup

t_summary
