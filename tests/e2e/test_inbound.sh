#!/usr/bin/env bash
# Inbound capture on the running kernel: the per-pod sk_lookup program
# steers plaintext TCP to an enrolled pod (IPv4 and IPv6) into its node's
# meshd on 15006, which records it and forwards it to the app from the
# client's own address; loopback inside the pod and HBONE's 15008 are left alone;
# unenrolling detaches the program.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 1
meshd_start 2
http_server "2,1" 8080 >/dev/null
server_log="$E2E_TMP/http-2-1-8080.log"
enroll 2 "2,1"

t_begin "plaintext to an enrolled pod goes through meshd (IPv4)"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "curl from another node"
rec=$(connections_json 2 | jq -c '.[0]')
t_expect_eq "$(jq -r .direction <<<"$rec")" inbound "recorded as inbound"
t_expect_eq "$(jq -r .original_dst <<<"$rec")" "${POD_IP4[2,1]}:8080" "original destination from getsockname"
t_expect_eq "$(jq -r .src <<<"$rec" | cut -d: -f1)" "${POD_IP4[1,1]}" "the client's address"
t_expect_eq "$(jq -r .state <<<"$rec")" closed "closed cleanly"
t_expect_contains "$(tail -1 "$server_log")" "::ffff:${POD_IP4[1,1]} " "the app saw the real client (a transparent source)"

t_begin "plaintext to an enrolled pod goes through meshd (IPv6)"
t_expect_eq "$(http_get "1,1" "http://[${POD_IP6[2,1]}]:8080/")" 200 "curl over IPv6"
t_expect_eq "$(connections_json 2 | jq -r '.[-1].original_dst')" "[${POD_IP6[2,1]}]:8080" "IPv6 original destination"

t_begin "loopback inside the pod is not steered"
n_before=$(connections_json 2 | jq length)
t_expect_eq "$(http_get "2,1" "http://127.0.0.1:8080/")" 200 "localhost"
t_expect_eq "$(connections_json 2 | jq length)" "$n_before" "no record"

t_begin "a port nobody listens on is refused, not hung"
code=$(in_pod "1,1" curl -s -o /dev/null -m 5 -w '%{http_code}' "http://${POD_IP4[2,1]}:9999/" || true)
t_expect_eq "$code" 000 "connection fails"
t_expect_eq "$(connections_json 2 | jq -r '.[-1].response_flags')" UF "recorded as upstream failure"

t_begin "bpftool sees the per-pod sk_lookup link"
t_expect_eq "$(bpftool link show -j | jq '[.[] | select(.type=="netns" and .attach_type=="sk_lookup")] | length >= 1')" true "netns link present"
t_expect_eq "$(ls "/sys/fs/bpf/meshd/${MESHD_NODE[2]}" | grep -c '^inbound_')" 1 "pinned under the instance"

t_begin "unenroll detaches the sk_lookup program"
unenroll 2 "2,1"
n_before=$(connections_json 2 | jq length)
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/")" 200 "direct curl"
t_expect_eq "$(connections_json 2 | jq length)" "$n_before" "not captured"
t_expect_eq "$(ls "/sys/fs/bpf/meshd/${MESHD_NODE[2]}" | grep -c '^inbound_' || true)" 0 "pin removed"

meshd_check_logs
t_summary
