#!/usr/bin/env bash
# PeerAuthentication from the YAML on a running meshd (issue 4): plaintext
# from a pod outside the mesh is accepted under PERMISSIVE (the default),
# refused under the seed's STRICT policy as written, accepted again when the
# file says PERMISSIVE, all without a restart; mesh clients (HBONE) are
# accepted under STRICT; portLevelMtls opens one port of one workload.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 1 3
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
cfg="$E2E_TMP/config-1"
mesh_config "$cfg"                          # namespace default (ambient) and the pods
sed -i 's/app: app-1-1/app: server/' "$cfg/pod-1-1.yaml"
meshd_start 1 --ca-dir "$E2E_TMP/ca"
for j in 1 3; do # pod-1-2 stays outside the mesh: a plaintext client
    meshctl_at 1 enroll "default/pod-1-$j" --netns "/run/netns/${POD_NS[1,$j]}" --sa "sa-1-$j" \
        --ip "${POD_IP4[1,$j]}" --ip "${POD_IP6[1,$j]}" >/dev/null
done
http_server "1,1" 8080 >/dev/null
http_server "1,1" 8081 >/dev/null
server_log="$E2E_TMP/http-1-1-8080.log"

apply() { config_apply 1 "$@"; }
plain() { http_get "1,2" "http://${POD_IP4[1,1]}:$1/"; }
# tls_check PORT: "MODE POLICY SCOPE" for pod-1-1's port (* for the default).
tls_check() {
    meshctl_at 1 -o json authn tls-check pod-1-1.default |
        jq -r --arg p "$1" '.ports[] | select((.port | tostring) == $p) | "\(.mode) \(.policy) \(.scope)"'
}

t_begin "no PeerAuthentication: PERMISSIVE"
t_expect_eq "$(plain 8080)" 200 "plaintext from outside the mesh accepted"
t_expect_eq "$(tls_check '*')" "PERMISSIVE null default" "meshctl authn tls-check: PERMISSIVE by default"

t_begin "the seed's STRICT policy, as written"
apply cp deploy/examples/peerauthentication-strict.yaml "$cfg/"
requests=$(grep -c '"GET / ' "$server_log" || true)
t_expect_eq "$(plain 8080)" 000 "plaintext refused"
t_expect_eq "$(grep -c '"GET / ' "$server_log" || true)" "$requests" "the app saw no request"
t_expect_eq "$(http_get "1,3" "http://${POD_IP4[1,1]}:8080/")" 200 "a mesh client (HBONE) is accepted"
t_expect_eq "$(http_get "1,3" "http://[${POD_IP6[1,1]}]:8080/")" 200 "and over IPv6"
denied=$(connections_json 1 | jq '[.[] | select(.direction == "inbound" and .response_flags == "DENY")] | length')
t_expect_eq "$denied" 1 "the refusal is recorded with response flag DENY"
t_expect_eq "$(tls_check '*')" "STRICT default/default namespace" "meshctl authn tls-check: STRICT from default/default"
out=$(meshctl_at 1 authn tls-check pod-1-1.default)
t_expect_contains "$out" "spiffe://cluster.local/ns/default/sa/sa-1-1" "and the workload's identity"

t_begin "edited to PERMISSIVE"
apply sed -i 's/mode: STRICT/mode: PERMISSIVE/' "$cfg/peerauthentication-strict.yaml"
t_expect_eq "$(plain 8080)" 200 "plaintext accepted again, no restart"

t_begin "workload policy with portLevelMtls"
cat >"$E2E_TMP/server-pa.yaml" <<'YAML'
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata:
  name: server
  namespace: default
spec:
  selector:
    matchLabels:
      app: server
  mtls:
    mode: STRICT
  portLevelMtls:
    8081:
      mode: PERMISSIVE
YAML
# Written before apply reads the version, the reload could already be
# over (under emulation): apply moves the file in itself.
apply mv "$E2E_TMP/server-pa.yaml" "$cfg/server-pa.yaml"
t_expect_eq "$(plain 8080)" 000 "port 8080: STRICT from the workload policy"
t_expect_eq "$(plain 8081)" 200 "port 8081: PERMISSIVE from portLevelMtls"
t_expect_eq "$(tls_check 8081)" "PERMISSIVE default/server workload" "meshctl authn tls-check shows the port's policy"
t_expect_eq "$(tls_check '*')" "STRICT default/server workload" "and the workload's own mode for the others"
t_expect_eq "$(http_get "1,2" "http://${POD_IP4[1,3]}:8080/")" 000 "pod-1-3 (no workload policy, no server) unaffected: refused by no listener"

meshd_check_logs
t_summary
