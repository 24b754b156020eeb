#!/usr/bin/env bash
# Security (issue 13, item 7b): HBONE's TLS resumes no session, so every
# connection to 15008 verifies the peer's certificate anew and one that has
# expired stops working. The attack, from pod-1-2 (outside the mesh) with a
# client certificate of the mesh CA valid for a few seconds: connect to the
# server pod's 15008, try to keep a session, offer one, and connect again
# after the certificate expired. A control server (openssl s_server with OpenSSL's
# defaults, in pod-2-2) shows the probe sees tickets and resumptions where
# they exist, and that a resumed session carries an expired certificate.
# Meanwhile the mesh client pod-1-1 keeps reaching pod-2-1 over HBONE.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 2
CA="$E2E_TMP/ca"
"$MESHCTL_BIN" ca init "$CA" >/dev/null
mesh_config "$E2E_TMP/config-1"
mesh_config "$E2E_TMP/config-2"
meshd_start 1 --ca-dir "$CA"
meshd_start 2 --ca-dir "$CA"
enroll 1 "1,1"
enroll 2 "2,1"
http_server "2,1" 8080 >/dev/null
"$MESHCTL_BIN" ca issue "$CA" --ns default --sa control --out "$E2E_TMP/control" >/dev/null
topo_spawn "${POD_NS[2,2]}" "$E2E_TMP/s_server.log" openssl s_server -accept 9443 -tls1_3 -alpn h2 \
    -cert "$E2E_TMP/control.pem" -key "$E2E_TMP/control-key.pem" -CAfile "$CA/root-cert.pem" \
    -Verify 2 -quiet >/dev/null
topo_wait_tcp "${POD_NS[2,2]}" "${POD_IP4[2,2]}" 9443 10

MESHD_HBONE="${POD_IP4[2,1]}:15008"
CONTROL="${POD_IP4[2,2]}:9443"
# probe NAME ADDR [SESSION]: a TLS 1.3 client in pod-1-2 with the stolen
# certificate; saves its session as NAME.sess, offers SESSION if given.
# Stays a second so post-handshake tickets arrive. Prints s_client's lines.
probe() {
    local args=(-connect "$2" -alpn h2 -cert "$E2E_TMP/thief.pem" -key "$E2E_TMP/thief-key.pem"
        -CAfile "$CA/root-cert.pem" -sess_out "$E2E_TMP/$1.sess")
    [ -n "${3:-}" ] && args+=(-sess_in "$E2E_TMP/$3.sess")
    (sleep 1) | in_pod "1,2" timeout 5 openssl s_client "${args[@]}" 2>&1 || true
}
tickets() { grep -c 'Post-Handshake New Session Ticket arrived' <<<"$1" || true; }

# The legitimate client, all along: one request every 0.2 s, bounded.
for _ in $(seq 1 60); do
    http_get "1,1" "http://${POD_IP4[2,1]}:8080/"
    echo
    sleep 0.2
done >"$E2E_TMP/legit" &
legit=$!

t_begin "a certificate valid for 8 s, in the attacker's hands"
"$MESHCTL_BIN" ca issue "$CA" --ns default --sa sa-1-2 --ttl 8 --out "$E2E_TMP/thief" >/dev/null
expires=$(date -d "$(openssl x509 -in "$E2E_TMP/thief.pem" -noout -enddate | cut -d= -f2)" +%s)
t_expect_ok "it expires in the coming seconds" test "$expires" -gt "$(date +%s)"

t_begin "control (OpenSSL's defaults): the probe sees tickets and a resumption"
c_first=$(probe control "$CONTROL")
t_expect_ok "the control sent tickets ($(tickets "$c_first"))" test "$(tickets "$c_first")" -ge 1
t_expect_ok "the client saved a resumable session" test -s "$E2E_TMP/control.sess"
c_again=$(probe control2 "$CONTROL" control)
t_expect_contains "$c_again" "Reused, TLSv1.3" "and resumed it on the next connection"

t_begin "meshd's 15008: no ticket, no session to keep, a full handshake every time"
first=$(probe meshd "$MESHD_HBONE")
t_expect_contains "$first" "Verify return code: 0 (ok)" "the handshake with the valid certificate succeeds"
t_expect_eq "$(tickets "$first")" 0 "meshd sent no NewSessionTicket"
t_expect_fail "so the client has no session to offer (s_client saves one per ticket)" test -e "$E2E_TMP/meshd.sess"
again=$(probe meshd2 "$MESHD_HBONE" control)
t_expect_contains "$again" "New, TLSv1.3" "offered a session ticket anyway: a new, full handshake"
t_expect_not_contains "$again" "Reused," "nothing resumed"

t_begin "after expiry: meshd refuses the certificate, while a resuming server still takes it"
for _ in $(seq 1 12); do
    [ "$(date +%s)" -gt "$expires" ] && break
    sleep 1
done
t_expect_ok "the certificate has expired" test "$(date +%s)" -gt "$expires"
late=$(probe late "$MESHD_HBONE")
t_expect_contains "$late" "alert certificate expired" "meshd refuses it on a new connection"
late=$(probe late2 "$MESHD_HBONE" control2)
t_expect_contains "$late" "alert certificate expired" "and with a session offered"
t_expect_not_contains "$late" "Reused," "no resumption"
c_late=$(probe control-late "$CONTROL" control2)
t_expect_contains "$c_late" "Reused, TLSv1.3" "the control resumes the expired certificate's session (the hole closed in meshd)"

t_begin "meanwhile the mesh client was served"
wait "$legit"
t_expect_eq "$(grep -c '^200$' "$E2E_TMP/legit")" 60 "60 of 60 requests from pod-1-1 answered"

meshd_check_logs
t_summary
