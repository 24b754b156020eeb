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
#    object deleted meanwhile;
#  - the list is quick and one configuration reload (a 2-core CI machine
#    under load: under 3 s for 1234 objects), and SIGTERM during a big list
#    is handled at once (the list is mirrored in slices; the agent exits
#    within its drain plus 1 s).
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

t_begin "meshd lists in pages"
# The mirror on tmpfs, as the DaemonSet's /run/meshd is: on this disk
# (ext4, much churn) a file create alone costs milliseconds.
mkdir -p "$E2E_TMP/config-1"
mount -t tmpfs -o size=64m,mode=0700 meshd-e2e-mirror "$E2E_TMP/config-1"
topo_on_cleanup "! mountpoint -q '$E2E_TMP/config-1' || umount '$E2E_TMP/config-1'"
meshd_start 1 --kubeconfig "$api/kubeconfig"
for _ in $(seq 1 200); do
    grep -q "every kind listed" "${MESHD_LOG[1]}" && break
    sleep 0.1
done
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "every kind listed" "every kind listed"
mirror="$E2E_TMP/config-1/secrets"
count() { find "$mirror" -name '*.json' | wc -l; }
t_expect_eq "$(count)" "$N" "all $N Secrets in the mirror"
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "secrets: listed $N in 3 pages" "in 3 pages"
# log_ms PATTERN: the time of the first log line matching PATTERN, in ms.
log_ms() { date -d "$(grep -- "$1" "${MESHD_LOG[1]}" | tail -1 | cut -d' ' -f1)" +%s%3N; }
list_ms=$(($(log_ms "every kind listed") - $(log_ms "kube: watching")))
t_expect_eq "$((list_ms < 3000))" 1 "listed in under 3 s (${list_ms} ms)"
for _ in $(seq 1 100); do
    grep -q "applied ($((N + 1)) files" "${MESHD_LOG[1]}" && break
    sleep 0.1
done
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "applied ($((N + 1)) files" "the configuration loaded with every Secret"
t_expect_eq "$(grep -c 'changed; reloading' "${MESHD_LOG[1]}")" 1 "one reload for the whole list"
reqs() { control stats GET | jq -r '[.requests, .user_agents] | transpose[] | select(.[1] == "meshd") | .[0]' | grep '/secrets?' | grep -v watch=; }
t_expect_eq "$(reqs | grep -c 'limit=500')" 3 "three list requests of limit=500"
t_expect_eq "$(reqs | grep -c 'continue=')" 2 "two of them with a continue token"
tok=$(reqs | grep -o 'continue=[^&]*' | head -1)
t_expect_ok "the token percent-encoded ($tok)" sh -c "printf '%s' '$tok' | grep -Eq '^continue=[A-Za-z0-9%._~-]+\$'"

t_begin "a continue token that expires between pages: the list again from its start"
# Deleted while meshd cannot watch, then compacted: no watch event will
# tell; only the relist's sweep can.
control down >/dev/null
control "delete?kind=Secret&namespace=default&name=s-0007" >/dev/null
control compact >/dev/null
control expire-continue >/dev/null
t_expect_ok "s-0007 still mirrored while the API is down" test -e "$mirror/default_s-0007.json"
control up >/dev/null
for _ in $(seq 1 300); do
    grep -q "secrets: listed $((N - 1)) in 3 pages" "${MESHD_LOG[1]}" && break
    sleep 0.1
done
t_expect_eq "$(count)" $((N - 1)) "the relist's sweep took the deleted Secret out"
t_expect_ok "s-0007 is gone" test ! -e "$mirror/default_s-0007.json"
t_expect_ok "and s-1233, on the last page, is there" test -e "$mirror/default_s-1233.json"
t_expect_eq "$(control stats GET | jq -r .continue_expired)" 1 "the stand-in refused a continue token once (410)"
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "secrets: the list's continue token expired (410): listing again from the first page" \
    "meshd started the list again"
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "secrets: listed $((N - 1)) in 3 pages" "and listed it whole, in 3 pages"

t_begin "SIGTERM during a big list: handled at once, the agent gone within its drain plus 1 s"
topo_kill "${MESHD_PID[1]}" TERM
# The slowest list: on the disk, every object written again (a page of 500
# takes seconds of file creation here).
umount "$E2E_TMP/config-1"
rm -rf "$mirror"
meshd_start 1 --kubeconfig "$api/kubeconfig"
for _ in $(seq 1 400); do
    [ "$(count)" -ge 100 ] && break
    sleep 0.02
done
at=$(count)
sent=$(date +%s%3N)
topo_kill "${MESHD_PID[1]}" TERM
gone=$(($(date +%s%3N) - sent))
t_expect_eq "$((at >= 100 && at < N - 1))" 1 "signalled with the list under way ($at of $((N - 1)) mirrored)"
handled=$(($(log_ms "Terminated received") - sent))
t_expect_eq "$((handled < 1000))" 1 "SIGTERM handled in under 1 s (${handled} ms)"
t_expect_eq "$((gone < (MESHD_DRAIN_SECONDS + 1) * 1000))" 1 "exited within the drain plus 1 s (${gone} ms)"
t_expect_eq "$(($(count) < N - 1))" 1 "the list was left unfinished ($(count) mirrored)"

meshd_check_logs
t_summary
