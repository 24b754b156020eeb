#!/usr/bin/env bash
# Issue 13 item 5, a bad start fails open: an agent restarted while one of
# its configuration files is broken must not serve its restored pods an
# empty configuration (PERMISSIVE, allow-all). Attack: with pod-2-1 STRICT
# and an AuthorizationPolicy allowing only pod-1-1's identity, the node's
# agent is SIGTERM'd (a rollout), the policy file is broken, the agent
# restarts; then plaintext from pod-1-2 (outside the mesh) and mTLS from
# pod-2-2 (an identity the policy does not allow) try pod-2-1. They stay
# refused (the persisted last good configuration serves), pod-1-1's
# legitimate traffic runs throughout, /healthz/ready is 503 and the error
# is reported until the file is fixed. Then a first start with no
# persisted configuration: inbound to the restored pods is refused (fail
# closed) until the first good load.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 2
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
security_yaml=$(strict_allow_yaml app-2-1 cluster.local/ns/default/sa/sa-1-1)
for i in 1 2; do
    mesh_config "$E2E_TMP/config-$i"
    rm "$E2E_TMP/config-$i/pod-1-2.yaml" # outside the mesh: the plaintext attacker
    printf '%s\n' "$security_yaml" >"$E2E_TMP/config-$i/security.yaml"
done
cfg2="$E2E_TMP/config-2"
# put_security TEXT: replaces node 2's policy file whole.
put_security() {
    printf '%s\n' "$1" >"$E2E_TMP/security.yaml.new"
    mv "$E2E_TMP/security.yaml.new" "$cfg2/security.yaml"
}
# broken_security: the same policies with one YAML syntax error (an
# unclosed flow sequence): the whole directory is rejected.
broken_security() { put_security "${security_yaml/mode: STRICT\}/mode: [STRICT\}}"; }

http_server "2,1" 8080 >/dev/null
meshd_start 1 --ca-dir "$E2E_TMP/ca"
meshd_start 2 --ca-dir "$E2E_TMP/ca"
enroll 1 "1,1"
enroll 2 "2,1"
enroll 2 "2,2"

legit() { http_get "1,1" "http://${POD_IP4[2,1]}:8080/"; }
wrong_identity() { http_get "2,2" "http://${POD_IP4[2,1]}:8080/"; }
plaintext() { http_get "1,2" "http://${POD_IP4[2,1]}:8080/"; }
ready_code() { ip netns exec "${NODE_NS[2]}" curl -s -o /dev/null -w '%{http_code}' -m 2 http://127.0.0.1:15021/healthz/ready || true; }
config_field() { meshctl_at 2 -o json proxy-config config | jq -r "$1"; }
# wait_config JQ VALUE: polls node 2's config status (5 s at most).
wait_config() {
    for _ in $(seq 1 50); do
        [ "$(config_field "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
# denials FLAG_FILTER: inbound records on node 2 refused with DENY that match a jq filter.
denials() {
    connections_json 2 | jq "[.[] | select(.direction == \"inbound\" and .response_flags == \"DENY\") | select($1)] | length"
}
# legit_loop N FILE: N legitimate requests from pod-1-1, one status a line.
legit_loop() {
    local n
    for n in $(seq 1 "$1"); do legit; echo; sleep 0.1; done >"$2"
}

t_begin "the good configuration is enforced"
t_expect_eq "$(legit)" 200 "pod-1-1 (sa-1-1) over mTLS"
# Mesh clients speak HTTP: their own agent answers a refused tunnel 403
# (issue 15); plaintext clients are reset.
t_expect_eq "$(wrong_identity)" 403 "pod-2-2 (sa-2-2) denied by the policy"
t_expect_eq "$(plaintext)" 000 "plaintext refused (STRICT)"
good_version=$(config_field .version)
t_expect_eq "$(config_field .persisted_version)" "$good_version" "the applied version is persisted"
t_expect_eq "$(ready_code)" 200 "ready"

t_begin "restart with the policy file broken: the last good configuration serves"
topo_kill "${MESHD_PID[2]}" TERM
broken_security
meshd_start 2 --ca-dir "$E2E_TMP/ca"
t_expect_eq "$(config_field .serving)" persisted "serving the persisted configuration"
t_expect_eq "$(config_field .version)" "$good_version" "of the last good version"
t_expect_eq "$(config_field .loaded)" false "the operator's files did not load"
t_expect_contains "$(config_field '.last_errors | join(" ")')" "security.yaml" "the error names the file"
t_expect_contains "$(meshctl_at 2 proxy-config config)" "the persisted last good configuration" "meshctl says so"
t_expect_contains "$(cat "${MESHD_LOG[2]}")" "serving the last good configuration, version $good_version" "logged"
t_expect_contains "$(ip netns exec "${NODE_NS[2]}" curl -s -m 2 http://127.0.0.1:15020/metrics)" \
    'meshd_config_serving{source="persisted"} 1' "counted in the metrics"
t_expect_eq "$(ready_code)" 503 "not ready"
t_expect_eq "$(meshctl_at 2 -o json pods | jq length)" 2 "the pods were restored"
legit_loop 15 "$E2E_TMP/legit.codes" &
loop_pid=$!
plain_denials=$(denials ".src | startswith(\"${POD_IP4[1,2]}:\")")
t_expect_eq "$(plaintext)" 000 "attack: plaintext to the STRICT pod is refused"
t_expect_eq "$(denials ".src | startswith(\"${POD_IP4[1,2]}:\")")" "$((plain_denials + 1))" "by STRICT at 15006 (DENY)"
id_denials=$(denials '.peer_identity == "spiffe://cluster.local/ns/default/sa/sa-2-2"')
t_expect_eq "$(wrong_identity)" 403 "attack: the identity the policy does not allow is denied"
t_expect_eq "$(denials '.peer_identity == "spiffe://cluster.local/ns/default/sa/sa-2-2"')" \
    "$((id_denials + 1))" "by the AuthorizationPolicy (DENY)"
wait "$loop_pid"
t_expect_eq "$(sort -u "$E2E_TMP/legit.codes" | tr '\n' ' ')" "200 " \
    "the legitimate client ran throughout, every request served ($(wc -l <"$E2E_TMP/legit.codes"))"

t_begin "fixing the file applies it; ready"
put_security "$security_yaml"
t_expect_ok "loaded" wait_config .loaded true
t_expect_eq "$(config_field .serving)" live "serving the operator's configuration"
t_expect_eq "$(config_field .version)" "$good_version" "the same content, the same version"
t_expect_eq "$(ready_code)" 200 "ready"
t_expect_eq "$(legit)" 200 "legitimate traffic"
t_expect_eq "$(plaintext)" 000 "plaintext still refused"
t_expect_eq "$(wrong_identity)" 403 "the wrong identity still denied"

t_begin "first start with a broken file, pods restored, nothing persisted: inbound refused"
topo_kill "${MESHD_PID[2]}" TERM
rm -rf "$E2E_TMP/state-2/config-last-good" # as if no good load had ever been persisted
t_expect_eq "$(jq length "$E2E_TMP/state-2/pods.json")" 2 "the pods are in the state"
broken_security
meshd_start 2 --ca-dir "$E2E_TMP/ca"
t_expect_eq "$(config_field .serving)" none "nothing to serve"
t_expect_eq "$(config_field .fail_closed)" true "fail closed"
t_expect_eq "$(meshctl_at 2 -o json pods | jq length)" 2 "the pods were restored"
t_expect_contains "$(meshctl_at 2 proxy-config config)" "fail closed" "meshctl says so"
t_expect_contains "$(cat "${MESHD_LOG[2]}")" "refusing inbound traffic to enrolled pods (fail closed)" "logged"
t_expect_eq "$(ready_code)" 503 "not ready"
plain_denials=$(denials ".src | startswith(\"${POD_IP4[1,2]}:\")")
t_expect_eq "$(plaintext)" 000 "attack: plaintext refused (an empty config would be PERMISSIVE)"
t_expect_eq "$(denials ".src | startswith(\"${POD_IP4[1,2]}:\")")" "$((plain_denials + 1))" "refused with DENY"
t_expect_eq "$(wrong_identity)" 000 "attack: the wrong identity refused (an empty config would allow all)"
t_expect_eq "$(legit)" 403 "nothing is allowed in until a configuration loads"

t_begin "the first good load opens what the policy allows"
put_security "$security_yaml"
t_expect_ok "loaded" wait_config .loaded true
t_expect_eq "$(config_field .fail_closed)" false "no longer fail closed"
t_expect_eq "$(ready_code)" 200 "ready"
t_expect_eq "$(legit)" 200 "legitimate traffic"
t_expect_eq "$(plaintext)" 000 "plaintext refused (STRICT)"
t_expect_eq "$(wrong_identity)" 403 "the wrong identity denied"
t_expect_eq "$(config_field .persisted_version)" "$good_version" "and persisted again"

meshd_check_logs
t_summary
