#!/usr/bin/env bash
# Hot reload of --config DIR on a running meshd: a valid edit is applied
# (new content-hash version, observed with meshctl), an invalid one is
# reported with file:line:col and not applied (the last good version keeps
# serving), the next valid one applies again. An agent started on a broken
# directory is not ready until the files are fixed.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 1 1
cfg="$E2E_TMP/config-1"
mkdir -p "$cfg/apps"

# write_canary WEIGHT_V1 WEIGHT_V2: the seed's canary with these weights.
write_canary() {
    sed -e "s/weight: 99/weight: $1/" -e "s/weight: 1$/weight: $2/" \
        deploy/examples/payments-canary.yaml >"$cfg/apps/payments.yaml.tmp"
    mv "$cfg/apps/payments.yaml.tmp" "$cfg/apps/payments.yaml"
}

# expected_version: the content hash meshd must report (sha256 over each
# file's relative name, a NUL, and its bytes; the first 8 bytes in hex).
expected_version() {
    /usr/bin/python3 - "$cfg" <<'PY'
import hashlib, os, sys
root = sys.argv[1]
h = hashlib.sha256()
files = []
for d, dirs, names in os.walk(root):
    dirs[:] = sorted(x for x in dirs if not x.startswith('.'))
    for n in names:
        if not n.startswith('.') and n.endswith(('.yaml', '.yml', '.json')):
            files.append(os.path.relpath(os.path.join(d, n), root))
for rel in sorted(files):
    h.update(rel.encode() + b'\0')
    h.update(open(os.path.join(root, rel), 'rb').read())
print(h.hexdigest()[:16])
PY
}

config_field() { meshctl_at 1 -o json proxy-config config | jq -r "$1"; }

# wait_config JQ VALUE: polls the agent's config status (5 s at most).
wait_config() {
    local t
    for t in $(seq 1 50); do
        [ "$(config_field "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

in_node() { ip netns exec "${NODE_NS[1]}" "$@"; }
ready_code() { in_node curl -s -o /dev/null -w '%{http_code}' -m 2 http://127.0.0.1:15021/healthz/ready || true; }

t_begin "start on a valid directory"
write_canary 99 1
meshd_start 1
v1=$(expected_version)
t_expect_eq "$(config_field .version)" "$v1" "version is the content hash"
t_expect_eq "$(config_field .resources.VirtualService)" 1 "the canary's VirtualService is served"
t_expect_eq "$(config_field .resources.Deployment)" 2 "and its Deployments"
t_expect_eq "$(ready_code)" 200 "ready"
t_expect_contains "$(meshctl_at 1 proxy-status)" "$v1" "proxy-status shows the version"

t_begin "a valid edit is applied"
write_canary 50 50
v2=$(expected_version)
t_expect_ok "version changes to the new hash" wait_config .version "$v2"
t_expect_eq "$(config_field .generation)" 2 "second generation"
t_expect_eq "$(config_field .applied)" 2 "two loads applied"

t_begin "the same content written again is no new generation"
unchanged=$(config_field .unchanged)
write_canary 50 50
t_expect_ok "the load is seen as unchanged" wait_config .unchanged "$((unchanged + 1))"
t_expect_eq "$(config_field .generation) $(config_field .applied)" "2 2" "still generation 2, two loads applied"
t_expect_contains "$(in_node curl -s -m 2 http://127.0.0.1:15020/metrics)" \
    "meshd_config_reloads_total{result=\"unchanged\"} $((unchanged + 1))" "counted in the metrics"

t_begin "an invalid edit is reported and not applied"
sed -i 's/weight: 50$/weight: {x: 1}/' "$cfg/apps/payments.yaml"
line=$(grep -m1 -n 'weight: {x: 1}' "$cfg/apps/payments.yaml" | cut -d: -f1)
t_expect_ok "the load is rejected" wait_config .rejected 1
t_expect_eq "$(config_field .version)" "$v2" "the last good version keeps serving"
err=$(config_field '.last_errors[0]')
t_expect_contains "$err" "Error [IST0106] (VirtualService default/payments apps/payments.yaml:$line:" \
    "error names the resource and file:line"
t_expect_contains "$err" "spec.http[0].route[0].weight: expected an integer, got a mapping" \
    "and the field"
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "rejected (2 errors); still serving version $v2" "logged (both weights)"
metrics=$(in_node curl -s -m 2 http://127.0.0.1:15020/metrics)
t_expect_contains "$metrics" 'meshd_config_reloads_total{result="rejected"} 1' "counted in metrics"
t_expect_contains "$metrics" "meshd_config_info{version=\"$v2\",loaded=\"true\"} 1" "metrics show the served version"
t_expect_eq "$(ready_code)" 200 "still ready: the last good configuration serves"

t_begin "a YAML syntax error is rejected too"
printf 'apiVersion: v1\nkind: [Service\n' >"$cfg/broken.yaml"
t_expect_ok "rejected" wait_config .rejected 2
t_expect_contains "$(config_field '.last_errors | join(" ")')" "broken.yaml:3:1) YAML:" "syntax error with position"
rm "$cfg/broken.yaml"

t_begin "the next valid edit applies again"
write_canary 90 10
v3=$(expected_version)
t_expect_ok "new version applied" wait_config .version "$v3"
t_expect_eq "$(config_field '.last_errors | length')" 0 "no errors left"
t_expect_eq "$(meshctl_at 1 -o json status | jq -r .config.version)" "$v3" "status agrees"

t_begin "started on a broken directory: not ready until fixed"
topo_kill "${MESHD_PID[1]}" TERM
# A ServiceEntry needs hosts (a VirtualService without them is a valid delegate).
printf 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\nspec: {}\n' >"$cfg/bad.yaml"
meshd_start 1
t_expect_eq "$(config_field .loaded)" false "nothing loaded"
t_expect_eq "$(ready_code)" 503 "not ready"
t_expect_contains "$(config_field '.last_errors[0]')" "bad.yaml:4:7) spec.hosts is required" "the reason"
rm "$cfg/bad.yaml"
t_expect_ok "fixed: applied" wait_config .loaded true
t_expect_eq "$(config_field .version)" "$v3" "the same content, the same version"
t_expect_eq "$(ready_code)" 200 "ready"

t_begin "what meshd cannot honour is applied, reported and counted"
cat >"$cfg/l7.yaml" <<'YAML'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: get-only, namespace: default}
spec:
  rules:
  - to:
    - operation: {methods: [GET]}
YAML
t_expect_ok "applied" wait_config '.findings.MSH0201' 1
t_expect_eq "$(config_field .resources.AuthorizationPolicy)" 1 "the policy is served"
t_expect_contains "$(cat "${MESHD_LOG[1]}")" "rules[0].to[0]: methods is HTTP only: decided per request on ports meshd serves as HTTP; on TCP ports this rule never matches" "logged with the behaviour applied"
t_expect_contains "$(in_node curl -s -m 2 http://127.0.0.1:15020/metrics)" \
    'meshd_config_findings{code="MSH0201",level="Warning"} 1' "counted in metrics"

topo_kill "${MESHD_PID[1]}" TERM
meshd_check_logs 1
t_summary
