#!/usr/bin/env bash
# Mutual TLS between enrolled pods (same node): with a mesh CA, meshd
# issues each pod a SPIFFE certificate and carries pod-to-pod traffic over
# HBONE (TLS 1.3 + HTTP/2 CONNECT to the destination pod's 15008). A packet
# capture on the destination pod's link sees only port 15008, never the
# plaintext; both records carry the verified peer identity; the metrics say
# connection_security_policy="mutual_tls" for both reporters.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 1 2
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
http_server "1,2" 8080 >/dev/null
# Same node: HBONE to itself (this test is about mTLS on the wire; without
# the flag the same-node fast path carries these, test_same_node).
meshd_start 1 --ca-dir "$E2E_TMP/ca" --no-local-fast-path
for j in 1 2; do
    meshctl_at 1 enroll "default/pod-1-$j" --netns "/run/netns/${POD_NS[1,$j]}" --sa "sa-1-$j" \
        --ip "${POD_IP4[1,$j]}" --ip "${POD_IP6[1,$j]}" >/dev/null
done
t_begin "workload identities"
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "is spiffe://cluster.local/ns/default/sa/sa-1-1" "pod-1-1's certificate"
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "is spiffe://cluster.local/ns/default/sa/sa-1-2" "pod-1-2's certificate"

t_begin "only TLS on the wire"
cap="$E2E_TMP/pod-1-2.pcap"
topo_spawn "${NODE_NS[1]}" "$E2E_TMP/tshark.log" tshark -q -i "${POD_HOST_IF[1,2]}" -f tcp -w "$cap" >/dev/null
tshark_pid=$TOPO_LAST_PID
# Bounded at 60 s: tshark starts in ~1 s here, ~24 s under qemu TCG.
for _ in $(seq 1 600); do grep -q "Capturing on" "$E2E_TMP/tshark.log" 2>/dev/null && break; sleep 0.1; done
marker="meshd-plaintext-marker-$RANDOM$RANDOM"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[1,2]}:8080/$marker")" 404 "curl pod-1-1 -> pod-1-2 (IPv4) through HBONE"
t_expect_eq "$(http_get "1,1" "http://[${POD_IP6[1,2]}]:8080/$marker")" 404 "and over IPv6"
# Stop the capture only once it holds the tunnel's packets: on a slow
# machine (qemu TCG) dumpcap writes them out seconds later.
for _ in $(seq 1 100); do
    [ "$(tshark -r "$cap" -Y tcp.port==15008 2>/dev/null | wc -l)" -ge 10 ] && break
    sleep 0.2
done
topo_kill "$tshark_pid" TERM
ports=$(tshark -r "$cap" -T fields -e tcp.srcport -e tcp.dstport 2>/dev/null | tr '\t' '\n' | sort -u | tr '\n' ' ')
t_expect_contains "$ports" "15008" "the capture saw the tunnel"
t_expect_eq "$(tshark -r "$cap" -T fields -e tcp.srcport -e tcp.dstport 2>/dev/null | grep -vc 15008 || true)" 0 \
    "every packet is to or from 15008 (ports: $ports)"
t_expect_eq "$(grep -ac "$marker" "$cap" || true)" 0 "the plaintext marker never appears on the wire"
t_expect_contains "$(tshark -r "$cap" -Y tls.handshake.type==1 -T fields -e tls.handshake.extensions_alpn_str 2>/dev/null | sort -u)" "h2" "TLS ClientHello offering h2"

t_begin "records and metrics"
c=$(connections_json 1)
out=$(jq -c '[.[] | select(.direction == "outbound")][0]' <<<"$c")
in=$(jq -c '[.[] | select(.direction == "inbound")][0]' <<<"$c")
t_expect_eq "$(jq -r .hbone <<<"$out")" "${POD_IP4[1,2]}:15008" "outbound went to the pod's HBONE port"
t_expect_eq "$(jq -r .peer_identity <<<"$out")" "spiffe://cluster.local/ns/default/sa/sa-1-2" "verified server identity"
t_expect_eq "$(jq -r .peer_identity <<<"$in")" "spiffe://cluster.local/ns/default/sa/sa-1-1" "verified client identity"
t_expect_eq "$(jq -r .original_dst <<<"$in")" "${POD_IP4[1,2]}:8080" "the app port from :authority"
m=$(ip netns exec "${NODE_NS[1]}" curl -s -m 5 "http://${NODE_IP4[1]}:15020/metrics")
for r in source destination; do
    t_expect_eq "$(grep "^istio_tcp_connections_opened_total" <<<"$m" | grep "reporter=\"$r\"" | grep -c 'connection_security_policy="mutual_tls"')" 1 \
        "reporter=$r: mutual_tls"
done

t_begin "certificate expiry is visible"
pods=$(meshctl_at 1 -o json pods)
t_expect_eq "$(jq -r '.[] | select(.name == "pod-1-1") | .identity' <<<"$pods")" \
    "spiffe://cluster.local/ns/default/sa/sa-1-1" "meshctl pods shows the identity"
now=$(date +%s)
t_expect_eq "$(jq -r --argjson now "$now" '.[] | select(.name == "pod-1-1") | .cert_not_after > $now + 86000' <<<"$pods")" true \
    "and a 24 h expiry"
exp=$(grep '^meshd_workload_cert_expiry_timestamp_seconds{pod="default/pod-1-2",identity="spiffe://cluster.local/ns/default/sa/sa-1-2"}' <<<"$m" | awk '{print $2}')
t_expect_ok "metrics: the expiry timestamp ($exp)" test "${exp:-0}" -gt "$now"

meshd_check_logs
t_summary
