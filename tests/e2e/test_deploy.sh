#!/usr/bin/env bash
# deploy/'s manifests, checked offline and then run as a node would run them:
#  - every manifest passes a structural check against the Kubernetes OpenAPI
#    definitions (python3-kubernetes' models: tests/e2e/lib/k8s_schema.py),
#    which refuses typo'd and mistyped manifests; and `meshctl analyze`;
#  - the pod rules the API server applies beyond the schema (no privileged,
#    Bidirectional only when privileged, ...: deploy_pod.py lint);
#  - the DaemonSet's containers, exactly as written (command, args, env,
#    volumes, user, capabilities, read-only root), run by deploy_pod.py in
#    the image's own root file system (tools/image.sh rootfs) with the host
#    paths under a test directory: install-cni installs meshd-cni into a
#    conflist, meshd --kube comes up against the stand-in API server with
#    the in-cluster service account and the `cacerts` Secret (Istio's
#    plug-in layout, made with meshctl ca init and kubectl) as the kubelet
#    mounts them, is ready on the probe's port and path, serves metrics
#    where the scrape annotations say, enrolls a running pod found through
#    the netns mount, and reads exactly what the ClusterRole grants (the
#    verbs and resources derived from the requests meshd made);
#  - SIGTERM with a connection open: the drain, then the exit, within
#    terminationGracePeriodSeconds;
#  - the uninstall DaemonSet's steps leave nothing: no pins, no links, no
#    state, no socket, no plugin, the conflist as before.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/topology.sh
source tests/e2e/lib/assert.sh
source tests/e2e/lib/meshd.sh

PY=/usr/bin/python3
schema() { $PY tests/e2e/lib/k8s_schema.py "$@"; }
pod() { $PY tests/e2e/lib/deploy_pod.py "$@"; }

topo_init
topo_create 1 2
node=m${TOPO_RUN}n1
bad="$E2E_TMP/bad"
mkdir -p "$bad"

t_begin "every manifest passes the Kubernetes schema check"
out=$(schema deploy/*.yaml deploy/examples/*.yaml 2>&1) && rc=0 || rc=$?
t_expect_eq "$rc" 0 "deploy/*.yaml and deploy/examples/*.yaml: $(tail -1 <<<"$out")"
t_expect_contains "$out" "0 errors" "no error"
t_expect_contains "$out" "6 Istio documents left to meshctl analyze" "Istio's kinds are left to meshd's decoder"

t_begin "the schema check fails on what the API server would refuse"
ds=deploy/daemonset.yaml
# NAME | sed expression on the DaemonSet | the error it must name
# One checker run over every case (the client's models load once); each
# file's errors are the lines naming it.
cases=()
while IFS='|' read -r name expr want; do
    sed -e "$expr" "$ds" >"$bad/$name.yaml"
    cmp -s "$ds" "$bad/$name.yaml" && t_fail "$name: the edit changed nothing"
    cases+=("$name|$want")
done <<'CASES'
typo in a field|s/readinessProbe:/readynessProbe:/|containers[0].readynessProbe: unknown field (not in V1Container)
typo at the spec|s/^  updateStrategy:/  updateStrateg:/|spec.updateStrateg: unknown field (not in V1DaemonSetSpec)
string for an integer|s/terminationGracePeriodSeconds: 10/terminationGracePeriodSeconds: "10"/|terminationGracePeriodSeconds: str '10' where the API wants int
a map for a list|s/add: \[BPF, NET_ADMIN, SYS_ADMIN\]/add: {BPF: true}/|capabilities.add: dict where the API wants a list
a list for a string|s/secretName: cacerts/secretName: [cacerts]/|secretName: list ['cacerts'] where the API wants str
a boolean for a port|s/port: 15021/port: true/|readinessProbe.httpGet.port: bool True where the API wants object
a required field missing|/^  selector:/,/^      app: meshd$/d|Invalid value for `selector`, must not be `None`
CASES
files=()
for c in "${cases[@]}"; do files+=("$bad/${c%%|*}.yaml"); done
out=$(schema "${files[@]}" 2>&1) && rc=0 || rc=$?
t_expect_eq "$rc" 1 "the checker fails"
t_expect_contains "$out" "0 documents checked" "on every one of them"
for c in "${cases[@]}"; do
    name=${c%%|*}
    mine=$(grep -F "$bad/$name.yaml#" <<<"$out" || true)
    t_expect_eq "$(grep -c . <<<"$mine")" 1 "$name: refused, with one error"
    t_expect_contains "$mine" "${c#*|}" "$name: names the field"
done
printf 'apiVersion: apps/v1\nkind: DaemonSett\nmetadata: {name: x}\n' >"$bad/kind.yaml"
t_expect_contains "$(schema "$bad/kind.yaml" 2>&1 || true)" "apps/v1 DaemonSett: not a kind of the Kubernetes API" "an unknown kind"
sed 's/kind: ClusterRoleBinding/kind: ClusterRoleBinding\nsubject: []/' deploy/rbac.yaml >"$bad/rbac.yaml"
t_expect_contains "$(schema "$bad/rbac.yaml" 2>&1 || true)" "ClusterRoleBinding/meshd.subject: unknown field" "in any document of a file"

t_begin "meshctl analyze"
out=$("$MESHCTL_BIN" analyze deploy/*.yaml 2>&1) && rc=0 || rc=$?
t_expect_eq "$rc" 0 "deploy/*.yaml: $out"
# The seed's gateway example names a TLS Secret that its comment says is
# made apart (cert-manager, kubectl create secret tls): analyzed with one.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=app.example.com \
    -keyout "$E2E_TMP/app.key" -out "$E2E_TMP/app.crt" 2>/dev/null
mkdir -p "$E2E_TMP/analyze"
kubectl create secret tls app-tls -n istio-system --cert "$E2E_TMP/app.crt" --key "$E2E_TMP/app.key" \
    --dry-run=client -o yaml >"$E2E_TMP/analyze/app-tls.yaml"
out=$("$MESHCTL_BIN" analyze deploy/examples "$E2E_TMP/analyze" 2>&1) && rc=0 || rc=$?
t_expect_eq "$rc" 0 "deploy/examples with the app-tls Secret: no error"
t_expect_not_contains "$out" "Error" "no Error line"
out=$("$MESHCTL_BIN" analyze deploy/examples 2>&1) && rc=0 || rc=$?
t_expect_contains "$out" 'IST0101' "without it, the missing credentialName is found (analyze can fail)"

t_begin "the pod rules beyond the schema"
out=$(pod lint deploy/*.yaml 2>&1) && rc=0 || rc=$?
t_expect_eq "$rc" 0 "deploy/*.yaml: ${out:-clean}"
while IFS='|' read -r name expr want; do
    sed -e "$expr" "$ds" >"$bad/$name.yaml"
    out=$(pod lint "$bad/$name.yaml" 2>&1) && rc=0 || rc=$?
    t_expect_eq "$rc" 1 "$name: refused"
    t_expect_contains "$out" "$want" "$name: says why"
done <<'CASES'
privileged|s/readOnlyRootFilesystem: true/readOnlyRootFilesystem: true\n            privileged: true/|privileged: true (name the capabilities instead)
bidirectional|s/mountPropagation: HostToContainer}/mountPropagation: Bidirectional}/|Bidirectional propagation of 'bpffs' needs a privileged container
no escalation|0,/readOnlyRootFilesystem: true$/!s/            readOnlyRootFilesystem: true$/            readOnlyRootFilesystem: true\n            allowPrivilegeEscalation: false/|allowPrivilegeEscalation: false with CAP_SYS_ADMIN
a capability typo|s/add: \[BPF, NET_ADMIN, SYS_ADMIN\]/add: [BPF, NET_ADMIN, SYS_ADMN]/|'SYS_ADMN' is not a Linux capability
an unmounted volume|/{name: cacerts, mountPath/d|volume 'cacerts' is mounted nowhere
a probe elsewhere|s/port: 15021$/port: 15022/|the readiness probe's port 15022 is not a port of it
a scrape elsewhere|s/prometheus.io\/port: "15020"/prometheus.io\/port: "15090"/|prometheus.io/port 15090 is no container's port
CASES

t_begin "the DaemonSet's choices agree with meshd"
plan=$(pod plan "$ds" meshd meshd --node "$node")
inst=$(pod plan "$ds" meshd install-cni --node "$node")
arg() { jq -r --arg f "--$2=" '.argv[] | select(startswith($f)) | ltrimstr($f)' <<<"$1"; }
drain=$(arg "$plan" drain-seconds)
grace=$(jq -r .grace <<<"$plan")
t_expect_ok "terminationGracePeriodSeconds $grace covers --drain-seconds $drain and the stop" test "$grace" -ge $((drain + 2))
sock=$(arg "$plan" admin-socket)
t_expect_eq "$(arg "$inst" socket)" "$sock" "meshd-cni is installed with meshd's admin socket"
# meshd-cni runs on the host: the socket's host path is its container path.
mp=$(jq -r --arg s "$sock" '.mounts[] | . as $m | select($m.volume.hostPath and ($s | startswith($m.mountPath + "/"))) | [.mountPath, .volume.hostPath.path] | join(" ")' <<<"$plan")
t_expect_eq "$mp" "$(dirname "$sock") $(dirname "$sock")" "and the directory holding it is the host's, at the same path"
unplan=$(pod plan deploy/uninstall.yaml meshd-uninstall uninstall-meshd --node "$node")
for f in state-dir admin-socket node; do
    t_expect_eq "$(arg "$unplan" "$f")" "$(arg "$plan" "$f")" "the uninstall's --$f is the agent's"
done
t_expect_eq "$(jq -r '.readiness.httpGet | "\(.port) \(.path)"' <<<"$plan")" "15021 /healthz/ready" "readiness: meshd's health port and path"
t_expect_eq "$(jq -r '.annotations["prometheus.io/port"] + " " + .annotations["prometheus.io/path"]' <<<"$plan")" \
    "15020 /stats/prometheus" "scrape: meshd's metrics port and path"

# ---- run the containers as a node would -----------------------------------
host="$E2E_TMP/host"
rootfs="$E2E_TMP/rootfs"
mkdir -p "$host/etc/cni/net.d" "$host/opt/cni/bin"
tools/image.sh rootfs "$rootfs" >/dev/null
cat >"$host/etc/cni/net.d/10-bridge.conf" <<'CONF'
{"cniVersion": "1.0.0", "name": "podnet", "type": "bridge", "bridge": "cni0", "isGateway": true,
 "ipam": {"type": "host-local", "subnet": "10.88.0.0/16"}}
CONF
before=$(jq -c '{type, bridge, ipam}' "$host/etc/cni/net.d/10-bridge.conf")
# The stand-in API server, TLS with a token, as the in-cluster service
# account reaches it (KUBERNETES_SERVICE_HOST/PORT, token, ca.crt).
api="$E2E_TMP/api"
sa="$E2E_TMP/sa"
mkdir -p "$api" "$sa"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=kubeapi \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$api/key.pem" -out "$api/cert.pem" 2>/dev/null
printf "sa-token-%s" "$RANDOM$RANDOM" >"$api/token"
cp "$api/token" "$sa/token"
cp "$api/cert.pem" "$sa/ca.crt"
echo istio-system >"$sa/namespace"
topo_spawn "${NODE_NS[1]}" "$api/kubeapi.log" $PY tests/e2e/lib/kubeapi.py \
    --port-file "$api/ports" --token-file "$api/token" --tls-cert "$api/cert.pem" \
    --tls-key "$api/key.pem" --bookmark-seconds 1 >/dev/null
for _ in $(seq 1 100); do [ -s "$api/ports" ] && break; sleep 0.1; done
read -r port ctl <"$api/ports"
cat >"$api/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: s, cluster: {server: "https://127.0.0.1:$port", certificate-authority: cert.pem}}]
users: [{name: u, user: {tokenFile: token}}]
contexts: [{name: s, context: {cluster: s, user: u}}]
current-context: s
KC
kc() { ip netns exec "${NODE_NS[1]}" kubectl --kubeconfig "$api/kubeconfig" --request-timeout=10s "$@"; }
control() { ip netns exec "${NODE_NS[1]}" curl -s -m 5 -X "${2:-POST}" "http://127.0.0.1:$ctl/$1"; }
# run_container FILE DAEMONSET CONTAINER [deploy_pod.py run options]: the
# container as the node would run it, in a private mount namespace.
container_argv() { # the same, into the array CMD (for topo_spawn_nsenter)
    local f=$1 d=$2 c=$3
    shift 3
    CMD=(unshare -m --propagation private -- "$PY" tests/e2e/lib/deploy_pod.py run "$f" "$d" "$c"
        --node "$node" --rootfs "$rootfs" --host-root "$host" --host-real /sys/fs/bpf
        --host-real /sys/fs/cgroup --secret "cacerts=$E2E_TMP/cacerts" --sa-dir "$sa"
        --env KUBERNETES_SERVICE_HOST=127.0.0.1 --env "KUBERNETES_SERVICE_PORT=$port" "$@")
}
run_container() {
    container_argv "$@"
    "${CMD[@]}"
}

t_begin "install-cni, as written"
out=$(run_container "$ds" meshd install-cni 2>&1) && rc=0 || rc=$?
t_expect_eq "$rc" 0 "it runs with no capability, read-only root: $out"
run_container "$ds" meshd install-cni >/dev/null 2>&1 || t_fail "a second run failed"
list="$host/etc/cni/net.d/10-bridge.conflist"
t_expect_eq "$(jq -c '[.plugins[].type]' "$list" 2>&1)" '["bridge","meshd-cni"]' \
    "the .conf became a conflist with meshd-cni chained last, once after two runs"
t_expect_eq "$(jq -r '.plugins[1].socket' "$list")" "$sock" "naming meshd's socket"
t_expect_contains "$(file -b "$host/opt/cni/bin/meshd-cni")" "statically linked" \
    "the host's plugin is static (the host has not the image's libraries)"
out=$(CNI_COMMAND=VERSION "$host/opt/cni/bin/meshd-cni")
t_expect_contains "$out" '"1.1.0"' "and runs on the host"

t_begin "the cacerts Secret in Istio's plug-in layout"
"$MESHCTL_BIN" ca init "$E2E_TMP/ca" >/dev/null
kc create secret generic cacerts -n istio-system --from-file="$E2E_TMP/ca/ca-cert.pem" \
    --from-file="$E2E_TMP/ca/ca-key.pem" --from-file="$E2E_TMP/ca/root-cert.pem" \
    --from-file="$E2E_TMP/ca/cert-chain.pem" --dry-run=client -o yaml >"$E2E_TMP/cacerts.yaml"
keys=$($PY -c 'import sys,yaml; print(" ".join(sorted(yaml.safe_load(open(sys.argv[1]))["data"])))' "$E2E_TMP/cacerts.yaml")
t_expect_eq "$keys" "ca-cert.pem ca-key.pem cert-chain.pem root-cert.pem" "its four keys"
t_expect_eq "$(schema "$E2E_TMP/cacerts.yaml" | tail -1)" \
    "k8s_schema: 1 documents checked, 0 Istio documents left to meshctl analyze, 0 errors" "a valid Secret"
# The kubelet's Secret volume: a file a key, mode defaultMode.
mode=$(pod plan "$ds" meshd meshd --node "$node" | jq -r '.mounts[] | select(.name == "cacerts") | .volume.secret.defaultMode')
$PY - "$E2E_TMP/cacerts.yaml" "$E2E_TMP/cacerts" "$mode" <<'PY'
import base64, os, sys, yaml
sec, out, mode = yaml.safe_load(open(sys.argv[1])), sys.argv[2], int(sys.argv[3])
os.makedirs(out, mode=0o755)
for k, v in sec["data"].items():
    with open(os.path.join(out, k), "wb") as f:
        f.write(base64.b64decode(v))
    os.chmod(os.path.join(out, k), mode)
PY
t_expect_eq "$(stat -c %a "$E2E_TMP/cacerts/ca-key.pem")" 400 "mounted 0400 (defaultMode)"

{
    printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: istio-system}\n---\n'
    printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {istio.io/dataplane-mode: ambient}}\n'
    for j in 1 2; do
        cat <<POD
---
apiVersion: v1
kind: Pod
metadata: {name: pod-1-$j, namespace: default, labels: {app: app$j}}
spec: {nodeName: $node, serviceAccountName: sa$j, containers: [{name: app, image: example/app:1}]}
status:
  phase: Running
  podIP: ${POD_IP4[1,$j]}
  podIPs: [{ip: ${POD_IP4[1,$j]}}]
POD
    done
} >"$api/cluster.yaml"
kc apply --validate=false -f "$api/cluster.yaml" >/dev/null
kc apply --validate=false -f "$E2E_TMP/cacerts.yaml" >/dev/null
log="$E2E_TMP/meshd-ds.log"
# The runtime pins each pod's netns in the host's /var/run/netns.
binds=()
for j in 1 2; do binds+=(--bind "/run/netns/${POD_NS[1,$j]}=/var/run/netns/${POD_NS[1,$j]}"); done
topo_on_cleanup "rm -rf '/sys/fs/bpf/meshd/$node'"
topo_on_cleanup "run_container deploy/uninstall.yaml meshd-uninstall uninstall-meshd >/dev/null 2>&1 || true"
hsock="$host$sock"
health() { ip netns exec "${NODE_NS[1]}" curl -s -o /dev/null -w '%{http_code}' -m 2 "http://127.0.0.1:$1$2"; }
pods_bound() { "$MESHCTL_BIN" --agent "$hsock" -o json pods | jq -r '[.[] | .name + ":" + .binding] | sort | join(" ")'; }

t_begin "each capability the DaemonSet names is needed"
# meshd on a fresh node, from the manifest less one capability: without
# NET_ADMIN (SO_MARK on its upstream sockets, the pods' policy rules) or
# SYS_ADMIN (setns into the pods) it cannot serve its pods, and says why. BPF is subsumed by SYS_ADMIN (the kernel's
# bpf_capable() takes either): without it meshd still serves, as
# docs/DEPLOY.md says; the manifest names it for what it is used for.
# outcome: "serving" (ready, both pods enrolled, and a connection from one
# to the other answered through meshd) or "failed" (exited, or not serving
# after 8 s).
topo_spawn "${POD_NS[1,2]}" "$E2E_TMP/tally.log" $PY tests/e2e/lib/tally.py serve 8081 v1 >/dev/null
topo_wait_tcp "${POD_NS[1,2]}" "${POD_IP4[1,2]}" 8081 10
through_mesh() { # one connection pod 1,1 -> pod 1,2 answered, and meshd carried it
    [ "$(in_pod "1,1" $PY tests/e2e/lib/tally.py count "${POD_IP4[1,2]}" 8081 1 | jq -r .v1)" = 1 ] &&
        [ "$("$MESHCTL_BIN" --agent "$hsock" -o json connections | jq 'length')" -gt 0 ]
}
try_without() { # CAP
    local f="$bad/without-$1.yaml" p out="failed"
    sed -e "s/add: \[BPF, NET_ADMIN, SYS_ADMIN\]/add: [$(echo BPF NET_ADMIN SYS_ADMIN | tr ' ' '\n' | grep -vx "$1" | paste -sd, | sed 's/,/, /g')]/" "$ds" >"$f"
    : >"$E2E_TMP/without-$1.log"
    container_argv "$f" meshd meshd "${binds[@]}"
    p=$(topo_spawn_nsenter "${NODE_NS[1]}" "$E2E_TMP/without-$1.log" "${CMD[@]}")
    for _ in $(seq 1 80); do
        topo_alive "$p" || break
        [ "$(health 15021 /healthz/ready || true)" = 200 ] &&
            [ "$(pods_bound 2>/dev/null)" = "pod-1-1:cluster pod-1-2:cluster" ] && break
        sleep 0.1
    done
    for _ in 1 2; do # a connection through it, given two tries
        topo_alive "$p" && through_mesh && out=serving && break
        sleep 0.2
    done
    topo_kill "$p" TERM >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do topo_alive "$p" || break; sleep 0.1; done
    echo "$out"
}
t_expect_eq "$(try_without NET_ADMIN)" failed "without NET_ADMIN: not serving"
t_expect_contains "$(cat "$E2E_TMP/without-NET_ADMIN.log")" "Operation not permitted" "and it says why"
t_expect_eq "$(try_without SYS_ADMIN)" failed "without SYS_ADMIN: not serving"
t_expect_contains "$(cat "$E2E_TMP/without-SYS_ADMIN.log")" "Operation not permitted" "and it says why"
t_expect_eq "$(try_without BPF)" serving "without BPF (SYS_ADMIN covers bpf()): serving"

t_begin "meshd --kube from the DaemonSet, as written"
container_argv "$ds" meshd meshd "${binds[@]}"
pid=$(topo_spawn_nsenter "${NODE_NS[1]}" "$log" "${CMD[@]}")
for _ in $(seq 1 100); do
    [ -S "$hsock" ] && "$MESHCTL_BIN" --agent "$hsock" status >/dev/null 2>&1 && break
    topo_alive "$pid" || break
    sleep 0.1
done
t_expect_ok "meshd answers on the host's $sock (the path meshd-cni calls)" sh -c "\"$MESHCTL_BIN\" --agent \"$hsock\" status >/dev/null"
ready=""
for _ in $(seq 1 100); do
    ready=$(health 15021 /healthz/ready || true)
    [ "$ready" = 200 ] && break
    sleep 0.1
done
t_expect_eq "$ready" 200 "ready on the probe's port and path once every kind is listed"
t_expect_contains "$(cat "$log")" "every kind listed" "through the in-cluster service account"
t_expect_contains "$(cat "$log")" "mesh: CA /etc/cacerts loaded" "the CA read from the mounted cacerts Secret"
metrics=$(ip netns exec "${NODE_NS[1]}" curl -s -m 2 "http://127.0.0.1:15020/stats/prometheus")
t_expect_contains "$metrics" "meshd_" "metrics where the scrape annotations say"
caps=$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")
mapfile -t caplist < <(jq -r '.caps[]' <<<"$plan")
want=$($PY -c 'import sys; C=["CHOWN","DAC_OVERRIDE","DAC_READ_SEARCH","FOWNER","FSETID","KILL","SETGID","SETUID","SETPCAP","LINUX_IMMUTABLE","NET_BIND_SERVICE","NET_BROADCAST","NET_ADMIN","NET_RAW","IPC_LOCK","IPC_OWNER","SYS_MODULE","SYS_RAWIO","SYS_CHROOT","SYS_PTRACE","SYS_PACCT","SYS_ADMIN","SYS_BOOT","SYS_NICE","SYS_RESOURCE","SYS_TIME","SYS_TTY_CONFIG","MKNOD","LEASE","AUDIT_WRITE","AUDIT_CONTROL","SETFCAP","MAC_OVERRIDE","MAC_ADMIN","SYSLOG","WAKE_ALARM","BLOCK_SUSPEND","AUDIT_READ","PERFMON","BPF","CHECKPOINT_RESTORE"]; print("%016x" % sum(1 << C.index(c) for c in sys.argv[1:]))' \
    "${caplist[@]}")
t_expect_eq "$caps" "$want" "running with exactly the named capabilities ($(jq -r '.caps | join(",")' <<<"$plan"))"
for _ in $(seq 1 50); do [ "$(pods_bound)" = "pod-1-1:cluster pod-1-2:cluster" ] && break; sleep 0.1; done
t_expect_eq "$(pods_bound)" "pod-1-1:cluster pod-1-2:cluster" "running pods found through the /var/run/netns mount, enrolled"
t_expect_ok "its pins on the host's bpffs" test -d "/sys/fs/bpf/meshd/$node"
t_expect_ok "its state on the host's /run/meshd" test -d "$host/run/meshd/$node/kube/pods"
rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
echo "    meshd VmRSS: $((rss / 1024)) MiB"

t_begin "the ClusterRole grants exactly what meshd reads"
# Every request meshd made (User-Agent meshd: not kubectl's), as the
# authorizer sees it: a collection GET is list, with watch=1 watch, a named
# GET get; anything else is named as it is.
derive() {
    control stats GET | jq -r '[.requests, .user_agents] | transpose[] | select(.[1] == "meshd") | .[0]' | $PY -c '
import sys, urllib.parse
out = set()
for line in sys.stdin:
    method, url = line.split()
    u = urllib.parse.urlsplit(url)
    p = [x for x in u.path.split("/") if x]
    if p[:1] == ["api"]:
        g, rest = "core", p[2:]
    elif p[:1] == ["apis"] and len(p) > 3:
        g, rest = p[1], p[3:]
    else:
        out.add("nonresource " + u.path + " " + method.lower())
        continue
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    q = urllib.parse.parse_qs(u.query)
    verb = "watch" if q.get("watch", [""])[0] in ("1", "true") else ("get" if len(rest) > 1 else "list")
    out.add(f"{g} {rest[0]} {verb}")
print("\n".join(sorted(out)))'
}
# Every watcher lists, then watches: wait until each resource listed is watched.
for _ in $(seq 1 50); do
    d=$(derive)
    [ "$(grep -c ' list$' <<<"$d")" = "$(grep -c ' watch$' <<<"$d")" ] && break
    sleep 0.1
done
granted=$(pod rbac deploy/rbac.yaml)
used=$(derive)
t_expect_eq "$(wc -l <<<"$used")" "$(wc -l <<<"$granted")" "as many grants as meshd's (group, resource, verb)"
t_expect_eq "$used" "$granted" "the same: $(grep -c ' list$' <<<"$used") resources, list and watch, nothing else"

t_begin "SIGTERM: drained and gone within the grace period"
# A connection between the two enrolled pods, held open through the drain.
topo_spawn "${POD_NS[1,2]}" "$E2E_TMP/hold-server.log" $PY -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen(); c, _ = s.accept(); time.sleep(30)' >/dev/null
topo_wait_tcp "${POD_NS[1,2]}" "${POD_IP4[1,2]}" 8080 10
topo_spawn "${POD_NS[1,1]}" "$E2E_TMP/hold-client.log" $PY -c '
import socket, sys, time
c = socket.create_connection((sys.argv[1], 8080), timeout=5); c.sendall(b"x"); time.sleep(30)' "${POD_IP4[1,2]}" >/dev/null
for _ in $(seq 1 50); do
    [ "$("$MESHCTL_BIN" --agent "$hsock" -o json connections | jq 'length')" -gt 0 ] && break
    sleep 0.1
done
t0=$(_topo_now_ms)
kill -TERM "$pid"
sleep 0.5
t_expect_eq "$(health 15021 /healthz/ready || true)" 503 "not ready while draining"
for _ in $(seq 1 $((grace * 10 + 20))); do topo_alive "$pid" || break; sleep 0.1; done
t1=$(_topo_now_ms)
t_expect_ok "exited (after $((t1 - t0)) ms)" sh -c "! kill -0 $pid 2>/dev/null"
t_expect_ok "the drain held the open connection (its two records)" \
    grep -Eq "draining: listeners closed, [1-9][0-9]* open connections? get up to $drain s" "$log"
t_expect_ok "until the drain period was over" grep -q "drain period over; closing" "$log"
t_expect_ok "the drain ran its course: $((t1 - t0)) ms >= ${drain}000 - 500" test $((t1 - t0)) -ge $((drain * 1000 - 500))
t_expect_ok "and the exit came within terminationGracePeriodSeconds ($((t1 - t0)) ms < ${grace}000)" test $((t1 - t0)) -lt $((grace * 1000))
t_expect_ok "the pins stay for the next agent (pods fail closed meanwhile)" test -d "/sys/fs/bpf/meshd/$node"

t_begin "the uninstall DaemonSet leaves nothing"
ids=""
for f in "/sys/fs/bpf/meshd/$node"/link_* "/sys/fs/bpf/meshd/$node"/inbound_*; do
    [ -e "$f" ] && ids+=" $(bpftool link show pinned "$f" -j 2>/dev/null | jq -r .id)"
done
t_expect_ok "links were pinned (${ids# })" test -n "$ids"
for c in uninstall-cni uninstall-meshd; do
    out=$(run_container deploy/uninstall.yaml meshd-uninstall "$c" 2>&1) && rc=0 || rc=$?
    t_expect_eq "$rc" 0 "$c, as written: $(tail -1 <<<"$out")"
done
t_expect_ok "no pin directory" test ! -e "/sys/fs/bpf/meshd/$node"
left=""
for id in $ids; do bpftool link show id "$id" >/dev/null 2>&1 && left+=" $id"; done
t_expect_eq "$left" "" "no link of meshd's left in the kernel"
t_expect_eq "$(find "$host/run/meshd" -mindepth 1 | head -5)" "" "nothing in /run/meshd (state, mirror, socket)"
t_expect_eq "$(ls "$host/opt/cni/bin")" "" "no plugin in the CNI bin directory"
t_expect_eq "$(jq -c '[.plugins[].type]' "$list")" '["bridge"]' "the conflist without meshd-cni"
t_expect_eq "$(jq -c '.plugins[0] | {type, bridge, ipam}' "$list")" "$before" "its plugin as it was"

t_summary
