#!/usr/bin/env bash
# Two-label external hosts are ServiceEntry hosts, as Istio reads them
# (issue 16): github.com and httpbin.org are full names, never
# github.com.svc.cluster.local.
#  - a connection to github.com's ServiceEntry address takes the
#    VirtualService for github.com (Istio's egress-gateway task: on to the
#    egress gateway's pod), which does not exist at that address;
#  - httpbin.org's STATIC endpoint is reached through its entry's address,
#    in plain TCP (a MESH_EXTERNAL endpoint is outside the mesh, though the
#    entry's namespace is ambient);
#  - meshctl proxy-config routes lists both hosts with what they route to;
#  - meshctl analyze reports no IST0101 for them.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh
source tests/e2e/lib/workloads.sh

GITHUB_VIP=198.51.100.7 HTTPBIN_VIP=198.51.100.8 EGRESS_VIP=10.96.0.20
topo_init
topo_create 1 3
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null

d="$E2E_TMP/config-1"
mkdir -p "$d"
{
    printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n  labels: {istio.io/dataplane-mode: ambient}\n'
    pod_yaml 1 1 '{app: client}' default
    pod_yaml 1 2 '{app: egressgateway}' default
} >"$d/pods.yaml"  # pod 1,3 stands for httpbin.org: no Pod, only the entry's endpoint
cat >"$d/egress.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: egressgateway, namespace: default}
spec:
  clusterIP: $EGRESS_VIP
  selector: {app: egressgateway}
  ports: [{name: tls, port: 443, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: github, namespace: default}
spec:
  hosts: [github.com]
  addresses: [$GITHUB_VIP/32]
  ports: [{number: 443, name: tls, protocol: TLS}]
  location: MESH_EXTERNAL
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: github-through-egress, namespace: default}
spec:
  hosts: [github.com]
  tcp:
  - match: [{port: 443}]
    route:
    - destination: {host: egressgateway.default.svc.cluster.local, port: {number: 443}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin-org, namespace: default}
spec:
  hosts: [httpbin.org]
  addresses: [$HTTPBIN_VIP]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}]
  location: MESH_EXTERNAL
  resolution: STATIC
  endpoints: [{address: ${POD_IP4[1,3]}}]
YAML

t_begin "the configuration as Istio reads it"
out=$("$MESHCTL_BIN" analyze "$d" 2>&1 || true)
t_expect_eq "$(grep -c 'IST0101' <<<"$out" || true)" 0 "no IST0101 for github.com or httpbin.org"
t_expect_eq "$(grep -c '^Error' <<<"$out" || true)" 0 "no error at all ($out)"

meshd_start 1 --ca-dir "$E2E_TMP/ca"
meshctl_at 1 enroll default/pod-1-1 --netns "/run/netns/${POD_NS[1,1]}" --sa default --ip "${POD_IP4[1,1]}" >/dev/null
meshctl_at 1 enroll default/pod-1-2 --netns "/run/netns/${POD_NS[1,2]}" --sa default --ip "${POD_IP4[1,2]}" >/dev/null
tally() { in_pod "1,1" /usr/bin/python3 tests/e2e/lib/tally.py "$@"; }
topo_spawn "${POD_NS[1,2]}" "$E2E_TMP/egress.log" /usr/bin/python3 tests/e2e/lib/tally.py serve 8080 egress >/dev/null
topo_spawn "${POD_NS[1,3]}" "$E2E_TMP/httpbin.log" /usr/bin/python3 tests/e2e/lib/tally.py serve 8080 httpbin >/dev/null
topo_wait_tcp "${POD_NS[1,2]}" "${POD_IP4[1,2]}" 8080 10
topo_wait_tcp "${POD_NS[1,3]}" "${POD_IP4[1,3]}" 8080 10

t_begin "github.com: its VirtualService sends it through the egress gateway"
counts=$(tally count "$GITHUB_VIP" 443 50)
echo "    counts: $counts"
t_expect_eq "$(jq -r '.egress // 0' <<<"$counts")" 50 "all 50 connections reached the egress gateway's pod"
t_expect_eq "$(jq -r .failed <<<"$counts")" 0 "none failed"

t_begin "httpbin.org: its STATIC endpoint through the entry's address"
counts=$(tally count "$HTTPBIN_VIP" 80 20)
echo "    counts: $counts"
t_expect_eq "$(jq -r '.httpbin // 0' <<<"$counts")" 20 "all 20 reached the endpoint (targetPort 8080)"

t_begin "meshctl proxy-config routes lists the two-label hosts"
routes=$(meshctl_at 1 -o json proxy-config routes pod-1-1.default)
gh=$(jq -c '[.routes[] | select(.service == "github.com")][0]' <<<"$routes")
t_expect_eq "$(jq -r .virtual_service <<<"$gh")" "default/github-through-egress" "github.com with its VirtualService"
t_expect_eq "$(jq -r '.destinations[0].service // .destinations[0].host' <<<"$gh")" \
    "egressgateway.default.svc.cluster.local" "routed to the egress gateway"
hb=$(jq -c '[.routes[] | select(.service == "httpbin.org")][0]' <<<"$routes")
t_expect_eq "$(jq -r .vip <<<"$hb")" "$HTTPBIN_VIP:80" "httpbin.org on its address"

meshd_check_logs
t_summary
