#!/usr/bin/env bash
# A rollout under the ingress gateway, as an operator does it: the seed's
# Gateway (app.example.com, SIMPLE TLS) on node 1's gateway pod, routed to
# my-service on node 2 (a slow 1.25 MiB body). meshd on the gateway's node
# gets SIGTERM while two HTTPS downloads are in flight, one over HTTP/1.1
# and one over h2 (ALPN):
#  - both finish, every byte intact, within the drain;
#  - a new handshake during the drain and while no agent runs is refused
#    (nothing answers on the gateway pod's 8443: no bypass, no plaintext);
#  - the next agent serves the gateway again without re-enrollment, with
#    the same certificate.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh
source tests/e2e/lib/gateway_seed.sh

seed_topology
for i in 1 2; do
    d="$E2E_TMP/config-$i"
    rm "$d/pod-1-3.yaml" # the client, outside the mesh
    sed -i 's/app: app-2-1/app: my-service/' "$d/pod-2-1.yaml"
done
/usr/bin/python3 tests/e2e/lib/slow_body.py --expected "$E2E_TMP/big.expected"
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/slow.log" /usr/bin/python3 tests/e2e/lib/slow_body.py 8080 >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 8080 10
meshd_start 1 --ca-dir "$E2E_TMP/ca" --drain-seconds 10
meshd_start 2 --ca-dir "$E2E_TMP/ca"
seed_gateway_enroll 1 1 1
enroll_pod 2 2 1 sa-2-1

# download NAME CURL-ARGS...: the slow body through the gateway, in the
# background; $E2E_TMP/NAME.out gets the body, NAME.code "STATUS VERSION".
download() {
    local name=$1
    shift
    seed_gateway_curl "1,3" 1 1 /big -o "$E2E_TMP/$name.out" -w '%{http_code} %{http_version}' "$@" \
        >"$E2E_TMP/$name.code" 2>/dev/null
}
# handshake: a new TLS connection to the gateway; prints the HTTP status
# (000: refused) and the serial of the certificate it presented.
handshake() {
    local code serial
    code=$(seed_gateway_curl "1,3" 1 1 /big -o /dev/null -m 5 -w '%{http_code}' --max-filesize 1 || true)
    serial=$(in_pod "1,3" openssl s_client -connect "${POD_IP4[1,1]}:8443" -servername app.example.com \
        </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null || true)
    echo "${code:0:3} ${serial:-none}"
}
intact() { cmp -s "$E2E_TMP/$1.out" "$E2E_TMP/big.expected" && echo intact || echo "$(stat -c %s "$E2E_TMP/$1.out" 2>/dev/null || echo 0) bytes"; }

t_begin "before the rollout"
download h1-before --http1.1
t_expect_eq "$(cat "$E2E_TMP/h1-before.code") $(intact h1-before)" "200 1.1 intact" "HTTPS/1.1 through the gateway"
download h2-before --http2
t_expect_eq "$(cat "$E2E_TMP/h2-before.code") $(intact h2-before)" "200 2 intact" "HTTPS over h2 (ALPN)"
before=$(handshake)
t_expect_ok "the gateway presents app.example.com's certificate ($before)" grep -q '^200 serial=' <<<"$before"

t_begin "SIGTERM on the gateway's node: the downloads in flight finish"
download h1 --http1.1 &
h1=$!
download h2 --http2 &
h2=$!
for _ in $(seq 1 50); do
    [ -s "$E2E_TMP/h1.out" ] && [ -s "$E2E_TMP/h2.out" ] && break
    sleep 0.1
done
(sleep 0.5; handshake >"$E2E_TMP/during") &
during=$!
TOPO_KILL_GRACE=14 topo_kill "${MESHD_PID[1]}" TERM
wait "$h1" "$h2" "$during" || true
t_expect_eq "$(cat "$E2E_TMP/h1.code") $(intact h1)" "200 1.1 intact" "the HTTP/1.1 download completed, every byte"
t_expect_eq "$(cat "$E2E_TMP/h2.code") $(intact h2)" "200 2 intact" "the h2 download completed, every byte"
t_expect_eq "$(cut -c1-3 "$E2E_TMP/during")" 000 "a new handshake during the drain is refused"
drain_line=$(grep -o 'draining: listeners closed, [0-9]* open connections\? get up to 10 s' "${MESHD_LOG[1]}" || true)
t_expect_ok "the drain began with the downloads open ($drain_line)" grep -qE ' [1-9][0-9]* open' <<<"$drain_line"
t_expect_not_contains "$(cat "${MESHD_LOG[1]}")" "drain period over" "it ended when they did"

t_begin "no agent on the gateway's node"
t_expect_eq "$(handshake)" "000 none" "nothing answers on the gateway pod's 8443"

t_begin "the next agent serves the gateway without re-enrollment"
meshd_start 1 --ca-dir "$E2E_TMP/ca"
t_expect_eq "$(meshctl_at 1 -o json pods | jq -r '[.[].name] | sort | join(",")')" "istio-ingressgateway-1" \
    "the gateway pod restored from the state"
after=""
for _ in $(seq 1 50); do # the gateway listens once the config and the pod are back
    after=$(handshake)
    [ "${after:0:3}" = 200 ] && break
    sleep 0.2
done
t_expect_eq "$after" "$before" "HTTPS again, the same certificate"
download h2-after --http2
t_expect_eq "$(cat "$E2E_TMP/h2-after.code") $(intact h2-after)" "200 2 intact" "a download over h2 again"

meshd_check_logs
t_summary
