#!/usr/bin/env bash
# Issue 13, item 7e: one compromised node cannot mint every identity.
#
# Each node's meshd holds only its own intermediate CA (meshctl ca node),
# never the mesh CA key. Legitimate mTLS between pods of the two nodes
# works with those chains. Then node 1 is "compromised": its node key is
# used directly with the openssl CLI to mint a leaf for sa-2-2, a service
# account whose only pod runs on node 2, and a bare HBONE client presents
# it to pod-2-1's 15008. The chain verifies to the mesh root, but node 2's
# node authorizer refuses it at the TLS step (no pod on node 1 runs as
# sa-2-2), with a log line saying so; the same client with a leaf for
# node 1's own pod gets its tunnel, and pod-to-pod traffic running at the
# same time is unaffected. Last, the agent refuses another node's CA and
# still runs with the mesh CA itself (the legacy layout), with a warning.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 2
CA="$E2E_TMP/ca"
"$MESHCTL_BIN" ca init "$CA" >/dev/null
for i in 1 2; do
    mesh_config "$E2E_TMP/config-$i"
done

t_begin "a node CA per node"
for i in 1 2; do
    out=$("$MESHCTL_BIN" ca node "m${TOPO_RUN}n$i" --ca-dir "$CA" "$E2E_TMP/node-$i")
    t_expect_contains "$out" "spiffe://cluster.local/meshd/node/m${TOPO_RUN}n$i" "node $i's CA names its node"
done
n1="$E2E_TMP/node-1"
t_expect_eq "$(openssl x509 -in "$n1/ca-cert.pem" -noout -ext basicConstraints | tail -1 | tr -d ' ')" \
    "CA:TRUE,pathlen:0" "pathlen:0: a node CA signs no CA"
t_expect_eq "$(openssl verify -CAfile "$CA/root-cert.pem" "$n1/ca-cert.pem" | awk '{print $2}')" OK \
    "signed by the mesh root (openssl)"
t_expect_eq "$(grep -c 'BEGIN CERTIFICATE' "$n1/cert-chain.pem")" 2 "cert-chain.pem: node CA + root"
t_expect_ok "root-cert.pem is the mesh root" cmp -s "$CA/root-cert.pem" "$n1/root-cert.pem"
t_expect_fail "the node dir holds no mesh CA key" cmp -s "$CA/ca-key.pem" "$n1/ca-key.pem"

for i in 1 2; do
    meshd_start "$i" --ca-dir "$E2E_TMP/node-$i"
    t_expect_not_contains "$(cat "${MESHD_LOG[$i]}")" "can mint every identity" "node $i: no mesh-key warning"
    t_expect_contains "$(cat "${MESHD_LOG[$i]}")" "node CA of m${TOPO_RUN}n$i" "node $i signs with its node CA"
done
for p in "1,1" "1,2" "2,1" "2,2"; do
    enroll "${p%,*}" "$p"
done
http_server "2,1" 8080 >/dev/null
http_server "1,1" 8080 >/dev/null

t_begin "legitimate mTLS across nodes with node CAs"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "pod-1-1 -> pod-2-1 (node 1's leaf at node 2)"
t_expect_eq "$(http_get "2,2" "http://${POD_IP4[1,1]}:8080/")" 200 "pod-2-2 -> pod-1-1 (node 2's leaf at node 1)"
t_expect_eq "$(http_get "1,2" "http://${POD_IP4[1,1]}:8080/")" 200 "pod-1-2 -> pod-1-1 (same node)"
in=$(connections_json 2 | jq -r '[.[] | select(.direction == "inbound")][0].peer_identity')
t_expect_eq "$in" "spiffe://cluster.local/ns/default/sa/sa-1-1" "node 2 saw node 1's pod's verified identity"

# mint SA PREFIX: node 1's key used by hand, as an attacker on node 1 would.
mint() {
    cat >"$E2E_TMP/$2.ext" <<EXT
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyAgreement
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = URI:spiffe://cluster.local/ns/default/sa/$1
EXT
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=cluster.local" \
        -keyout "$E2E_TMP/$2-key.pem" -out "$E2E_TMP/$2.csr" 2>/dev/null
    openssl x509 -req -in "$E2E_TMP/$2.csr" -CA "$n1/ca-cert.pem" -CAkey "$n1/ca-key.pem" \
        -set_serial "0x$(openssl rand -hex 8)" -days 1 -extfile "$E2E_TMP/$2.ext" \
        -out "$E2E_TMP/$2.pem" 2>/dev/null
    cat "$E2E_TMP/$2.pem" "$n1/ca-cert.pem" >"$E2E_TMP/$2-chain.pem"
}
mint sa-2-2 forged # only pod-2-2, on node 2, runs as sa-2-2
mint sa-1-1 own    # pod-1-1 runs on node 1: node 1 may sign it
hbone() { # CERT_PREFIX: the bare HBONE client from node 1 to pod-2-1's 15008
    ip netns exec "${NODE_NS[1]}" /usr/bin/python3 tests/e2e/lib/hbone_client.py \
        "${POD_IP4[2,1]}:15008" "${POD_IP4[2,1]}:8080" "$E2E_TMP/$1-chain.pem" "$E2E_TMP/$1-key.pem" \
        "$CA/root-cert.pem" || true
}

t_begin "a compromised node's forged identity is refused at TLS"
t_expect_eq "$(openssl verify -CAfile "$CA/root-cert.pem" -untrusted "$n1/ca-cert.pem" "$E2E_TMP/forged.pem" | awk '{print $2}')" OK \
    "the forged leaf chains to the mesh root (so only node authorization can stop it)"
# A legitimate client runs all along: 20 requests, 0.2 s apart (bounded).
legit="$E2E_TMP/legit.txt"
(for _ in $(seq 1 20); do http_get "1,1" "http://${POD_IP4[2,1]}:8080/"; echo; sleep 0.2; done) >"$legit" &
legit_pid=$!
refused_before=$(grep -c "node authorizer" "${MESHD_LOG[2]}" || true)
t_expect_contains "$(hbone own)" "tunnel 200: HTTP/1.0 200" "node 1's leaf for its own pod: tunnel to pod-2-1 (the client works)"
out=$(hbone forged)
t_expect_contains "$out" "refused" "node 1's leaf for sa-2-2: refused ($out)"
t_expect_not_contains "$out" "tunnel 200" "no tunnel, no HTTP answer"
for _ in $(seq 1 20); do grep -q "no pod on node m${TOPO_RUN}n1 runs as default/sa-2-2" "${MESHD_LOG[2]}" && break; sleep 0.1; done
line=$(grep "node authorizer" "${MESHD_LOG[2]}" | tail -1 || true)
t_expect_contains "$line" "hbone: client ${NODE_IP4[1]}" "node 2 logs the refused client"
t_expect_contains "$line" "no pod on node m${TOPO_RUN}n1 runs as default/sa-2-2, yet that node's CA signed it" \
    "with the reason"
t_expect_eq "$(($(grep -c "node authorizer" "${MESHD_LOG[2]}" || true) - refused_before))" 1 "exactly the forged handshake was refused"
t_expect_eq "$(connections_json 2 | jq '[.[] | select(.peer_identity == "spiffe://cluster.local/ns/default/sa/sa-2-2")] | length')" 0 \
    "node 2 served no connection as sa-2-2"
wait "$legit_pid"
t_expect_eq "$(grep -c '^200$' "$legit")" 20 "the legitimate client: 20/20 answered meanwhile"

t_begin "node 1's agent cannot be made to sign for node 2's pod"
out=$(meshctl_at 1 enroll "default/pod-2-2" --netns "/run/netns/${POD_NS[2,2]}" --sa sa-2-2 \
    --ip "${POD_IP4[2,2]}" --ip "${POD_IP6[2,2]}" 2>&1) && rc=0 || rc=$?
t_expect_fail "enrolling node 2's pod on node 1 fails (rc $rc: $out)" test "$rc" -eq 0
t_expect_contains "$out" "the Pod object is scheduled on node m${TOPO_RUN}n2, not on m${TOPO_RUN}n1" \
    "refused, saying why"
t_expect_not_contains "$(cat "${MESHD_LOG[1]}")" "is spiffe://cluster.local/ns/default/sa/sa-2-2" \
    "node 1 issued no certificate for it"

t_begin "another node's CA is refused; the mesh CA itself still works, with a warning"
topo_kill "${MESHD_PID[1]}" TERM
meshd_start 1 --ca-dir "$E2E_TMP/node-2" 2>/dev/null && rc=0 || rc=$?
t_expect_fail "node 1 does not start with node 2's CA" test "$rc" -eq 0
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "is the CA of node m${TOPO_RUN}n2" "and says why"
meshd_start 1 --ca-dir "$CA"
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "holds the mesh CA key: this node can mint every identity in the mesh" \
    "legacy layout: warned"
meshctl_at 1 -o json pods | jq -e '.[] | select(.name == "pod-1-1")' >/dev/null 2>&1 || enroll 1 "1,1"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "a root-signed leaf is still accepted by node 2 (weaker mode)"

meshd_check_logs
t_summary
