# shellcheck shell=bash
# What every bench script computes the same way (sourced).
#   to_us VALUE [DECIMALS]  wrk's 45.00us / 1.20ms / 1.00s in microseconds,
#                           DECIMALS places (0)
#   ratio A B               A / B as "1.23x"; "-" when B is 0
#   cpu_seconds PID         the utime + stime of PID, in seconds
to_us() {
    awk -v v="$1" -v d="${2:-0}" \
        'BEGIN { n = v + 0; if (v ~ /ms$/) n *= 1000; else if (v ~ /[0-9]s$/) n *= 1e6; printf "%.*f", d, n }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2fx", a / b }'; }
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
