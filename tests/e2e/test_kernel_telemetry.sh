#!/usr/bin/env bash
# Kernel-derived telemetry under a lossy underlay: with ~5% of the packets
# leaving node 1 dropped (a test-only tc BPF program), a captured upload's
# record shows the kernel's retransmit count and RTT for meshd's upstream
# socket, and the meshd_tcp_* histograms on /metrics count them; on a clean
# path, zero. With 20 ms of delay each way (a TUN wire, lib/delay.py), the
# RTT the kernel reports is >= 40 ms.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

topo_init
topo_create 2 1
mkdir -p "$E2E_TMP/www"
head -c 4194304 /dev/urandom >"$E2E_TMP/www/blob"
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/www.log" /usr/bin/python3 -m http.server --bind :: \
    --directory "$E2E_TMP/www" 8080 >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 8080 10
topo_spawn "${POD_NS[2,1]}" "$E2E_TMP/iperf3.log" iperf3 -s -p 5201 >/dev/null
topo_wait_tcp "${POD_NS[2,1]}" "${POD_IP4[2,1]}" 5201 10
meshd_start 1
enroll 1 "1,1"
metrics() { ip netns exec "${NODE_NS[1]}" curl -s -m 5 "http://${NODE_IP4[1]}:15020/metrics"; }
last_record() { # waits for the kernel's numbers to join the newest record
    local r
    for _ in $(seq 1 50); do
        r=$(connections_json 1 | jq -c '.[-1]')
        [ "$(jq -r '.retransmits // "none"' <<<"$r")" != none ] && break
        sleep 0.1
    done
    echo "$r"
}

t_begin "clean path"
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/blob")" 200 "4 MiB download"
rec=$(last_record)
t_expect_eq "$(jq -r .retransmits <<<"$rec")" 0 "no retransmits"
t_expect_contains "$(metrics)" 'meshd_tcp_retransmits_bucket{reporter="source",destination_service="unknown",le="0"} 1' \
    "the histogram counted one connection with 0 retransmits"

t_begin "lossy underlay"
ip netns exec "${NODE_NS[1]}" tc qdisc add dev "${NODE_UNDERLAY_IF[1]}" clsact
ip netns exec "${NODE_NS[1]}" tc filter add dev "${NODE_UNDERLAY_IF[1]}" egress bpf da \
    obj "$MESHD_BUILD/tests/bpf/lossy.bpf.o" sec tc
# 16 MiB: over veth TCP sends 64 KiB GSO packets, so ~250 of them pass the
# dropper; at 5% the chance of no drop at all is ~3e-6 (4 MiB: ~2%).
in_pod "1,1" iperf3 -c "${POD_IP4[2,1]}" -p 5201 -n 16M >/dev/null
t_ok "16 MiB upload (iperf3) over ~5% loss"
retrans=0
for _ in $(seq 1 50); do
    retrans=$(connections_json 1 | jq '[.[] | .retransmits // 0] | max')
    [ "$retrans" -gt 0 ] && break
    sleep 0.1
done
t_expect_eq "$([ "$retrans" -gt 0 ] && echo yes)" yes "kernel counted retransmits on meshd's upstream socket ($retrans)"
t_expect_eq "$(connections_json 1 | jq '[.[] | select(.retransmits > 0) | .rtt_us > 0] | all')" true "with an RTT"
for _ in $(seq 1 50); do # iperf3's control connection closes last
    m=$(metrics)
    grep -q 'meshd_tcp_rtt_seconds_count{reporter="source",destination_service="unknown"} 3' <<<"$m" && break
    sleep 0.1
done
sum=$(awk '/^meshd_tcp_retransmits_sum\{reporter="source"/ {print $2}' <<<"$m")
t_expect_eq "$(awk -v s="$sum" 'BEGIN {print (s > 0) ? "yes" : "no"}')" yes "retransmit histogram sum > 0 ($sum)"
t_expect_contains "$m" 'meshd_tcp_rtt_seconds_count{reporter="source",destination_service="unknown"} 3' \
    "three RTT observations (the download, iperf3's control and data connections)"
out=$(promtool check metrics <<<"$m" 2>&1) && rc=0 || rc=$?
t_expect_eq "$rc" 0 "promtool accepts the histograms ($out)"

t_begin "20 ms of delay each way"
# No sch_netem here: a TUN wire that holds each packet 20 ms (lib/delay.py)
# carries the pod CIDRs between the nodes instead of the underlay. A
# kernel with tun as a module (Debian's) has no /dev/net/tun until loaded.
[ -e /dev/net/tun ] || modprobe tun
topo_spawn "${NODE_NS[1]}" "$E2E_TMP/delay.log" /usr/bin/python3 tests/e2e/lib/delay.py \
    "${NODE_NS[1]}" dly1 "${NODE_NS[2]}" dly2 20 >/dev/null
for _ in $(seq 1 50); do grep -q ready "$E2E_TMP/delay.log" && break; sleep 0.1; done
ip -n "${NODE_NS[1]}" link set dly1 up
ip -n "${NODE_NS[2]}" link set dly2 up
ip netns exec "${NODE_NS[2]}" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.dly2.rp_filter=0
ip -n "${NODE_NS[1]}" route replace "${POD_IP4[2,1]%.*}.0/24" dev dly1
ip -n "${NODE_NS[2]}" route replace "${POD_IP4[1,1]%.*}.0/24" dev dly2
t_expect_contains "$(cat "$E2E_TMP/delay.log")" ready "the wire is up"
before=$(connections_json 1 | jq length)
t_expect_eq "$(http_get "1,1" "http://${POD_IP4[2,1]}:8080/blob")" 200 "4 MiB download over the slow wire"
rtt=0
for _ in $(seq 1 50); do
    rtt=$(connections_json 1 | jq --argjson n "$before" '[.[$n:][] | select(.original_dst | endswith(":8080")) | .rtt_us // 0] | max // 0')
    [ "$rtt" -gt 0 ] && break
    sleep 0.1
done
t_expect_ok "the kernel's smoothed RTT on meshd's upstream socket is >= 40 ms ($rtt us)" test "$rtt" -ge 40000
m=$(metrics)
slow=$(awk '/^meshd_tcp_rtt_seconds_bucket\{reporter="source",destination_service="unknown",le="0.025"\}/ {a = $2}
            /^meshd_tcp_rtt_seconds_count\{reporter="source",destination_service="unknown"\}/ {c = $2}
            END {print c - a}' <<<"$m")
t_expect_ok "the RTT histogram has observations above 25 ms ($slow)" test "${slow:-0}" -ge 1

meshd_check_logs
t_summary
