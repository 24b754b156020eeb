#!/usr/bin/env bash
# Issue 13 item 7c performed: a pod outside the mesh opens 100 idle TCP
# connections to an enrolled pod's 15008 and never speaks. node 2's meshd
# keeps at most 64 of them pending (the per-client cap), resets the rest at
# accept and counts them (meshctl status, /metrics); its open files stay
# bounded; a mesh client from another pod completes its handshake and is
# served meanwhile; the idle handshakes are closed at the 10 s deadline.
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

hs() { meshctl_at 2 status | jq -r ".mesh.hbone_server.$1"; }
fds() { ls "/proc/${MESHD_PID[2]}/fd" | wc -l; }

fd0=$(fds)

# The attacker: 100 connections held open 14 s at most, silent; it reports
# how many the server ended, at 3 s and at the end.
flood_out="$E2E_TMP/flood.out"
in_pod "1,2" python3 - "${POD_IP4[2,1]}" 15008 100 >"$flood_out" 2>&1 <<'PY' &
import select, socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks, ended = [], set()
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    socks.append(s)
    try:
        s.connect((host, port))
    except OSError:
        # Reset before connect() returned: the server refused it at once.
        ended.add(s)
start, reported = time.time(), False
while time.time() - start < 14 and len(ended) < n:
    r, _, _ = select.select([s for s in socks if s not in ended], [], [], 0.2)
    for s in r:
        try:
            if not s.recv(1):
                ended.add(s)
        except OSError:
            ended.add(s)
    if not reported and time.time() - start >= 3:
        print(f"at3s ended={len(ended)}", flush=True)
        reported = True
print(f"final ended={len(ended)} after={time.time() - start:.1f}s", flush=True)
PY
flood=$!
topo_on_cleanup "kill $flood 2>/dev/null || true"

t_begin "idle handshakes past the per-client cap are reset at once"
for _ in $(seq 1 40); do
    grep -q at3s "$flood_out" 2>/dev/null && break
    sleep 0.1
done
t_expect_eq "$(hs handshakes_pending)" 64 "64 pending"
t_expect_eq "$(hs handshakes_refused)" 36 "36 refused and counted"
t_expect_contains "$(cat "$flood_out")" "at3s ended=36" "the attacker saw 36 connections reset"
m=$(ip netns exec "${NODE_NS[2]}" curl -s -m 5 "http://${NODE_IP4[2]}:15020/metrics")
t_expect_contains "$m" 'meshd_hbone_server_refused_total{reason="handshake_cap"} 36' "in the metrics"
t_expect_contains "$m" 'meshd_hbone_server_handshakes 64' "pending gauge"
n=$(fds)
t_expect_ok "node 2 meshd holds $n fds (baseline $fd0, 64 pending)" test "$n" -le $((fd0 + 64 + 8))

t_begin "a mesh client from another pod completes a handshake and is served meanwhile"
t_expect_eq "$(meshctl_at 1 status | jq -r .mesh.hbone_sessions_opened)" 0 "no session before"
for _ in 1 2 3 4 5; do
    t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "mesh client (IPv4)"
done
t_expect_eq "$(http_get "1,1" "http://[${POD_IP6[2,1]}]:8080/")" 200 "mesh client (IPv6)"
t_expect_eq "$(meshctl_at 1 status | jq -r .mesh.hbone_sessions_opened)" 2 "two new sessions (IPv4, IPv6)"
t_expect_eq "$(hs handshakes_pending)" 64 "still 64 pending: the client's handshakes completed"

t_begin "idle handshakes are closed at the deadline"
wait "$flood" || true
t_expect_contains "$(cat "$flood_out")" "final ended=100" "every connection ended"
after=$(sed -n 's/.*after=\([0-9]*\).*/\1/p' "$flood_out")
t_expect_ok "within the deadline and a tick (${after}s)" test "${after:-99}" -ge 5 -a "${after:-99}" -le 13
t_expect_eq "$(hs handshakes_pending)" 0 "none pending"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "mesh client after the flood"

meshd_check_logs
t_summary
