#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Runs the end-to-end tests: every tests/e2e/test_*.sh, sorted, each in its
# own bash under `timeout`. Needs root (network namespaces).
#
#   tests/e2e/run.sh [NAME...]   NAME: test_topology.sh, test_topology or topology
#
# Environment: MESHD_BUILD (build dir, default build; exported absolute),
# E2E_TIMEOUT (seconds per test, default 300), E2E_VERBOSE=1 (print every
# test's whole output), E2E_LOG_DIR (where test outputs go; kept on failure).
set -euo pipefail

e2e_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$e2e_dir/../.." && pwd)
cd "$repo_root"

: "${E2E_TIMEOUT:=300}"
: "${E2E_VERBOSE:=0}"
MESHD_BUILD=${MESHD_BUILD:-build}
[[ $MESHD_BUILD == /* ]] || MESHD_BUILD=$repo_root/$MESHD_BUILD
export MESHD_BUILD E2E_DIR=$e2e_dir REPO_ROOT=$repo_root

die() {
    printf 'e2e: %s\n' "$*" >&2
    exit 2
}

[[ $E2E_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "E2E_TIMEOUT must be a number of seconds"
((EUID == 0)) || die "must run as root: the tests create network namespaces"
missing=()
for c in ip nsenter curl python3 timeout awk; do
    command -v "$c" >/dev/null || missing+=("$c")
done
# Tests start servers with this exact interpreter (not a pyenv/venv shim).
[[ -x /usr/bin/python3 ]] || missing+=(/usr/bin/python3)
((${#missing[@]} == 0)) || die "missing prerequisites: ${missing[*]} (make deps installs them)"
ip netns list >/dev/null 2>&1 || die "'ip netns' does not work here"

# shellcheck source=lib/topology.sh
source "$e2e_dir/lib/topology.sh"

all=()
for t in "$e2e_dir"/test_*.sh; do
    [[ -f $t ]] && all+=("$t")
done
selected=()
if (($# == 0)); then
    selected=("${all[@]}")
else
    for want in "$@"; do
        want=${want##*/}
        want=${want%.sh}
        want=test_${want#test_}
        [[ -f $e2e_dir/$want.sh ]] || die "no such test: $want (have: $(cd "$e2e_dir" && echo test_*.sh))"
        selected+=("$e2e_dir/$want.sh")
    done
fi

if [[ -n ${E2E_LOG_DIR:-} ]]; then
    mkdir -p "$E2E_LOG_DIR"
    log_dir=$E2E_LOG_DIR
else
    log_dir=$(mktemp -d /tmp/meshd-e2e-logs.XXXXXX)
fi

# prctl(PR_SET_CHILD_SUBREAPER) survives the exec into bash.
subreaper=(/usr/bin/python3 -c 'import ctypes, os, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
os.execvp(sys.argv[1], sys.argv[1:])')

passed=0
failed=0
child=""

# A test's own traps clean up on TERM; `timeout` sits in its own process group
# (so a terminal's Ctrl-C never reaches it): forward the signal ourselves.
on_signal() {
    trap '' INT TERM HUP
    printf 'e2e: interrupted\n' >&2
    if [[ -n $child ]]; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true # bounded by timeout -k
        failed=$((failed + 1))
        printf 'INTERRUPTED %s (output: %s)\n' "${current:-}" "$log_dir"
    fi
    topo_gc
    printf '%d passed, %d failed\n' "$passed" "$failed"
    exit 130
}
trap on_signal INT TERM HUP

# Left over by a test killed outright in an earlier run.
topo_gc

if ((${#selected[@]} == 0)); then
    echo "e2e: no tests/e2e/test_*.sh found"
fi

for t in "${selected[@]}"; do
    current=$(basename "$t" .sh)
    log=$log_dir/$current.log
    start=$SECONDS
    # -k: time for the test's cleanup after the TERM, then SIGKILL. The test's
    # bash is made a child subreaper: PID 1 here may never reap the orphans
    # of `pid=$(topo_spawn ...)`, and a zombie passes `kill -0`.
    timeout -k 30 "$E2E_TIMEOUT" "${subreaper[@]}" bash "$t" </dev/null >"$log" 2>&1 &
    child=$!
    rc=0
    wait "$child" || rc=$?
    child=""
    topo_gc # only acts if the test was killed before it cleaned up
    secs=$((SECONDS - start))
    if ((rc == 0)); then
        passed=$((passed + 1))
        printf 'PASS %s (%ds)\n' "$current" "$secs"
        if ((E2E_VERBOSE)); then sed 's/^/    | /' "$log"; fi
    else
        failed=$((failed + 1))
        why="exit $rc"
        ((rc != 124)) || why="timed out after ${E2E_TIMEOUT}s"
        ((rc != 137)) || why="SIGKILL$( ((secs < E2E_TIMEOUT)) || echo ", timed out after ${E2E_TIMEOUT}s")"
        printf 'FAIL %s (%ds) [%s]\n' "$current" "$secs" "$why"
        # Indented so a test's own "N passed, N failed" never looks like ours.
        if ((E2E_VERBOSE)); then
            sed 's/^/    | /' "$log"
        else
            # The failed checks first: process logs dumped at exit may be long.
            grep -E '^  FAIL  ' "$log" | sed 's/^/    | /' || true
            printf '    | ... last lines:\n'
            tail -n 50 "$log" | sed 's/^/    | /'
        fi
        printf '    (full output: %s)\n' "$log"
    fi
done

if ((failed == 0)) && [[ -z ${E2E_LOG_DIR:-} ]]; then
    rm -rf -- "$log_dir"
fi
printf '%d passed, %d failed\n' "$passed" "$failed"
((failed == 0))
