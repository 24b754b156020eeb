#!/usr/bin/env bash
# Installs every build and test dependency of meshd from Debian's packages.
# Idempotent: asks apt only for what is missing. Run as root (make deps).
set -euo pipefail

pkgs=(
    # build
    make gcc pkg-config clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev
    libssl-dev libyaml-dev libjansson-dev libnghttp2-dev liburcu-dev libmnl-dev
    node-llhttp libpcre2-dev xxd
    # unit tests, lint
    libcmocka-dev clang-format clang-tidy cppcheck
    # end-to-end tests: namespaces, real clients and servers
    iproute2 util-linux procps curl python3 jq openssl
    iperf3 nginx-light tshark nghttp2-client nghttp2-proxy nodejs
    # benchmarks
    wrk haproxy
    # telemetry: a real Prometheus server and promtool
    prometheus
    # dashboards: a real browser the tests drive (puppeteer-core, from npm)
    chromium
    # Kubernetes: the official Python client against the API stand-in, the
    # real CNI plugins (bridge, host-local) that meshd-cni chains after
    python3-kubernetes containernetworking-plugins
    # make image: buildah packs deploy/Containerfile (FROM scratch)
    buildah
    # the kernel matrix (make vmtest): qemu, the guests' initramfs, kernel
    # modules unpacked and decompressed
    qemu-system-x86 busybox-static kmod xz-utils zstd
)
# Debian 12's kubectl is in kubernetes-client; a kubectl already installed
# from another package (Google's `kubectl`) owns /usr/bin/kubectl and
# would make the install fail, so it is asked for only when none exists.
command -v kubectl >/dev/null || pkgs+=(kubernetes-client)

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all ${#pkgs[@]} packages present"
else
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The test clients from npm (gRPC's grpc-js, puppeteer-core) and the
# dashboard's vendored libraries, pinned by the lock file.
# A stamp of the lock file's hash says whether node_modules is current.
here=$(cd "$(dirname "$0")/.." && pwd)
lock=$(sha256sum "$here/tests/node/package-lock.json" | cut -d' ' -f1)
stamp="$here/tests/node/node_modules/.meshd-lock"
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock" ]; then
    echo "deps: npm ci in tests/node"
    (cd "$here/tests/node" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock" >"$stamp"
fi
