#!/usr/bin/env bash
# Runs each cmocka unit-test binary given as an argument; prints one summary
# line "N passed, N failed" over all test binaries and fails if any failed.
set -u
passed=0 failed=0
for t in "$@"; do
    if out=$("$t" 2>&1); then
        passed=$((passed + 1))
        printf '  PASS %s (%s)\n' "$(basename "$t")" "$(grep -o '[0-9]* test(s)' <<<"$out" | head -1)"
    else
        failed=$((failed + 1))
        printf '  FAIL %s\n%s\n' "$(basename "$t")" "$out"
    fi
done
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
