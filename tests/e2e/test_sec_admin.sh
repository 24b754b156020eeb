#!/usr/bin/env bash
# meshd's own HTTP endpoints under attack from pods (issue 13, item 7a).
#
# 1. Starvation: an enrolled pod and a pod outside the mesh each hold 80
#    sockets to the node's 15020 and 15021, half idle, half sending a
#    header byte every half second, reconnecting whenever meshd drops one.
#    Meanwhile scrapes and probes from another node, another pod and the
#    node itself get /metrics and /healthz/ready in under a second; meshd's
#    open files stay bounded; the refusals are counted.
# 2. State changes: POST /logging is impossible from a pod, even one that
#    routes 127.0.0.1 to its node where route_localnet=1 (kube-proxy sets
#    it; CVE-2020-8558) — a control listener on the node's 127.0.0.1 proves
#    that route works; from the node's loopback it works. /config_dump
#    holds no key material.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 2
mesh_config "$E2E_TMP/config-1"
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
meshd_start 1 --ca-dir "$E2E_TMP/ca"
enroll 1 "1,1" # pod 1,2 stays outside the mesh
node=${NODE_NS[1]}
nip=${NODE_IP4[1]}
pid=${MESHD_PID[1]}
fds() { find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
metric() { # the value of one exposition line (0 if absent)
    ip netns exec "$node" curl -s -m 5 "http://127.0.0.1:15020/metrics" |
        awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }'
}

t_begin "meshd is the process counted"
t_expect_eq "$(readlink "/proc/$pid/exe")" "$MESHD_BIN" "pid $pid is meshd"
fds_before=$(fds)

# The attacker: N sockets to each port; even ones idle, odd ones slowloris;
# a dropped socket is reopened. Bounded in time and in reconnections.
cat >"$E2E_TMP/hold.py" <<'PY'
import socket, sys, time
host, n, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
def open_one(port, i):
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect((host, port))
        if i % 2:
            s.send(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
        s.setblocking(False)
        return s
    except OSError:
        s.close()
        return None
socks = {(p, i): open_one(p, i) for p in (15020, 15021) for i in range(n)}
print("holding", sum(s is not None for s in socks.values()), flush=True)
end, reopened = time.time() + hold, 0
while time.time() < end and reopened < 4000:
    for k, s in socks.items():
        alive = s is not None
        if alive:
            try:
                alive = s.recv(1) != b""
            except BlockingIOError:
                pass
            except OSError:
                alive = False
        if alive and k[1] % 2:
            try:
                s.send(b"a")
            except OSError:
                alive = False
        if not alive:
            if s is not None:
                s.close()
            socks[k] = open_one(*k)
            reopened += 1
    time.sleep(0.5)
print("reopened", reopened, flush=True)
PY

t_begin "64+ sockets each from an enrolled pod and a pod outside the mesh"
for p in "1,1" "1,2"; do
    topo_spawn "${POD_NS[$p]}" "$E2E_TMP/hold-${p/,/-}.log" \
        /usr/bin/python3 "$E2E_TMP/hold.py" "$nip" 80 14 >/dev/null
done
for _ in $(seq 1 50); do
    [ "$(cat "$E2E_TMP"/hold-*.log 2>/dev/null | grep -c holding)" = 2 ] && break
    sleep 0.2
done
t_expect_eq "$(cat "$E2E_TMP"/hold-*.log | grep -c holding)" 2 "both attackers connected ($(cat "$E2E_TMP"/hold-*.log | tr '\n' ' '))"

t_begin "scrapes and probes are served promptly meanwhile"
# curl prints "code seconds"; ok if 200 within 1 s (kubelet's probe timeout).
probe() { # NETNS URL
    ip netns exec "$1" curl -s -o /dev/null -m 3 -w '%{http_code} %{time_total}' "$2" || true
}
srv_socks() { # meshd's own sockets (not TIME_WAIT leftovers) on the two ports
    ip netns exec "$node" ss -Htnp state connected '( sport = :15020 or sport = :15021 )' |
        grep -c "pid=$pid," || true
}
bad=0 n=0 worst=0 fds_max=0 srv_max=0
for round in $(seq 1 6); do
    f=$(fds) c=$(srv_socks)
    ((f > fds_max)) && fds_max=$f
    ((c > srv_max)) && srv_max=$c
    for who in "${NODE_NS[2]}" "${POD_NS[2,1]}" "$node"; do
        for url in "http://$nip:15020/metrics" "http://$nip:15021/healthz/ready"; do
            read -r code secs <<<"$(probe "$who" "$url")"
            n=$((n + 1))
            if [ "$code" != 200 ] || ! awk -v s="$secs" 'BEGIN { exit !(s < 1.0) }'; then
                bad=$((bad + 1))
                echo "round $round from $who: $url -> $code in ${secs}s"
            fi
            awk -v s="$secs" -v w="$worst" 'BEGIN { exit !(s > w) }' && worst=$secs
        done
    done
    sleep 1
done
t_expect_eq "$bad" 0 "$n requests from node 2, pod 2-1 and node 1: all 200 within 1 s (slowest ${worst}s)"
# The HTTP servers hold at most 8 clients per source per port: 2 x 2 x 8,
# plus scrapes in flight.
t_expect_ok "at most $((2 * 2 * 8 + 4)) sockets on 15020/15021 (at most $srv_max seen)" \
    test "$srv_max" -le $((2 * 2 * 8 + 4))
# The enrolled attacker's sockets are captured connections meshd carries
# like any pod's (2 files each, bounded by --max-conns); one closing while
# its replacement opens: 2 x 2 x 160 at worst, plus the servers' share.
limit=$((fds_before + 2 * 2 * 160 + 2 * 2 * 8 + 4))
t_expect_ok "meshd's open files stay bounded (before $fds_before, under attack at most $fds_max, limit $limit)" \
    test "$fds_max" -le "$limit"
t_expect_ok "source caps refused the extra sockets on 15020" \
    test "$(metric 'meshd_admin_http_rejected_total{endpoint="metrics",reason="source_cap"}')" -gt 0
t_expect_ok "and on 15021" \
    test "$(metric 'meshd_admin_http_rejected_total{endpoint="health",reason="source_cap"}')" -gt 0
t_expect_ok "at most 8 per source: 2 attackers x 8 + scrapes on 15020" \
    test "$(metric 'meshd_admin_http_clients{endpoint="metrics"}')" -le 18

t_begin "the attackers' slow and idle sockets hit the read deadline"
for _ in $(seq 1 80); do
    [ "$(grep -c reopened "$E2E_TMP"/hold-*.log)" = 2 ] 2>/dev/null && break
    sleep 0.25
done
t_expect_ok "read timeouts counted on 15020" \
    test "$(metric 'meshd_admin_http_rejected_total{endpoint="metrics",reason="read_timeout"}')" -gt 0
t_expect_ok "and on 15021" \
    test "$(metric 'meshd_admin_http_rejected_total{endpoint="health",reason="read_timeout"}')" -gt 0
for _ in $(seq 1 30); do
    [ "$(fds)" -le $((fds_before + 4)) ] && break
    sleep 0.2
done
t_expect_ok "after the attack meshd is back to its open files ($(fds), was $fds_before)" \
    test "$(fds)" -le $((fds_before + 4))

t_begin "POST /logging is not reachable from a pod"
post() { # NETNS URL: http code, 000 when nothing answers
    ip netns exec "$1" curl -s -o /dev/null -m 3 -w '%{http_code}' -X POST "$2" || true
}
for p in "1,1" "1,2"; do
    t_expect_eq "$(post "${POD_NS[$p]}" "http://$nip:15000/logging?level=debug")" 000 \
        "pod $p: nothing on the node address :15000"
    t_expect_eq "$(post "${POD_NS[$p]}" "http://127.0.0.1:15000/logging?level=debug")" 000 \
        "pod $p: its own 127.0.0.1 is not the node's"
    t_expect_eq "$(post "${POD_NS[$p]}" "http://$nip:15020/logging?level=debug")" 404 \
        "pod $p: not on 15020"
done
# route_localnet on the node (as kube-proxy sets it) and a pod that routes
# 127.0.0.1 to its gateway: the martian check no longer protects loopback.
pod=${POD_NS[1,2]}
ip netns exec "$node" sysctl -qw net.ipv4.conf.all.route_localnet=1
ip netns exec "$pod" sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.eth0.route_localnet=1
# (127.0.0.1 leaves the pod's lo, or the pod would drop replies from it.)
ip -n "$pod" addr del 127.0.0.1/8 dev lo
ip -n "$pod" route add 127.0.0.1/32 via 10.244.1.1 dev eth0 src "${POD_IP4[1,2]}"
# A control: a plain listener on the node's 127.0.0.1 (not bound to lo).
topo_spawn "$node" "$E2E_TMP/control.log" /usr/bin/python3 -m http.server --bind 127.0.0.1 15999 >/dev/null
topo_wait_tcp "$node" 127.0.0.1 15999 10
t_expect_eq "$(ip netns exec "$pod" curl -s -o /dev/null -m 3 -w '%{http_code}' http://127.0.0.1:15999/ || true)" 200 \
    "control: the pod does reach a plain listener on the node's 127.0.0.1"
t_expect_eq "$(post "$pod" "http://127.0.0.1:15000/logging?level=error")" 000 \
    "but not 15000 (bound to lo): POST /logging refused"
t_expect_eq "$(post "$pod" "http://127.0.0.1:15000/config_dump")" 000 "nor /config_dump"
ip netns exec "$node" sysctl -qw net.ipv4.conf.all.route_localnet=0
t_expect_contains "$(ip netns exec "$node" curl -s -m 3 http://127.0.0.1:15000/logging)" "level: debug" \
    "the level is unchanged (meshd runs at debug)"

t_begin "from the node's loopback it works"
t_expect_contains "$(ip netns exec "$node" curl -s -m 3 -X POST 'http://127.0.0.1:15000/logging?level=info')" \
    "level: info" "POST /logging from 127.0.0.1 in the node netns"
t_expect_eq "$(ip netns exec "$node" curl -s -o /dev/null -m 3 -w '%{http_code}' -X POST "http://$nip:15020/metrics" || true)" 405 \
    "POST to a read-only endpoint: 405"
ip netns exec "$node" curl -s -m 3 -X POST 'http://127.0.0.1:15000/logging?level=debug' >/dev/null

t_begin "/config_dump holds no key material"
dump=$(ip netns exec "$node" curl -s -m 5 http://127.0.0.1:15000/config_dump)
t_expect_eq "$(jq -r '.pods[0].name' <<<"$dump")" pod-1-1 "config_dump lists the enrolled pod"
t_expect_not_contains "$dump" "PRIVATE KEY" "no PEM private key"
t_expect_not_contains "$dump" "BEGIN" "no PEM at all"
key_body=$(grep -v -- '-----' "$E2E_TMP/ca/ca-key.pem" 2>/dev/null | head -1)
if [ -n "$key_body" ]; then
    t_expect_not_contains "$dump" "$key_body" "not the CA key's base64"
fi

meshd_check_logs
t_summary
