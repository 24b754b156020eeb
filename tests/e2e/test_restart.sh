#!/usr/bin/env bash
# Lifecycle: SIGKILL leaves enrolled pods failing closed (no silent bypass);
# a restarted meshd takes the pinned programs over and re-enrolls its pods.
# SIGTERM (a DaemonSet rollout) drains, then leaves enforcement in place
# exactly as SIGKILL does: a STRICT pod refuses plaintext and an enrolled
# pod's outbound connects are refused (not sent direct) while no agent
# runs; a transfer in flight during the drain finishes; the next agent
# serves the pods again without re-enrollment (mTLS, policies). Only
# `meshd uninstall` detaches, and leaves the host as it was.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 2
meshd_start 1
http_server "2,1" 8080 >/dev/null
http_server "1,1" 8080 >/dev/null
server_log="$E2E_TMP/http-2-1-8080.log"
meshctl_at 1 enroll default/pod-1-1 --netns "/run/netns/${POD_NS[1,1]}" --sa sa-1-1 \
    --ip "${POD_IP4[1,1]}" --ip "${POD_IP6[1,1]}" >/dev/null
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "captured curl before the kill"

t_begin "SIGKILL: enrolled pod fails closed"
pin_dir="/sys/fs/bpf/meshd/${MESHD_NODE[1]}"
topo_kill "${MESHD_PID[1]}" KILL
requests_before=$(grep -c '"GET / ' "$server_log" || true)
code=$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")
t_expect_eq "$code" 000 "connect refused while meshd is down"
t_expect_eq "$(grep -c '"GET / ' "$server_log" || true)" "$requests_before" "server saw no request (no bypass)"
code=$(http_get "1,1" "http://[${POD_IP6[2,1]}]:8080/")
t_expect_eq "$code" 000 "IPv6 connect refused too"
t_expect_eq "$(ls "$pin_dir" | grep -v '^inbound_' | sort | tr '\n' ' ')" \
    "link_connect4 link_connect6 link_sockops meshd_enrolled meshd_events meshd_orig_dst meshd_own meshd_pending meshd_stats " \
    "programs and maps stay pinned"
t_expect_eq "$(ls "$pin_dir" | grep -c '^inbound_')" 1 "the pod's inbound sk_lookup link stays pinned"
code=$(http_get "2,1" "http://${POD_IP4[1,1]}:8080/")
t_expect_eq "$code" 000 "inbound to the enrolled pod refused too (no plaintext bypass)"

t_begin "restart: pins taken over, pod re-enrolled"
link_id=$(bpftool link show pinned "$pin_dir/link_connect4" -j | jq .id)
prog_before=$(bpftool link show pinned "$pin_dir/link_connect4" -j | jq .prog_id)
meshd_start 1
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "programs taken over" "links updated in place"
t_expect_eq "$(meshctl_at 1 -o json pods | jq -r '.[0].name')" "pod-1-1" "pod restored from state"
t_expect_eq "$(meshctl_at 1 -o json pods | jq -r '.[0].sa + " " + (.[0].ips | join(" "))')" \
    "sa-1-1 ${POD_IP4[1,1]} ${POD_IP6[1,1]}" "with its service account and IPs"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "captured curl after restart"
t_expect_eq "$(connections_json 1 | jq -r '.[0].original_dst')" "${POD_IP4[2,1]}:8080" "recorded by the new agent"
t_expect_eq "$(bpftool link show pinned "$pin_dir/link_connect4" -j | jq .id)" "$link_id" \
    "the same kernel link, now running the new program"
prog_after=$(bpftool link show pinned "$pin_dir/link_connect4" -j | jq .prog_id)
t_expect_eq "$([ "$prog_after" != "$prog_before" ] && echo swapped)" swapped \
    "the link now runs the restarted agent's program"
links_after=$(find "$pin_dir" -name 'link_*' | wc -l)
t_expect_eq "$links_after" 3 "still exactly three pinned links"

t_begin "restart drops pods whose netns is gone"
topo_kill "${MESHD_PID[1]}" KILL
ip netns add "m${TOPO_RUN}gone"
ip -n "m${TOPO_RUN}gone" link set lo up
meshd_start 1
meshctl_at 1 enroll default/gone --netns "/run/netns/m${TOPO_RUN}gone" >/dev/null
topo_kill "${MESHD_PID[1]}" KILL
ip netns del "m${TOPO_RUN}gone"
meshd_start 1
t_expect_eq "$(meshctl_at 1 -o json pods | jq -r '[.[].name] | sort | join(",")')" "pod-1-1" "only the live pod is back"
t_expect_eq "$(bpftool map dump pinned "$pin_dir/meshd_enrolled" | jq length)" 1 "stale BPF enrollment pruned"

t_begin "uninstall refuses while the agent runs"
t_expect_fail "meshd uninstall exits non-zero" \
    "$MESHD_BIN" uninstall --node "${MESHD_NODE[1]}" --state-dir "$E2E_TMP/state-1"
t_expect_eq "$(ls "$pin_dir" | grep -c '^link_')" 3 "the pins are untouched"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "the pod is still served"

t_begin "SIGTERM hands over: pins and state kept, the pod fails closed"
topo_kill "${MESHD_PID[1]}" TERM
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "enforcement left in place" "stop logged as a handover"
t_expect_eq "$(ls "$pin_dir" | grep -v '^inbound_' | sort | tr '\n' ' ')" \
    "link_connect4 link_connect6 link_sockops meshd_enrolled meshd_events meshd_orig_dst meshd_own meshd_pending meshd_stats " \
    "programs and maps stay pinned"
t_expect_eq "$(ls "$pin_dir" | grep -c '^inbound_')" 1 "the pod's sk_lookup link stays pinned"
t_expect_eq "$(bpftool map dump pinned "$pin_dir/meshd_enrolled" | jq length)" 1 "the pod stays in the enrollment map"
t_expect_eq "$(jq -r '.[0].name' "$E2E_TMP/state-1/pods.json")" pod-1-1 "pods.json kept"
requests_before=$(grep -c '"GET / ' "$server_log" || true)
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 000 "outbound connect refused, not sent direct"
t_expect_eq "$(grep -c '"GET / ' "$server_log" || true)" "$requests_before" "server saw no request (no bypass)"
t_expect_eq "$(http_get "2,1" "http://${POD_IP4[1,1]}:8080/")" 000 "inbound plaintext dropped (empty sockmap)"

t_begin "a start that fails leaves the pins alone (never fails open)"
t_expect_fail "an agent whose CA directory is missing does not start" \
    meshd_start 1 --ca-dir "$E2E_TMP/no-such-ca" 2>/dev/null
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "no-such-ca" "it failed after taking the programs over"
t_expect_eq "$(ls "$pin_dir" | grep -c '^link_') $(ls "$pin_dir" | grep -c '^inbound_')" "3 1" "links still pinned"
t_expect_eq "$(bpftool map dump pinned "$pin_dir/meshd_enrolled" | jq length)" 1 "the pod still enrolled"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 000 "its connects still refused"

t_begin "uninstall leaves the host as it was"
link_ids=$(for f in "$pin_dir"/link_* "$pin_dir"/inbound_*; do bpftool link show pinned "$f" -j | jq .id; done)
prog_ids=$(for f in "$pin_dir"/link_* "$pin_dir"/inbound_*; do bpftool link show pinned "$f" -j | jq .prog_id; done)
t_expect_ok "meshd uninstall succeeds" meshd_uninstall 1
t_expect_eq "$(test -e "$pin_dir" && echo present || echo gone)" gone "pin directory removed"
left=0
for id in $link_ids; do
    bpftool link show id "$id" >/dev/null 2>&1 && left=$((left + 1))
done
t_expect_eq "$left" 0 "no link of this instance is left (cgroup or sk_lookup)"
tree=$(bpftool cgroup tree -j 2>/dev/null | jq -c '[.. | objects | select(has("id")) | .id]')
left=0
for id in $prog_ids; do
    jq -e --argjson id "$id" 'index($id) != null' <<<"$tree" >/dev/null && left=$((left + 1))
done
t_expect_eq "$left" 0 "none of its programs is attached in bpftool cgroup tree"
t_expect_eq "$(test -e "$E2E_TMP/state-1/pods.json" && echo kept || echo removed)" removed "state removed"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "the pod's traffic goes direct again"
t_expect_ok "a second uninstall has nothing to do" meshd_uninstall 1

# The mesh: STRICT mTLS for pod-2-1 and an ALLOW policy naming only
# pod-1-1's identity; pod-2-2 (enrolled, sa-2-2) is denied; pod-1-2 is not
# enrolled and talks plaintext.
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
for i in 1 2; do
    mesh_config "$E2E_TMP/config-$i"
    rm "$E2E_TMP/config-$i/pod-1-2.yaml" # outside the mesh: a plaintext client and server
    strict_allow_yaml app-2-1 cluster.local/ns/default/sa/sa-1-1 >"$E2E_TMP/config-$i/security.yaml"
done
# A slow server (20 chunks of 64 KiB, 0.1 s apart), so the transfer is
# still open on the server's agent when it is told to stop.
/usr/bin/python3 tests/e2e/lib/slow_body.py --expected "$E2E_TMP/big.expected"
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/slow-2-1-8081.log" /usr/bin/python3 tests/e2e/lib/slow_body.py 8081 >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 8081 10
http_server "1,2" 8080 >/dev/null
meshd_start 1 --ca-dir "$E2E_TMP/ca"
meshd_start 2 --ca-dir "$E2E_TMP/ca" --drain-seconds 10
enroll 1 "1,1"
enroll 2 "2,1"
enroll 2 "2,2"
mtls() { http_get "1,1" "http://${POD_IP4[2,1]}:8080/"; }
denied() { http_get "2,2" "http://${POD_IP4[2,1]}:8080/"; }
plain() { http_get "1,2" "http://${POD_IP4[2,1]}:8080/"; }
t_begin "mesh before the rollout"
t_expect_eq "$(mtls)" 200 "mTLS pod-1-1 -> pod-2-1"
# An HTTP client in the mesh is answered by its own agent (issue 15): 403
# when the destination's policy refuses, 503 when nothing serves it.
t_expect_eq "$(denied)" 403 "pod-2-2 denied by the policy (its agent answers 403)"
t_expect_eq "$(plain)" 000 "plaintext refused (STRICT)"
identity=$(meshctl_at 2 -o json pods | jq -r '.[] | select(.name == "pod-2-1") | .identity')
t_expect_eq "$identity" "spiffe://cluster.local/ns/default/sa/sa-2-1" "pod-2-1 has its identity"

t_begin "SIGTERM drains: a transfer in flight finishes, new connections are refused"
in_pod "1,1" curl -s -o "$E2E_TMP/big.out" -m 20 -w '%{http_code}' \
    "http://${POD_IP4[2,1]}:8081/big" >"$E2E_TMP/big.code" 2>/dev/null &
transfer=$!
for _ in $(seq 1 50); do
    [ -s "$E2E_TMP/big.out" ] && break
    sleep 0.1
done
(sleep 1; mtls >"$E2E_TMP/during.code") &
during=$!
TOPO_KILL_GRACE=12 topo_kill "${MESHD_PID[2]}" TERM
wait "$transfer" || true
wait "$during" || true
t_expect_eq "$(cat "$E2E_TMP/big.code")" 200 "the transfer completed"
t_expect_eq "$(stat -c %s "$E2E_TMP/big.out")" $((20 * 65536)) "every byte arrived"
t_expect_eq "$(cmp -s "$E2E_TMP/big.out" "$E2E_TMP/big.expected" && echo same)" same "intact"
t_expect_eq "$(cat "$E2E_TMP/during.code")" 503 "a new connection during the drain is refused (503 from the client's agent)"
drain_line=$(grep -o 'draining: listeners closed, [0-9]* open connections\? get up to 10 s' "${MESHD_LOG[2]}" || true)
t_expect_ok "the drain began with the transfer open ($drain_line)" grep -qE ' [1-9][0-9]* open' <<<"$drain_line"
t_expect_not_contains "$(cat "${MESHD_LOG[2]}")" "drain period over" "it ended when the transfer did"

t_begin "no agent on node 2: its pods fail closed"
pin2="/sys/fs/bpf/meshd/${MESHD_NODE[2]}"
t_expect_eq "$(ls "$pin2" | grep -c '^link_')" 3 "cgroup links stay pinned"
t_expect_eq "$(ls "$pin2" | grep -c '^inbound_')" 2 "both pods' sk_lookup links stay pinned"
t_expect_eq "$(jq length "$E2E_TMP/state-2/pods.json")" 2 "pods.json kept"
t_expect_eq "$(plain)" 000 "plaintext to the STRICT pod refused"
t_expect_eq "$(mtls)" 503 "mTLS refused too: nothing serves the pod (503 from the client's agent)"
before=$(grep -c '"GET / ' "$E2E_TMP/http-1-2-8080.log" || true)
t_expect_eq "$(http_get "2,2" "http://${POD_IP4[1,2]}:8080/")" 000 "an enrolled pod's outbound connect is refused"
t_expect_eq "$(grep -c '"GET / ' "$E2E_TMP/http-1-2-8080.log" || true)" "$before" "not sent direct"

t_begin "the next agent serves the pods without re-enrollment"
meshd_start 2 --ca-dir "$E2E_TMP/ca"
t_expect_eq "$(meshctl_at 2 -o json pods | jq -r '[.[].name] | sort | join(",")')" "pod-2-1,pod-2-2" "both restored"
t_expect_eq "$(meshctl_at 2 -o json pods | jq -r '.[] | select(.name == "pod-2-1") | .identity')" \
    "$identity" "with the same identity"
t_expect_eq "$(mtls)" 200 "mTLS pod-1-1 -> pod-2-1 (HBONE server restored)"
t_expect_eq "$(denied)" 403 "pod-2-2 still denied"
t_expect_eq "$(plain)" 000 "plaintext still refused"
t_expect_eq "$(connections_json 2 | jq -r --arg ip "${POD_IP4[1,2]}" \
    '[.[] | select(.direction == "inbound" and (.src | startswith($ip + ":")))][-1].response_flags')" \
    DENY "by the new agent's 15006 (sk_lookup taken over)"
t_expect_eq "$(http_get "2,2" "http://${POD_IP4[1,2]}:8080/")" 200 "outbound from the restored pod works"
t_expect_eq "$(connections_json 2 | jq -r '.[] | select(.direction == "outbound") | .original_dst' | tail -1)" \
    "${POD_IP4[1,2]}:8080" "and is captured"

meshd_check_logs
t_summary
