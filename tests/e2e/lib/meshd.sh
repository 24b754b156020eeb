# meshd helpers for end-to-end tests; source after topology.sh.
#
# Each simulated node gets its own meshd, run with nsenter in the node's
# network namespace (keeping the host mount namespace, so the bpffs pins are
# visible host-wide), with a node name, state dir and admin socket unique to
# this run.

MESHD_BUILD=${MESHD_BUILD:-build}
MESHD_BIN=$(realpath "$MESHD_BUILD/meshd")
MESHCTL_BIN=$(realpath "$MESHD_BUILD/meshctl")
E2E_TMP=$(mktemp -d /tmp/meshd-e2e.XXXXXX)
((TOPO_KEEP)) || topo_on_cleanup "rm -rf '$E2E_TMP'" # TOPO_KEEP=1 keeps the agents' logs too
declare -gA MESHD_PID MESHD_NODE MESHD_SOCK MESHD_LOG _MESHD_CLEANUP MESHD_NODE_NAME
# Seconds a stopping agent drains open connections (meshd's default is 5;
# shorter here, within topo_cleanup's SIGTERM grace).
: "${MESHD_DRAIN_SECONDS:=2}"

# meshd_start I [EXTRA ARGS...]: starts (or restarts) the agent of node I,
# named MESHD_NODE_NAME[I] when the test sets it (a Kubernetes node name:
# dotted, up to 253), else m<run>n<I>.
meshd_start() {
    local i=$1
    shift
    local node="${MESHD_NODE_NAME[$i]:-m${TOPO_RUN}n${i}}"
    local state="$E2E_TMP/state-$i"
    mkdir -p "$E2E_TMP/config-$i" "$state"
    MESHD_NODE[$i]=$node
    MESHD_SOCK[$i]="$state/meshd.sock"
    MESHD_LOG[$i]="$E2E_TMP/meshd-$i.log"
    # A stopped agent (SIGTERM or SIGKILL) leaves its pods enrolled and its
    # programs pinned on purpose: after the agents stop, cleanup runs the
    # uninstall, then removes whatever it could not (last registered, first
    # run).
    if [[ -z ${_MESHD_CLEANUP[$i]:-} ]]; then
        topo_on_cleanup "rm -rf \"\$(meshd_pins $i)\""
        topo_on_cleanup "meshd_uninstall $i >/dev/null 2>&1 || _topo_log 'meshd uninstall of node $i failed'"
        _MESHD_CLEANUP[$i]=1
    fi
    MESHD_PID[$i]=$(topo_spawn_nsenter "${NODE_NS[$i]}" "${MESHD_LOG[$i]}" \
        "$MESHD_BIN" --config "$E2E_TMP/config-$i" --node "$node" --state-dir "$state" \
        --log-level debug --drain-seconds "$MESHD_DRAIN_SECONDS" "$@")
    local t
    # 10 s, times TOPO_WAIT_SCALE (topo_wait_tcp): slower under qemu TCG.
    for t in $(seq 1 $((100 * ${TOPO_WAIT_SCALE:-1}))); do
        [ -S "${MESHD_SOCK[$i]}" ] && meshctl_at "$i" status >/dev/null 2>&1 && return 0
        topo_alive "${MESHD_PID[$i]}" || break
        sleep 0.1
    done
    echo "meshd on node $i did not come up:" >&2
    cat "${MESHD_LOG[$i]}" >&2
    return 1
}

# meshd_uninstall I: `meshd uninstall` for node I, whose agent is stopped:
# the pods' BPF enrollment, the pinned links (detached) and maps, pods.json
# and the persisted configuration go. Fails if a pin is left or a link of
# the instance is still in the kernel.
# meshd_pins I: node I's pin directory: its node name with '.' as '_'
# (bpffs refuses dots), past 63 bytes the first 46 of that, '-' and 16 hex
# digits of the name's FNV-1a 64 hash (agent/core/node_name.h).
meshd_pins() {
    local node=${MESHD_NODE[$1]} u
    u=${node//./_}
    if [ ${#node} -le 63 ]; then
        echo "/sys/fs/bpf/meshd/$u"
    else
        echo "/sys/fs/bpf/meshd/${u:0:46}-$(python3 -c '
import sys
h = 0xcbf29ce484222325
for b in sys.argv[1].encode():
    h = ((h ^ b) * 0x100000001b3) & (2**64 - 1)
print("%016x" % h)' "$node")"
    fi
}

meshd_uninstall() {
    local i=$1 pins ids="" id f
    pins=$(meshd_pins "$i")
    for f in "$pins"/link_* "$pins"/inbound_*; do
        [ -e "$f" ] && ids+=" $(bpftool link show pinned "$f" -j 2>/dev/null | jq -r .id)"
    done
    "$MESHD_BIN" uninstall --node "${MESHD_NODE[$i]}" --state-dir "$E2E_TMP/state-$i" \
        >>"${MESHD_LOG[$i]}" 2>&1 || return 1
    [ ! -e "$pins" ] || return 1
    for id in $ids; do
        if bpftool link show id "$id" >/dev/null 2>&1; then return 1; fi
    done
}

# meshd_stop I: SIGTERM (the agent drains, then hands over: pods stay
# enrolled, failing closed), then the uninstall: node I as before meshd.
meshd_stop() {
    topo_kill "${MESHD_PID[$1]}" TERM && meshd_uninstall "$1"
}

# meshctl_at I ARGS...: meshctl against node I's agent.
meshctl_at() {
    local i=$1
    shift
    "$MESHCTL_BIN" --agent "${MESHD_SOCK[$i]}" "$@"
}

# config_version I: the configuration version node I serves.
config_version() { meshctl_at "$1" -o json proxy-config config | jq -r .version; }

# config_apply I CMD...: runs CMD, which edits node I's configuration, then
# waits (5 s at most) for node I to serve a new version; 1 if it does not.
# CMD should put files in place whole (write elsewhere, then mv): the
# agent may reload between two writes.
config_apply() {
    local i=$1 before
    shift
    before=$(config_version "$i")
    "$@"
    for _ in $(seq 1 50); do
        [ "$(config_version "$i")" != "$before" ] && return 0
        sleep 0.1
    done
    echo "config_apply: node $i still serves $before" >&2
    return 1
}

# enroll I "i,j": enrolls pod (i,j) with node I's agent as default/pod-i-j,
# with the service account and IPs mesh_config gives it (a CNI plugin
# tells meshd what the cluster says; a mismatch would be refused).
enroll() {
    meshctl_at "$1" enroll "default/pod-${2/,/-}" --netns "/run/netns/${POD_NS[$2]}" \
        --sa "sa-${2/,/-}" --ip "${POD_IP4[$2]}" --ip "${POD_IP6[$2]}" >/dev/null
}

unenroll() {
    meshctl_at "$1" unenroll "default/pod-${2/,/-}" >/dev/null
}

# connections_json I: the agent's connection records.
connections_json() {
    meshctl_at "$1" -o json connections
}

# bpf_stat I NAME: one BPF counter of node I's agent.
bpf_stat() {
    meshctl_at "$1" status | jq -r ".bpf.$2"
}

# enroll_pod NODE I J SA: pod-I-J of the default namespace enrolled on
# NODE's agent with service account SA and both its addresses.
enroll_pod() {
    meshctl_at "$1" enroll "default/pod-$2-$3" --netns "/run/netns/${POD_NS[$2,$3]}" --sa "$4" \
        --ip "${POD_IP4[$2,$3]}" --ip "${POD_IP6[$2,$3]}" >/dev/null
}

# in_pod "i,j" CMD...: runs CMD in pod (i,j).
in_pod() {
    local p=$1
    shift
    ip netns exec "${POD_NS[$p]}" "$@"
}

# http_get "i,j" URL: curl from a pod; prints the HTTP status (000 on failure).
http_get() {
    in_pod "$1" curl -s -o /dev/null -m 5 -w '%{http_code}' "$2" || true
}

# http_server "i,j" PORT: a real HTTP server (dual-stack) in a pod.
http_server() {
    local pid
    pid=$(topo_spawn "${POD_NS[$1]}" "$E2E_TMP/http-${1/,/-}-$2.log" \
        /usr/bin/python3 -m http.server --bind :: "$2")
    topo_wait_tcp "${POD_NS[$1]}" "${POD_IP4[$1]}" "$2" 10
    echo "$pid"
}

# meshd_check_logs: stops every agent still running with SIGTERM (a clean
# shutdown, where leak reports are written), uninstalls every node (no pin
# and no link left), then checks no agent log of this test has a sanitizer
# report (ASan, UBSan, LSan). Call before t_summary; with SANITIZE=1 builds
# a memory error in meshd fails the test.
meshd_check_logs() {
    local i
    t_begin "agents stop cleanly; uninstall leaves nothing; logs are free of sanitizer reports"
    for i in "${!MESHD_PID[@]}"; do
        if topo_alive "${MESHD_PID[$i]}"; then
            topo_kill "${MESHD_PID[$i]}" TERM
            t_expect_contains "$(cat "${MESHD_LOG[$i]}")" "enforcement left in place" "node $i stopped, handing over"
        fi
        t_expect_ok "node $i uninstalled: no pin, no link left" meshd_uninstall "$i"
    done
    for i in "${!MESHD_LOG[@]}"; do
        t_expect_not_contains "$(cat "${MESHD_LOG[$i]}" 2>/dev/null)" "Sanitizer" "node $i log"
        t_expect_not_contains "$(cat "${MESHD_LOG[$i]}" 2>/dev/null)" "runtime error:" "node $i log (UBSan)"
    done
}

# mesh_config DIR [NAMESPACE_LABEL]: writes the topology as Kubernetes YAML
# into DIR, the way a user's cluster state would look: the `default`
# namespace (enrolled in ambient mode unless told otherwise) and one Pod per
# topology pod, with its node, service account sa-<i>-<j>, IPs and Ready.
mesh_config() {
    local dir=$1 mode=${2:-ambient} i j f
    mkdir -p "$dir"
    cat >"$dir/namespace.yaml" <<NS
apiVersion: v1
kind: Namespace
metadata:
  name: default
  labels:
    istio.io/dataplane-mode: $mode
NS
    for i in $(seq 1 "$TOPO_NODES"); do
        for j in $(seq 1 "$TOPO_PODS"); do
            f="$dir/pod-$i-$j.yaml"
            cat >"$f" <<POD
apiVersion: v1
kind: Pod
metadata:
  name: pod-$i-$j
  namespace: default
  labels:
    app: app-$i-$j
    version: v1
spec:
  nodeName: m${TOPO_RUN}n$i
  serviceAccountName: sa-$i-$j
  containers:
  - name: app
    image: example/app:1
    ports:
    - containerPort: 8080
      name: http
status:
  phase: Running
  podIP: ${POD_IP4[$i,$j]}
  podIPs:
  - ip: ${POD_IP4[$i,$j]}
  - ip: ${POD_IP6[$i,$j]}
  conditions:
  - type: Ready
    status: "True"
POD
        done
    done
}

# strict_allow_yaml APP PRINCIPAL: Istio YAML making workloads app=APP of
# the default namespace STRICT mTLS and allowing in only PRINCIPAL
# ("cluster.local/ns/default/sa/sa-1-1").
strict_allow_yaml() {
    cat <<YAML
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict-$1, namespace: default}
spec:
  selector: {matchLabels: {app: $1}}
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-only-$1, namespace: default}
spec:
  selector: {matchLabels: {app: $1}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: ["$2"]}
YAML
}

# nginx_pod "i,j" DIR PORT SERVERS: nginx in pod i,j (one worker, no access
# log, keep-alive as long as the load tools want) with the server blocks
# SERVERS, its files under DIR; waits until PORT listens; prints its PID.
nginx_pod() {
    local pod=$1 dir=$2 port=$3 pid
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
$4
}
CONF
    pid=$(topo_spawn "${POD_NS[$pod]}" "$dir/out.log" nginx -c "$dir/nginx.conf" -p "$dir") || return 1
    topo_wait_tcp "${POD_NS[$pod]}" "${POD_IP4[$pod]}" "$port" 10 || return 1
    echo "$pid"
}

# nginx_server "i,j" PORT: nginx in a pod answering "ok" to every request,
# no access log (for load: wrk, the bench). Dual-stack.
nginx_server() {
    nginx_pod "$1" "$E2E_TMP/nginx-${1/,/-}-$2" "$2" \
        "server { listen $2 reuseport; listen [::]:$2; location / { return 200 \"ok\\n\"; } }" >/dev/null
}
