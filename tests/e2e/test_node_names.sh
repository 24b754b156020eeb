#!/usr/bin/env bash
# Kubernetes node names (issue 20): meshd runs under a dotted node name of
# more than 100 bytes, as FQDN-named clusters (EKS: ip-10-0-0-1.ec2.internal)
# give the DaemonSet in spec.nodeName. The name is reported as given; the
# pin directory takes its bounded instance name (the name's start and a
# hash, agent/core/node_name.h); an enrolled pod's traffic is carried and
# `meshd uninstall` leaves nothing. Names that are not DNS-1123 subdomains
# are refused before anything is touched.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 1
# 113 bytes, labels of 1 to 40, unique per run
MESHD_NODE_NAME[1]="ip-10-0-${TOPO_RUN}-1.node-pool-with-a-rather-long-name-0123456.eu-west-1.compute.internal.example.cluster.local"
long=${MESHD_NODE_NAME[1]}
meshd_start 1
meshd_start 2
http_server "2,1" 8080 >/dev/null

t_begin "a long dotted node name is accepted and reported as given"
t_expect_eq "$(( ${#long} > 100 ))" 1 "the name has ${#long} bytes"
st=$(meshctl_at 1 status)
t_expect_eq "$(jq -r .node <<<"$st")" "$long" "status names the node in full"
pins=$(meshd_pins 1)
t_expect_eq "$(jq -r .pin_dir <<<"$st")" "$pins" "pins under the bounded instance name"
t_expect_eq "$(basename "$pins" | wc -c)" 64 "the instance name has 63 bytes"
t_expect_eq "$(basename "$pins" | cut -c1-46)" "$(tr . _ <<<"${long:0:46}")" "and starts as the name does ('.' as '_': bpffs refuses dots)"
metrics=$(ip netns exec "${NODE_NS[1]}" curl -s -m 5 "http://${NODE_IP4[1]}:15020/metrics")
t_expect_contains "$metrics" "node=\"$long\"" "metrics label the node in full"

t_begin "an enrolled pod's traffic is carried"
enroll 1 "1,1"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "curl through meshd"
t_expect_eq "$(bpf_stat 1 connect_captured)" 1 "BPF counted one capture"
t_expect_ok "links pinned" test -e "$pins/link_connect4"

t_begin "meshd uninstall under the long name leaves nothing"
t_expect_ok "SIGTERM, then uninstall" meshd_stop 1
t_expect_ok "no pin directory" test ! -e "$pins"
t_expect_ok "no pods.json" test ! -e "$E2E_TMP/state-1/pods.json"

t_begin "names that are not DNS-1123 subdomains are refused"
for bad in "Upper.Case" "a..b" "../../etc" "a/b" 'a;id' '$(id)' "-a.b" "$(printf 'a%.0s' $(seq 1 64)).b" \
    "$(printf 'a.%.0s' $(seq 1 127))a"; do
    rc=0
    out=$("$MESHD_BIN" --config "$E2E_TMP/config-1" --node "$bad" --state-dir "$E2E_TMP/bad" 2>&1) || rc=$?
    t_expect_eq "$rc" 2 "refused: ${bad:0:40}"
    t_expect_contains "$out" "not a valid node name" "and says why"
done
t_expect_ok "nothing was created for them" test ! -e "$E2E_TMP/bad"

meshd_check_logs
t_summary
