#!/usr/bin/env bash
# Identities come from the cluster, not from the caller (issue 13, item 6).
# A CNI runtime knows a pod's namespace, name and netns; that is all these
# pods are enrolled with. Their Pod objects give the service accounts and
# addresses: two such pods talk across nodes with their real identities.
# Claims that contradict the Pod object are refused; a pod with no Pod
# object is pending and fails closed until its Pod object arrives; and a
# WorkloadEntry elsewhere naming a pod's IP does not change which policies
# apply to it.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 2
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
for i in 1 2; do
    d="$E2E_TMP/config-$i"
    mesh_config "$d"
    # Loads before the Pods: whoever claims an IP first must not matter.
    cat >"$d/00-shadow.yaml" <<YAML
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: shadow, namespace: evil}
spec: {address: ${POD_IP4[2,1]}, labels: {app: shadow}, serviceAccount: shadow}
YAML
    cat >"$d/policy.yaml" <<YAML
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-sa-1-1, namespace: default}
spec:
  selector: {matchLabels: {app: app-2-1}}
  action: ALLOW
  rules: [{from: [{source: {principals: ["cluster.local/ns/default/sa/sa-1-1"]}}]}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict-2-1, namespace: default}
spec: {selector: {matchLabels: {app: app-2-1}}, mtls: {mode: STRICT}}
YAML
    # pod-2-2's netns is enrolled below as "late", which has no Pod object yet.
    rm "$d/pod-2-2.yaml"
done
http_server "2,1" 8080 >/dev/null
http_server "1,2" 8080 >/dev/null
http_server "2,2" 8080 >/dev/null
meshd_start 1 --ca-dir "$E2E_TMP/ca"
meshd_start 2 --ca-dir "$E2E_TMP/ca"
# As a CNI plugin would: namespace, name, netns. Nothing else.
cni_enroll() { meshctl_at "$1" enroll "$2" --netns "/run/netns/${POD_NS[$3]}"; }
cni_enroll 1 default/pod-1-1 "1,1" >/dev/null
cni_enroll 1 default/pod-1-2 "1,2" >/dev/null
cni_enroll 2 default/pod-2-1 "2,1" >/dev/null

t_begin "the Pod object gives the identity and the addresses"
pods=$(meshctl_at 1 -o json pods)
t_expect_eq "$(jq -r '.[] | select(.name == "pod-1-1") | .sa' <<<"$pods")" sa-1-1 "service account from the Pod object"
t_expect_eq "$(jq -r '.[] | select(.name == "pod-1-1") | .binding' <<<"$pods")" cluster "bound by the cluster"
t_expect_eq "$(jq -r '.[] | select(.name == "pod-1-1") | .ips | join(" ")' <<<"$pods")" \
    "${POD_IP4[1,1]} ${POD_IP6[1,1]}" "addresses from the Pod object"
t_expect_eq "$(jq -r '.[] | select(.name == "pod-1-1") | .identity' <<<"$pods")" \
    "spiffe://cluster.local/ns/default/sa/sa-1-1" "certificate for the real service account"

t_begin "two pods enrolled with namespace/name/netns only talk across nodes"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "pod-1-1 -> pod-2-1 (IPv4, HBONE)"
t_expect_eq "$(http_get "1,1" "http://[${POD_IP6[2,1]}]:8080/")" 200 "and IPv6"
in=$(connections_json 2 | jq -c '[.[] | select(.direction == "inbound" and .state != "failed")][0]')
t_expect_eq "$(jq -r .peer_identity <<<"$in")" "spiffe://cluster.local/ns/default/sa/sa-1-1" \
    "the destination saw the client's real identity"
out=$(connections_json 1 | jq -c '[.[] | select(.direction == "outbound")][0]')
t_expect_eq "$(jq -r .peer_identity <<<"$out")" "spiffe://cluster.local/ns/default/sa/sa-2-1" \
    "the client verified the server's real identity"

t_begin "policies follow the Pod object, not a WorkloadEntry naming its IP"
t_expect_eq "$(http_get "1,2" "http://${POD_IP4[2,1]}:8080/")" 403 "sa-1-2 is not allowed by the pod's ALLOW policy (its agent answers 403)"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "sa-1-1 still is"
t_expect_eq "$(ip netns exec "${POD_NS[2,2]}" curl -s -o /dev/null -m 5 -w '%{http_code}' \
    "http://${POD_IP4[2,1]}:8080/" || true)" 000 "the pod's STRICT PeerAuthentication refuses plaintext"

t_begin "claims that contradict the Pod object are refused"
out=$(meshctl_at 2 enroll default/pod-1-2 --netns "/run/netns/${POD_NS[2,2]}" 2>&1 || true)
t_expect_contains "$out" "scheduled on node m${TOPO_RUN}n1" "a pod of another node"
out=$(meshctl_at 1 unenroll default/pod-1-2 && meshctl_at 1 enroll default/pod-1-2 \
    --netns "/run/netns/${POD_NS[1,2]}" --sa admin 2>&1 || true)
t_expect_contains "$out" 'service account "admin" was given, the Pod object says "sa-1-2"' "a wrong service account"
out=$(meshctl_at 1 enroll default/pod-1-2 --netns "/run/netns/${POD_NS[1,2]}" --ip 10.244.1.99 2>&1 || true)
t_expect_contains "$out" "10.244.1.99 was given" "a wrong address"
t_expect_eq "$(meshctl_at 1 -o json pods | jq '[.[] | select(.name == "pod-1-2")] | length')" 0 "not enrolled"
meshctl_at 1 enroll default/pod-1-2 --netns "/run/netns/${POD_NS[1,2]}" --sa sa-1-2 \
    --ip "${POD_IP4[1,2]}" >/dev/null
t_expect_eq "$(meshctl_at 1 -o json pods | jq -r '.[] | select(.name == "pod-1-2") | .binding')" cluster \
    "claims that agree are accepted"

t_begin "a pod without a Pod object is pending and fails closed"
cni_enroll 2 default/late "2,2" >/dev/null
late=$(meshctl_at 2 -o json pods | jq -c '.[] | select(.name == "late")')
t_expect_eq "$(jq -r .binding <<<"$late")" pending "pending"
t_expect_eq "$(jq -r '.identity // "none"' <<<"$late")" none "no certificate, not even for \"default\""
t_expect_eq "$(http_get "2,2" "http://${POD_IP4[1,2]}:8080/")" 000 "its outbound is refused"
t_expect_eq "$(connections_json 2 | jq -r '[.[] | select(.pod == "default/late" and .direction == "outbound")][0].response_flags')" \
    DENY "recorded as denied"
t_expect_eq "$(ip netns exec "${POD_NS[2,1]}" curl -s -o /dev/null -m 5 -w '%{http_code}' \
    "http://${POD_IP4[2,2]}:8080/" || true)" 000 "plaintext to it is refused"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,2]}:8080/")" 000 "mTLS to it is refused"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "meanwhile pod-1-1 -> pod-2-1 works"

t_begin "its Pod object arrives: it gets its identity, without re-enrollment"
for i in 1 2; do
    cat >"$E2E_TMP/late.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: late, namespace: default, labels: {app: late}}
spec: {nodeName: m${TOPO_RUN}n2, serviceAccountName: sa-late}
status: {podIPs: [{ip: ${POD_IP4[2,2]}}, {ip: "${POD_IP6[2,2]}"}]}
YAML
    config_apply "$i" mv "$E2E_TMP/late.yaml" "$E2E_TMP/config-$i/late.yaml"
done
late=$(meshctl_at 2 -o json pods | jq -c '.[] | select(.name == "late")')
t_expect_eq "$(jq -r .binding <<<"$late")" cluster "bound by the cluster"
t_expect_eq "$(jq -r .identity <<<"$late")" "spiffe://cluster.local/ns/default/sa/sa-late" "its certificate"
t_expect_eq "$(http_get "2,2" "http://${POD_IP4[1,2]}:8080/")" 200 "its outbound works"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,2]}:8080/")" 200 "mTLS to it works"
in=$(connections_json 1 | jq -c '[.[] | select(.direction == "inbound" and .pod == "default/pod-1-2")] | last')
t_expect_eq "$(jq -r .peer_identity <<<"$in")" "spiffe://cluster.local/ns/default/sa/sa-late" \
    "pod-1-2 saw its identity"

meshd_check_logs
t_summary
