# shellcheck shell=bash
# The seed's ingress gateway for the scripts that send traffic through it
# (test_tracing_gateway.sh, test_dashboard.sh, make demo's story); source
# after topology.sh.
#   seed_pki DIR               a CA (ca.pem, ca.key) and app.example.com's
#                              leaf (app.pem, app.key), as an operator would
#                              make them (openssl, P-256)
#   seed_gateway_config DIR PKI I J
#                              into config dir DIR: the seed's YAML
#                              (tests/e2e/data/gateway-seed.yaml: its
#                              Service, Gateway, VirtualService and
#                              my-service), istio-system in ambient mode, the
#                              Deployment istio-ingressgateway and its pod
#                              istio-system/istio-ingressgateway-1
#                              (istio: ingressgateway) at pod (I,J) and the
#                              app-tls Secret from PKI (mesh_config's
#                              pod-I-J.yaml, if any, goes: same pod).
# The seed's YAML as written: my-service's port is unnamed, so the source
# sniffs HTTP and tells my-service's agent so (x-meshd-protocol), which
# then serves, and traces, each request too.

# seed_topology: two nodes of three pods, the mesh CA at $E2E_TMP/ca, the
# seed's PKI (seed_pki) at $SEED_PKI, and in each node's config directory
# ($E2E_TMP/config-I) mesh_config's pods with the seed's gateway YAML, its
# pod at (1,1) (seed_gateway_config). Tests relabel and add after it.
seed_topology() {
    local i
    topo_init
    topo_create 2 3
    "$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
    SEED_PKI=$E2E_TMP/pki
    seed_pki "$SEED_PKI"
    for i in 1 2; do
        mesh_config "$E2E_TMP/config-$i"
        seed_gateway_config "$E2E_TMP/config-$i" "$SEED_PKI" 1 1
    done
}

seed_pki() {
    local d=$1 o=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    mkdir -p "$d"
    openssl req -x509 "${o[@]}" -days 2 -subj "/CN=Edge Test CA" -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
    openssl req "${o[@]}" -subj "/CN=app.example.com" -keyout "$d/app.key" -out "$d/app.csr" 2>/dev/null
    printf 'subjectAltName=DNS:app.example.com\n' >"$d/app.ext"
    openssl x509 -req -in "$d/app.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -set_serial 4097 -days 1 \
        -extfile "$d/app.ext" -out "$d/app.pem" 2>/dev/null
}

seed_gateway_config() {
    local d=$1 pki=$2 i=$3 j=$4
    mkdir -p "$d"
    rm -f "$d/pod-$i-$j.yaml" # mesh_config's default/pod-I-J: the gateway pod is that pod
    cp tests/e2e/data/gateway-seed.yaml "$d/gateway-seed.yaml"
    cat >"$d/gateway-pod.yaml" <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: istio-system, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  template: {metadata: {labels: {istio: ingressgateway, app: istio-ingressgateway}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: istio-ingressgateway-1
  namespace: istio-system
  labels: {istio: ingressgateway, app: istio-ingressgateway}
spec: {nodeName: m${TOPO_RUN}n$i, serviceAccountName: istio-ingressgateway-service-account}
status:
  podIPs: [{ip: ${POD_IP4[$i,$j]}}, {ip: "${POD_IP6[$i,$j]}"}]
YAML
    {
        printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: app-tls, namespace: istio-system}\n'
        printf 'type: kubernetes.io/tls\ndata:\n  tls.crt: %s\n  tls.key: %s\n' \
            "$(base64 -w0 "$pki/app.pem")" "$(base64 -w0 "$pki/app.key")"
    } >"$d/app-tls.yaml"
}

# seed_gateway_enroll NODE I J: the gateway pod enrolled on NODE's agent.
seed_gateway_enroll() {
    meshctl_at "$1" enroll istio-system/istio-ingressgateway-1 --netns "/run/netns/${POD_NS[$2,$3]}" \
        --sa istio-ingressgateway-service-account --ip "${POD_IP4[$2,$3]}" --ip "${POD_IP6[$2,$3]}" >/dev/null
}

# seed_gateway_curl "i,j" GW_I GW_J PATH [CURL ARGS...]: HTTPS from pod
# (i,j) to the gateway pod (GW_I,GW_J) as https://app.example.com:8443
# (the Service's 443 -> 8443), the CA of seed_pki at $SEED_PKI.
seed_gateway_curl() {
    local from=$1 gi=$2 gj=$3 path=$4
    shift 4
    in_pod "$from" curl -s -m 10 --cacert "$SEED_PKI/ca.pem" \
        --resolve "app.example.com:8443:${POD_IP4[$gi,$gj]}" "$@" "https://app.example.com:8443$path"
}
