# shellcheck shell=bash
# Reading the spans of lib/otlp_collector.py in the tracing tests (source
# after meshd.sh; set COLLECTOR_NS, the collector's netns, and COLLECTOR,
# its IP:PORT).
#   collector PATH         GET PATH of the collector (/spans, /spans?trace=HEX)
#   spans_of TRACE N       waits (5 s at most) for N spans of TRACE; prints
#                          them (a JSON array)
#   span_chain FIRST_PARENT
#                          the spans on stdin as a chain: the span whose
#                          parent is FIRST_PARENT ("": a root), its one
#                          child, and so on (at most 8), a JSON array parent
#                          first; it stops where a span has no child or
#                          more than one
#   span_kind              a jq function: SERVER, CLIENT or the number

collector() { ip netns exec "$COLLECTOR_NS" curl -s -m 5 "http://$COLLECTOR$1"; }

spans_of() {
    local out n
    for _ in $(seq 1 50); do
        out=$(collector "/spans?trace=$1")
        n=$(jq length <<<"$out")
        ((n >= $2)) && break
        sleep 0.1
    done
    echo "$out"
}

span_chain() {
    jq -c --arg first "$1" '
        (map({key: (.parentSpanId // ""), value: .}) | group_by(.key) |
            map({key: .[0].key, value: map(.value)}) | from_entries) as $kids |
        [limit(8; {cur: $kids[$first]} |
            recurse(if (.cur | length) == 1 then {cur: $kids[.cur[0].spanId]} else empty end) |
            select((.cur | length) == 1) | .cur[0])]'
}

# shellcheck disable=SC2034 # used in the tests' jq programs
span_kind='def span_kind: {"2": "SERVER", "3": "CLIENT"}[.kind | tostring] // (.kind | tostring);'
