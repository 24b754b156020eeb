#!/usr/bin/env bash
# make fuzz: builds each tests/fuzz/fuzz_*.c with clang's libFuzzer and
# ASan/UBSan against the agent's sources, and runs it for FUZZ_SECONDS
# (default 30) from its committed seed corpus. New inputs go to a scratch
# copy; a crash leaves its reproducer in build/fuzz/. Arguments name the
# drivers to run (`run.sh fuzz_h1`); none: all of them.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-30}
out=build/fuzz
mkdir -p "$out"
llhttp_dir=${LLHTTP_DIR:-/usr/share/llhttp}
llhttp_inc=${LLHTTP_INC:-/usr/share/include/llhttp}
flags="-g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Iagent -Ibuild -I$llhttp_inc $(pkg-config --cflags jansson)"
srcs="$(ls agent/*/*.c | grep -v -e '^agent/main.c$') $llhttp_dir/api.c $llhttp_dir/http.c $llhttp_dir/llhttp.c"
libs="$(pkg-config --libs libbpf openssl yaml-0.1 jansson libnghttp2 libmnl libpcre2-8) -lelf -lz"
fail=0
drivers=$(ls tests/fuzz/fuzz_*.c)
if [ $# -gt 0 ]; then
    drivers=$(for d in "$@"; do echo "tests/fuzz/${d%.c}.c"; done)
fi
for drv in $drivers; do
    name=$(basename "$drv" .c)
    corpus=tests/fuzz/corpus/${name#fuzz_}
    echo "fuzz: building $name"
    # shellcheck disable=SC2086
    clang $flags "$drv" $srcs $libs -o "$out/$name"
    work=$(mktemp -d)
    cp -r "$corpus/." "$work/" 2>/dev/null || true
    echo "fuzz: running $name for ${secs}s"
    if ! "$out/$name" -max_total_time="$secs" -artifact_prefix="$out/$name-" "$work" 2>"$out/$name.log"; then
        echo "fuzz: $name FAILED (see $out/$name.log)"
        fail=1
    else
        grep -E '^#[0-9]+.*(DONE|pulse)' "$out/$name.log" | tail -1
    fi
    rm -rf "$work"
done
exit $fail
