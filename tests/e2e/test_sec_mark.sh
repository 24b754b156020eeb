#!/usr/bin/env bash
# Security (issue 13, item 3): meshd's SO_MARK (0x539) is not a way out of
# capture. A root process in an enrolled pod (CAP_NET_RAW/NET_ADMIN, as
# containerd grants) marks its socket with 0x539 and connects: the
# connection is still captured, recorded as the pod's outbound connection,
# counted as a forged mark, and gets the mesh treatment (to a STRICT pod it
# arrives over HBONE with the pod's identity). Only sockets meshd registered
# in its meshd_own socket storage are exempt: its own upstream connects are
# never captured again (no loop), on both nodes, and still after a restart
# that takes the pinned map over. A legitimate client runs meanwhile.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 2
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
for i in 1 2; do
    mesh_config "$E2E_TMP/config-$i"
    # pod-2-2 is a server outside the mesh: plaintext passthrough from node 1.
    rm "$E2E_TMP/config-$i/pod-2-2.yaml"
done
cp deploy/examples/peerauthentication-strict.yaml "$E2E_TMP/config-2/"
meshd_start 1 --ca-dir "$E2E_TMP/ca"
meshd_start 2 --ca-dir "$E2E_TMP/ca"
enroll 1 "1,1"
enroll 2 "2,1"
http_server "2,1" 8080 >/dev/null
http_server "2,2" 8080 >/dev/null
pins="/sys/fs/bpf/meshd/${MESHD_NODE[1]}"

# marked_get "i,j" HOST PORT PATH: an HTTP/1.0 GET from a root process in
# pod (i,j) whose socket carries SO_MARK 0x539, the attack. Prints "CODE
# MARK PORT": the status (000 on failure), the mark the socket really had
# and its local port (meshd's record shows it as the source).
marked_get() {
    in_pod "$1" timeout 10 /usr/bin/python3 - "$2" "$3" "$4" <<'PY' || echo "000 none 0"
import socket, sys
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, 0x539)
mark = hex(s.getsockopt(socket.SOL_SOCKET, socket.SO_MARK))
s.settimeout(5)
try:
    s.connect((host, port))
    lport = s.getsockname()[1]
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while len(data) < 12:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    print(data[9:12].decode() if data.startswith(b"HTTP/") else "000", mark, lport)
except OSError:
    print("000", mark, 0)
PY
}
# attack "i,j" HOST PORT PATH: marked_get; sets ATTACK ("CODE MARK") and
# ATTACK_PORT.
attack() {
    local out
    out=$(marked_get "$@")
    ATTACK_PORT=${out##* }
    ATTACK=${out% *}
}
# outbound_to I DST: node I's outbound records of pod-1-1 to DST (ip:port).
outbound_to() {
    connections_json "$1" | jq --arg d "$2" \
        '[.[] | select(.direction == "outbound" and .pod == "default/pod-1-1" and .original_dst == $d)] | length'
}

t_begin "a legitimate client is captured and tunnelled"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "pod-1-1 -> STRICT pod-2-1"
t_expect_eq "$(bpf_stat 1 connect_forged_mark)" 0 "no forged mark counted yet"

# The legitimate client keeps going while the attack runs (bounded: 30
# requests, 5 s each at most).
legit="$E2E_TMP/legit.codes"
(for k in $(seq 1 30); do
    echo "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/?legit-$k")"
    sleep 0.1
done) >"$legit" &
legit_pid=$!
topo_on_cleanup "kill $legit_pid 2>/dev/null || true"

t_begin "attack: a marked socket to a server outside the mesh is still captured"
r=$RANDOM$RANDOM
attack "1,1" "${POD_IP4[2,2]}" 8080 "/?marked4-$r"
t_expect_eq "$ATTACK" "200 0x539" "IPv4 request with SO_MARK 0x539 answered"
t_expect_eq "$(outbound_to 1 "${POD_IP4[2,2]}:8080")" 1 "recorded by meshd as pod-1-1's outbound connection"
attack "1,1" "${POD_IP6[2,2]}" 8080 "/?marked6-$r"
t_expect_eq "$ATTACK" "200 0x539" "IPv6 request with SO_MARK 0x539 answered"
t_expect_eq "$(outbound_to 1 "[${POD_IP6[2,2]}]:8080")" 1 "recorded too (connect6)"
t_expect_eq "$(bpf_stat 1 connect_forged_mark)" 2 "both counted as forged marks"

t_begin "attack: a marked socket to a STRICT pod gets mTLS (HBONE), not plaintext"
attack "1,1" "${POD_IP4[2,1]}" 8080 "/?marked-hbone-$r"
t_expect_eq "$ATTACK" "200 0x539" "answered (plaintext would be refused by STRICT)"
out=$(connections_json 1 | jq -c --arg p ":$ATTACK_PORT" '[.[] | select(.direction == "outbound" and (.src | endswith($p)))]')
t_expect_eq "$(jq -r '.[0].original_dst + " " + .[0].hbone + " " + .[0].peer_identity' <<<"$out")" \
    "${POD_IP4[2,1]}:8080 ${POD_IP4[2,1]}:15008 spiffe://cluster.local/ns/default/sa/sa-2-1" \
    "node 1 recorded it (source port $ATTACK_PORT) and sent it through the tunnel to pod-2-1's identity"
t_expect_eq "$(grep -c "GET /?marked-hbone-$r " "$E2E_TMP/http-2-1-8080.log" || true)" 1 "the app got the request once"
in=$(connections_json 2 | jq -c '[.[] | select(.direction == "inbound")]')
t_expect_eq "$(jq -r '[.[] | .peer_identity] | unique | join(" ")' <<<"$in")" \
    "spiffe://cluster.local/ns/default/sa/sa-1-1" "node 2: every inbound connection came over HBONE as pod-1-1"
t_expect_eq "$(jq '[.[] | select(.response_flags == "DENY")] | length' <<<"$in")" 0 "node 2 refused nothing"
t_expect_eq "$(bpf_stat 1 connect_forged_mark)" 3 "counted as a forged mark"

t_begin "the legitimate client was unaffected meanwhile"
wait "$legit_pid"
t_expect_eq "$(sort "$legit" | uniq -c | awk '{print $1 " " $2}')" "30 200" "30 requests, all 200"

t_begin "meshd's own sockets are exempt (no capture loop), the counters add up"
s1=$(meshctl_at 1 status | jq -c .bpf)
s2=$(meshctl_at 2 status | jq -c .bpf)
records=$(connections_json 1 | jq '[.[] | select(.direction == "outbound")] | length')
t_expect_eq "$(jq .connect_captured <<<"$s1")" "$records" "node 1: one capture per app connection ($records)"
t_expect_eq "$(jq '.connect_seen == .connect_captured + .connect_skip_own + .connect_skip_local' <<<"$s1")" true \
    "node 1: every connect either captured or meshd's own ($s1)"
t_expect_eq "$(jq '.connect_skip_own >= 3 and .connect_skip_own <= .connect_captured' <<<"$s1")" true \
    "node 1: meshd's upstream connects (passthrough and HBONE) skipped as its own"
t_expect_eq "$(jq '.connect_captured == 0 and .connect_forged_mark == 0 and .connect_skip_own >= 1' <<<"$s2")" true \
    "node 2: its connects to the app inside the enrolled pod are its own, none captured ($s2)"

t_begin "the exemption map: BTF-typed socket storage, pinned"
info=$(bpftool map show pinned "$pins/meshd_own" -j)
t_expect_eq "$(jq -r '.type + " " + .name' <<<"$info")" "sk_storage meshd_own" "bpftool: sk_storage named meshd_own"
t_expect_eq "$(jq -r '.btf_id > 0' <<<"$info")" true "with BTF"

t_begin "restart: the pinned map is taken over, the new agent's sockets are exempt"
own_id=$(jq .id <<<"$info")
topo_kill "${MESHD_PID[1]}" KILL
meshd_start 1 --ca-dir "$E2E_TMP/ca"
t_expect_eq "$(bpftool map show pinned "$pins/meshd_own" -j | jq .id)" "$own_id" "the same kernel map"
skip_before=$(bpf_stat 1 connect_skip_own)
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/?after")" 200 "legitimate client through the new agent"
attack "1,1" "${POD_IP4[2,2]}" 8080 "/?marked-after-$r"
t_expect_eq "$ATTACK" "200 0x539" "marked request answered"
t_expect_eq "$(outbound_to 1 "${POD_IP4[2,2]}:8080")" 1 "and recorded by the new agent"
t_expect_eq "$(bpf_stat 1 connect_forged_mark)" 4 "and counted"
t_expect_eq "$(jq -n --argjson a "$(bpf_stat 1 connect_skip_own)" --argjson b "$skip_before" '$a > $b')" true \
    "the new agent's upstream connects are exempt"
s1=$(meshctl_at 1 status | jq -c .bpf)
t_expect_eq "$(jq '.connect_seen == .connect_captured + .connect_skip_own + .connect_skip_local' <<<"$s1")" true \
    "counters still add up ($s1)"

meshd_check_logs
t_summary
