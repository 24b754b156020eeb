#!/bin/bash
# PID 1 of a vmtest guest, after tests/vm/init.sh switch_root'ed into the
# overlay of the host's / (run by the host's own bash).
#
# Mounts what a Debian host has (proc, sys, devtmpfs, cgroup2 unified at
# /sys/fs/cgroup, bpffs at /sys/fs/bpf, fresh tmpfs on /tmp and /run), brings
# lo up (and eth0 with the meshvm.ip= addresses, when given), runs <run dir>/cmd from the repo dir with <run dir>/env sourced, and
# prints its output and exit status between markers on the console; the
# output, the status and some diagnostics also go to <run dir>/out (a 9p share
# the host reads). Then powers off.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C.UTF-8

poweroff_now() {
    sync
    echo o >/proc/sysrq-trigger
    sleep 30
    exit 1 # PID 1 exits: panic=-1 reboots, and qemu -no-reboot exits
}

fail() {
    echo "MESHVM-BOOT-FAILED: $*"
    poweroff_now
}

mnt() { # mnt TYPE DIR [OPTIONS]
    mkdir -p "$2"
    mount -t "$1" ${3:+-o "$3"} "$1" "$2" || fail "mount -t $1 $2"
}

mnt proc /proc
mnt sysfs /sys
mountpoint -q /dev || mnt devtmpfs /dev # init.sh moved its /dev here
mnt devpts /dev/pts newinstance,ptmxmode=0666
mnt tmpfs /dev/shm mode=1777
ln -sfn /proc/self/fd /dev/fd
ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout
ln -sfn /proc/self/fd/2 /dev/stderr
mnt tmpfs /tmp mode=1777
mnt tmpfs /run mode=755
mkdir -p /run/netns /run/lock
mnt cgroup2 /sys/fs/cgroup nsdelegate
mnt bpf /sys/fs/bpf mode=700
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true

repo="" run="" addrs=""
read -r -a words </proc/cmdline
for w in "${words[@]}"; do
    case $w in
    meshvm.repo=*) repo=${w#*=} ;;
    meshvm.run=*) run=${w#*=} ;;
    meshvm.ip=*) addrs=${w#*=} ;;
    esac
done
[[ -n $repo && -n $run ]] || fail "meshvm.repo= or meshvm.run= missing"
out=$run/out

# The kernel's module autoloader (veth, bridge, sch_ingress...) runs this.
modprobe=$(command -v modprobe) && echo "$modprobe" >/proc/sys/kernel/modprobe
hostname meshvm 2>/dev/null || echo meshvm >/proc/sys/kernel/hostname
ip link set lo up || fail "ip link set lo up"
if [[ -n $addrs ]]; then
    # The virtio NIC (the initramfs loaded virtio_net): the link to the
    # other guest. Static addresses, no DAD (usable at once).
    [[ -e /sys/class/net/eth0 ]] || fail "meshvm.ip= given but there is no eth0"
    sysctl -q -w net.ipv6.conf.eth0.accept_dad=0 >/dev/null 2>&1 || true
    IFS=, read -r -a list <<<"$addrs"
    for a in "${list[@]}"; do
        ip addr add "$a" dev eth0 nodad 2>/dev/null || ip addr add "$a" dev eth0 || fail "ip addr add $a dev eth0"
    done
    ip link set eth0 up || fail "ip link set eth0 up"
fi
# The host's clock: the guest's RTC starts from the host's time, good enough.

uname -r >"$out/uname"
: >"$out/booted"
echo "==== meshvm: booted $(uname -r), running $run/cmd in $repo ===="
rc=0
(
    # shellcheck source=/dev/null
    [[ -f $run/env ]] && source "$run/env"
    cd "$repo" && exec bash "$run/cmd"
) </dev/null 2>&1 | tee "$out/output.log"
rc=${PIPESTATUS[0]}
echo "==== meshvm: exit status $rc ===="
echo "$rc" >"$out/rc"
dmesg >"$out/dmesg.log" 2>&1
lsmod >"$out/lsmod.txt" 2>&1
poweroff_now
