#!/usr/bin/env bash
# Does the running kernel have every BPF feature meshd's programs use? Run
# in each vmtest guest before the e2e tests (tests/vm/matrix.sh), so an old
# or oddly configured kernel fails with the feature named rather than with
# a test timing out.
#
#   tests/vm/bpf_probe.sh [BPF_SOURCE...]    (default: bpf/*.bpf.c)
#
# What is needed is read from the sources, so a new program or map needs
# no edit here: each SEC("...") gives a program type, each BPF_MAP_TYPE_*
# (in bpf/ and bpf/lib/) a map type, and each helper a file calls (a name
# libbpf's bpf_helper_defs.h declares) must be callable from one of that
# file's program types. The kernel is asked by $MESHD_BUILD/tests/vm_bpf_probe
# (tests/vm/bpf_probe.c: libbpf's probes, one tiny load each, where
# `bpftool feature probe` takes a minute under TCG); BPF_PROBE_FILE names
# a file of answers instead ("prog sk_lookup yes"...), to test this script.
# Prints, in tests/e2e/run.sh's format, one line:
#   PASS bpf_features (Ns)
#   FAIL bpf_features (Ns) [missing: program type sk_lookup (bpf/inbound.bpf.c), ...]
# and exits 1 when something is missing (2 when it cannot tell).
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$SECONDS

srcs=("$@")
((${#srcs[@]} > 0)) || srcs=(bpf/*.bpf.c)
defs=/usr/include/bpf/bpf_helper_defs.h

cannot() {
    printf 'FAIL bpf_features (%ds) [cannot probe: %s]\n' "$((SECONDS - start))" "$*"
    exit 2
}
[[ -r $defs ]] || cannot "$defs missing (libbpf-dev)"
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

# The questions (prog TYPE, map TYPE, helper PROG_TYPE ID) and what each
# missing answer means, in order.
questions=() meaning=()
ask() { # MEANING WORDS...
    meaning+=("$1")
    shift
    questions+=("$*")
}

for map in $(grep -ho 'BPF_MAP_TYPE_[A-Z_]*' bpf/*.c bpf/lib/*.h 2>/dev/null | sort -u); do
    name=${map#BPF_MAP_TYPE_}
    ask "map type ${name,,}" map "${name,,}"
done

for src in "${srcs[@]}"; do
    [[ -f $src ]] || cannot "no such source $src"
    types=()
    for sec in $(grep -o 'SEC("[^"]*")' "$src" | sed 's/SEC("\(.*\)")/\1/' | sort -u); do
        case $sec in license | .maps | .rodata* | .data* | .bss) continue ;; esac
        t=$(prog_type "$sec") || cannot "$src: section $sec is not in bpf_probe.sh's table"
        [[ " ${types[*]} " == *" $t "* ]] && continue
        types+=("$t")
        ask "program type $t ($src)" prog "$t"
    done
    ((${#types[@]} > 0)) || continue
    # Each helper the file calls, from the first of its program types that
    # can call it (libbpf_probe_bpf_helper may say yes where the probe
    # program itself cannot load: a miss here is certain, a yes not quite).
    for h in $(grep -o '\bbpf_[a-z0-9_]*(' "$src" | tr -d '(' | sort -u); do
        id=$(sed -n "s/.*(\*$h)(.*= (void \*) \([0-9]*\);.*/\1/p" "$defs")
        [[ -n $id ]] || continue # a macro or our own function
        ask "helper $h for ${types[*]} ($src)" helper-any "$id" "${types[@]}"
    done
done

# The kernel's answers: one line per question, "... yes" or "... no".
kernel_says() { # WORDS...
    if [[ -n ${BPF_PROBE_FILE:-} ]]; then # a saved answer sheet, to test this script
        grep -qx "$* yes" "$BPF_PROBE_FILE"
        return
    fi
    local out
    out=$("$probe_bin" "$@" 2>&1) || cannot "$probe_bin $*: $out"
    [[ $out == "$* yes" ]]
}
probe_bin=${MESHD_BUILD:-build}/tests/vm_bpf_probe
[[ -n ${BPF_PROBE_FILE:-} || -x $probe_bin ]] || cannot "$probe_bin is not built (make $probe_bin)"

missing=()
for ((q = 0; q < ${#questions[@]}; q++)); do
    read -r -a w <<<"${questions[q]}"
    if [[ ${w[0]} == helper-any ]]; then
        ok=0
        for t in "${w[@]:2}"; do
            if kernel_says helper "$t" "${w[1]}"; then ok=1; break; fi
        done
        ((ok)) || missing+=("${meaning[q]}")
    else
        kernel_says "${w[@]}" || missing+=("${meaning[q]}")
    fi
done

secs=$((SECONDS - start))
if ((${#missing[@]} > 0)); then
    list=$(printf '%s, ' "${missing[@]}")
    printf 'FAIL bpf_features (%ds) [missing: %s]\n' "$secs" "${list%, }"
    exit 1
fi
printf 'PASS bpf_features (%ds)\n' "$secs"
