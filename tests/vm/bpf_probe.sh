#!/usr/bin/env bash
# Does the running kernel have every BPF feature meshd's programs use? Run
# in each vmtest guest before the e2e tests (tests/vm/matrix.sh), so an old
# or oddly configured kernel fails with the feature named rather than with
# a test timing out.
#
#   tests/vm/bpf_probe.sh --plan [BPF_SOURCE...] >PLAN   (on the host)
#   tests/vm/bpf_probe.sh [--plan-file PLAN]             (in the guest)
#
# The plan is read from the sources (default bpf/*.bpf.c), so a new
# program or map needs no edit here: each SEC("...") gives a program type,
# each BPF_MAP_TYPE_* (in bpf/ and bpf/lib/) a map type, and each helper a
# file calls (a name libbpf's bpf_helper_defs.h declares) must be callable
# from one of that file's program types. One line per need:
#   MEANING <tab> prog TYPE | map TYPE | helper ID PROG_TYPE...
# matrix.sh writes it to $MESHD_BUILD/tests/vm_bpf_plan before booting: in a
# guest under TCG every process costs, so the guest side is plain bash and
# one run of $MESHD_BUILD/tests/vm_bpf_probe (tests/vm/bpf_probe.c,
# libbpf's probes: a tiny load each), which answers every question at once.
# Without --plan-file, the plan is made on the spot. BPF_PROBE_ANSWERS names
# a file of answers ("prog sk_lookup yes"...) to use instead of the
# kernel's, to test this script.
#
# Prints, in tests/e2e/run.sh's format, one line:
#   PASS bpf_features (Ns)
#   FAIL bpf_features (Ns) [missing: program type sk_lookup (bpf/inbound.bpf.c), ...]
# and exits 1 when something is missing, 2 when it cannot tell.
# (libbpf_probe_bpf_helper may say yes where its probe program cannot load
# for another reason: a missing helper named here is certain, a yes is not.)
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$SECONDS

cannot() {
    printf 'FAIL bpf_features (%ds) [cannot probe: %s]\n' "$((SECONDS - start))" "$*"
    exit 2
}

# prog_type SECTION: libbpf's name of the program type a section loads as.
prog_type() {
    case $1 in
    cgroup/connect4 | cgroup/connect6 | cgroup/sendmsg* | cgroup/recvmsg* | cgroup/bind* | cgroup/getpeername* | cgroup/getsockname*)
        echo cgroup_sock_addr ;;
    sockops) echo sock_ops ;;
    sk_lookup) echo sk_lookup ;;
    cgroup/sock_create | cgroup/sock_release | cgroup/post_bind*) echo cgroup_sock ;;
    tc | tc/* | classifier | classifier/*) echo sched_cls ;;
    sk_msg) echo sk_msg ;;
    *) return 1 ;;
    esac
}

# plan SOURCE...: the needs, one line each (see above).
plan() {
    local defs=/usr/include/bpf/bpf_helper_defs.h map name src sec t h id
    local -a srcs=("$@") types
    ((${#srcs[@]} > 0)) || srcs=(bpf/*.bpf.c)
    [[ -r $defs ]] || cannot "$defs missing (libbpf-dev)"
    for map in $(grep -ho 'BPF_MAP_TYPE_[A-Z_]*' bpf/*.c bpf/lib/*.h 2>/dev/null | sort -u); do
        name=${map#BPF_MAP_TYPE_}
        printf 'map type %s\tmap %s\n' "${name,,}" "${name,,}"
    done
    for src in "${srcs[@]}"; do
        [[ -f $src ]] || cannot "no such source $src"
        types=()
        for sec in $(grep -o 'SEC("[^"]*")' "$src" | sed 's/SEC("\(.*\)")/\1/' | sort -u); do
            case $sec in license | .maps | .rodata* | .data* | .bss) continue ;; esac
            t=$(prog_type "$sec") || cannot "$src: section $sec is not in bpf_probe.sh's table"
            [[ " ${types[*]} " == *" $t "* ]] && continue
            types+=("$t")
            printf 'program type %s (%s)\tprog %s\n' "$t" "$src" "$t"
        done
        ((${#types[@]} > 0)) || continue
        for h in $(grep -o '\bbpf_[a-z0-9_]*(' "$src" | tr -d '(' | sort -u); do
            id=$(sed -n "s/.*(\*$h)(.*= (void \*) \([0-9]*\);.*/\1/p" "$defs")
            [[ -n $id ]] || continue # a macro or our own function
            printf 'helper %s for %s (%s)\thelper %s %s\n' "$h" "${types[*]}" "$src" "$id" "${types[*]}"
        done
    done
}

plan_file=""
case ${1:-} in
--plan)
    shift
    plan "$@"
    exit 0
    ;;
--plan-file)
    plan_file=${2:-}
    [[ -r $plan_file ]] || cannot "no plan file '$plan_file'"
    ;;
"") ;;
*) cannot "usage: bpf_probe.sh [--plan [SOURCE...] | --plan-file PLAN]" ;;
esac

needs=()
if [[ -n $plan_file ]]; then
    mapfile -t needs <"$plan_file"
else
    mapfile -t needs < <(plan)
fi
((${#needs[@]} > 0)) || cannot "the plan is empty"

# Every question, asked in one run of the probe.
args=()
for n in "${needs[@]}"; do
    read -r -a w <<<"${n#*$'\t'}"
    case ${w[0]} in
    prog | map) args+=("${w[0]}" "${w[1]}") ;;
    helper) for t in "${w[@]:2}"; do args+=(helper "$t" "${w[1]}"); done ;;
    *) cannot "bad plan line: $n" ;;
    esac
done
if [[ -n ${BPF_PROBE_ANSWERS:-} ]]; then
    answers=$(<"$BPF_PROBE_ANSWERS")
else
    bin=${MESHD_BUILD:-build}/tests/vm_bpf_probe
    [[ -x $bin ]] || cannot "$bin is not built (make $bin)"
    answers=$("$bin" "${args[@]}" 2>&1) || cannot "$bin: $answers"
fi
declare -A yes=()
while IFS= read -r a; do
    [[ $a == *" yes" ]] && yes[${a% yes}]=1
done <<<"$answers"

missing=()
for n in "${needs[@]}"; do
    read -r -a w <<<"${n#*$'\t'}"
    ok=0
    case ${w[0]} in
    prog | map) [[ -n ${yes["${w[0]} ${w[1]}"]:-} ]] && ok=1 ;;
    helper)
        for t in "${w[@]:2}"; do
            [[ -n ${yes["helper $t ${w[1]}"]:-} ]] && ok=1
        done
        ;;
    esac
    ((ok)) || missing+=("${n%%$'\t'*}")
done

secs=$((SECONDS - start))
if ((${#missing[@]} > 0)); then
    list=$(printf '%s, ' "${missing[@]}")
    printf 'FAIL bpf_features (%ds) [missing: %s]\n' "$secs" "${list%, }"
    exit 1
fi
printf 'PASS bpf_features (%ds, %d needs)\n' "$secs" "${#needs[@]}"
