#!/usr/bin/env bash
# AuthorizationPolicy from the YAML, enforced at the destination across
# two nodes (issue 6). Clients on node 1: frontend/pod-1-1 (sa web) and
# legacy/pod-1-2 (sa old); the server shop/pod-2-1 (app=pay) on node 2.
# Each case rewrites the policy file on node 2 and waits for the reload.
# The clients speak HTTP, so their own agent carries them request by request
# (issue 15): a connection the destination refuses (its CONNECT answered
# 401) is answered 403 "RBAC: access denied" by the client's agent, as
# Envoy answers an RBAC denial; TCP clients are reset instead
# (test_sec_authz_plaintext).
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 2
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null

pod_yaml() { # I J NS APP SA
    cat <<POD
---
apiVersion: v1
kind: Pod
metadata: {name: pod-$1-$2, namespace: $3, labels: {app: $4}}
spec: {nodeName: m${TOPO_RUN}n$1, serviceAccountName: $5}
status:
  podIPs: [{ip: ${POD_IP4[$1,$2]}}, {ip: "${POD_IP6[$1,$2]}"}]
POD
}
for i in 1 2; do
    d="$E2E_TMP/config-$i"
    mkdir -p "$d"
    for ns in frontend legacy shop; do
        printf -- '---\napiVersion: v1\nkind: Namespace\nmetadata: {name: %s, labels: {istio.io/dataplane-mode: ambient}}\n' "$ns"
    done >"$d/namespaces.yaml"
    { pod_yaml 1 1 frontend web web; pod_yaml 1 2 legacy old old; pod_yaml 2 1 shop pay pay; } >"$d/pods.yaml"
done
meshd_start 1 --ca-dir "$E2E_TMP/ca"
meshd_start 2 --ca-dir "$E2E_TMP/ca"
meshctl_at 1 enroll frontend/pod-1-1 --netns "/run/netns/${POD_NS[1,1]}" --sa web --ip "${POD_IP4[1,1]}" --ip "${POD_IP6[1,1]}" >/dev/null
meshctl_at 1 enroll legacy/pod-1-2 --netns "/run/netns/${POD_NS[1,2]}" --sa old --ip "${POD_IP4[1,2]}" --ip "${POD_IP6[1,2]}" >/dev/null
meshctl_at 2 enroll shop/pod-2-1 --netns "/run/netns/${POD_NS[2,1]}" --sa pay --ip "${POD_IP4[2,1]}" --ip "${POD_IP6[2,1]}" >/dev/null
http_server "2,1" 8080 >/dev/null
http_server "2,1" 8081 >/dev/null

policy="$E2E_TMP/config-2/policy.yaml"
# policy_is YAML: installs the policy file on node 2 and waits for it.
policy_is() {
    printf '%s\n' "$1" >"$E2E_TMP/policy.yaml"
    config_apply 2 mv "$E2E_TMP/policy.yaml" "$policy" || {
        meshctl_at 2 proxy-config config >&2
        return 1
    }
}
web() { http_get "1,1" "http://${POD_IP4[2,1]}:${1:-8080}/"; }
old() { http_get "1,2" "http://${POD_IP4[2,1]}:${1:-8080}/"; }
old6() { http_get "1,2" "http://[${POD_IP6[2,1]}]:${1:-8080}/"; }

t_begin "no policy: allowed"
t_expect_eq "$(web)" 200 "frontend/web -> shop/pay"
t_expect_eq "$(old)" 200 "legacy/old -> shop/pay"

t_begin "ALLOW by principal"
policy_is 'apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-web, namespace: shop}
spec:
  selector: {matchLabels: {app: pay}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/frontend/sa/web"]}'
t_expect_eq "$(web)" 200 "the named principal is allowed"
t_expect_eq "$(old)" 403 "any other is denied"
denied=$(connections_json 2 | jq '[.[] | select(.direction == "inbound" and .response_flags == "DENY")] | length')
t_expect_ok "the denial is recorded with flag DENY ($denied)" test "$denied" -ge 1
t_expect_contains "$(cat "${MESHD_LOG[2]}")" "authz: cluster.local/ns/legacy/sa/old -> shop/pod-2-1" "and logged"

t_begin "DENY by namespace"
policy_is 'apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: deny-legacy, namespace: shop}
spec:
  action: DENY
  rules:
  - from:
    - source: {namespaces: ["legacy"]}'
t_expect_eq "$(web)" 200 "frontend allowed"
t_expect_eq "$(old)" 403 "legacy denied"

t_begin "port rules"
policy_is 'apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-8081, namespace: shop}
spec:
  rules:
  - to:
    - operation: {ports: ["8081"]}'
t_expect_eq "$(web 8081)" 200 "port 8081 allowed"
t_expect_eq "$(web 8080)" 403 "port 8080 denied"

t_begin "ipBlocks"
policy_is "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-ip, namespace: shop}
spec:
  action: DENY
  rules:
  - from:
    - source: {ipBlocks: [\"${POD_IP4[1,2]}/32\"]}"
t_expect_eq "$(old)" 403 "the blocked IPv4 source is denied"
t_expect_eq "$(old6)" 200 "the same pod over IPv6 is another source: allowed"
t_expect_eq "$(web)" 200 "other sources allowed"

t_begin "mesh-wide allow-nothing with a namespace exception"
policy_is 'apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: istio-system}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-frontend, namespace: shop}
spec:
  action: ALLOW
  rules:
  - from:
    - source: {namespaces: ["frontend"]}'
t_expect_eq "$(web)" 200 "the exception (frontend) is allowed"
t_expect_eq "$(old)" 403 "everything else is denied"

t_begin "a policy added while connections are open closes the ones it denies"
policy_is '# no policy'
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/tally.log" /usr/bin/python3 tests/e2e/lib/tally.py serve 8082 pay >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 8082 10
flag="$E2E_TMP/held.flag"
hold() { # NAME POD: a held connection from POD to the server
    topo_spawn "${POD_NS[$2]}" "$E2E_TMP/held-$1.log" /usr/bin/python3 tests/e2e/lib/tally.py hold "${POD_IP4[2,1]}" 8082 "$flag" >/dev/null
}
hold web "1,1"   # HBONE, allowed throughout
hold old "1,2"   # HBONE, denied by the new policy
hold plain "2,2" # plaintext from outside the mesh (PERMISSIVE), denied by ipBlocks
for _ in $(seq 1 50); do
    [ "$(cat "$E2E_TMP"/held-*.log 2>/dev/null | grep -c '^pay$')" -eq 3 ] && break
    sleep 0.1
done
t_expect_eq "$(cat "$E2E_TMP"/held-*.log | grep -c '^pay$')" 3 "three connections open"
policy_is "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-late, namespace: shop}
spec:
  action: DENY
  rules:
  - from:
    - source: {namespaces: [legacy]}
  - from:
    - source: {ipBlocks: [\"${POD_IP4[2,2]}\"]}"
touch "$flag"
sleep 1
t_expect_eq "$(grep '^echo:' "$E2E_TMP/held-web.log")" "echo:still-open" "the allowed connection still carries bytes"
t_expect_not_contains "$(cat "$E2E_TMP/held-old.log")" "echo:still-open" "the denied HBONE connection was closed"
t_expect_not_contains "$(cat "$E2E_TMP/held-plain.log")" "echo:still-open" "the denied plaintext connection was closed"
t_expect_contains "$(cat "${MESHD_LOG[2]}")" "2 open connections closed: no longer allowed" "logged"
t_expect_eq "$(connections_json 2 | jq '[.[] | select(.original_dst == "'"${POD_IP4[2,1]}"':8082" and .response_flags == "DENY")] | length')" 2 \
    "both recorded with flag DENY"

meshd_check_logs
t_summary
