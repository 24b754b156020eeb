#!/usr/bin/env bash
# The kernel matrix (make vmtest): for each kernel, one guest runs the BPF
# feature probe and the e2e tests that load every kind of program meshd
# has; then, for each two consecutive kernels of the list, two guests joined
# by a virtual link (qemu's socket netdev on 127.0.0.1) run one meshd each:
# tests/vm/twonode.sh, a real two-node mesh across two kernels. One VM or
# one pair at a time. Prints a kernel x test table and writes it to
# build/vm/results.md.
#
#   tests/vm/matrix.sh [KERNEL...]      KERNEL as tests/vm/run.sh takes
#                                       (default: 6.1 6.12 host)
#
# Environment: VM_E2E (the e2e tests of each single guest, default
# "capture inbound": connect4/6, sockops and the ring buffer it feeds,
# sk_storage, sk_lookup and its sockmap, i.e. every program meshd loads;
# "capture inbound restart sec_mark" adds pinned links taken over and the
# forged-mark check, about 2 minutes more per kernel on an idle host; empty:
# the probe only), VM_TIMEOUT
# (seconds per single guest, 1200), VM_PAIR_TIMEOUT (seconds per guest of a
# pair, 900), E2E_TIMEOUT (seconds per e2e test in the guest, 420),
# VM_PAIR=0 (no pairs). A guest still running at its timeout is killed
# and reported TIMEOUT; its tests that never reported are "not run".
# Everything else (VM_NICE, VM_MEM, MESHD_BUILD...) goes to run.sh.
set -euo pipefail

vm_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$vm_dir/../.." && pwd)
cd "$repo_root"

: "${VM_E2E=capture inbound}"
: "${VM_TIMEOUT:=1200}"
: "${VM_PAIR_TIMEOUT:=900}"
: "${E2E_TIMEOUT:=420}"
: "${VM_PAIR:=1}"
export E2E_TIMEOUT
MESHD_BUILD=${MESHD_BUILD:-build}
[[ $MESHD_BUILD == /* ]] || MESHD_BUILD=$repo_root/$MESHD_BUILD
export MESHD_BUILD
cache=$repo_root/build/vm
results_md=$cache/results.md

die() {
    printf 'vmtest: %s\n' "$*" >&2
    exit 2
}
say() { printf 'vmtest: %s\n' "$*"; }

kernels=("$@")
((${#kernels[@]} > 0)) || kernels=(6.1 6.12 host)
for v in VM_TIMEOUT VM_PAIR_TIMEOUT E2E_TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a number of seconds"
done
tests=()
read -r -a tests <<<"$VM_E2E" || true
for t in "${tests[@]}"; do
    t=test_${t#test_}
    [[ -f tests/e2e/$t.sh ]] || die "VM_E2E: no tests/e2e/$t.sh"
done
[[ -x $MESHD_BUILD/meshd && -x $MESHD_BUILD/meshctl ]] || die "$MESHD_BUILD/meshd is not built (make)"
# The feature probe's kernel side (make vmtest builds it) and its plan,
# made here: the guest only asks (tests/vm/bpf_probe.sh).
probe=${MESHD_BUILD#"$repo_root"/}/tests/vm_bpf_probe
[[ -x $probe ]] || make --no-print-directory -s BUILD="${MESHD_BUILD#"$repo_root"/}" "$probe" ||
    die "building $probe failed"
tests/vm/bpf_probe.sh --plan >"$MESHD_BUILD/tests/vm_bpf_plan" || die "tests/vm/bpf_probe.sh --plan failed"
mkdir -p "$cache"
rm -f "$results_md"

matrix_start=$SECONDS
# run.sh processes of a pair, in the background: stopped (they stop their
# qemu) when this script is interrupted.
children=()
on_signal() {
    trap '' INT TERM HUP
    say "interrupted: stopping the guests"
    local p
    for p in "${children[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${children[@]}"; do wait "$p" 2>/dev/null || true; done
    exit 130
}
trap on_signal INT TERM HUP
# Per kernel column: K_SPEC, K_RUN (run name: the release), K_DESC, K_STATE.
declare -a K_SPEC=() K_RUN=() K_DESC=() K_STATE=() K_NOTE=()
# CELL[row,col]: a table cell; ROWS in order.
declare -A CELL=()
declare -a ROWS=(bpf_features)
for t in "${tests[@]}"; do ROWS+=("test_${t#test_}"); done

# read_result FILE: sets R_RUN R_DESC R_STATE R_SECS R_COUNTS from the
# last line run.sh wrote to FILE.
read_result() {
    R_RUN="" R_DESC="" R_STATE=noresult R_SECS=0 R_COUNTS=""
    [[ -s $1 ]] || return 0
    IFS=$'\t' read -r _ R_RUN R_DESC R_STATE R_SECS R_COUNTS < <(tail -n 1 "$1")
    local v
    for v in R_RUN R_DESC R_STATE R_SECS R_COUNTS; do [[ ${!v} != - ]] || printf -v "$v" '%s' ""; done
}

# test_cells COL RUN: CELL[row,COL] from RUN's output.log ("PASS test_x (Ns)"
# lines of tests/e2e/run.sh and bpf_probe.sh).
test_cells() {
    local col=$1 log=$cache/$2/out/output.log row st
    [[ -f $log ]] || log=/dev/null # a guest killed before its first line
    for row in "${ROWS[@]}"; do
        # "PASS (82s)", "FAIL (12s) [missing: ...]": the verdict, the time and
        # the reason run.sh or the probe gave (markdown's | escaped).
        st=$(tr -d '\r' <"$log" | sed -n -E "s/^(PASS|FAIL) $row \(([0-9]+)s[^)]*\)( \[(.*)\])?\$/\1 (\2s)\3/p" |
            tail -n 1 | cut -c1-400 | sed 's/|/\\|/g')
        CELL[$row,$col]=${st:-not run}
    done
}

# --- single guests ----------------------------------------------------------

# shellcheck disable=SC2016 # expanded in the guest
guest_cmd='tests/vm/bpf_probe.sh --plan-file "$MESHD_BUILD/tests/vm_bpf_plan"'
((${#tests[@]} == 0)) || guest_cmd+=" && tests/e2e/run.sh ${tests[*]}"
col=0
for spec in "${kernels[@]}"; do
    if [[ $spec == host ]]; then
        # The running kernel, unless the matrix already has that release.
        rel=$(uname -r) dup=""
        for r in "${K_RUN[@]}"; do [[ $r == "$rel" ]] && dup=$r; done
        if [[ -n $dup ]]; then
            say "host kernel $rel is already in the matrix"
            continue
        fi
    fi
    rfile=$cache/.result-$col
    rm -f "$rfile"
    say "[$((SECONDS - matrix_start))s] kernel $spec: $guest_cmd"
    for try in 1 2; do
        VM_QUIET=${VM_QUIET:-1} VM_RESULTS=$rfile VM_TIMEOUT=$VM_TIMEOUT VM_TAG="" VM_NET="" VM_SHARE="" VM_IP="" \
            "$vm_dir/run.sh" "$spec" -- "$guest_cmd" &
        children=("$!")
        wait "$!" || true
        children=()
        read_result "$rfile"
        rm -f "$rfile"
        # A guest that never reached its command (a boot lost to a loaded
        # host) gets one more boot; a test failure does not.
        [[ $R_STATE == noboot && $try == 1 ]] || break
        say "kernel $spec: the guest did not boot; once more"
    done
    K_SPEC[col]=$spec K_RUN[col]=$R_RUN K_DESC[col]=${R_DESC:-$spec} K_STATE[col]=$R_STATE K_NOTE[col]=""
    case $R_STATE in
    skip)
        K_NOTE[col]=$R_COUNTS
        for row in "${ROWS[@]}"; do CELL[$row,$col]=SKIP; done
        ;;
    noresult)
        K_NOTE[col]="run.sh gave no result (see its output above)"
        for row in "${ROWS[@]}"; do CELL[$row,$col]="not run"; done
        ;;
    *)
        test_cells "$col" "$R_RUN"
        [[ $R_STATE == timeout ]] && K_NOTE[col]="the guest was killed at its ${VM_TIMEOUT}s timeout"
        if [[ $R_STATE == noboot ]]; then
            K_NOTE[col]="the guest never ran the command: $(grep -a -m 1 -e 'Kernel panic' -e 'MESHVM-BOOT-FAILED' \
                "$cache/$R_RUN/console.log" 2>/dev/null | tr -d '\r|' | cut -c1-200) (build/vm/$R_RUN/console.log)"
        fi
        # The guest's own report: PASS/FAIL lines and the failures' details.
        [[ -s $cache/$R_RUN/out/output.log ]] && tr -d '\r' <"$cache/$R_RUN/out/output.log" | sed 's/^/  | /'
        ;;
    esac
    col=$((col + 1))
done
ncols=$col

# --- pairs ------------------------------------------------------------------

# free_port: a TCP port nothing on 127.0.0.1 listens on.
free_port() {
    local p _
    for _ in $(seq 1 50); do
        p=$((40000 + RANDOM % 20000))
        [[ -z $(ss -Hltn "sport = :$p") ]] && { echo "$p"; return 0; }
    done
    return 1
}

# run_pair A B: node 1 on column A's kernel, node 2 on B's; the pair row's
# cells for both columns.
pair_rows=()
run_pair() {
    local a=$1 b=$2 n=$((${#pair_rows[@]} + 1)) share port i pid1 pid2 st
    local row="two guests #$n: node 1 ${K_RUN[a]} <-> node 2 ${K_RUN[b]}"
    pair_rows+=("$row")
    share=$cache/pair-$n
    rm -rf "$share"
    mkdir -p "$share"
    "$MESHD_BUILD/meshctl" ca init "$share/mesh-ca" >/dev/null || die "meshctl ca init $share/mesh-ca failed"
    for i in 1 2; do
        "$MESHD_BUILD/meshctl" ca node "meshvm-node-$i" --ca-dir "$share/mesh-ca" "$share/node-$i" >/dev/null ||
            die "meshctl ca node meshvm-node-$i failed"
    done
    port=$(free_port) || die "no free port on 127.0.0.1"
    say "[$((SECONDS - matrix_start))s] pair $n: node 1 on ${K_RUN[a]}, node 2 on ${K_RUN[b]} (link 127.0.0.1:$port)"
    pair_vm() { # NODE SPEC NET
        VM_QUIET=1 VM_RESULTS=$share/result-$1 VM_TIMEOUT=$VM_PAIR_TIMEOUT VM_TAG=node$1 VM_NET=$3 \
            VM_MAC=52:54:00:6d:76:0$1 VM_IP=198.51.100.1$1/24,fd00:5133:6400::1$1/64 VM_SHARE=$share \
            VM_SMP=${VM_PAIR_SMP:-1} VM_MEM=${VM_PAIR_MEM:-1536M} \
            "$vm_dir/run.sh" "$2" -- tests/vm/twonode.sh "$1" "$share" >"$share/run-$1.log" 2>&1
    }
    # Node 2's qemu listens; node 1's connects once it does.
    pair_vm 2 "${K_SPEC[b]}" "listen:$port" &
    pid2=$!
    children=("$pid2")
    for i in $(seq 1 300); do
        [[ -n $(ss -Hltn "sport = :$port") ]] && break
        kill -0 "$pid2" 2>/dev/null || break
        sleep 0.2
    done
    if [[ -n $(ss -Hltn "sport = :$port") ]]; then
        pair_vm 1 "${K_SPEC[a]}" "connect:$port" &
        pid1=$!
        children+=("$pid1")
        wait "$pid1" || true
    else
        say "pair $n: node 2's qemu never listened on $port"
    fi
    wait "$pid2" || true
    children=()
    for i in 1 2; do
        local c=$a
        ((i == 2)) && c=$b
        read_result "$share/result-$i"
        case $R_STATE in
        passed) st="PASS node $i (${R_SECS}s; ${R_COUNTS:-?})" ;;
        failed) st="FAIL node $i (${R_COUNTS:-no summary})" ;;
        timeout) st="TIMEOUT node $i (killed at ${VM_PAIR_TIMEOUT}s; ${R_COUNTS:-no summary})" ;;
        noboot) st="NOBOOT node $i" ;;
        *) st="not run (node $i: $(tail -n 1 "$share/run-$i.log" 2>/dev/null || echo 'no output'))" ;;
        esac
        CELL[$row,$c]=$st
        say "pair $n node $i (${K_RUN[c]}): $st"
        [[ -n $R_RUN && -s $cache/$R_RUN/out/output.log ]] && tr -d '\r' <"$cache/$R_RUN/out/output.log" | sed "s/^/  $i| /"
    done
}

runnable=()
for ((c = 0; c < ncols; c++)); do
    [[ ${K_STATE[c]} == skip || ${K_STATE[c]} == noresult ]] || runnable+=("$c")
done
if ((VM_PAIR)); then
    if ((${#runnable[@]} == 1)); then
        run_pair "${runnable[0]}" "${runnable[0]}" # one kernel: both nodes on it
    fi
    for ((i = 0; i + 1 < ${#runnable[@]}; i++)); do
        run_pair "${runnable[i]}" "${runnable[i + 1]}"
    done
fi

# --- the table --------------------------------------------------------------

total=$((SECONDS - matrix_start))
bad=0
{
    echo "# vmtest: kernel x test"
    echo
    printf '%s, %d min %02d s, qemu TCG on %s (%d cores).\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" \
        $((total / 60)) $((total % 60)) "$(uname -n)" "$(nproc)"
    echo
    printf '| test |'
    for ((c = 0; c < ncols; c++)); do printf ' %s |' "${K_DESC[c]}"; done
    printf '\n|---|'
    for ((c = 0; c < ncols; c++)); do printf -- '---|'; done
    printf '\n| guest |'
    for ((c = 0; c < ncols; c++)); do printf ' %s |' "${K_STATE[c]^^}"; done
    echo
    for row in "${ROWS[@]}" "${pair_rows[@]}"; do
        printf '| %s |' "$row"
        for ((c = 0; c < ncols; c++)); do printf ' %s |' "${CELL[$row,$c]:--}"; done
        echo
    done
    echo
    for ((c = 0; c < ncols; c++)); do
        [[ -n ${K_NOTE[c]} ]] && printf -- '- %s: %s\n' "${K_DESC[c]}" "${K_NOTE[c]}"
        [[ -n ${K_RUN[c]} ]] && printf -- '- %s: build/vm/%s/\n' "${K_DESC[c]}" "${K_RUN[c]}"
    done
    for ((i = 1; i <= ${#pair_rows[@]}; i++)); do
        printf -- '- two guests #%d: build/vm/pair-%d/ (run-1.log, run-2.log) and build/vm/<release>-node1/, -node2/\n' "$i" "$i"
    done
} >"$results_md"
for ((c = 0; c < ncols; c++)); do
    case ${K_STATE[c]} in passed | skip) ;; *) bad=$((bad + 1)) ;; esac
done
for row in "${ROWS[@]}" "${pair_rows[@]}"; do
    for ((c = 0; c < ncols; c++)); do
        case ${CELL[$row,$c]:--} in PASS* | SKIP | -) ;; *) bad=$((bad + 1)) ;; esac
    done
done
echo
cat "$results_md"
echo
((${#runnable[@]} > 0)) || { say "no kernel was run"; exit 1; }
((bad == 0)) || { say "$bad cell(s) of the matrix are not PASS (build/vm/results.md)"; exit 1; }
say "the matrix passed in ${total}s (build/vm/results.md)"
