#!/usr/bin/env bash
# Issue 13 item 1, the self-connection loop, performed as the attacker
# would. Node 2 runs the enrolled PERMISSIVE server pod-2-1 (app on 8080);
# on node 1, pod-1-1 is an enrolled mesh client (HBONE through its meshd)
# and pod-1-2 is outside the mesh. The attacks:
#   (a) many plaintext connections from pod-1-2 to pod-2-1's 15006, 15001
#       and 15008 (once 20 of them made meshd connect to itself until it ran
#       out of files): each is reset or closed, recorded as a self-call
#       (flag SELF) where meshd proxies, and node 2's meshd keeps a bounded
#       number of open files;
#   (b) HBONE CONNECTs whose :authority is pod-2-1's 15006, 15008, 15001
#       (driven by the mesh client through its own meshd): refused with 400;
#   (c) the same from inside pod-2-1 (its own address on meshd's ports,
#       and its loopback to the 15006 listener): refused, while the pod
#       calling its own app through the mesh is served;
# while legitimate clients (mesh and plaintext) reach the app throughout.
# IPv4 and IPv6.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 2
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
for i in 1 2; do mesh_config "$E2E_TMP/config-$i"; done
meshd_start 1 --ca-dir "$E2E_TMP/ca"
meshd_start 2 --ca-dir "$E2E_TMP/ca"
http_server "2,1" 8080 >/dev/null
enroll 1 "1,1"
enroll 2 "2,1"

fds() { ls "/proc/${MESHD_PID[2]}/fd" | wc -l; }
self_calls() { meshctl_at 2 status | jq -r .connections.self_calls; }

# attack "i,j" HOST PORT N: N concurrent TCP connections from pod (i,j),
# each sending a request line and waiting (3 s at most) for the end; prints
# "ended=E open=O" (ended: reset, refused or closed by the peer).
attack() {
    in_pod "$1" python3 - "$2" "$3" "$4" <<'PY'
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
socks, ended = [], 0
for _ in range(n):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((host, port))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        socks.append(s)
    except OSError:
        ended += 1
        s.close()
deadline = time.time() + 3
for s in socks:
    s.settimeout(max(0.05, deadline - time.time()))
    try:
        while s.recv(4096):
            pass
        ended += 1
    except (ConnectionResetError, BrokenPipeError):
        ended += 1
    except socket.timeout:
        pass
    s.close()
print(f"ended={ended} open={n - ended}")
PY
}

# Legitimate clients in the background for the whole attack: a mesh client
# (HBONE) and a plaintext client, 200 requests each at most, 60 s at most.
legit_log="$E2E_TMP/legit.log"
: >"$legit_log"
legit() {
    local p=$1 url=$2 end=$((SECONDS + 60))
    for _ in $(seq 1 200); do
        [ "$SECONDS" -lt "$end" ] || break
        [ -e "$E2E_TMP/stop-legit" ] && break
        echo "$p $(http_get "$p" "$url")" >>"$legit_log"
        sleep 0.1
    done
}
legit "1,1" "http://${POD_IP4[2,1]}:8080/" &
legit_mesh=$!
legit "1,2" "http://[${POD_IP6[2,1]}]:8080/" &
legit_plain=$!
topo_on_cleanup "kill $legit_mesh $legit_plain 2>/dev/null || true"

t_begin "the 15006 listener is bound to loopback, reachable only through sk_lookup"
lsn=$(in_pod "2,1" ss -Hltn 'sport = :15006' | awk '{print $4}' | sort | tr '\n' ' ')
t_expect_eq "$lsn" "127.0.0.1:15006 [::1]:15006 " "bound addresses"
t_expect_eq "$(http_get "1,2" "http://${POD_IP4[2,1]}:8080/")" 200 "plaintext still steered to it (IPv4)"
t_expect_eq "$(http_get "1,2" "http://[${POD_IP6[2,1]}]:8080/")" 200 "and IPv6"

fd0=$(fds)
sc0=$(self_calls)
t_begin "(a) plaintext from outside the mesh to meshd's ports is reset, files stay bounded (baseline $fd0 fds)"
for ip in "${POD_IP4[2,1]}" "${POD_IP6[2,1]}"; do
    for port in 15006 15001 15008; do
        out=$(attack "1,2" "$ip" "$port" 25)
        t_expect_eq "$out" "ended=25 open=0" "25 connections to $ip:$port all ended"
        n=$(fds)
        t_expect_ok "node 2 meshd holds $n fds after $ip:$port (baseline $fd0)" test "$n" -le $((fd0 + 8))
    done
done
# 15006 and 15001 are proxied by the 15006 listener: 2 ports x 2 families x 25.
sc1=$(self_calls)
t_expect_ok "counted as self-calls ($sc0 -> $sc1)" test "$sc1" -ge $((sc0 + 100))
recs=$(connections_json 2)
t_expect_eq "$(jq --arg d "${POD_IP4[2,1]}:15006" '[.[] | select(.original_dst == $d and .response_flags == "SELF")] | length > 0' <<<"$recs")" true \
    "records: to ${POD_IP4[2,1]}:15006 flagged SELF"
t_expect_eq "$(jq --arg d "[${POD_IP6[2,1]}]:15001" '[.[] | select(.original_dst == $d and .response_flags == "SELF")] | length > 0' <<<"$recs")" true \
    "records: to [${POD_IP6[2,1]}]:15001 flagged SELF"
t_expect_eq "$(jq '[.[] | select(.response_flags == "SELF" and .state != "failed")] | length' <<<"$recs")" 0 \
    "no self-call was carried"

t_begin "(b) HBONE CONNECT to meshd's own ports is refused with 400"
hs0=$(meshctl_at 2 status | jq -r .mesh.hbone_server.self_calls)
for ip in "${POD_IP4[2,1]}" "[${POD_IP6[2,1]}]"; do
    for port in 15006 15008 15001; do
        for _ in 1 2 3 4 5; do
            t_expect_eq "$(http_get "1,1" "http://$ip:$port/")" 000 "mesh client -> $ip:$port through HBONE fails"
        done
    done
done
hs1=$(meshctl_at 2 status | jq -r .mesh.hbone_server.self_calls)
t_expect_eq "$((hs1 - hs0))" 30 "node 2 counted 30 self-call CONNECTs"
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "CONNECT answered 400" "node 1 saw 400"
t_expect_contains "$(cat "${MESHD_LOG[2]}")" "refused: a self-call" "node 2 says why"
recs=$(connections_json 2)
t_expect_eq "$(jq --arg d "${POD_IP4[2,1]}:15008" '[.[] | select(.original_dst == $d and .response_flags == "SELF" and .peer_identity == "spiffe://cluster.local/ns/default/sa/sa-1-1")] | length > 0' <<<"$recs")" true \
    "record: CONNECT to :15008 from sa-1-1 flagged SELF"
n=$(fds)
t_expect_ok "node 2 meshd holds $n fds (baseline $fd0)" test "$n" -le $((fd0 + 8))

t_begin "(c) from inside the pod: its own address on meshd's ports, and loopback to 15006"
o0=$(connections_json 2 | jq '[.[] | select(.direction == "outbound" and .response_flags == "SELF")] | length')
for url in "http://${POD_IP4[2,1]}:15006/" "http://[${POD_IP6[2,1]}]:15008/" "http://${POD_IP4[2,1]}:15001/"; do
    t_expect_eq "$(http_get "2,1" "$url")" 000 "pod-2-1 -> $url refused"
done
o1=$(connections_json 2 | jq '[.[] | select(.direction == "outbound" and .response_flags == "SELF")] | length')
t_expect_eq "$((o1 - o0))" 3 "three outbound self-calls recorded"
sc2=$(self_calls)
t_expect_eq "$(http_get "2,1" "http://127.0.0.1:15006/")" 000 "pod-2-1 -> 127.0.0.1:15006 refused"
t_expect_eq "$(http_get "2,1" "http://[::1]:15006/")" 000 "pod-2-1 -> [::1]:15006 refused"
t_expect_eq "$(($(self_calls) - sc2))" 2 "both counted as self-calls (not steered here)"
n=$(fds)
t_expect_ok "node 2 meshd holds $n fds (baseline $fd0)" test "$n" -le $((fd0 + 8))
# A pod calling its own app through the mesh is no self-call.
t_expect_eq "$(http_get "2,1" "http://${POD_IP4[2,1]}:8080/")" 200 "pod-2-1 -> its own app (IPv4) still served"
t_expect_eq "$(http_get "2,1" "http://[${POD_IP6[2,1]}]:8080/")" 200 "and IPv6"

t_begin "legitimate clients were served throughout"
touch "$E2E_TMP/stop-legit"
wait "$legit_mesh" "$legit_plain" || true
for p in "1,1" "1,2"; do
    total=$(grep -c "^$p " "$legit_log" || true)
    ok=$(grep -c "^$p 200$" "$legit_log" || true)
    t_expect_ok "pod-${p/,/-}: $ok of $total requests answered 200" test "$total" -ge 5 -a "$ok" -eq "$total"
done
t_expect_eq "$(http_get "1,1" "http://[${POD_IP6[2,1]}]:8080/")" 200 "mesh client over IPv6 after the attack"
t_expect_eq "$(connections_json 2 | jq -r '[.[] | select(.peer_identity == "spiffe://cluster.local/ns/default/sa/sa-1-1" and .original_dst == "['"${POD_IP6[2,1]}"']:8080")][-1].state')" closed \
    "carried over HBONE with the client's identity"

meshd_check_logs
t_summary
