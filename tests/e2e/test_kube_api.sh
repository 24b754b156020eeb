#!/usr/bin/env bash
# meshd configured only through the Kubernetes API (meshd --kubeconfig),
# against the test suite's stand-in API server (tests/e2e/lib/kubeapi.py,
# over TLS with a bearer token file):
#  - first, Debian's kubectl (get, get -w, apply) and the official Python
#    client (python3-kubernetes: list, watch from a resourceVersion,
#    bookmarks, 410) run against the stand-in: it speaks the protocol;
#  - meshd, with an empty --config, serves the seed's payments canary and a
#    STRICT PeerAuthentication applied with kubectl;
#  - an edit is followed within a second, also after a watch cut mid-stream
#    and after a 410 Gone (meshd relists), and after the token rotated;
#  - a bad object is refused with a diagnostic naming it, and the last good
#    snapshot keeps serving; so does the API server gone for a while.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

VIP=10.96.0.10
topo_init
topo_create 1 4
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
node=m${TOPO_RUN}n1
api="$E2E_TMP/api"
mkdir -p "$api"
# The API server's certificate, for 127.0.0.1 in the node's namespace.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=kubeapi \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$api/key.pem" -out "$api/cert.pem" 2>/dev/null
printf "token-one-%s" "$RANDOM$RANDOM" >"$api/token"
topo_spawn "${NODE_NS[1]}" "$api/kubeapi.log" /usr/bin/python3 tests/e2e/lib/kubeapi.py \
    --port-file "$api/ports" --token-file "$api/token" --tls-cert "$api/cert.pem" \
    --tls-key "$api/key.pem" --bookmark-seconds 1 >/dev/null
for _ in $(seq 1 100); do [ -s "$api/ports" ] && break; sleep 0.1; done
read -r port ctl <"$api/ports"
cp "$api/token" "$api/client-token"
cat >"$api/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: standin
  cluster: {server: "https://127.0.0.1:$port", certificate-authority: cert.pem}
users:
- name: meshd
  user: {tokenFile: client-token}
contexts:
- name: standin
  context: {cluster: standin, user: meshd, namespace: default}
current-context: standin
KC
kc() { ip netns exec "${NODE_NS[1]}" kubectl --kubeconfig "$api/kubeconfig" --request-timeout=10s "$@"; }
control() { ip netns exec "${NODE_NS[1]}" curl -s -m 5 -X "${2:-POST}" "http://127.0.0.1:$ctl/$1"; }
pyk() { ip netns exec "${NODE_NS[1]}" timeout 30 /usr/bin/python3 - "$api/kubeconfig" "$@"; }

pod_yaml() { # I J APP VERSION SA
    cat <<POD
apiVersion: v1
kind: Pod
metadata:
  name: pod-$1-$2
  namespace: default
  labels: {app: $3, version: $4}
spec:
  nodeName: $node
  serviceAccountName: $5
  containers: [{name: app, image: example/app:1}]
status:
  phase: Running
  podIP: ${POD_IP4[$1,$2]}
  podIPs: [{ip: ${POD_IP4[$1,$2]}}, {ip: "${POD_IP6[$1,$2]}"}]
  conditions: [{type: Ready, status: "True"}]
POD
}

t_begin "kubectl against the stand-in"
{
    printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n  labels: {istio.io/dataplane-mode: ambient}\n---\n'
    pod_yaml 1 1 client v1 client
    echo ---
    pod_yaml 1 2 payments v1 payments-v1
    echo ---
    pod_yaml 1 3 payments v2 payments-v2
    echo ---
    sed "s/^  selector:\$/  clusterIP: $VIP\n  selector:/" deploy/examples/payments-canary.yaml
} >"$api/cluster.yaml"
# No OpenAPI document is served (kubectl's schema validation needs the
# whole one): --validate=false, as against an API server without it.
out=$(kc apply --validate=false -f "$api/cluster.yaml" 2>&1)
t_expect_contains "$out" "virtualservice.networking.istio.io/payments created" "kubectl apply creates the canary"
t_expect_contains "$out" "pod/pod-1-2 created" "and the pods"
t_expect_eq "$(kc get pods -o jsonpath='{.items[*].metadata.name}')" "pod-1-1 pod-1-2 pod-1-3" "kubectl get lists them"
t_expect_eq "$(kc get vs payments -o jsonpath='{.spec.http[0].route[1].weight}')" 1 "kubectl get one object"
kc get pa -w --output-watch-events >"$api/watch.out" 2>&1 &
watch_pid=$!
sleep 1
kc apply --validate=false -f - >/dev/null <<PA
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict-payments, namespace: default}
spec:
  selector: {matchLabels: {app: payments}}
  mtls: {mode: STRICT}
PA
for _ in $(seq 1 50); do grep -q strict-payments "$api/watch.out" && break; sleep 0.1; done
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
t_expect_contains "$(cat "$api/watch.out")" "ADDED" "kubectl get -w sees the PeerAuthentication ADDED"
t_expect_eq "$(kc get pa strict-payments -o jsonpath='{.spec.mtls.mode}')" STRICT "kubectl apply wrote it"
printf bad-token >"$api/client-token"
t_expect_contains "$(kc get ns 2>&1 || true)" "Unauthorized" "a wrong token is refused"
cp "$api/token" "$api/client-token"

t_begin "python3-kubernetes against the stand-in"
out=$(pyk "$node" <<'PY'
import sys
from kubernetes import client, config, watch
config.load_kube_config(sys.argv[1])
v1 = client.CoreV1Api()
pods = v1.list_namespaced_pod("default", field_selector="spec.nodeName=" + sys.argv[2])
print("pods", len(pods.items), pods.items[0].spec.service_account_name)
rv = pods.metadata.resource_version
co = client.CustomObjectsApi()
co.create_namespaced_custom_object("security.istio.io", "v1beta1", "default", "authorizationpolicies",
    {"apiVersion": "security.istio.io/v1beta1", "kind": "AuthorizationPolicy",
     "metadata": {"name": "py-probe"}, "spec": {"action": "AUDIT"}})
co.delete_namespaced_custom_object("security.istio.io", "v1beta1", "default", "authorizationpolicies", "py-probe")
seen = []
for ev in watch.Watch().stream(co.list_namespaced_custom_object, "security.istio.io", "v1",
                               "default", "authorizationpolicies", resource_version=rv,
                               timeout_seconds=3, allow_watch_bookmarks=True):
    seen.append(ev["type"])
    if ev["type"] == "BOOKMARK":
        break
print("events", " ".join(seen))
try:
    v1.list_namespace(resource_version="1")
    print("no 410")
except client.exceptions.ApiException as e:
    print("status", e.status)
PY
)
t_expect_contains "$out" "pods 3 client" "lists Pods by field selector, with their service account"
t_expect_contains "$out" "events ADDED DELETED BOOKMARK" "watches from a resourceVersion: ADDED, DELETED, BOOKMARK"
control compact >/dev/null
out=$(pyk <<'PY'
import sys
from kubernetes import client, config
config.load_kube_config(sys.argv[1])
try:
    client.CoreV1Api().list_namespace(resource_version="2")
    print("no 410")
except client.exceptions.ApiException as e:
    print("status", e.status)
PY
)
t_expect_eq "$out" "status 410" "a compacted resourceVersion is 410 Gone"

t_begin "meshd configured only through the API"
# Where meshd looks for running pods' namespaces: only this test's (other
# tests on the machine use the same pod addresses in their own netns).
mkdir -p "$E2E_TMP/netns"
for j in 1 2 3 4; do ln -s "/run/netns/${POD_NS[1,$j]}" "$E2E_TMP/netns/${POD_NS[1,$j]}"; done
# Started while the API server is down: nothing listed, nothing served.
control down >/dev/null
meshd_start 1 --ca-dir "$E2E_TMP/ca" --kubeconfig "$api/kubeconfig" --netns-dir "$E2E_TMP/netns"
cfg=$(meshctl_at 1 -o json proxy-config config)
t_expect_eq "$(jq -r '.fail_closed' <<<"$cfg")" true "API down at start: fail closed, not an empty mesh"
t_expect_contains "$(jq -r '.last_errors | join(" ")' <<<"$cfg")" "_meshd-kube-syncing.yaml" "saying it waits for the API"
control up >/dev/null
for _ in $(seq 1 150); do
    grep -q "every kind listed" "${MESHD_LOG[1]}" && break
    sleep 0.1
done
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "every kind listed" "the API back: meshd listed every kind"
t_expect_eq "$(find "$E2E_TMP/config-1" -maxdepth 1 -type f | wc -l)" 0 "no configuration file but the API's objects"
# pods_bound: "name:binding ..." of the enrolled pods, sorted.
pods_bound() { meshctl_at 1 -o json pods | jq -r '[.[] | .name + ":" + .binding] | sort | join(" ")'; }
wait_pods() { # WANT: waits 5 s at most for pods_bound to say WANT
    for _ in $(seq 1 50); do
        [ "$(pods_bound)" = "$1" ] && return 0
        sleep 0.1
    done
}
wait_pods "pod-1-1:cluster pod-1-2:cluster pod-1-3:cluster"
t_expect_eq "$(pods_bound)" "pod-1-1:cluster pod-1-2:cluster pod-1-3:cluster" \
    "the running pods of the ambient namespace were found by their IPs and enrolled, bound to their Pod objects"
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "default/pod-1-2 enrolled (running, found by its IPs)" "and the log says how"
topo_spawn "${POD_NS[1,2]}" "$E2E_TMP/tally-v1.log" /usr/bin/python3 tests/e2e/lib/tally.py serve 8080 v1 >/dev/null
topo_spawn "${POD_NS[1,3]}" "$E2E_TMP/tally-v2.log" /usr/bin/python3 tests/e2e/lib/tally.py serve 8080 v2 >/dev/null
topo_wait_tcp "${POD_NS[1,2]}" "${POD_IP4[1,2]}" 8080 10
topo_wait_tcp "${POD_NS[1,3]}" "${POD_IP4[1,3]}" 8080 10
tally() { in_pod "1,1" /usr/bin/python3 tests/e2e/lib/tally.py "$@"; }
routes() { meshctl_at 1 -o json proxy-config routes pod-1-1.default --service payments |
    jq -c '[.routes[0].destinations[] | [.subset, .weight]]'; }
t_expect_eq "$(routes)" '[["v1",99],["v2",1]]' "the seed's canary, from the API"
counts=$(tally count "$VIP" 80 2000)
echo "    counts: $counts"
v2=$(jq -r '.v2 // 0' <<<"$counts")
t_expect_eq "$(jq -r .failed <<<"$counts")" 0 "no connection failed"
# 99.9%: |v2 - 20| <= 3.29 * sqrt(2000 * 0.01 * 0.99) = 14.6
t_expect_ok "v2 got $v2 of 2000 (expected 20 +- 15)" test "$v2" -ge 5 -a "$v2" -le 35
t_expect_eq "$(jq -r '.[] | select(.direction == "outbound") | .peer_identity' <<<"$(connections_json 1)" | sort -u | tr '\n' ' ')" \
    "spiffe://cluster.local/ns/default/sa/payments-v1 spiffe://cluster.local/ns/default/sa/payments-v2 " \
    "over mTLS to the identities of the Pod objects"
t_expect_eq "$(in_pod "1,4" /usr/bin/python3 tests/e2e/lib/tally.py count "${POD_IP4[1,2]}" 8080 1 | jq -r .failed)" 1 \
    "STRICT from the API: plaintext from outside the mesh is refused"

# set_weights V1 V2: kubectl apply of the canary with new weights; then the
# time from the API server's answer until meshd routes by them, in ms (or "none" after 10 s).
set_weights() {
    sed -e "s/weight: 99/weight: $1/" -e "s/weight: 1\$/weight: $2/" "$api/cluster.yaml" >"$api/edit.yaml"
    local t0 t
    kc apply --validate=false -f "$api/edit.yaml" >/dev/null
    t0=$(_topo_now_ms) # the API server has it
    for _ in $(seq 1 200); do
        if [ "$(routes)" = "[[\"v1\",$1],[\"v2\",$2]]" ]; then
            t=$(_topo_now_ms)
            echo $((t - t0))
            return 0
        fi
        sleep 0.05
    done
    echo none
}
t_begin "edits, cuts, 410"
ms=$(set_weights 50 50)
t_expect_ok "an edit is served within a second (${ms} ms)" test "$ms" != none -a "${ms/none/9999}" -le 1000
control cut >/dev/null
ms=$(set_weights 70 30)
t_expect_ok "after a watch cut mid-stream: ${ms} ms" test "${ms/none/9999}" -le 1000
lists=$(control stats GET | jq .lists)
control compact >/dev/null
ms=$(set_weights 80 20)
t_expect_ok "after a 410 Gone: ${ms} ms" test "${ms/none/9999}" -le 1000
t_expect_ok "meshd relisted after the 410" test "$(control stats GET | jq .lists)" -gt "$lists"
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "too old (410): relisting" "and said why"
printf "token-two-%s" "$RANDOM$RANDOM" >"$api/token.new"
mv "$api/token.new" "$api/token"
cp "$api/token" "$api/client-token.new"
mv "$api/client-token.new" "$api/client-token"
control cut >/dev/null
ms=$(set_weights 60 40)
t_expect_ok "after the token rotated: ${ms} ms" test "${ms/none/9999}" -le 3000
kc delete pa strict-payments >/dev/null
for _ in $(seq 1 40); do
    [ "$(in_pod "1,4" /usr/bin/python3 tests/e2e/lib/tally.py count "${POD_IP4[1,2]}" 8080 1 | jq -r .failed)" = 0 ] && break
    sleep 0.05
done
t_expect_eq "$(in_pod "1,4" /usr/bin/python3 tests/e2e/lib/tally.py count "${POD_IP4[1,2]}" 8080 1 | jq -r .failed)" 0 \
    "a delete is followed: without STRICT, plaintext is let in"

t_begin "the Gateway API's kinds from the API, beside Istio's Gateway kind"
kc apply --validate=false -f - >/dev/null <<GWAPI
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: default}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 8080, protocol: HTTP, hostname: "edge.example.com"}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: edge-payments, namespace: default}
spec:
  parentRefs: [{name: edge}]
  hostnames: ["edge.example.com"]
  rules: [{backendRefs: [{name: payments, port: 80}]}]
GWAPI
kinds() { meshctl_at 1 -o json proxy-config config | jq -r '.resources | [.["Gateway.gateway.networking.k8s.io"], .HTTPRoute] | join(" ")'; }
for _ in $(seq 1 50); do
    [ "$(kinds)" = "1 1" ] && break
    sleep 0.1
done
t_expect_eq "$(kinds)" "1 1" "a Gateway and an HTTPRoute of gateway.networking.k8s.io mirrored and loaded"
t_expect_eq "$(meshctl_at 1 -o json proxy-config config | jq -r '.last_errors | length')" 0 "without an error"
t_expect_eq "$(find "$E2E_TMP/state-1" -type d -name gateways.gateway.networking.k8s.io | wc -l)" 1 \
    "in their own mirror directory, apart from Istio's gateways"
kc delete httproute edge-payments >/dev/null
kc delete gateways.gateway.networking.k8s.io edge >/dev/null
for _ in $(seq 1 50); do
    [ "$(kinds)" = "0 0" ] && break
    sleep 0.1
done
t_expect_eq "$(kinds)" "0 0" "and their deletes followed"

t_begin "a bad object: refused with a diagnostic, the last good snapshot serves"
good=$(config_version 1)
kc apply --validate=false -f - >/dev/null <<BAD
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: broken, namespace: default}
spec:
  host: payments
  trafficPolicy: {loadBalancer: {simple: NOT_A_POLICY}}
BAD
for _ in $(seq 1 30); do
    [ "$(meshctl_at 1 -o json proxy-config config | jq -r '.last_errors | length')" -gt 0 ] && break
    sleep 0.1
done
errs=$(meshctl_at 1 -o json proxy-config config | jq -r '.last_errors | join("\n")')
t_expect_contains "$errs" "destinationrules/default_broken.json" "the diagnostic names the object"
t_expect_eq "$(config_version 1)" "$good" "the last good version still serves"
t_expect_eq "$(routes)" '[["v1",60],["v2",40]]' "and routes as before"
kc delete dr broken >/dev/null

t_begin "enrollment by label follows the API"
kc label ns default istio.io/dataplane-mode- >/dev/null
wait_pods ""
t_expect_eq "$(pods_bound)" "" "the namespace unlabelled: every pod released, none restarted"
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "released (its namespace left the mesh)" "the log says why"
t_expect_eq "$(in_pod "1,4" /usr/bin/python3 tests/e2e/lib/tally.py count "${POD_IP4[1,2]}" 8080 1 | jq -r .v1)" 1 \
    "the released pod answers directly, its server still running"
kc label ns default istio-injection=enabled >/dev/null
wait_pods "pod-1-1:cluster pod-1-2:cluster pod-1-3:cluster"
t_expect_eq "$(pods_bound)" "pod-1-1:cluster pod-1-2:cluster pod-1-3:cluster" "the seed's istio-injection=enabled enrolls them again"
kc label pod pod-1-3 istio.io/dataplane-mode=none >/dev/null
wait_pods "pod-1-1:cluster pod-1-2:cluster"
t_expect_eq "$(pods_bound)" "pod-1-1:cluster pod-1-2:cluster" "a pod labelled istio.io/dataplane-mode=none opts out"
kc label pod pod-1-3 istio.io/dataplane-mode- >/dev/null
kc label ns default istio-injection- istio.io/dataplane-mode=ambient >/dev/null
wait_pods "pod-1-1:cluster pod-1-2:cluster pod-1-3:cluster"
t_expect_eq "$(pods_bound)" "pod-1-1:cluster pod-1-2:cluster pod-1-3:cluster" "and back in"

t_begin "the API server gone for a while"
for _ in $(seq 1 30); do
    [ "$(meshctl_at 1 -o json proxy-config config | jq -r '.last_errors | length')" = 0 ] && break
    sleep 0.1
done
# The version once settled: the steps before may still be applying an edit.
good=$(config_version 1)
for _ in $(seq 1 20); do
    sleep 0.5
    now=$(config_version 1)
    [ "$now" = "$good" ] && break
    good=$now
done
control down >/dev/null
sleep 3
t_expect_eq "$(config_version 1)" "$good" "the same version serves"
counts=$(tally count "$VIP" 80 200)
t_expect_eq "$(jq -r .failed <<<"$counts")" 0 "traffic flows: $counts"
t_expect_ok "meshd is backing off (log)" grep -q "kube: .*connect" "${MESHD_LOG[1]}"
control up >/dev/null
ms=$(set_weights 99 1)
t_expect_ok "back: an edit is followed again (${ms} ms; the backoff is capped at 8 s)" test "$ms" != none
t_expect_eq "$(routes)" '[["v1",99],["v2",1]]' "the canary as the API now has it"

meshd_check_logs
t_summary
