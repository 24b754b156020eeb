#!/usr/bin/env bash
# Access logs turned on and off by Telemetry resources on a running meshd
# (issue 7), no --access-log flag: nothing without a Telemetry; the seed's
# mesh-wide resource as written logs both sides of a connection (JSON
# lines that parse); a namespace `disabled: true` silences them; a
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
# The client's side carries HTTP request by request (issue 15) and logs
# the request, Envoy's way; the server's port is unnamed and served as
# bytes, so its side logs the connection.
t_expect_eq "$(connect)" 2 "one line each side (the request at the client, the connection at the server)"
last=$(grep '^{' "${MESHD_LOG[1]}" | tail -2)
t_expect_eq "$(jq -s length <<<"$last")" 2 "both lines parse as JSON"
t_expect_eq "$(jq -s -r 'map(.direction // ("request " + .method + " " + (.response_code | tostring))) | sort | join(",")' <<<"$last")" \
    "inbound,request GET 200" "both sides: the client's request, the server's connection"
t_expect_eq "$(jq -s -r '.[] | select(.direction == "inbound") | ."peer.identity" // empty' <<<"$last" | head -1 | grep -c spiffe || true)" 1 \
    "the inbound line carries the peer identity"

t_begin "namespace disabled: silenced"
apply sh -c "printf 'apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: quiet, namespace: default}\nspec:\n  accessLogging:\n  - disabled: true\n' >'$cfg/quiet.yaml'"
t_expect_eq "$(connect)" 0 "no lines"

t_begin "workload Telemetry for the server, SERVER side only"
apply sh -c "printf 'apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: server-logs, namespace: default}\nspec:\n  selector: {matchLabels: {app: app-1-2}}\n  accessLogging:\n  - match: {mode: SERVER}\n    providers: [{name: envoy}]\n' >'$cfg/server.yaml'"
t_expect_eq "$(connect)" 1 "one line"
t_expect_eq "$(grep '^{' "${MESHD_LOG[1]}" | tail -1 | jq -r .direction)" inbound "the server's"

meshd_check_logs
t_summary
