# shellcheck shell=bash
# Minimal check helpers for e2e tests (sourced). A failed check is counted
# and reported but does not stop the test, so one run shows every failure;
# t_summary, last in the test, makes the exit status.

[[ -n ${_T_SOURCED:-} ]] && return 0
_T_SOURCED=1

declare -g T_PASSED=0 T_FAILED=0 T_NAME=""

# t_begin NAME: starts a group of checks; failures are tagged with NAME.
t_begin() {
    T_NAME=${1:-}
    printf '== %s\n' "$T_NAME"
}

t_ok() {
    T_PASSED=$((T_PASSED + 1))
    printf '  ok    %s\n' "${1:-}"
}

# t_fail MSG: records a failure; returns 0 so `set -e` tests go on.
t_fail() {
    T_FAILED=$((T_FAILED + 1))
    printf '  FAIL  %s%s\n' "${T_NAME:+[$T_NAME] }" "${1:-}"
}

# Long outputs are cut in messages to keep logs readable.
_t_short() {
    local s=$1
    ((${#s} <= 300)) || s="${s:0:300}...(${#s} chars)"
    printf '%s' "$s"
}

# t_expect_eq ACTUAL EXPECTED [MSG]
t_expect_eq() {
    local act=${1-} exp=${2-} msg=${3:-"equals '${2-}'"}
    if [[ $act == "$exp" ]]; then
        t_ok "$msg"
    else
        t_fail "$msg: expected '$(_t_short "$exp")', got '$(_t_short "$act")'"
    fi
}

# t_expect_contains HAYSTACK NEEDLE [MSG]
t_expect_contains() {
    local hay=${1-} needle=${2-} msg=${3:-"contains '${2-}'"}
    if [[ $hay == *"$needle"* ]]; then
        t_ok "$msg"
    else
        t_fail "$msg: '$(_t_short "$needle")' not in '$(_t_short "$hay")'"
    fi
}

# t_expect_not_contains HAYSTACK NEEDLE [MSG]
t_expect_not_contains() {
    local hay=${1-} needle=${2-} msg=${3:-"does not contain '${2-}'"}
    if [[ $hay != *"$needle"* ]]; then
        t_ok "$msg"
    else
        t_fail "$msg: '$(_t_short "$needle")' found in '$(_t_short "$hay")'"
    fi
}

# t_expect_ok MSG CMD...: passes if CMD exits 0.
t_expect_ok() {
    local msg=${1:-} rc=0
    shift
    "$@" || rc=$?
    if ((rc == 0)); then t_ok "$msg"; else t_fail "$msg: exit status $rc from: $*"; fi
}

# t_expect_fail MSG CMD...: passes if CMD exits non-zero.
t_expect_fail() {
    local msg=${1:-} rc=0
    shift
    "$@" || rc=$?
    if ((rc != 0)); then t_ok "$msg"; else t_fail "$msg: succeeded: $*"; fi
}

# t_summary: prints "N passed, N failed" (checks); non-zero if any failed.
t_summary() {
    printf '%d passed, %d failed\n' "$T_PASSED" "$T_FAILED"
    ((T_FAILED == 0))
}
