#!/usr/bin/env bash
# The gateway's mesh modes (issue 17): servers[].tls.mode ISTIO_MUTUAL and
# AUTO_PASSTHROUGH, on the seed's gateway (lib/gateway_seed.sh) and an
# east-west gateway with Istio's sample as written
# (istio/istio samples/multicluster/expose-services.yaml).
#  - ISTIO_MUTUAL (istio-system/mesh-gateway on the ingress gateway pod,
#    port 9443): a client without a certificate is refused, so is one whose
#    certificate another CA issued (with a SPIFFE id all the same); one with
#    a certificate of the mesh CA (meshctl ca issue) reaches my-service on
#    node 2, the gateway presenting its own workload certificate, and the
#    gateway's record (istio_requests_total) carries the client's id as
#    source_principal; the workload certificate renewed (--cert-ttl), new
#    handshakes present the new one;
#  - AUTO_PASSTHROUGH (the sample's cross-network-gateway on an east-west
#    gateway pod, port 15443): SNI outbound_.80_._.<tls-echo's FQDN>
#    reaches tls-echo on node 2 with no VirtualService, TLS end to end (the
#    certificate is the backend's own), a DestinationRule subset too; SNI
#    names of another form, or of no service, port or subset, are reset and
#    logged; meshctl analyze finds nothing to say of the sample, and says
#    what is wrong with an ISTIO_MUTUAL server given a credentialName.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh
source tests/e2e/lib/gateway_seed.sh

seed_topology
GW=${POD_IP4[1,1]}  # the seed's ingress gateway pod
EW=${POD_IP4[1,3]}  # the east-west gateway pod
ECHO=tls-echo.default.svc.cluster.local
ossl() { openssl "$@" 2>/dev/null; }
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
# tls-echo's own certificate (serial 0x7007), from the seed's CA.
ossl req "${ec[@]}" -subj "/CN=$ECHO" -keyout "$SEED_PKI/echo.key" -out "$SEED_PKI/echo.csr"
printf 'subjectAltName=DNS:%s\n' "$ECHO" >"$SEED_PKI/echo.ext"
ossl x509 -req -in "$SEED_PKI/echo.csr" -CA "$SEED_PKI/ca.pem" -CAkey "$SEED_PKI/ca.key" -set_serial 28679 \
    -days 1 -extfile "$SEED_PKI/echo.ext" -out "$SEED_PKI/echo.pem"
# Client certificates: one the mesh CA issues, one of another CA naming
# the same SPIFFE id.
CLIENT_ID=spiffe://cluster.local/ns/default/sa/curl-client
"$MESHCTL_BIN" ca issue "$E2E_TMP/ca" --ns default --sa curl-client --out "$E2E_TMP/mesh-client" >/dev/null
ossl req -x509 "${ec[@]}" -days 2 -subj "/CN=Other Mesh CA" -keyout "$E2E_TMP/other-ca.key" -out "$E2E_TMP/other-ca.pem"
ossl req "${ec[@]}" -subj "/O=cluster.local" -keyout "$E2E_TMP/other-client.key" -out "$E2E_TMP/other-client.csr"
printf 'subjectAltName=URI:%s\nextendedKeyUsage=clientAuth,serverAuth\n' "$CLIENT_ID" >"$E2E_TMP/other-client.ext"
ossl x509 -req -in "$E2E_TMP/other-client.csr" -CA "$E2E_TMP/other-ca.pem" -CAkey "$E2E_TMP/other-ca.key" \
    -set_serial 99 -days 1 -extfile "$E2E_TMP/other-client.ext" -out "$E2E_TMP/other-client.pem"

for i in 1 2; do
    d="$E2E_TMP/config-$i"
    sed -i 's/app: app-2-1/app: my-service/' "$d/pod-2-1.yaml"
    sed -i 's/app: app-2-2/app: tls-echo/' "$d/pod-2-2.yaml"
    cp tests/e2e/data/expose-services.yaml "$d/expose-services.yaml" # as written: namespace default
    rm -f "$d/pod-1-3.yaml"
    cat >"$d/modes.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: istio-eastwestgateway-1
  namespace: istio-system
  labels: {istio: eastwestgateway, app: istio-eastwestgateway}
spec: {nodeName: m${TOPO_RUN}n1, serviceAccountName: istio-eastwestgateway-service-account}
status:
  podIPs: [{ip: ${POD_IP4[1,3]}}, {ip: "${POD_IP6[1,3]}"}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: mesh-gateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 9443, name: https-mesh, protocol: HTTPS}
    tls: {mode: ISTIO_MUTUAL}
    hosts: [mesh.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mesh-route, namespace: default}
spec:
  hosts: [mesh.example.com]
  gateways: [istio-system/mesh-gateway]
  http: [{route: [{destination: {host: my-service.default.svc.cluster.local, port: {number: 80}}}]}]
---
apiVersion: v1
kind: Service
metadata: {name: tls-echo, namespace: default}
spec: {selector: {app: tls-echo}, ports: [{name: tls, port: 80, targetPort: 8443}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: tls-echo, namespace: default}
spec:
  host: $ECHO
  subsets: [{name: v1, labels: {version: v1}}]
YAML
done

meshd_start 1 --ca-dir "$E2E_TMP/ca" --cert-ttl 10
meshd_start 2 --ca-dir "$E2E_TMP/ca"
seed_gateway_enroll 1 1 1
meshctl_at 1 enroll istio-system/istio-eastwestgateway-1 --netns "/run/netns/${POD_NS[1,3]}" \
    --sa istio-eastwestgateway-service-account --ip "${POD_IP4[1,3]}" --ip "${POD_IP6[1,3]}" >/dev/null
enroll_pod 2 2 1 sa-2-1
enroll_pod 2 2 2 sa-2-2
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/httpd.out" /usr/bin/python3 tests/e2e/lib/httpd.py 8080 my-service \
    "$E2E_TMP/httpd.log" >/dev/null
topo_spawn "${POD_NS[2,2]}" "$E2E_TMP/echo.out" /usr/bin/python3 tests/e2e/lib/tls_edge.py serve 8443 \
    "$SEED_PKI/echo.pem" "$SEED_PKI/echo.key" tls-echo >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 8080 10
topo_wait_tcp "${POD_NS[2,2]}" "${POD_IP4[2,2]}" 8443 10

# The client is outside the mesh: pod (1,2), never enrolled. The gateway's
# certificate names a SPIFFE id, not mesh.example.com: curl cannot check
# a URI SAN, so it is checked with openssl (below) and curl runs -k.
client() { in_pod "1,2" "$@"; }
mesh_curl() { # PATH [CURL ARGS...]
    local path=$1
    shift
    client curl -sk -m 5 --resolve "mesh.example.com:9443:$GW" "$@" "https://mesh.example.com:9443$path"
}
MC=(--cert "$E2E_TMP/mesh-client.pem" --key "$E2E_TMP/mesh-client-key.pem")
log1() { cat "${MESHD_LOG[1]}"; }

t_begin "ISTIO_MUTUAL: a client without a certificate is refused"
t_expect_fail "no client certificate: no response" mesh_curl /none -o /dev/null
t_expect_contains "$(log1)" "gateway: TLS handshake refused: handshake: error:0A0000C7:SSL routines::peer did not return a certificate" \
    "logged: no certificate"

t_begin "ISTIO_MUTUAL: a certificate of another CA is refused, whatever SPIFFE id it names"
t_expect_fail "another CA's certificate: no response" mesh_curl /other -o /dev/null \
    --cert "$E2E_TMP/other-client.pem" --key "$E2E_TMP/other-client.key"
t_expect_contains "$(log1)" "gateway: TLS handshake refused: handshake: certificate: unable to get local issuer certificate" \
    "logged: not the mesh CA's"
seen=$(grep -cs '/other\|/none' "$E2E_TMP/httpd.log" || true) # no log yet: no request
t_expect_eq "${seen:-0}" 0 "my-service never saw either request"

t_begin "ISTIO_MUTUAL: a mesh-CA certificate reaches my-service on node 2"
marker="mesh-marker-$RANDOM$RANDOM"
out=$(mesh_curl "/mesh/$marker" "${MC[@]}" -w '\n%{http_code}')
body=$(head -n -1 <<<"$out")
t_expect_eq "$(tail -1 <<<"$out")" 200 "HTTPS 200"
t_expect_eq "$(jq -r '[.name, .path] | join(" ")' <<<"$body")" "my-service /mesh/$marker" "my-service answered the path"
t_expect_eq "$(jq -r '.headers | to_entries[] | select(.key | ascii_downcase == "x-forwarded-proto") | .value' <<<"$body")" \
    https "x-forwarded-proto: https"
t_expect_contains "$(cat "$E2E_TMP/httpd.log")" "$marker" "the backend logged it"
t_expect_eq "$(mesh_curl /h1 "${MC[@]}" --http1.1 -o /dev/null -w '%{http_code} %{http_version}')" "200 1.1" \
    "HTTP/1.1 too"
# What the gateway presents: its own workload certificate, chained to the
# mesh root (openssl verifies the chain; the SAN is the gateway's id).
gw_cert() {
    client timeout 5 openssl s_client -connect "$GW:9443" -servername mesh.example.com -CAfile "$E2E_TMP/ca/root-cert.pem" \
        -cert "$E2E_TMP/mesh-client.pem" -key "$E2E_TMP/mesh-client-key.pem" </dev/null 2>/dev/null
}
pem=$(gw_cert)
t_expect_contains "$pem" "Verify return code: 0 (ok)" "the gateway's certificate verifies against the mesh root"
t_expect_contains "$(openssl x509 -noout -ext subjectAltName <<<"$pem" 2>/dev/null)" \
    "URI:spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account" \
    "and is the gateway pod's SPIFFE identity"

t_begin "ISTIO_MUTUAL: the client's SPIFFE id is the request's source_principal"
m=$(ip netns exec "${NODE_NS[1]}" curl -s -m 5 "http://${NODE_IP4[1]}:15020/metrics")
line=$(grep '^istio_requests_total' <<<"$m" | grep 'reporter="source"' | grep "source_principal=\"$CLIENT_ID\"" | head -1)
t_expect_contains "$line" 'destination_service="my-service.default.svc.cluster.local"' "to my-service"
t_expect_contains "$line" 'response_code="200"' "answered 200"
t_expect_contains "$line" 'source_workload_namespace="istio-system"' "reported by the gateway (reporter=source)"

t_begin "ISTIO_MUTUAL: a renewed workload certificate is presented by new handshakes"
serial() { gw_cert | openssl x509 -noout -serial 2>/dev/null; }
s1=$(serial)
s2=$s1
for _ in $(seq 1 40); do
    sleep 0.5
    s2=$(serial)
    [ -n "$s2" ] && [ "$s2" != "$s1" ] && break
done
t_expect_ok "a new serial after renewal ($s1 -> $s2)" test -n "$s1" -a -n "$s2" -a "$s1" != "$s2"
t_expect_eq "$(mesh_curl /after "${MC[@]}" -o /dev/null -w '%{http_code}')" 200 "served after the renewal"

t_begin "AUTO_PASSTHROUGH: the sample's Gateway routes outbound_.80_._.$ECHO to tls-echo, TLS end to end"
ew_curl() { # SNI [CURL ARGS...]
    local sni=$1
    shift
    client curl -sk -m 5 --connect-to "::$EW:15443" "$@" "https://$sni/"
}
t_expect_eq "$(ew_curl "outbound_.80_._.$ECHO" -w ' %{http_code}')" "tls-echo 200" "the whole service"
t_expect_eq "$(ew_curl "outbound_.80_.v1_.$ECHO" -w ' %{http_code}')" "tls-echo 200" "subset v1 of its DestinationRule"
echo_serial() { client timeout 5 openssl s_client -connect "$EW:15443" -servername "$1" </dev/null 2>/dev/null |
    openssl x509 -noout -serial 2>/dev/null; }
t_expect_eq "$(echo_serial "outbound_.80_._.$ECHO")" "serial=7007" "the certificate is tls-echo's own: not terminated"

t_begin "AUTO_PASSTHROUGH: a bad SNI is reset and logged"
for sni in "$ECHO" "inbound_.80_._.$ECHO" "outbound_.081_._.$ECHO" "outbound_.81_._.$ECHO" \
    "outbound_.80_.v9_.$ECHO" "outbound_.80_._.nope.default.svc.cluster.local" "outbound_.80_._.my-service.default"; do
    t_expect_fail "SNI $sni: refused" ew_curl "$sni" -o /dev/null
done
t_expect_fail "no SNI: refused" client curl -sk -m 5 "https://$EW:15443/" -o /dev/null
t_expect_contains "$(log1)" "AUTO_PASSTHROUGH port 15443: SNI \"$ECHO\": not of the form" "a name of another form, logged"
t_expect_contains "$(log1)" "AUTO_PASSTHROUGH to $ECHO port 81 subset \"\": the service has no such port" \
    "no such port, logged"
t_expect_contains "$(log1)" "subset \"v9\": no DestinationRule subset of that name" "no such subset, logged"
t_expect_eq "$(ew_curl "outbound_.80_._.$ECHO" -w ' %{http_code}')" "tls-echo 200" "and the good name still served"

t_begin "meshctl analyze: the sample as written; ISTIO_MUTUAL with a credentialName"
out=$("$MESHCTL_BIN" analyze tests/e2e/data/expose-services.yaml 2>&1) || true
t_expect_contains "$out" "its hosts admit no service of the mesh" "alone, the sample's *.local admits no service: said"
out=$("$MESHCTL_BIN" analyze "$E2E_TMP/config-1" 2>&1) || true
t_expect_eq "$(grep -c 'AUTO_PASSTHROUGH\|ISTIO_MUTUAL' <<<"$out" || true)" 0 "with the cluster's services: nothing to say"
cat >"$E2E_TMP/bad.yaml" <<YAML
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bad, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 9443, name: https-mesh, protocol: HTTPS}
    tls: {mode: ISTIO_MUTUAL, credentialName: app-tls}
    hosts: [mesh.example.com]
YAML
out=$("$MESHCTL_BIN" analyze "$E2E_TMP/bad.yaml" 2>&1) || true
t_expect_contains "$out" "ISTIO_MUTUAL TLS cannot have associated credentialName" "Istio's error"
t_expect_contains "$out" "use MUTUAL for certificates of your own" "and what to do instead"

meshd_check_logs
t_summary
