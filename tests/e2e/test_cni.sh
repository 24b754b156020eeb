#!/usr/bin/env bash
# Pods made as a cluster makes them: Debian's CNI plugins (bridge +
# host-local) then meshd-cni chained after them, run the way a container
# runtime runs a conflist (tests/e2e/lib/cnirt.py: environment, config on
# stdin with prevResult, JSON results), into fresh pod netns:
#  - `meshd-cni install` puts itself last in the conflist and its binary in
#    the bin dir; `uninstall` takes both away;
#  - ADD of pods of an ambient namespace enrolls them with their Pod
#    object's identity and they carry mTLS (HBONE) traffic; a pod of a
#    namespace outside the mesh is not enrolled; ADD again and CHECK are
#    no-ops; STATUS answers;
#  - relabelling the namespace releases and re-enrolls the running pods;
#  - DEL releases (and succeeds again);
#  - with meshd down, ADD fails (code 11: the runtime retries; the pod is
#    never started uncaptured), STATUS fails (50), DEL still succeeds.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 1 1
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
node=m${TOPO_RUN}n1
cni="$E2E_TMP/cni"
mkdir -p "$cni/net.d" "$cni/bin" "$cni/ipam" "$E2E_TMP/no-netns"
export CNI_PATH="$cni/bin:/usr/lib/cni" CNIRT_CACHE="$cni/cache"
cat >"$cni/net.d/10-pods.conflist" <<CONF
{
  "cniVersion": "1.0.0",
  "name": "pods-$TOPO_RUN",
  "plugins": [
    {"type": "bridge", "bridge": "mcb$TOPO_RUN", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "dataDir": "$cni/ipam",
              "ranges": [[{"subnet": "10.245.1.0/24", "gateway": "10.245.1.1"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}}
  ]
}
CONF

t_begin "install"
out=$("$MESHD_BUILD/meshd-cni" install --conf-dir "$cni/net.d" --bin-dir "$cni/bin" \
    --socket "$E2E_TMP/state-1/meshd.sock")
t_expect_contains "$out" "installed in $cni/net.d/10-pods.conflist" "meshd-cni install"
t_expect_eq "$(jq -c '[.plugins[].type]' "$cni/net.d/10-pods.conflist")" '["bridge","meshd-cni"]' \
    "chained last, after the interface plugin"
t_expect_ok "its binary in the bin dir" test -x "$cni/bin/meshd-cni"
"$MESHD_BUILD/meshd-cni" install --conf-dir "$cni/net.d" --bin-dir "$cni/bin" \
    --socket "$E2E_TMP/state-1/meshd.sock" >/dev/null
t_expect_eq "$(jq -c '[.plugins[].type]' "$cni/net.d/10-pods.conflist")" '["bridge","meshd-cni"]' \
    "installing again changes nothing"

# The cluster's objects (as the API server would have them once the pods
# are scheduled; host-local hands out addresses in order from .2).
d="$E2E_TMP/config-1"
mkdir -p "$d"
ns_yaml() { printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels: {%s}\n' "$1" "$2"; }
pod_yaml() { # NS NAME SA IP
    printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: %s, labels: {app: %s}}\n' "$2" "$1" "$2"
    printf 'spec: {nodeName: %s, serviceAccountName: %s}\n' "$node" "$3"
    printf 'status: {phase: Running, podIP: %s, podIPs: [{ip: %s}]}\n' "$4" "$4"
}
ns_yaml shop "istio.io/dataplane-mode: ambient" >"$d/ns-shop.yaml"
ns_yaml plain "team: x" >"$d/ns-plain.yaml"
{
    pod_yaml shop web-a web-a 10.245.1.2
    echo ---
    pod_yaml shop web-b web-b 10.245.1.3
    echo ---
    pod_yaml plain p plain 10.245.1.4
    echo ---
    pod_yaml shop web-c web-c 10.245.1.5
} >"$d/pods.yaml"
meshd_start 1 --ca-dir "$E2E_TMP/ca" --enroll-by-label --netns-dir "$E2E_TMP/no-netns"

# cnirt CMD NETNS-SUFFIX NS NAME: the runtime's call, from the node.
declare -A UID_OF=([web-a]=1111-aaaa [web-b]=2222-bbbb [p]=3333-cccc [web-c]=4444-dddd)
cnirt() {
    ip netns exec "${NODE_NS[1]}" /usr/bin/python3 tests/e2e/lib/cnirt.py "$1" \
        "$cni/net.d/10-pods.conflist" "/run/netns/m${TOPO_RUN}c$2" "ctr-$2" "$3" "$4" "${UID_OF[$4]}"
}
# meshd-cni alone, as the runtime runs it (1.1 config, prevResult from the
# runtime's cache of the chain's result): CMD SUFFIX NS NAME.
cni_plugin() {
    local prev
    prev=$(cat "$cni/cache/pods-$TOPO_RUN-ctr-$2.json" 2>/dev/null || echo '{"interfaces": []}')
    printf '{"cniVersion": "1.1.0", "name": "pods-%s", "type": "meshd-cni", "socket": "%s", "prevResult": %s}' \
        "$TOPO_RUN" "$E2E_TMP/state-1/meshd.sock" "$prev" |
        CNI_COMMAND=$1 CNI_CONTAINERID="ctr-$2" CNI_NETNS="/run/netns/m${TOPO_RUN}c$2" CNI_IFNAME=eth0 \
            CNI_ARGS="K8S_POD_NAMESPACE=$3;K8S_POD_NAME=$4;K8S_POD_UID=${UID_OF[$4]}" "$cni/bin/meshd-cni"
}
for k in a b p c; do topo_netns_add "m${TOPO_RUN}c$k"; done
pods_bound() { meshctl_at 1 -o json pods | jq -r '[.[] | .namespace + "/" + .name + ":" + .binding] | sort | join(" ")'; }
wait_pods() {
    for _ in $(seq 1 50); do
        [ "$(pods_bound)" = "$1" ] && return 0
        sleep 0.1
    done
}

t_begin "ADD through bridge + host-local + meshd-cni"
res=$(cnirt ADD a shop web-a)
t_expect_eq "$(jq -r '.ips[0].address' <<<"$res")" 10.245.1.2/24 "web-a: host-local's address, passed through meshd-cni"
t_expect_eq "$(jq -r .cniVersion <<<"$res")" 1.0.0 "in the conflist's version"
t_expect_contains "$(jq -c '[.interfaces[].name]' <<<"$res")" '"eth0"' "with the bridge's interfaces"
res=$(cnirt ADD b shop web-b)
t_expect_eq "$(jq -r '.ips[0].address' <<<"$res")" 10.245.1.3/24 "web-b"
res=$(cnirt ADD p plain p)
t_expect_eq "$(jq -r '.ips[0].address' <<<"$res")" 10.245.1.4/24 "a pod outside the mesh starts too"
t_expect_eq "$(pods_bound)" "shop/web-a:cluster shop/web-b:cluster" \
    "the ambient namespace's pods are enrolled, bound to their Pod objects; plain/p is not"
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "shop/web-a enrolled (CNI)" "enrolled at ADD"
t_expect_eq "$(meshctl_at 1 -o json pods | jq -r '.[] | select(.name == "web-a") | .netns')" \
    "/run/netns/m${TOPO_RUN}ca" "with the netns the runtime gave"

t_begin "mTLS between the CNI pods"
topo_spawn "m${TOPO_RUN}cb" "$E2E_TMP/http-b.log" /usr/bin/python3 -m http.server --bind 0.0.0.0 8080 >/dev/null
topo_wait_tcp "m${TOPO_RUN}cb" 10.245.1.3 8080 10
t_expect_eq "$(ip netns exec "m${TOPO_RUN}ca" curl -s -o /dev/null -m 5 -w '%{http_code}' http://10.245.1.3:8080/)" 200 \
    "web-a -> web-b"
out=$(meshctl_at 1 -o json connections | jq -c '[.[] | select(.direction == "outbound")][0]')
t_expect_eq "$(jq -r .hbone <<<"$out")" "10.245.1.3:15008" "over HBONE"
t_expect_eq "$(jq -r .peer_identity <<<"$out")" "spiffe://cluster.local/ns/shop/sa/web-b" "to web-b's Pod identity"
t_expect_eq "$(ip netns exec "m${TOPO_RUN}cp" curl -s -o /dev/null -m 5 -w '%{http_code}' http://10.245.1.3:8080/ || true)" 200 \
    "plaintext from outside the mesh (PERMISSIVE by default)"

t_begin "idempotent, CHECK, STATUS"
res=$(cni_plugin ADD a shop web-a)
t_expect_eq "$(jq -r '.ips[0].address' <<<"$res")" 10.245.1.2/24 "meshd-cni's ADD again for the same sandbox: the same result"
t_expect_eq "$(pods_bound)" "shop/web-a:cluster shop/web-b:cluster" "nothing changed"
t_expect_ok "CHECK" cnirt CHECK a shop web-a
t_expect_ok "STATUS (1.1)" cni_plugin STATUS a shop web-a

t_begin "namespace relabel"
ns_up() { ns_yaml shop "$1" >"$d/.ns.tmp" && mv "$d/.ns.tmp" "$d/ns-shop.yaml"; }
config_apply 1 ns_up "team: x"
wait_pods ""
t_expect_eq "$(pods_bound)" "" "unlabelled: both released, still running"
t_expect_eq "$(ip netns exec "m${TOPO_RUN}ca" curl -s -o /dev/null -m 5 -w '%{http_code}' http://10.245.1.3:8080/)" 200 \
    "they talk directly"
config_apply 1 ns_up "istio-injection: enabled"
wait_pods "shop/web-a:cluster shop/web-b:cluster"
t_expect_eq "$(pods_bound)" "shop/web-a:cluster shop/web-b:cluster" "istio-injection=enabled: enrolled again"

t_begin "DEL"
t_expect_ok "DEL web-b" cnirt DEL b shop web-b
t_expect_eq "$(pods_bound)" "shop/web-a:cluster" "web-b released"
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "shop/web-b released (CNI DEL)" "by the DEL"
t_expect_ok "DEL again succeeds" cnirt DEL b shop web-b

t_begin "meshd down"
meshd_stop 1
out=$(cnirt ADD c shop web-c || true)
t_expect_eq "$(jq -r .code <<<"$out")" 11 "ADD fails: try again later ($(jq -r .details <<<"$out"))"
t_expect_ok "and the runtime sees the failure" bash -c "! ip netns exec '${NODE_NS[1]}' /usr/bin/python3 tests/e2e/lib/cnirt.py ADD '$cni/net.d/10-pods.conflist' /run/netns/m${TOPO_RUN}cc ctr-c2 shop web-c 4444 >/dev/null"
out=$(cni_plugin STATUS c shop web-c || true)
t_expect_eq "$(jq -r .code <<<"$out")" 50 "STATUS: not available"
t_expect_ok "DEL succeeds with meshd down" cnirt DEL c shop web-c
t_expect_ok "DEL of a pod never added succeeds" cnirt DEL p plain p

t_begin "uninstall"
out=$("$MESHD_BUILD/meshd-cni" uninstall --conf-dir "$cni/net.d" --bin-dir "$cni/bin")
t_expect_eq "$(jq -c '[.plugins[].type]' "$cni/net.d/10-pods.conflist")" '["bridge"]' "the conflist as it was"
t_expect_ok "the binary gone" test ! -e "$cni/bin/meshd-cni"

meshd_check_logs
t_summary
