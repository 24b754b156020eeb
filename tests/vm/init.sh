#!/bin/sh
# /init of the vmtest initramfs (busybox sh; made by tests/vm/run.sh).
#
# Loads the modules in /modules (file names sort in load order), mounts the
# host's / read-only over 9p (tag hostroot) as the lower layer of an overlay
# whose upper layer is a tmpfs, mounts the run's output share (tag vmout,
# writable) on <run dir>/out, and the pair's share (tag vmshare, writable,
# when meshvm.share= names it) at that same path, links the kernel's module tree to
# /lib/modules/<release> so the guest's modprobe finds it, then switch_root's
# into the overlay and runs tests/vm/guest.sh as PID 1.
#
# Parameters come from the kernel command line: meshvm.repo= (the repo path),
# meshvm.run= (the run dir), meshvm.kmods= (the module tree, may be empty),
# meshvm.share= (optional).
export PATH=/bin

fail() {
    echo "MESHVM-BOOT-FAILED: $*"
    echo o >/proc/sysrq-trigger
    sleep 10
    poweroff -f
}

mkdir -p /proc /sys /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
echo "meshvm: initramfs up, kernel $(uname -r)"

repo="" run="" kmods="" share=""
read -r cmdline </proc/cmdline
for w in $cmdline; do
    case $w in
    meshvm.repo=*) repo=${w#*=} ;;
    meshvm.run=*) run=${w#*=} ;;
    meshvm.kmods=*) kmods=${w#*=} ;;
    meshvm.share=*) share=${w#*=} ;;
    esac
done
if [ -z "$repo" ] || [ -z "$run" ]; then
    fail "meshvm.repo= or meshvm.run= missing from the kernel command line"
fi

for m in /modules/*.ko; do
    [ -e "$m" ] || continue
    insmod "$m" || fail "insmod $m"
done

mkdir -p /lower /rw /newroot
opts=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$opts,ro" hostroot /lower || fail "mount of the host root (9p tag hostroot)"
mount -t tmpfs -o mode=755 tmpfs /rw || fail "tmpfs for the overlay"
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot ||
    fail "overlay over the host root"
[ -d "/newroot$run/out" ] || fail "$run/out is not visible in the guest"
mount -t 9p -o "$opts" vmout "/newroot$run/out" || fail "mount of the output share (9p tag vmout)"
if [ -n "$share" ]; then
    [ -d "/newroot$share" ] || fail "$share is not visible in the guest"
    mount -t 9p -o "$opts" vmshare "/newroot$share" || fail "mount of the pair's share (9p tag vmshare)"
fi

release=$(uname -r)
if [ -n "$kmods" ] && [ ! -e "/newroot/lib/modules/$release" ]; then
    mkdir -p /newroot/lib/modules
    ln -s "$kmods" "/newroot/lib/modules/$release" || fail "link /lib/modules/$release"
fi

[ -x /newroot/bin/bash ] || fail "no /bin/bash in the host root"
# /dev holds our console: move it rather than unmount it.
umount /proc /sys
mount --move /dev /newroot/dev || fail "mount --move /dev"
# shellcheck disable=SC2093 # on success it does not return
exec switch_root /newroot /bin/bash "$repo/tests/vm/guest.sh"
fail "switch_root"
