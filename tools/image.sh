#!/usr/bin/env bash
# meshd's container image, from Debian's packages only (no registry pull):
#
#   tools/image.sh rootfs DIR   assemble the image's root file system in DIR
#   tools/image.sh              rootfs + buildah bud deploy/Containerfile
#                               (FROM scratch) + an OCI archive to load
#
# The root file system is FROM scratch plus exactly what runs: build/meshd,
# build/meshctl, build/meshd-cni-static (static, because its install step
# copies it onto the host, whose libraries are not the image's) and
# coreutils' sleep (the uninstall DaemonSet's idle container), with the
# shared libraries ldd names for them, copied from the Debian packages
# installed here; which package and version each file came from is written
# to /usr/share/meshd/packages.txt, and those packages' copyright files are
# kept. Why not a debootstrap'ed root: it is ~200 MB of a whole system
# (shell, apt, dpkg) that an agent with root and SYS_ADMIN on every node
# should not carry, and building it needs a mirror; this is ~10 MB.
#
# Environment: MESHD_BUILD (default build), IMAGE (default meshd:latest),
# BUILDAH (default buildah). buildah keeps its storage under
# $MESHD_BUILD/image (vfs driver, chroot isolation: no user namespaces, no
# overlay, no runtime needed, since the Containerfile has no RUN step).
# Without buildah, or where it cannot run, it says so and exits 0.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${MESHD_BUILD:-build}
[[ $build == /* ]] || build=$here/$build
image=${IMAGE:-meshd:latest}
buildah=${BUILDAH:-buildah}

say() { printf 'image: %s\n' "$*"; }
die() {
    printf 'image: %s\n' "$*" >&2
    exit 1
}

# copy_file SRC ROOT: SRC at the same path under ROOT, through the
# directory links ROOT already has (/lib -> usr/lib), the file itself
# dereferenced (a library's soname link becomes the library).
copy_file() {
    mkdir -p "$2$(dirname "$1")"
    cp -L --preserve=mode "$1" "$2$1"
}

# The Debian package that ships FILE, as "pkg version": dpkg knows a file
# by the path its package named, before or after /usr was merged.
owner() {
    local f p
    for f in "$1" "${1#/usr}" "$(readlink -f "$1")"; do
        p=$(dpkg-query -S "$f" 2>/dev/null | head -1 | cut -d: -f1) && [[ -n $p ]] && break
    done
    [[ -n $p ]] || die "$1 comes from no Debian package"
    printf '%s %s' "$p" "$(dpkg-query -W -f='${Version}' "$p")"
}

rootfs() {
    local root=$1 bin lib
    local -A seen=()
    local bins=("$build/meshd" "$build/meshctl" "$build/meshd-cni-static" /usr/bin/sleep)
    for bin in "${bins[@]}"; do
        [[ -x $bin ]] || die "$bin is missing: make all $build/meshd-cni-static first"
    done
    if file -b "$build/meshd-cni-static" | grep -q dynamic; then
        die "$build/meshd-cni-static is not static"
    fi
    rm -rf "$root"
    mkdir -p "$root"/{usr/bin,usr/lib,usr/lib64,etc,tmp,proc,sys,dev,run,var,usr/share/meshd}
    chmod 1777 "$root/tmp"
    # Debian's merged /usr: the same links, so ldd's paths resolve.
    ln -s usr/bin "$root/bin"
    ln -s usr/lib "$root/lib"
    ln -s usr/lib64 "$root/lib64"
    ln -s ../run "$root/var/run"
    printf 'root:x:0:0:root:/:/usr/bin/meshd\nnobody:x:65534:65534:nobody:/:/usr/bin/meshd\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    install -m 0755 "$build/meshd" "$root/usr/bin/meshd"
    install -m 0755 "$build/meshctl" "$root/usr/bin/meshctl"
    install -m 0755 "$build/meshd-cni-static" "$root/usr/bin/meshd-cni"
    install -m 0755 /usr/bin/sleep "$root/usr/bin/sleep"
    strip --strip-debug "$root/usr/bin/meshd" "$root/usr/bin/meshctl" "$root/usr/bin/meshd-cni"
    {
        echo "# file <- Debian package version (assembled by tools/image.sh)"
        echo "/usr/bin/sleep <- $(owner /usr/bin/sleep)"
        seen[/usr/bin/sleep]=1
        for bin in "$build/meshd" "$build/meshctl" /usr/bin/sleep; do
            # "name => /path (addr)" and the interpreter's "/path (addr)".
            while read -r lib; do
                [[ -n ${seen[$lib]:-} ]] && continue
                seen[$lib]=1
                copy_file "$lib" "$root"
                echo "$lib <- $(owner "$lib")"
            done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
        done
    } >"$root/usr/share/meshd/packages.txt"
    # Each package's copyright file, as Debian ships it.
    awk '$3 {print $3}' "$root/usr/share/meshd/packages.txt" | sort -u | while read -r p; do
        local doc=/usr/share/doc/$p/copyright
        [[ -f $doc ]] || doc=/usr/share/doc/${p%:*}/copyright
        [[ -f $doc ]] && copy_file "$doc" "$root"
    done
    say "rootfs $root: $(du -sh "$root" | cut -f1), $(grep -c ' <- ' "$root/usr/share/meshd/packages.txt") files from Debian packages"
}

if [[ ${1:-} == rootfs ]]; then
    [[ -n ${2:-} ]] || die "usage: tools/image.sh rootfs DIR"
    rootfs "$2"
    exit 0
fi

if ! command -v "$buildah" >/dev/null; then
    say "SKIPPED: no buildah here (Debian's: apt-get install buildah); nothing built"
    exit 0
fi
store=$build/image
b() { "$buildah" --root "$store/storage" --runroot "$store/run" --storage-driver vfs "$@"; }
rc=0
probe=$(b info 2>&1) || rc=$?
if ((rc != 0)); then
    say "SKIPPED: buildah cannot run here: 'buildah info' exited $rc${probe:+: $(tail -1 <<<"$probe")}"
    exit 0
fi
rootfs "$store/rootfs"
b bud --isolation chroot --layers=false -f "$here/deploy/Containerfile" -t "$image" "$store" >"$store/bud.log" 2>&1 ||
    die "buildah bud failed: $(tail -3 "$store/bud.log")"
rm -f "$store/meshd.oci.tar"
b push "$image" "oci-archive:$store/meshd.oci.tar:$image" >>"$store/bud.log" 2>&1 ||
    die "buildah push to an OCI archive failed: $(tail -3 "$store/bud.log")"
# The image runs: its own meshd, through its own libraries, in a chroot of
# the image's file system (no container runtime needed).
ctr=$(b from "$image")
mnt=$(b mount "$ctr")
rc=0
out=$(chroot "$mnt" /usr/bin/meshd --version 2>&1) || rc=$?
cni=$(CNI_COMMAND=VERSION chroot "$mnt" /usr/bin/meshd-cni 2>&1) || rc=$?
b umount "$ctr" >/dev/null
b rm "$ctr" >/dev/null
((rc == 0)) || die "the image's meshd does not run: $out"
grep -q '"supportedVersions"' <<<"$cni" || die "the image's meshd-cni does not answer VERSION: $cni"
say "built $image ($(b images --format '{{.Size}}' "$image" | head -1)); it runs: $out"
say "OCI archive: $store/meshd.oci.tar (podman load -i, ctr -n k8s.io images import, kind load image-archive)"
