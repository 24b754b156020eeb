#!/usr/bin/env bash
# meshd --kube lists in pages (limit=500 + continue, as client-go's pager),
# against the stand-in API server (tests/e2e/lib/kubeapi.py) holding 1234
# Secrets:
#  - the stand-in pages as the real server does: kubectl (--chunk-size) and
#    the official Python client (limit, _continue, remainingItemCount) read
#    every object through it;
#  - meshd mirrors all 1234, in three pages at one resourceVersion, the
#    continue token percent-encoded;
#  - a relist whose continue token expires between two pages (410) starts
#    again from the first page, and its sweep still removes exactly the
#    object deleted meanwhile.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

N=1234
topo_init
topo_create 1 1
api="$E2E_TMP/api"
mkdir -p "$api"
topo_spawn "${NODE_NS[1]}" "$api/kubeapi.log" /usr/bin/python3 tests/e2e/lib/kubeapi.py \
    --port-file "$api/ports" --bookmark-seconds 1 >/dev/null
for _ in $(seq 1 100); do [ -s "$api/ports" ] && break; sleep 0.1; done
read -r port ctl <"$api/ports"
cat >"$api/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: s, cluster: {server: "http://127.0.0.1:$port"}}]
users: [{name: u, user: {}}]
contexts: [{name: s, context: {cluster: s, user: u, namespace: default}}]
current-context: s
KC
kc() { ip netns exec "${NODE_NS[1]}" kubectl --kubeconfig "$api/kubeconfig" --request-timeout=20s "$@"; }
control() { ip netns exec "${NODE_NS[1]}" curl -s -m 20 -X "${2:-POST}" "http://127.0.0.1:$ctl/$1" "${@:3}"; }
/usr/bin/python3 - "$N" >"$api/seed.json" <<'PY'
import json, sys
objs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}]
objs += [{"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
          "metadata": {"name": "s-%04d" % i, "namespace": "default"}, "data": {"k": "dg=="}}
         for i in range(int(sys.argv[1]))]
print(json.dumps(objs))
PY
t_expect_eq "$(control seed POST --data-binary @"$api/seed.json" | jq -r .seeded)" $((N + 1)) "seeded $N Secrets"

t_begin "the stand-in pages as the API server does"
t_expect_eq "$(kc get secrets --chunk-size=500 -o name | wc -l)" "$N" "kubectl get --chunk-size=500 reads all $N"
out=$(ip netns exec "${NODE_NS[1]}" timeout 30 /usr/bin/python3 - "$api/kubeconfig" <<'PY'
import sys
from kubernetes import client, config
config.load_kube_config(sys.argv[1])
v1 = client.CoreV1Api()
first = v1.list_namespaced_secret("default", limit=500)
pages, names, cont = 1, [s.metadata.name for s in first.items], first.metadata._continue
print("first", len(first.items), first.metadata.remaining_item_count)
while cont:
    page = v1.list_namespaced_secret("default", limit=500, _continue=cont)
    assert page.metadata.resource_version == first.metadata.resource_version
    names += [s.metadata.name for s in page.items]
    cont, pages = page.metadata._continue, pages + 1
print("pages", pages, "objects", len(names), "distinct", len(set(names)))
PY
)
t_expect_contains "$out" "first 500 734" "python3-kubernetes: a first page of 500, 734 remaining"
t_expect_contains "$out" "pages 3 objects $N distinct $N" "then every object once, in 3 pages at one resourceVersion"


MESHD_BIN=/tmp/n20/wrap.sh
t0=$(date +%s.%N)
meshd_start 1 --kubeconfig "$api/kubeconfig"
for _ in $(seq 1 200); do grep -q "version .* applied (1235" "${MESHD_LOG[1]}" && break; sleep 0.1; done
echo "took $(echo "$(date +%s.%N) - $t0" | bc)"
grep -v " debug " "${MESHD_LOG[1]}" | tail -5
kill -TERM "$(pgrep -P "$(pgrep -f 'perf record -F 999' | head -1)" | head -1)" 2>/dev/null || true
sleep 4
t_summary
