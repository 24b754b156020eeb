# shellcheck shell=bash
# shellcheck disable=SC2034 # the globals set here are for the tests
# Network-namespace topology for meshd end-to-end tests (sourced).
#
# Layout built by topo_create N M:
#
#   netns mu<run>        bridge br0: the nodes' underlay, 198.51.100.0/24 and
#                        fd00:5133:6400::/64 (documentation ranges, never real)
#   netns mn<run><i>     node i: m<run>u<i> on br0, forwarding on, routes to
#                        every other node's pod CIDRs via that node
#   netns mp<run><i><j>  pod j of node i: eth0 <-> m<run>p<i><j> on the node,
#                        10.244.<i>.<10+j>/24, fd00:10:244:<i>::<10+j>/64
#
# Nothing is linked to the host namespace, so test traffic cannot leave the
# topology. Every name carries the run id, so concurrent runs never collide
# and cleanup (by exact name, or the prefix m[unp]<run>) touches only ours.
#
# Routing is layer 3 like Cilium/Calico: each host-side veth carries the
# gateway 10.244.<i>.1/24 with noprefixroute plus a /32 route to its pod, and
# the pod sends its whole /24 via the gateway, so even same-node traffic is
# routed through the node's stack (where meshd hooks in).
#
# Every public function returns non-zero on error (and says why on stderr)
# rather than exiting, and is safe under `set -euo pipefail`.

[[ -n ${_TOPO_SOURCED:-} ]] && return 0
_TOPO_SOURCED=1

# Where per-run state lives (pid records, logs, the owner's pid). One dir per
# run id, made with mkdir: that is also what reserves the id.
: "${TOPO_STATE_ROOT:=/tmp/meshd-e2e}"
# Seconds between SIGTERM and SIGKILL when stopping a spawned process.
: "${TOPO_KILL_GRACE:=5}"
# TOPO_KEEP=1 keeps $TOPO_TMP (logs) after cleanup.
: "${TOPO_KEEP:=0}"

declare -g TOPO_RUN="" TOPO_TMP="" TOPO_LAST_PID=""
declare -g TOPO_UNDERLAY_NS="" TOPO_UNDERLAY_BR="" TOPO_NODES=0 TOPO_PODS=0
declare -ga NODE_NS=() NODE_IP4=() NODE_IP6=() NODE_UNDERLAY_IF=()
declare -ga NODE_POD_CIDR4=() NODE_POD_CIDR6=()
declare -gA POD_NS=() POD_IP4=() POD_IP6=() POD_HOST_IF=()
declare -ga _TOPO_NETNS=() _TOPO_CMDS=() _TOPO_PATHS=()
declare -g _TOPO_OWNER=""

_topo_now_ms() {
    local t=${EPOCHREALTIME//[.,]/}
    printf '%s\n' "$((t / 1000))"
}

_topo_log() { printf 'topo: %s\n' "$*" >&2; }

# Runs `ip -n NS ...`, naming the failed command (errexit is off inside a
# function called from a condition, so callers add `|| return 1`).
_topo_ip() {
    local ns=$1
    shift
    ip -n "$ns" "$@" || {
        _topo_log "failed: ip -n $ns $*"
        return 1
    }
}

_topo_sysctl() {
    local ns=$1
    shift
    ip netns exec "$ns" sysctl -q -w "$@" >/dev/null || {
        _topo_log "failed: sysctl in $ns: $*"
        return 1
    }
}

# Prints the start time (clock ticks since boot) of a live, non-zombie PID.
# A PID plus its start time names one process: PIDs get reused.
_topo_starttime() {
    local stat
    local -a f
    # Not $(<file): under set -e bash exits when that file is missing.
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    # Field 2 (comm) may hold spaces and parentheses: cut after the last ')'.
    read -r -a f <<<"${stat##*) }"
    [[ ${f[0]:-Z} != Z && -n ${f[19]:-} ]] || return 1
    printf '%s\n' "${f[19]}"
}

# topo_alive PID: true while PID runs (a zombie is dead). Use it rather
# than `kill -0`: orphans of `pid=$(topo_spawn ...)` may never be reaped.
topo_alive() {
    [[ ${1:-} =~ ^[0-9]+$ ]] && _topo_starttime "$1" >/dev/null
}

_topo_alive() {
    local now
    now=$(_topo_starttime "$1") || return 1
    [[ $now == "$2" ]]
}

# _topo_stop SIGNAL PID:START...: signals the live ones, waits up to
# TOPO_KILL_GRACE seconds, then SIGKILLs what is left. Fails if any survive.
_topo_stop() {
    local sig=$1 r i
    shift
    local -a live=() still=()
    for r in "$@"; do
        if _topo_alive "${r%%:*}" "${r#*:}"; then
            kill -s "$sig" "${r%%:*}" 2>/dev/null || true
            live+=("$r")
        fi
    done
    for ((i = 0; i < TOPO_KILL_GRACE * 10 + 20 && ${#live[@]} > 0; i++)); do
        if ((i == TOPO_KILL_GRACE * 10)); then
            for r in "${live[@]}"; do
                _topo_log "pid ${r%%:*} ignored SIG$sig, sending SIGKILL"
                kill -s KILL "${r%%:*}" 2>/dev/null || true
            done
        fi
        sleep 0.1
        still=()
        for r in "${live[@]}"; do
            if _topo_alive "${r%%:*}" "${r#*:}"; then still+=("$r"); fi
        done
        live=("${still[@]}")
    done
    # Reap the dead that are our own children (no-op for the others).
    for r in "$@"; do
        _topo_alive "${r%%:*}" "${r#*:}" || wait "${r%%:*}" 2>/dev/null || true
    done
    if ((${#live[@]} > 0)); then
        _topo_log "could not stop: ${live[*]%%:*}"
        return 1
    fi
}

# Names of existing netns that belong to run id $1: m<id>..., mu<id>,
# mn<id>..., mp<id>... (ids are hex, so no other run's names match).
_topo_ns_of_run() {
    ip netns list 2>/dev/null | awk -v re="^m[unp]?$1" '$1 ~ re { print $1 }'
}

_topo_is_ours() {
    local n
    for n in "${_TOPO_NETNS[@]}"; do
        [[ $n == "$1" ]] && return 0
    done
    _topo_log "not a netns of run ${TOPO_RUN:-?}: $1"
    return 1
}

# Prints the command of the current trap on signal $1 ('' if none).
_topo_trap_cmd() {
    local cur
    cur=$(trap -p "$1")
    [[ -n $cur ]] || return 0
    eval "set -- $cur" # "trap -- 'cmd' SIG"
    printf '%s' "$3"
}

# topo_init: reserves a run id (TOPO_RUN, 4 hex digits), makes TOPO_TMP and
# installs the EXIT/INT/TERM/HUP traps that run topo_cleanup. An EXIT trap
# set before is kept as a cleanup command; set none after: use
# topo_on_cleanup instead.
topo_init() {
    if [[ -n $TOPO_TMP ]]; then
        _topo_log "topo_init: run $TOPO_RUN is still active"
        return 1
    fi
    if ((EUID != 0)); then
        _topo_log "must run as root (network namespaces)"
        return 1
    fi
    mkdir -p "$TOPO_STATE_ROOT" || return 1
    local try id=""
    for ((try = 0; try < 50; try++)); do
        id=$(printf '%04x' $(((RANDOM << 8 ^ RANDOM ^ $$ ^ try) & 0xffff)))
        if [[ -z $(_topo_ns_of_run "$id") ]] && mkdir "$TOPO_STATE_ROOT/$id" 2>/dev/null; then
            break
        fi
        id=""
    done
    if [[ -z $id ]]; then
        _topo_log "could not reserve a run id under $TOPO_STATE_ROOT"
        return 1
    fi
    TOPO_RUN=$id
    TOPO_TMP=$TOPO_STATE_ROOT/$id
    _TOPO_OWNER=$BASHPID # read here, not in a $(...)
    : >"$TOPO_TMP/pids"
    : >"$TOPO_TMP/paths"
    local p
    for p in "${_TOPO_PATHS[@]}"; do printf '%s\n' "$p" >>"$TOPO_TMP/paths"; done
    # topo_gc uses this to tell an abandoned run from a live one.
    printf '%s:%s\n' "$_TOPO_OWNER" "$(_topo_starttime "$_TOPO_OWNER")" >"$TOPO_TMP/owner"

    local prev
    prev=$(_topo_trap_cmd EXIT)
    [[ -z $prev || $prev == _topo_on_exit ]] || _TOPO_CMDS+=("$prev")
    trap _topo_on_exit EXIT
    trap '_topo_on_signal 129' HUP
    trap '_topo_on_signal 130' INT
    trap '_topo_on_signal 143' TERM
}

_topo_on_signal() {
    _topo_log "run $TOPO_RUN: signal caught, cleaning up"
    exit "$1" # the EXIT trap does the work
}

_topo_on_exit() {
    local rc=$?
    # A second Ctrl-C or TERM must not cut cleanup short; it is bounded.
    trap '' HUP INT TERM
    ((rc == 0)) || _topo_dump_logs
    topo_cleanup || true
    exit "$rc"
}

# On failure, the tail of every spawned process's log helps most.
_topo_dump_logs() {
    [[ -n $TOPO_TMP && -s $TOPO_TMP/pids ]] || return 0
    local log
    while IFS= read -r log; do
        [[ -s $log ]] || continue
        printf -- '---- last lines of %s ----\n' "$log" >&2
        tail -n 25 -- "$log" >&2
    done < <(cut -f3- "$TOPO_TMP/pids" | awk '!seen[$0]++')
}

# topo_create NODES PODS_PER_NODE (each 1..9): builds the layout described at
# the top of this file and fills TOPO_UNDERLAY_NS, TOPO_UNDERLAY_BR, NODE_*[i]
# and POD_*["i,j"].
topo_create() {
    local nodes=${1:-} pods=${2:-}
    if [[ -z $TOPO_TMP ]]; then
        _topo_log "topo_create: call topo_init first"
        return 1
    fi
    if ((${#_TOPO_NETNS[@]} > 0)); then
        _topo_log "topo_create: this run already has a topology"
        return 1
    fi
    # One digit each: "mp<run><i><j>" must stay unambiguous.
    if ! [[ $nodes =~ ^[1-9]$ && $pods =~ ^[1-9]$ ]]; then
        _topo_log "usage: topo_create NODES PODS_PER_NODE (each 1..9)"
        return 1
    fi
    local r=$TOPO_RUN i j k n p uif hif

    TOPO_UNDERLAY_NS=mu$r
    TOPO_UNDERLAY_BR=br0
    _topo_netns_add "$TOPO_UNDERLAY_NS" || return 1
    _topo_ip "$TOPO_UNDERLAY_NS" link add br0 type bridge stp_state 0 || return 1
    _topo_ip "$TOPO_UNDERLAY_NS" link set br0 up || return 1

    for ((i = 1; i <= nodes; i++)); do
        n=mn$r$i
        uif=m${r}u$i
        _topo_netns_add "$n" || return 1
        _topo_sysctl "$n" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 || return 1
        _topo_ip "$TOPO_UNDERLAY_NS" link add "m${r}b$i" type veth peer name "$uif" netns "$n" || return 1
        _topo_ip "$TOPO_UNDERLAY_NS" link set "m${r}b$i" master br0 up || return 1
        _topo_ip "$n" addr add "198.51.100.$((10 + i))/24" dev "$uif" || return 1
        _topo_ip "$n" addr add "fd00:5133:6400::$((10 + i))/64" dev "$uif" nodad || return 1
        _topo_ip "$n" link set "$uif" up || return 1
        NODE_NS[i]=$n
        NODE_IP4[i]=198.51.100.$((10 + i))
        NODE_IP6[i]=fd00:5133:6400::$((10 + i))
        NODE_UNDERLAY_IF[i]=$uif
        NODE_POD_CIDR4[i]=10.244.$i.0/24
        NODE_POD_CIDR6[i]=fd00:10:244:$i::/64

        for ((j = 1; j <= pods; j++)); do
            p=mp$r$i$j
            hif=m${r}p$i$j
            _topo_netns_add "$p" || return 1
            _topo_ip "$n" link add "$hif" type veth peer name eth0 netns "$p" || return 1
            # The same gateway address on every pod's veth, as CNIs do.
            _topo_ip "$n" addr add "10.244.$i.1/24" dev "$hif" noprefixroute || return 1
            _topo_ip "$n" addr add "fd00:10:244:$i::1/64" dev "$hif" nodad noprefixroute || return 1
            _topo_ip "$n" link set "$hif" up || return 1
            _topo_ip "$n" route add "10.244.$i.$((10 + j))/32" dev "$hif" src "10.244.$i.1" || return 1
            _topo_ip "$n" -6 route add "fd00:10:244:$i::$((10 + j))/128" dev "$hif" || return 1

            _topo_ip "$p" addr add "10.244.$i.$((10 + j))/24" dev eth0 noprefixroute || return 1
            _topo_ip "$p" addr add "fd00:10:244:$i::$((10 + j))/64" dev eth0 nodad noprefixroute || return 1
            _topo_ip "$p" link set eth0 up || return 1
            _topo_ip "$p" route add "10.244.$i.1/32" dev eth0 scope link || return 1
            _topo_ip "$p" route add "10.244.$i.0/24" via "10.244.$i.1" dev eth0 || return 1
            _topo_ip "$p" route add default via "10.244.$i.1" dev eth0 || return 1
            _topo_ip "$p" -6 route add "fd00:10:244:$i::1/128" dev eth0 || return 1
            _topo_ip "$p" -6 route add "fd00:10:244:$i::/64" via "fd00:10:244:$i::1" dev eth0 || return 1
            _topo_ip "$p" -6 route add default via "fd00:10:244:$i::1" dev eth0 || return 1
            POD_NS[$i,$j]=$p
            POD_IP4[$i,$j]=10.244.$i.$((10 + j))
            POD_IP6[$i,$j]=fd00:10:244:$i::$((10 + j))
            POD_HOST_IF[$i,$j]=$hif
        done
    done

    for ((i = 1; i <= nodes; i++)); do
        for ((k = 1; k <= nodes; k++)); do
            ((k != i)) || continue
            _topo_ip "${NODE_NS[i]}" route add "10.244.$k.0/24" via "${NODE_IP4[k]}" dev "${NODE_UNDERLAY_IF[i]}" || return 1
            _topo_ip "${NODE_NS[i]}" -6 route add "fd00:10:244:$k::/64" via "${NODE_IP6[k]}" dev "${NODE_UNDERLAY_IF[i]}" || return 1
        done
    done
    TOPO_NODES=$nodes
    TOPO_PODS=$pods
}

# topo_netns_add NAME: an extra netns for a test, deleted by topo_cleanup;
# NAME must start with m$TOPO_RUN. Comes with lo up and IPv6 DAD off
# (addresses usable at once), like all of the topology's netns.
topo_netns_add() {
    local ns=${1:-}
    if [[ -z $TOPO_TMP || $ns != "m$TOPO_RUN"* || ${#ns} -gt 64 ]]; then
        _topo_log "usage: topo_netns_add m${TOPO_RUN:-<run>}NAME (after topo_init)"
        return 1
    fi
    _topo_netns_add "$ns"
}

# Recorded right after creation, so a later failure still deletes it.
_topo_netns_add() {
    ip netns add "$1" || {
        _topo_log "failed: ip netns add $1"
        return 1
    }
    _TOPO_NETNS+=("$1")
    # `ip netns exec` bind-mounts /etc/netns/NAME/* over /etc: resolvers in
    # our netns then ask the netns's own loopback (refused at once) instead
    # of sending queries towards the host's nameserver.
    mkdir -p "/etc/netns/$1" &&
        printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"/etc/netns/$1/resolv.conf" || return 1
    _topo_ip "$1" link set lo up || return 1
    _topo_sysctl "$1" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

# topo_spawn NETNS LOGFILE CMD...: runs CMD in the background inside NETNS
# (ip netns exec: private mount namespace with that netns's /sys), output
# appended to LOGFILE. Prints the PID and sets TOPO_LAST_PID. The PID is
# recorded in a file, so `pid=$(topo_spawn ...)` is fine.
topo_spawn() { _topo_spawn netns "$@"; }

# topo_spawn_nsenter NETNS LOGFILE CMD...: the same through nsenter --net,
# keeping the host mount namespace (bpffs pins stay visible host-wide).
topo_spawn_nsenter() { _topo_spawn nsenter "$@"; }

# topo_spawn_here LOGFILE CMD...: the same in the caller's own netns; only
# for tests/vm/twonode.sh, where a whole qemu guest is the node.
topo_spawn_here() { _topo_spawn here - "$@"; }

_topo_spawn() {
    local how=$1 ns=${2:-} log=${3:-} pid start
    if (($# < 4)); then
        _topo_log "usage: topo_spawn NETNS LOGFILE CMD... (also topo_spawn_nsenter)"
        return 1
    fi
    shift 3
    [[ -n $TOPO_TMP ]] || { _topo_log "topo_spawn: call topo_init first"; return 1; }
    [[ $how == here ]] || _topo_is_ours "$ns" || return 1
    mkdir -p -- "$(dirname -- "$log")" || return 1
    if [[ $how == netns ]]; then
        ip netns exec "$ns" "$@" </dev/null >>"$log" 2>&1 &
    elif [[ $how == here ]]; then
        "$@" </dev/null >>"$log" 2>&1 &
    else
        nsenter --net="/run/netns/$ns" -- "$@" </dev/null >>"$log" 2>&1 &
    fi
    pid=$!
    # Start time is taken at fork, so exec does not change it; "-" if the
    # command is already gone (nothing to kill later).
    start=$(_topo_starttime "$pid") || start=-
    printf '%s\t%s\t%s\n' "$pid" "$start" "$log" >>"$TOPO_TMP/pids"
    TOPO_LAST_PID=$pid
    printf '%s\n' "$pid"
}

# topo_kill PID [SIGNAL]: stops a process started by topo_spawn* (SIGNAL,
# default TERM, then SIGKILL after TOPO_KILL_GRACE s). Refuses other PIDs.
topo_kill() {
    local pid=${1:-} sig=${2:-TERM} start
    [[ -n $TOPO_TMP && -f $TOPO_TMP/pids ]] || { _topo_log "topo_kill: no active run"; return 1; }
    start=$(awk -F'\t' -v p="$pid" '$1 == p { s = $2 } END { if (s == "") exit 1; print s }' \
        "$TOPO_TMP/pids") || {
        _topo_log "topo_kill: pid '$pid' was not started by topo_spawn"
        return 1
    }
    [[ $start != - ]] || return 0
    _topo_stop "$sig" "$pid:$start"
}

# topo_wait_tcp NETNS ADDR PORT [TIMEOUT_S=10]: waits until something listens
# on PORT inside NETNS (ADDR is kept for the message and callers). The
# timeout is multiplied by TOPO_WAIT_SCALE (default 1; tests/vm/run.sh
# sets 6: under qemu TCG on a loaded host, python takes >10 s to listen).
topo_wait_tcp() {
    local ns=${1:-} addr=${2:-} port=${3:-} tmo=${4:-10} i deadline
    if [[ -z $addr || ! $port =~ ^[0-9]+$ || ! $tmo =~ ^[0-9]+$ || ! ${TOPO_WAIT_SCALE:-1} =~ ^[1-9][0-9]?$ ]]; then
        _topo_log "usage: topo_wait_tcp NETNS ADDR PORT [TIMEOUT_S] (TOPO_WAIT_SCALE 1..99)"
        return 1
    fi
    tmo=$((tmo * ${TOPO_WAIT_SCALE:-1}))
    _topo_is_ours "$ns" || return 1
    deadline=$(($(_topo_now_ms) + tmo * 1000))
    for ((i = 0; i <= tmo * 10; i++)); do
        # A listening socket, not a connect: in an enrolled pod meshd
        # accepts every captured connect, listener or not.
        if [ -n "$(ip netns exec "$ns" ss -Hltn "sport = :$port" 2>/dev/null)" ]; then
            return 0
        fi
        (($(_topo_now_ms) < deadline)) || break
        sleep 0.1
    done
    _topo_log "nothing accepts on $addr port $port in $ns after ${tmo}s"
    return 1
}

# topo_exec NETNS CMD...: runs CMD in the foreground inside a netns of this
# run (a checked `ip netns exec`).
topo_exec() {
    local ns=${1:-}
    shift || true
    _topo_is_ours "$ns" || return 1
    ip netns exec "$ns" "$@"
}

# topo_on_cleanup "CMD": CMD is eval'd by topo_cleanup, after the spawned
# processes are stopped and before the netns go, last registered first. It
# must finish on its own (bounded). Must be called in the test's own shell,
# not in a $(...) subshell.
# topo_on_cleanup --rm PATH...: PATH (absolute) is removed with rm -rf at the
# end of cleanup; also by topo_gc if the test was killed outright.
topo_on_cleanup() {
    if [[ ${1:-} == --rm ]]; then
        shift
        local p
        for p in "$@"; do
            if [[ $p != /* || $p == / || $p == *..* ]]; then
                _topo_log "topo_on_cleanup --rm: refusing path '$p' (absolute, no '..')"
                return 1
            fi
            _TOPO_PATHS+=("$p")
            [[ -z $TOPO_TMP ]] || printf '%s\n' "$p" >>"$TOPO_TMP/paths"
        done
        return 0
    fi
    (($# > 0)) || { _topo_log "usage: topo_on_cleanup CMD | --rm PATH..."; return 1; }
    _TOPO_CMDS+=("$*")
}

# topo_cleanup: stops recorded processes, runs registered commands, kills
# whatever still runs inside our netns, deletes them, removes registered
# paths and TOPO_TMP (unless TOPO_KEEP=1). Idempotent; only acts in the shell
# that ran topo_init. Fails if a netns of the run is left.
topo_cleanup() {
    [[ -n $TOPO_TMP && $_TOPO_OWNER == "$BASHPID" ]] || return 0
    local errexit=0 rc=0 k
    [[ $- == *e* ]] && errexit=1
    set +e

    local -a recs=()
    mapfile -t recs < <(awk -F'\t' '$2 != "-" { print $1 ":" $2 }' "$TOPO_TMP/pids" 2>/dev/null)
    ((${#recs[@]} == 0)) || _topo_stop TERM "${recs[@]}" || rc=1

    for ((k = ${#_TOPO_CMDS[@]} - 1; k >= 0; k--)); do
        eval "${_TOPO_CMDS[k]}" || _topo_log "cleanup command failed: ${_TOPO_CMDS[k]}"
    done
    _TOPO_CMDS=()

    local -a all=()
    mapfile -t all < <({
        printf '%s\n' "${_TOPO_NETNS[@]}"
        _topo_ns_of_run "$TOPO_RUN"
    } | awk 'NF && !seen[$0]++')
    _topo_del_netns "${all[@]}" || rc=1
    _TOPO_NETNS=()

    local p
    for p in "${_TOPO_PATHS[@]}"; do rm -rf -- "$p"; done
    _TOPO_PATHS=()
    if ((TOPO_KEEP)); then
        rm -f -- "$TOPO_TMP/owner"
        _topo_log "kept $TOPO_TMP"
    else
        rm -rf -- "$TOPO_TMP"
    fi
    TOPO_TMP=""
    TOPO_NODES=0 TOPO_PODS=0
    ((errexit)) && set -e
    return "$rc"
}

# Deletes the named netns after stopping any process still inside: all of
# them were started from this run, as no one else knows these names.
_topo_del_netns() {
    local ns pid start rc=0
    local -a inside=()
    for ns in "$@"; do
        [[ -e /run/netns/$ns ]] || continue
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            start=$(_topo_starttime "$pid") && inside+=("$pid:$start")
        done
    done
    ((${#inside[@]} == 0)) || _topo_stop TERM "${inside[@]}" || rc=1
    for ns in "$@"; do
        if [[ -e /run/netns/$ns ]]; then ip netns del "$ns" || rc=1; fi
        rm -rf -- "/etc/netns/$ns"
    done
    for ns in "$@"; do
        if [[ -e /run/netns/$ns ]]; then
            _topo_log "netns $ns is still there"
            rc=1
        fi
    done
    return "$rc"
}

# topo_gc: cleans up after runs whose owning shell died without cleaning up
# (SIGKILL, timeout -k): their recorded processes, netns and registered paths.
# Runs of live shells are left alone, so concurrent runs are safe.
topo_gc() {
    local dir id owner p
    local -a recs=() paths=() nss=()
    for dir in "$TOPO_STATE_ROOT"/*/; do
        dir=${dir%/}
        id=${dir##*/}
        [[ $id =~ ^[0-9a-f]{4}$ && $id != "$TOPO_RUN" && -f $dir/owner ]] || continue
        { read -r owner <"$dir/owner"; } 2>/dev/null || continue
        ! _topo_alive "${owner%%:*}" "${owner#*:}" || continue
        _topo_log "collecting abandoned run $id"
        mapfile -t recs < <(awk -F'\t' '$2 != "-" { print $1 ":" $2 }' "$dir/pids" 2>/dev/null)
        ((${#recs[@]} == 0)) || _topo_stop TERM "${recs[@]}" || true
        mapfile -t nss < <({
            _topo_ns_of_run "$id"
            find /etc/netns -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | awk -v re="^m[unp]?$id" '$1 ~ re'
        } | sort -u)
        ((${#nss[@]} == 0)) || _topo_del_netns "${nss[@]}" || true
        mapfile -t paths < <(cat "$dir/paths" 2>/dev/null)
        for p in "${paths[@]}"; do
            [[ $p == /* && $p != / && $p != *..* ]] && rm -rf -- "$p"
        done
        rm -rf -- "$dir"
    done
    return 0
}
