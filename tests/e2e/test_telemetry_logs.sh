#!/usr/bin/env bash
# Access logs turned on and off by Telemetry resources on a running meshd
# (issue 7), no --access-log flag: nothing without a Telemetry; the seed's
# mesh-wide resource as written logs both sides of a request (JSON lines
# that parse); a namespace `disabled: true` silences them; a
# workload Telemetry turns the server side back on.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 1 2
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
cfg="$E2E_TMP/config-1"
mesh_config "$cfg"
http_server "1,2" 8080 >/dev/null
meshd_start 1 --ca-dir "$E2E_TMP/ca" --log-format json
for j in 1 2; do
    meshctl_at 1 enroll "default/pod-1-$j" --netns "/run/netns/${POD_NS[1,$j]}" --sa "sa-1-$j" \
        --ip "${POD_IP4[1,$j]}" --ip "${POD_IP6[1,$j]}" >/dev/null
done

apply() { config_apply 1 "$@"; }
lines() { grep -c '^{' "${MESHD_LOG[1]}" || true; }
# connect: one request; prints how many access-log lines it added.
connect() {
    local before
    before=$(lines)
    http_get "1,1" "http://${POD_IP4[1,2]}:8080/" >/dev/null
    sleep 0.5
    echo $(($(lines) - before))
}

t_begin "no Telemetry: no access log"
t_expect_eq "$(connect)" 0 "a connection, no line"

t_begin "the seed's mesh-wide Telemetry, as written"
apply cp deploy/examples/telemetry-access-logs.yaml "$cfg/"
# Both sides carry HTTP request by request and log the request, Envoy's
# way: the client's agent (issue 15) and the server's, whose port is
# unnamed and which the client's agent told it carries HTTP
# (x-meshd-protocol), as Istio sniffs an unnamed port on inbound. The
# server's line names Envoy's inbound cluster.
t_expect_eq "$(connect)" 2 "one line each side (the request at the client and at the server)"
last=$(grep '^{' "${MESHD_LOG[1]}" | tail -2)
t_expect_eq "$(jq -s length <<<"$last")" 2 "both lines parse as JSON"
t_expect_eq "$(jq -s -r 'map((.upstream_cluster // "-") + " " + .method + " " + (.response_code | tostring)) | sort | join(",")' <<<"$last")" \
    "- GET 200,inbound|8080|| GET 200" "both sides: the client's request, the server's (inbound|8080||)"
t_expect_eq "$(jq -s -r 'map(.request_id) | unique | length' <<<"$last")" 1 "one request id: the server got the client's"

t_begin "namespace disabled: silenced"
apply sh -c "printf 'apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: quiet, namespace: default}\nspec:\n  accessLogging:\n  - disabled: true\n' >'$cfg/quiet.yaml'"
t_expect_eq "$(connect)" 0 "no lines"

t_begin "workload Telemetry for the server, SERVER side only"
apply sh -c "printf 'apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: server-logs, namespace: default}\nspec:\n  selector: {matchLabels: {app: app-1-2}}\n  accessLogging:\n  - match: {mode: SERVER}\n    providers: [{name: envoy}]\n' >'$cfg/server.yaml'"
t_expect_eq "$(connect)" 1 "one line"
t_expect_eq "$(grep '^{' "${MESHD_LOG[1]}" | tail -1 | jq -r .upstream_cluster)" "inbound|8080||" "the server's"

meshd_check_logs
t_summary
