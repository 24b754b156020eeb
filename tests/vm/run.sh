#!/usr/bin/env bash
# Boots Debian's own kernels under qemu (TCG; no network device unless
# VM_NET asks for the link to another guest) with the host's / as the guest's
# root (9p, read-only, under a tmpfs overlay) and runs the tests there, on the
# very binaries the host built. tests/vm/matrix.sh (make vmtest) drives it.
#
#   tests/vm/run.sh [KERNEL...] [-- COMMAND...]
#
# KERNEL (default 6.1):
#   6.1                 the newest Debian linux-image-6.1.0-N-amd64 apt offers
#   6.12                the newest linux-image-6.12.N+debN-amd64 (bookworm-
#                       backports, through a private apt list: the host's apt
#                       configuration is not changed)
#   6.1.0-56-amd64      that Debian kernel (also linux-image-6.1.0-56-amd64)
#   host                the running kernel, if its image is readable (else skipped)
# COMMAND: run in the guest from the repo dir by bash; one argument is a
# shell script ('uname -r; build/meshd --version'), several are one command
# (tests/e2e/run.sh capture). Default: the unit tests, then the e2e tests.
#
# Environment: MESHD_BUILD (build dir, default build), VM_TIMEOUT (seconds per
# VM, default 2400), VM_MEM (2G), VM_SMP (2), VM_KERNEL_ARGS (appended to the
# kernel command line, default "mitigations=off no_timer_check": a slow
# TCG host otherwise panics "IO-APIC + timer doesn't work"), VM_QUIET=1 (do not stream
# the guest console), VM_NO_BUILD=1 (do not build the unit tests and test BPF
# objects the default command needs), VM_SNAPSHOT=0 (let the guest use
# MESHD_BUILD itself rather than a copy made at boot). E2E_* and TOPO_* are
# passed to the guest; E2E_TIMEOUT defaults to 1500 there (TCG is slow),
# TOPO_WAIT_SCALE to 6 (the e2e helpers' waits for listeners and agents).
# VM_NICE (19): qemu's niceness. For two guests on one link (matrix.sh):
# VM_NET=listen:PORT or connect:PORT (a virtio-net NIC on qemu's socket
# netdev, 127.0.0.1 only), VM_MAC, VM_IP (addresses for the guest's eth0,
# comma-separated, e.g. 198.51.100.11/24,fd00:5133:6400::11/64), VM_SHARE (a
# host dir the guest mounts writable at the same path), VM_TAG (run dir
# build/vm/<release>-<tag>), VM_RESULTS (a file that gets one tab-separated
# line per kernel: spec, run name, description, state, seconds, counts).
#
# Kernels are cached in build/vm/kernels/<release>/ (apt-get download +
# dpkg-deb -x, never installed on the host). Each run leaves in
# build/vm/<release>[-<tag>]/: console.log (serial console), qemu.log, build/ (the copy
# of MESHD_BUILD the guest used), and out/ with
# output.log, rc, dmesg.log, lsmod.txt and e2e/ (every e2e test's output).
set -euo pipefail

vm_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$vm_dir/../.." && pwd)
cd "$repo_root"

: "${VM_TIMEOUT:=3600}"
: "${VM_MEM:=2G}"
: "${VM_SMP:=2}"
: "${VM_KERNEL_ARGS=mitigations=off no_timer_check}"
: "${VM_QUIET:=0}"
: "${VM_NO_BUILD:=0}"
: "${VM_SNAPSHOT:=1}"
: "${VM_NICE:=19}"
: "${VM_NET:=}" "${VM_MAC:=52:54:00:6d:76:01}" "${VM_IP:=}" "${VM_SHARE:=}" "${VM_TAG:=}" "${VM_RESULTS:=}"
MESHD_BUILD=${MESHD_BUILD:-build}
[[ $MESHD_BUILD == /* ]] || MESHD_BUILD=$repo_root/$MESHD_BUILD
cache=$repo_root/build/vm
# Debian packages run.sh needs on the host (docs/VMTEST.md lists them too).
DEPS=(qemu-system-x86 busybox-static kmod xz-utils zstd)
# Modules the initramfs loads (the root's, and the NIC's for VM_NET):
# modprobe adds their deps.
INITRD_MODULES=(virtio_pci 9pnet_virtio 9p overlay virtio_net)

die() {
    printf 'vmtest: %s\n' "$*" >&2
    exit 2
}
say() { printf 'vmtest: %s\n' "$*"; }

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

kernels=()
cmd_args=()
have_cmd=0
while (($# > 0)); do
    case $1 in
    --) shift; have_cmd=1; cmd_args=("$@"); break ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) kernels+=("$1"); shift ;;
    esac
done
((${#kernels[@]} > 0)) || kernels=(6.1)
((have_cmd == 0 || ${#cmd_args[@]} > 0)) || die "nothing after --"

[[ $VM_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "VM_TIMEOUT must be a number of seconds"
[[ $VM_NICE =~ ^-?[0-9]+$ ]] || die "VM_NICE must be a niceness (-20..19)"
[[ -z $VM_NET || $VM_NET =~ ^(listen|connect):[1-9][0-9]{3,4}$ ]] || die "VM_NET must be listen:PORT or connect:PORT"
[[ $VM_MAC =~ ^52:54:00(:[0-9a-f]{2}){3}$ ]] || die "VM_MAC must be a locally administered 52:54:00:xx:xx:xx"
[[ $VM_IP =~ ^[0-9a-f.:/,]*$ ]] || die "VM_IP must be comma-separated ADDR/PREFIX"
[[ -z $VM_SHARE || ($VM_SHARE == /* && -d $VM_SHARE && $VM_SHARE != *[[:space:],]*) ]] ||
    die "VM_SHARE must be an existing absolute dir without spaces or commas"
[[ $VM_TAG =~ ^[a-z0-9-]*$ ]] || die "VM_TAG must be [a-z0-9-]"
((EUID == 0)) || die "must run as root (apt-get, and the guest runs the tests as root)"
[[ $(uname -m) == x86_64 ]] || die "only x86_64 hosts are supported (qemu-system-x86_64, amd64 kernels)"
[[ $repo_root != *[[:space:]]* ]] || die "the repo path must not contain spaces: $repo_root"
# The guest mounts fresh tmpfs on these, which would hide the repo.
case $repo_root/ in
/tmp/* | /run/*) die "the repo must not be under /tmp or /run (the guest mounts tmpfs there): $repo_root" ;;
esac

# --- host dependencies (idempotent) -----------------------------------------

apt_updated=0
apt_update_once() {
    ((apt_updated)) && return 0
    say "apt-get update"
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt_updated=1
}

install_deps() {
    local p missing=()
    for p in "${DEPS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    say "installing ${missing[*]}"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        apt_update_once
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
            die "apt-get install ${missing[*]} failed"
    fi
}
install_deps
busybox=$(command -v busybox) || die "busybox not found"
if ldd "$busybox" >/dev/null 2>&1; then die "$busybox is dynamically linked: install busybox-static"; fi

# --- kernels ----------------------------------------------------------------

# bookworm-backports (6.12) through a private apt state under the cache: its
# own sources list, lists and archives dirs, so the host's sources, lists and
# preferences stay as they are.
bpo=$cache/apt-backports
BPO_APT=(-o "Dir::Etc::SourceList=$bpo/sources.list" -o Dir::Etc::SourceParts=/nonexistent
    -o "Dir::State::Lists=$bpo/lists" -o "Dir::Cache=$bpo/cache" -o APT::Sandbox::User=root)
bpo_updated=0
bpo_update_once() {
    ((bpo_updated)) && return 0
    mkdir -p "$bpo/lists/partial" "$bpo/cache/archives/partial"
    printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s bookworm-backports main\n' \
        "${VM_BACKPORTS_MIRROR:-http://deb.debian.org/debian}" >"$bpo/sources.list"
    say "apt-get update (bookworm-backports, private lists in $bpo)"
    apt-get "${BPO_APT[@]}" update -qq >/dev/null || die "apt-get update of bookworm-backports failed"
    bpo_updated=1
}

# newest_debian SERIES: the newest linux-image-SERIES.0-N-amd64 (6.1) or
# linux-image-SERIES.N+debN-amd64 (6.12) the host's apt knows, else the
# newest in bookworm-backports.
newest_debian() {
    local s=${1//./\\.} re found
    re="^linux-image-$s(\\.0-[0-9]+|\\.[0-9]+\\+deb[0-9.]+)-amd64\$"
    pick() { apt-cache "$@" search --names-only "$re" 2>/dev/null | awk '{print $1}' | sort -V | tail -n 1; }
    found=$(pick)
    if [[ -z $found ]]; then
        apt_update_once
        found=$(pick)
    fi
    if [[ -z $found ]]; then
        bpo_update_once
        found=$(pick "${BPO_APT[@]}")
    fi
    [[ -n $found ]] || return 1
    printf '%s\n' "${found#linux-image-}"
}

# fetch_debian RELEASE: downloads and unpacks linux-image-RELEASE once into
# $cache/kernels/RELEASE/root (with a modules.dep made by depmod).
fetch_debian() {
    local rel=$1 kdir=$cache/kernels/$1 pkg=linux-image-$1 deb
    [[ -f $kdir/.ready ]] && return 0
    say "fetching $pkg"
    rm -rf "$kdir"
    mkdir -p "$kdir/dl"
    if ! (cd "$kdir/dl" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" >/dev/null 2>&1); then
        apt_update_once
        if ! (cd "$kdir/dl" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" >/dev/null 2>&1); then
            bpo_update_once
            (cd "$kdir/dl" && apt-get "${BPO_APT[@]}" download -qq "$pkg" >/dev/null) ||
                { rm -rf "$kdir"; return 1; }
        fi
    fi
    deb=$(echo "$kdir"/dl/*.deb)
    [[ -f $deb ]] || { rm -rf "$kdir"; return 1; }
    dpkg-deb -f "$deb" Version >"$kdir/version"
    dpkg-deb -x "$deb" "$kdir/root"
    [[ -f $kdir/root/boot/vmlinuz-$rel ]] || { rm -rf "$kdir"; return 1; }
    depmod -b "$kdir/root" "$rel" || { rm -rf "$kdir"; return 1; }
    rm -rf "$kdir/dl"
    touch "$kdir/.ready"
}

# resolve SPEC: sets K_NAME (run dir name), K_REL, K_IMAGE, K_MODBASE (the dir
# holding lib/modules/K_REL, empty if none), K_DESC; returns 1 (with K_SKIP
# set) when the kernel must be skipped.
resolve() {
    local spec=$1 rel img
    K_SKIP="" K_MODBASE=""
    case $spec in
    host)
        rel=$(uname -r)
        K_NAME=host-$rel K_REL=$rel K_DESC="$rel (running kernel)"
        K_IMAGE=""
        for img in "/boot/vmlinuz-$rel" "/lib/modules/$rel/vmlinuz" "/usr/lib/modules/$rel/vmlinuz"; do
            if [[ -f $img && -r $img ]]; then K_IMAGE=$img; break; fi
        done
        if [[ -z $K_IMAGE ]]; then
            K_SKIP="no readable image of the running kernel $rel (/boot/vmlinuz-$rel, /lib/modules/$rel/vmlinuz)"
            return 1
        fi
        [[ -f /lib/modules/$rel/modules.dep ]] && K_MODBASE=/
        return 0
        ;;
    [0-9].[0-9] | [0-9].[0-9][0-9])
        rel=$(newest_debian "$spec") || die "apt knows no linux-image-$spec.0-N-amd64"
        ;;
    linux-image-*) rel=${spec#linux-image-} ;;
    [0-9]*.*-amd64) rel=$spec ;;
    *) die "unknown kernel '$spec' (6.1, 6.12, 6.1.0-N-amd64, linux-image-6.1.0-N-amd64 or host; a command goes after --)" ;;
    esac
    fetch_debian "$rel" || die "could not fetch linux-image-$rel with apt-get download"
    K_NAME=$rel K_REL=$rel
    K_IMAGE=$cache/kernels/$rel/root/boot/vmlinuz-$rel
    K_MODBASE=$cache/kernels/$rel/root
    K_DESC="$rel (Debian $(cat "$cache/kernels/$rel/version"))"
}

# make_initramfs DIR OUT: the busybox initramfs for K_REL with its modules.
make_initramfs() {
    local stage=$1/initramfs.d out=$2 a m n=0 base
    rm -rf "$stage"
    mkdir -p "$stage"/{bin,dev,proc,sys,modules}
    cp "$busybox" "$stage/bin/busybox"
    for a in sh mount umount insmod mkdir ln cat echo sleep poweroff switch_root uname; do
        ln -s busybox "$stage/bin/$a"
    done
    install -m 755 "$vm_dir/init.sh" "$stage/init"
    mknod -m 600 "$stage/dev/console" c 5 1
    if [[ -n $K_MODBASE ]]; then
        local -a mods=()
        mapfile -t mods < <(modprobe -d "$K_MODBASE" -S "$K_REL" -a --show-depends "${INITRD_MODULES[@]}" |
            awk '$1 == "insmod" && !seen[$2]++ { print $2 }') ||
            die "modprobe --show-depends ${INITRD_MODULES[*]} failed for $K_REL"
        for m in "${mods[@]}"; do
            n=$((n + 1))
            base=$(printf '%02d-%s' "$n" "$(basename "${m%%.ko*}")")
            case $m in
            *.ko) cp "$m" "$stage/modules/$base.ko" ;;
            *.ko.xz) xz -dc "$m" >"$stage/modules/$base.ko" ;;
            *.ko.zst) zstd -qdc "$m" >"$stage/modules/$base.ko" ;;
            *.ko.gz) gzip -dc "$m" >"$stage/modules/$base.ko" ;;
            *) die "unexpected module file $m" ;;
            esac
        done
    fi
    (cd "$stage" && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc 2>/dev/null) | gzip -1 >"$out"
    rm -rf "$stage"
}

# --- the command ------------------------------------------------------------

default_cmd=0
if ((have_cmd == 0)); then
    default_cmd=1
    # shellcheck disable=SC2016 # expanded in the guest
    script='rc=0
tests/unit/run.sh "$MESHD_BUILD"/tests/test_* || rc=1
tests/e2e/run.sh || rc=1
exit "$rc"'
elif ((${#cmd_args[@]} == 1)); then
    script=${cmd_args[0]}
else
    script=$(printf '%q ' "${cmd_args[@]}")
fi

[[ -x $MESHD_BUILD/meshd ]] || die "$MESHD_BUILD/meshd is not built (make)"
# `make vmtest` builds meshd and meshctl; the default command also needs the
# unit test binaries and the e2e tests' BPF objects. Made before the first VM.
built=0
build_extras() {
    ((default_cmd && !VM_NO_BUILD && !built)) || return 0
    built=1
    local b f san targets
    # Paths as the Makefile spells them (relative to the repo).
    b=${MESHD_BUILD#"$repo_root"/}
    targets=()
    for f in tests/unit/test_*.c; do
        [[ -f $f ]] && targets+=("$b/tests/$(basename "$f" .c)")
    done
    for f in tests/e2e/bpf/*.bpf.c; do
        [[ -f $f ]] && targets+=("$b/tests/bpf/$(basename "$f" .c).o")
    done
    san=0
    [[ $(basename "$b") == build-san ]] && san=1
    if ((${#targets[@]} > 0)); then
        make --no-print-directory -s BUILD="$b" SANITIZE=$san "${targets[@]}" ||
            die "building the unit tests and test BPF objects failed"
    fi
}

# --- running one VM ---------------------------------------------------------

qemu_pid="" tail_pid=""
stop_vm() {
    local _
    if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
        kill -TERM "$qemu_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$qemu_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
    fi
    qemu_pid=""
    if [[ -n $tail_pid ]]; then
        # tail -f --pid ends within a second of qemu: let it print the end.
        for _ in $(seq 1 30); do
            kill -0 "$tail_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -TERM "$tail_pid" 2>/dev/null || true
        wait "$tail_pid" 2>/dev/null || true
    fi
    tail_pid=""
}
on_signal() {
    trap '' INT TERM HUP
    say "interrupted: stopping the VM"
    stop_vm
    exit 130
}
trap stop_vm EXIT
trap on_signal INT TERM HUP

# run_vm: boots K_* with the command; sets R_STATE (passed, failed, noboot,
# timeout), R_RC, R_COUNTS, R_SECS.
run_vm() {
    local run=$cache/$K_NAME${VM_TAG:+-$VM_TAG} lock secs start kmods="" cmdline guest_build
    local -a net=(-nic none) share=()
    mkdir -p "$run"
    exec {lock}>"$run/.lock"
    flock -n "$lock" || die "another vmtest is using $run"
    rm -rf "$run/out" "$run/console.log" "$run/qemu.log"
    mkdir -p "$run/out/e2e"
    # The guest reads the host's files live: a rebuild on the host during a
    # run (minutes under TCG) would swap binaries under the tests. They get
    # a copy of the build dir as it is now instead (less vm/).
    guest_build=$MESHD_BUILD
    if ((VM_SNAPSHOT)); then
        guest_build=$run/build
        rm -rf "$guest_build"
        mkdir -p "$guest_build"
        tar -C "$MESHD_BUILD" --exclude=./vm -cf - . |
            tar -C "$guest_build" -xf - || die "could not copy $MESHD_BUILD to $guest_build"
    fi
    printf '%s\n' "$script" >"$run/cmd"
    {
        printf 'export MESHD_BUILD=%q\n' "$guest_build"
        # Tests may scale speed thresholds down under emulation.
        printf 'export MESHVM_TCG=1\n'
        # tally.py's bound on a whole count (20,000 connections take ~7 min).
        printf 'export TALLY_DEADLINE_S=1500\n'
        printf 'export E2E_TIMEOUT=%q\n' "${E2E_TIMEOUT:-1500}"
        printf 'export E2E_LOG_DIR=%q\n' "$run/out/e2e"
        # Waits for a listener or an agent (topo_wait_tcp, meshd_start) are
        # 6x longer: a loaded host slows TCG a lot (overridden by the host's).
        printf 'export TOPO_WAIT_SCALE=6\n'
        local v
        while IFS= read -r v; do
            [[ $v == E2E_TIMEOUT || $v == E2E_LOG_DIR ]] && continue
            printf 'export %s=%q\n' "$v" "${!v}"
        done < <(compgen -e | grep -E '^(E2E|TOPO)_' || true)
    } >"$run/env"
    make_initramfs "$run" "$run/initramfs.gz"
    [[ -n $K_MODBASE ]] && kmods=$K_MODBASE/lib/modules/$K_REL
    [[ $kmods == //* ]] && kmods=${kmods#/}
    cmdline="console=ttyS0 panic=-1 loglevel=4 meshvm.repo=$repo_root meshvm.run=$run"
    [[ -n $kmods ]] && cmdline+=" meshvm.kmods=$kmods"
    [[ -n $VM_IP ]] && cmdline+=" meshvm.ip=$VM_IP"
    [[ -n $VM_SHARE ]] && cmdline+=" meshvm.share=$VM_SHARE"
    cmdline+=${VM_KERNEL_ARGS:+ $VM_KERNEL_ARGS}
    # The link to the other guest: qemu's socket netdev on loopback, so
    # frames go from one qemu to the other and nowhere else.
    [[ -n $VM_NET ]] && net=(-netdev "socket,id=link0,${VM_NET%%:*}=127.0.0.1:${VM_NET#*:}"
        -device "virtio-net-pci,netdev=link0,mac=$VM_MAC,romfile=")
    [[ -n $VM_SHARE ]] && share=(-virtfs "local,path=$VM_SHARE,mount_tag=vmshare,security_model=none,multidevs=remap")

    say "booting $K_DESC (TCG, -m $VM_MEM -smp $VM_SMP, timeout ${VM_TIMEOUT}s); console: $run/console.log"
    : >"$run/console.log"
    nice -n "$VM_NICE" qemu-system-x86_64 -machine pc -accel tcg,thread=multi -cpu max -m "$VM_MEM" -smp "$VM_SMP" \
        -nodefaults -nographic -monitor none -serial "file:$run/console.log" "${net[@]}" -no-reboot \
        -kernel "$K_IMAGE" -initrd "$run/initramfs.gz" -append "$cmdline" \
        -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
        -virtfs "local,path=$run/out,mount_tag=vmout,security_model=none,multidevs=remap" "${share[@]}" \
        </dev/null >"$run/qemu.log" 2>&1 &
    qemu_pid=$!
    if ((!VM_QUIET)); then
        tail -n +1 -f --pid="$qemu_pid" "$run/console.log" 2>/dev/null |
            sed -u -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' -e 's/^/  | /' &
        tail_pid=$!
    fi
    start=$SECONDS
    R_STATE=""
    while kill -0 "$qemu_pid" 2>/dev/null; do
        if ((SECONDS - start >= VM_TIMEOUT)); then
            R_STATE=timeout
            say "$K_NAME: timed out after ${VM_TIMEOUT}s, stopping qemu"
            break
        fi
        sleep 1
    done
    local qrc=0
    if [[ $R_STATE == timeout ]]; then
        stop_vm
        qrc=killed
    else
        wait "$qemu_pid" || qrc=$?
        qemu_pid=""
        stop_vm
    fi
    secs=$((SECONDS - start))
    R_SECS=$secs
    exec {lock}>&-

    R_RC=""
    [[ -f $run/out/rc ]] && R_RC=$(<"$run/out/rc")
    if [[ -z $R_RC ]]; then
        R_RC=$(tr -d '\r' <"$run/console.log" | sed -n 's/^==== meshvm: exit status \([0-9]*\) ====$/\1/p' | tail -n 1)
    fi
    local outlog=$run/out/output.log
    [[ -s $outlog ]] || outlog=$run/console.log
    # "N passed, N failed" lines at the start of a line (the runners' own
    # summaries; indented test output is not counted), summed.
    R_COUNTS=$(tr -d '\r' <"$outlog" | awk '
        match($0, /^([A-Za-z0-9_.-]+: )?[0-9]+ passed, [0-9]+ failed/) {
            s = substr($0, RSTART, RLENGTH); sub(/^[^ ]*: /, "", s)
            split(s, w, " "); p += w[1]; f += w[3]; n++
        }
        END { if (n) printf "%d passed, %d failed", p, f }')
    if [[ -z $R_STATE ]]; then
        if [[ ! -f $run/out/booted ]]; then
            R_STATE=noboot
        elif [[ $R_RC == 0 ]]; then
            R_STATE=passed
        else
            R_STATE=failed
        fi
    fi
    say "$K_NAME: $R_STATE after ${secs}s (qemu: ${qrc/#[0-9]*/exit $qrc})"
    if [[ $R_STATE == noboot ]]; then
        grep -a -m 3 -e 'MESHVM-BOOT-FAILED' -e 'Kernel panic' "$run/console.log" | tr -d '\r' | sed 's/^/  /' || true
        [[ -s $run/qemu.log ]] && sed 's/^/  qemu: /' "$run/qemu.log"
    fi
}

# --- the matrix -------------------------------------------------------------

# result SPEC NAME DESC STATE SECS COUNTS: a line of VM_RESULTS, an empty
# field as "-" (tabs are whitespace to read: empty fields would vanish).
result() {
    [[ -n $VM_RESULTS ]] || return 0
    local f out=""
    for f in "$@"; do out+=${f:--}$'\t'; done
    printf '%s\n' "${out%$'\t'}" >>"$VM_RESULTS"
}

summary=()
ran=0 bad=0
for spec in "${kernels[@]}"; do
    if ! resolve "$spec"; then
        say "skipping $spec: $K_SKIP"
        summary+=("$(printf '%-28s SKIP    %s' "$spec" "$K_SKIP")")
        result "$spec" "" "$spec" skip 0 "$K_SKIP"
        continue
    fi
    build_extras
    run_vm
    ran=$((ran + 1))
    line=$(printf '%-28s %-7s' "$K_DESC" "${R_STATE^^}")
    case $R_STATE in
    passed) line+=" ${R_COUNTS:-no test summary}" ;;
    failed) line+=" ${R_COUNTS:-no test summary} (exit ${R_RC:-?})"; bad=$((bad + 1)) ;;
    timeout) line+=" ${R_COUNTS:+$R_COUNTS so far, }no exit after ${VM_TIMEOUT}s"; bad=$((bad + 1)) ;;
    noboot) line+=" the guest never ran the command"; bad=$((bad + 1)) ;;
    esac
    line+="  [build/vm/$K_NAME${VM_TAG:+-$VM_TAG}/]"
    summary+=("$line")
    result "$spec" "$K_NAME${VM_TAG:+-$VM_TAG}" "$K_DESC" "$R_STATE" "$R_SECS" "${R_COUNTS:-}"
done

echo
echo "vmtest summary:"
printf '  %s\n' "${summary[@]}"
((ran > 0)) || { say "no kernel was run"; exit 1; }
((bad == 0)) || { say "$bad of $ran kernel(s) failed"; exit 1; }
say "all $ran kernel(s) passed"
