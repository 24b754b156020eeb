#!/usr/bin/env bash
# The Kubernetes Gateway API served by the ingress gateway (issue 17), as
# Istio serves it: a Gateway of gatewayClassName istio in namespace edge
# (an HTTPS listener terminating with a certificateRefs Secret, routes from
# every namespace; a TCP listener), its pod gw-istio-1 labelled
# gateway.networking.k8s.io/gateway-name: gw on node 1 (Istio's deployment
# for it), an HTTPRoute and a TCPRoute in default, backends v1 and v2 on
# node 2.
#  - the HTTPRoute routes like its VirtualService equivalent: the same
#    checks (certificate verified, whole-element prefixes, 50/50 weights,
#    request and response header edits, a 301 redirect, 404 for a host no
#    route binds) pass with the Gateway API resources, then with an Istio
#    Gateway and VirtualService written for the same routing;
#  - a TCP listener (TCPRoute) and an Istio TCP server (tcp[] route) carry
#    bytes to their backends, over HBONE (15008 only on node 2's underlay);
#    a terminating TLS listener (and an Istio TLS SIMPLE server) carries
#    the decrypted bytes the same way;
#  - bad Gateway API input is refused with the field named (the agent's
#    last errors, meshctl analyze), and the last good configuration keeps
#    serving;
#  - an Istio server with file certificates (serverCertificate/privateKey
#    below --gateway-cert-dir) terminates with them; one naming a file
#    outside that directory refuses connections.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 3
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
GW=${POD_IP4[1,1]}
PKI=$E2E_TMP/pki
mkdir -p "$PKI"

ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=Edge Test CA" \
    -keyout "$PKI/ca.key" -out "$PKI/ca.pem"
ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=app.example.com" \
    -keyout "$PKI/app.key" -out "$PKI/app.csr"
printf 'subjectAltName=DNS:app.example.com,DNS:other.example.com\n' >"$PKI/app.ext"
ossl x509 -req -in "$PKI/app.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -set_serial 4097 -days 1 \
    -extfile "$PKI/app.ext" -out "$PKI/app.pem"
mkdir -p "$PKI/files"
cp "$PKI/app.pem" "$PKI/files/tls.crt"
cp "$PKI/app.key" "$PKI/files/tls.key"

pod_yaml() { # I J NS NAME SA LABELS
    cat <<POD
apiVersion: v1
kind: Pod
metadata: {name: $4, namespace: $3, labels: {$6}}
spec: {nodeName: m${TOPO_RUN}n$1, serviceAccountName: $5}
status:
  podIPs: [{ip: ${POD_IP4[$1,$2]}}, {ip: "${POD_IP6[$1,$2]}"}]
POD
}
svc_yaml() { # NAME
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: default}\n' "$1"
    printf 'spec: {selector: {app: %s}, ports: [{name: http, port: 8000, targetPort: 8080}]}\n' "$1"
}
cluster_yaml() {
    cat <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: default, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Namespace
metadata: {name: edge, labels: {istio.io/dataplane-mode: ambient}}
---
$(pod_yaml 1 1 edge gw-istio-1 gw-istio "gateway.networking.k8s.io/gateway-name: gw")
---
$(pod_yaml 2 1 default v1-1 v1 "app: v1")
---
$(pod_yaml 2 2 default v2-1 v2 "app: v2")
---
$(svc_yaml v1)
---
$(svc_yaml v2)
---
apiVersion: v1
kind: Secret
metadata: {name: app-tls, namespace: edge}
type: kubernetes.io/tls
data:
  tls.crt: $(base64 -w0 "$PKI/app.pem")
  tls.key: $(base64 -w0 "$PKI/app.key")
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: files, namespace: edge}
spec:
  selector: {gateway.networking.k8s.io/gateway-name: gw}
  servers:
  - port: {number: 8444, name: https-files, protocol: HTTPS}
    tls: {mode: SIMPLE, serverCertificate: $PKI/files/tls.crt, privateKey: $PKI/files/tls.key}
    hosts: ["*/app.example.com"]
  - port: {number: 8445, name: https-outside, protocol: HTTPS}
    tls: {mode: SIMPLE, serverCertificate: $PKI/app.pem, privateKey: $PKI/ca.key}
    hosts: ["*/app.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: files, namespace: default}
spec:
  hosts: [app.example.com]
  gateways: [edge/files]
  http: [{route: [{destination: {host: v2.default.svc.cluster.local, port: {number: 8000}}}]}]
YAML
}
# The Gateway API resources.
gwapi_yaml() {
    cat <<'YAML'
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  gatewayClassName: istio
  listeners:
  - name: https
    hostname: "*.example.com"
    port: 8443
    protocol: HTTPS
    tls:
      mode: Terminate
      certificateRefs: [{kind: Secret, name: app-tls}]
    allowedRoutes: {namespaces: {from: All}}
  - name: tcp
    port: 9000
    protocol: TCP
    allowedRoutes: {namespaces: {from: All}}
  - name: tls-tcp
    hostname: "*.example.com"
    port: 9444
    protocol: TLS
    tls: {mode: Terminate, certificateRefs: [{name: app-tls}]}
    allowedRoutes: {namespaces: {from: All}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: default}
spec:
  parentRefs: [{name: gw, namespace: edge, sectionName: https}]
  hostnames: [app.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Route, value: api}]
        remove: [x-drop]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        add: [{name: X-Edge, value: gwapi}]
    backendRefs:
    - {name: v1, port: 8000, weight: 50}
    - {name: v2, port: 8000, weight: 50}
  - matches: [{path: {type: Exact, value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, hostname: new.example.com, statusCode: 301}
  - backendRefs: [{name: v1, port: 8000}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: tcp, namespace: default}
spec:
  parentRefs: [{name: gw, namespace: edge, sectionName: tcp}]
  rules: [{backendRefs: [{name: v2, port: 8000}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: tls-tcp, namespace: default}
spec:
  parentRefs: [{name: gw, namespace: edge, sectionName: tls-tcp}]
  rules: [{backendRefs: [{name: v1, port: 8000}]}]
YAML
}
# What an Istio user writes for the same routing.
istio_yaml() {
    cat <<'YAML'
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw-istio, namespace: edge}
spec:
  selector: {gateway.networking.k8s.io/gateway-name: gw}
  servers:
  - port: {number: 8443, name: https, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: app-tls}
    hosts: ["*/*.example.com"]
  - port: {number: 9000, name: tcp, protocol: TCP}
    hosts: ["*/*"]
  - port: {number: 9444, name: tls-tcp, protocol: TLS}
    tls: {mode: SIMPLE, credentialName: app-tls}
    hosts: ["*/*.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: default}
spec:
  hosts: [app.example.com]
  gateways: [edge/gw-istio]
  http:
  - match: [{uri: {exact: /old}}]
    redirect: {scheme: https, authority: new.example.com, redirectCode: 301}
  - match: [{uri: {exact: /api}}, {uri: {prefix: /api/}}]
    headers:
      request: {set: {x-route: api}, remove: [x-drop]}
      response: {add: {x-edge: gwapi}}
    route:
    - {destination: {host: v1.default.svc.cluster.local, port: {number: 8000}}, weight: 50}
    - {destination: {host: v2.default.svc.cluster.local, port: {number: 8000}}, weight: 50}
  - route: [{destination: {host: v1.default.svc.cluster.local, port: {number: 8000}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tcp, namespace: default}
spec:
  hosts: ["*"]
  gateways: [edge/gw-istio]
  tcp:
  - match: [{port: 9000}]
    route: [{destination: {host: v2.default.svc.cluster.local, port: {number: 8000}}}]
  - match: [{port: 9444}]
    route: [{destination: {host: v1.default.svc.cluster.local, port: {number: 8000}}}]
YAML
}
for i in 1 2; do
    mkdir -p "$E2E_TMP/config-$i"
    cluster_yaml >"$E2E_TMP/config-$i/cluster.yaml"
    gwapi_yaml >"$E2E_TMP/config-$i/routing.yaml"
done

t_begin "the Gateway API resources load, and analyze has nothing to refuse"
out=$("$MESHCTL_BIN" analyze "$E2E_TMP/config-1" 2>&1 || true)
t_expect_not_contains "$out" "Error [" "no error from meshctl analyze"

meshd_start 1 --ca-dir "$E2E_TMP/ca" --gateway-cert-dir "$PKI/files"
meshd_start 2 --ca-dir "$E2E_TMP/ca"
meshctl_at 1 enroll edge/gw-istio-1 --netns "/run/netns/${POD_NS[1,1]}" --sa gw-istio \
    --ip "${POD_IP4[1,1]}" --ip "${POD_IP6[1,1]}" >/dev/null
for x in v1:1 v2:2; do
    n=${x%:*} j=${x#*:}
    meshctl_at 2 enroll "default/$n-1" --netns "/run/netns/${POD_NS[2,$j]}" --sa "$n" \
        --ip "${POD_IP4[2,$j]}" --ip "${POD_IP6[2,$j]}" >/dev/null
    topo_spawn "${POD_NS[2,$j]}" "$E2E_TMP/httpd-$n.out" /usr/bin/python3 tests/e2e/lib/httpd.py 8080 "$n" \
        "$E2E_TMP/httpd-$n.log" >/dev/null
    topo_wait_tcp "${POD_NS[2,$j]}" "${POD_IP4[2,$j]}" 8080 10
done

client() { in_pod "1,2" "$@"; }
gw_curl() { # HOST PATH [CURL ARGS...]
    local host=$1 path=$2
    shift 2
    client curl -s -m 5 --cacert "$PKI/ca.pem" --resolve "$host:8443:$GW" "$@" "https://$host:8443$path"
}

# The routing both configurations must give, checked the same way.
check_routing() { # WHAT
    local what=$1 out body h
    out=$(gw_curl app.example.com /api/users -H 'x-drop: secret' -D "$E2E_TMP/resp.h" \
        -w '\n%{http_code} %{ssl_verify_result}')
    body=$(head -n -1 <<<"$out")
    t_expect_eq "$(tail -1 <<<"$out")" "200 0" "$what: HTTPS 200, the certificateRefs certificate verified"
    h() { jq -r --arg k "$1" '.headers | to_entries[] | select(.key | ascii_downcase == $k) | .value' <<<"$body"; }
    t_expect_eq "$(h x-route)" api "$what: the request header set"
    t_expect_eq "$(h x-drop)" "" "$what: the request header removed"
    t_expect_contains "$(tr -d '\r' <"$E2E_TMP/resp.h" | tr 'A-Z' 'a-z')" "x-edge: gwapi" \
        "$what: the response header added"
    local names="" i
    for i in $(seq 1 40); do
        names+="$(gw_curl app.example.com "/api/$i" | jq -r .name) "
    done
    local n1 n2
    n1=$(grep -o v1 <<<"$names" | wc -l)
    n2=$(grep -o v2 <<<"$names" | wc -l)
    t_expect_eq "$((n1 + n2))" 40 "$what: 40 weighted requests answered"
    t_expect_ok "$what: 50/50 reaches both (v1 $n1, v2 $n2)" test "$n1" -ge 5 -a "$n2" -ge 5
    t_expect_eq "$(gw_curl app.example.com /apix | jq -r .name)" v1 "$what: /apix is not under /api: the catch-all"
    t_expect_eq "$(gw_curl app.example.com /old?q=1 -o /dev/null -w '%{http_code} %{redirect_url}')" \
        "301 https://new.example.com/old?q=1" "$what: the exact path redirects 301"
    t_expect_eq "$(gw_curl other.example.com /api -o /dev/null -w '%{http_code}')" 404 \
        "$what: a host the listener admits but no route binds: 404"
    t_expect_fail "$what: an SNI outside the listener's hostname: the handshake fails" \
        client curl -s -m 5 --cacert "$PKI/ca.pem" --resolve "app.other.org:8443:$GW" -o /dev/null \
        "https://app.other.org:8443/"
    t_expect_eq "$(client curl -s -m 5 "http://$GW:9000/over-tcp" | jq -r '.name + " " + .path')" \
                "v2 /over-tcp" "$what: the TCP listener carries the bytes to v2"
    t_expect_eq "$(client curl -s -m 5 --cacert "$PKI/ca.pem" --resolve "app.example.com:9444:$GW" \
        https://app.example.com:9444/after-tls | jq -r '.name + " " + .path + " " + (.headers["x-forwarded-proto"] // "none")')" \
        "v1 /after-tls none" "$what: a terminating TLS listener carries the decrypted bytes to v1 (no HTTP edit)"
}

t_begin "Gateway API: an HTTPRoute and a TCPRoute on a Gateway of class istio"
cap="$E2E_TMP/underlay-2.pcap"
topo_spawn "${NODE_NS[2]}" "$E2E_TMP/tshark.log" tshark -q -i "${NODE_UNDERLAY_IF[2]}" -f tcp -w "$cap" >/dev/null
tshark_pid=$TOPO_LAST_PID
for _ in $(seq 1 600); do grep -q "Capturing on" "$E2E_TMP/tshark.log" 2>/dev/null && break; sleep 0.1; done
check_routing "HTTPRoute"
sleep 0.5
topo_kill "$tshark_pid" TERM
ports=$(tshark -r "$cap" -T fields -e tcp.dstport -Y "ip.dst==${POD_IP4[2,1]} || ip.dst==${POD_IP4[2,2]}" 2>/dev/null |
    sort -u | tr '\n' ' ')
t_expect_eq "$ports" "15008 " "toward the backends only 15008 on node 2's underlay (TCP too)"
t_expect_eq "$(grep -ac over-tcp "$cap" || true)" 0 "the TCP bytes never in plaintext on the underlay"

t_begin "file certificates: served below --gateway-cert-dir, refused outside it"
out=$(client curl -s -m 5 --cacert "$PKI/ca.pem" --resolve "app.example.com:8444:$GW" \
    -o "$E2E_TMP/files.json" -w '%{http_code} %{ssl_verify_result}' https://app.example.com:8444/files)
t_expect_eq "$(jq -r .name "$E2E_TMP/files.json") $out" "v2 200 0" \
    "HTTPS with the files' certificate, verified, routed by its VirtualService"
t_expect_fail "a server naming a file outside the directory (the CA's key) refuses connections" \
    client curl -s -m 5 -k --resolve "app.example.com:8445:$GW" -o /dev/null https://app.example.com:8445/
t_expect_contains "$(cat "${MESHD_LOG[1]}")" \
    "is not below --gateway-cert-dir" "the refusal is said"

t_begin "bad Gateway API input is refused, the last good configuration keeps serving"
v_good=$(config_version 1)
cat >"$E2E_TMP/config-1/bad.yaml" <<'YAML'
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad, namespace: default}
spec:
  parentRefs: [{name: gw, namespace: edge}]
  rules:
  - matches: [{path: {type: Exact, value: no-slash}}]
    backendRefs: [{name: v2, port: 8000}]
YAML
for _ in $(seq 1 50); do
    [ "$(meshctl_at 1 -o json proxy-config config | jq -r '.last_errors | length')" -gt 0 ] && break
    sleep 0.1
done
err=$(meshctl_at 1 -o json proxy-config config | jq -r '.last_errors | join(" ")')
t_expect_contains "$err" "(HTTPRoute default/bad bad.yaml:" "the error names the HTTPRoute and its file"
t_expect_contains "$err" 'spec.rules[0].matches[0].path: value: "no-slash" must be an absolute path' "and the field"
t_expect_eq "$(config_version 1)" "$v_good" "the last good version keeps serving"
t_expect_eq "$(gw_curl app.example.com /apix | jq -r .name)" v1 "and routing as before"
t_expect_contains "$("$MESHCTL_BIN" analyze "$E2E_TMP/config-1" 2>&1 || true)" "must be an absolute path" \
    "meshctl analyze reports it"
rm "$E2E_TMP/config-1/bad.yaml"
for _ in $(seq 1 50); do
    [ "$(meshctl_at 1 -o json proxy-config config | jq -r '.last_errors | length')" = 0 ] && break
    sleep 0.1
done
t_expect_eq "$(meshctl_at 1 -o json proxy-config config | jq -r '[(.last_errors | length), .version] | join(" ")')" \
    "0 $v_good" "the bad file removed: no error left, the same version"

t_begin "the same routing as an Istio Gateway and VirtualService"
swap() {
    local i
    for i in 1 2; do istio_yaml >"$E2E_TMP/config-$i/.routing.tmp" && mv "$E2E_TMP/config-$i/.routing.tmp" \
        "$E2E_TMP/config-$i/routing.yaml"; done
}
t_expect_ok "the VirtualService configuration is applied" config_apply 1 swap
check_routing "VirtualService"

meshd_check_logs
t_summary
