#!/usr/bin/env bash
# Prints the call graph between meshd's source files and between its
# folders, and fails on a cycle in either.
#
# Reads the agent's object files with nm: a file that uses a symbol another
# file defines depends on it, and its folder on that file's folder. Edges
# are printed as "from -> to" (-v), every strongly connected component of
# more than one node is printed as a cycle, and the exit status is 1 if
# there is any. `make lint` runs it so a new cycle between files or between
# folders fails lint; docs/ARCHITECTURE.md ("Dependency order") gives the
# one-way order of folders that keeps both graphs acyclic.
#
# Files listed in tools/depgraph.modules count as one module (a module
# stays inside its folder, so the folder graph is unchanged by it).
#
# Usage: tools/depgraph.sh [-v] [-f|-F] [build-dir]
#   -v  also print every edge
#   -f  the folder graph only        -F  the file graph only
set -euo pipefail

verbose=0
graphs="0 1" # 0: files, 1: folders
while getopts vfF opt; do
    case $opt in
    v) verbose=1 ;;
    f) graphs=1 ;;
    F) graphs=0 ;;
    *) echo "usage: $0 [-v] [-f|-F] [build-dir]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
build=${1:-build}
cd "$(dirname "$0")/.." # sources are looked up from the repository root

mapfile -t objs < <(find "$build/agent" -name '*.o' ! -name main.o | sort)
if [ ${#objs[@]} -eq 0 ]; then
    echo "depgraph: no objects under $build/agent (build first)" >&2
    exit 2
fi

# "M file module" for files grouped into one module (depgraph.modules),
# then one line per symbol: "D file sym" (defined, global) or "U file sym".
symbols() {
grep -v '^#' "$(dirname "$0")/depgraph.modules" | awk 'NF == 2 { print "M", $1, $2 }'
for o in "${objs[@]}"; do
    f=${o#"$build"/}
    f=${f%.o}.c
    [ -f "$f" ] || continue # a stale object: its source is gone
    nm "$o" | awk -v f="$f" '
        $1 == "U" { print "U", f, $2; next }
        NF == 3 && $2 ~ /^[TDBRCGSVW]$/ { print "D", f, $3 }'
done
}
syms=$(symbols)

# One graph: its edges (-v) and cycles; exits 1 if it has a cycle.
graph() {
printf '%s\n' "$syms" | awk -v verbose="$verbose" -v folders="$1" '
function node(f) {
    if (f in module) f = module[f]
    if (folders) { sub(/\/[^\/]*$/, "", f) }
    return f
}
$1 == "M" { module[$2] = $3; next }
$1 == "D" { def[$3] = $2; next }
$1 == "U" { use[++nu] = $2 SUBSEP $3 }
END {
    for (i = 1; i <= nu; i++) {
        split(use[i], p, SUBSEP)
        if (!(p[2] in def)) continue
        a = node(p[1]); b = node(def[p[2]])
        if (a == b) continue
        if (!((a, b) in edge)) {
            edge[a, b] = p[2]
            succ[a] = succ[a] " " b
            nodes[a]; nodes[b]
        } else if (!((a, b, p[2]) in seen))
            edge[a, b] = edge[a, b] " " p[2]
        seen[a, b, p[2]]
    }
    if (verbose)
        for (k in edge) {
            split(k, e, SUBSEP)
            printf "%s -> %s (%s)\n", e[1], e[2], edge[k]
        }
    # Tarjan: strongly connected components (recursive: a few hundred nodes).
    idx = 0; ncyc = 0
    for (n in nodes) if (!(n in index_)) strong(n)
    exit ncyc > 0
}
function strong(v,    ws, w, i, n, comp, cnt) {
    index_[v] = idx; low[v] = idx; idx++
    stack[++sp] = v; onstack[v] = 1
    n = split(succ[v], ws, " ")
    for (i = 1; i <= n; i++) {
        w = ws[i]
        if (!(w in index_)) {
            strong(w)
            if (low[w] < low[v]) low[v] = low[w]
        } else if (onstack[w] && index_[w] < low[v])
            low[v] = index_[w]
    }
    if (low[v] == index_[v]) {
        comp = ""; cnt = 0
        do {
            w = stack[sp--]; onstack[w] = 0
            comp = comp " " w; cnt++
        } while (w != v)
        if (cnt > 1) {
            ncyc++
            printf "depgraph: cycle between%s\n", comp > "/dev/stderr"
            cyc_members(comp)
        }
    }
}
function cyc_members(comp,    m, n, i, j) {
    n = split(comp, m, " ")
    for (i = 1; i <= n; i++)
        for (j = 1; j <= n; j++)
            if ((m[i], m[j]) in edge)
                printf "    %s -> %s (%s)\n", m[i], m[j], edge[m[i], m[j]] > "/dev/stderr"
}'
}

status=0
for g in $graphs; do
    graph "$g" || status=1
done
exit $status
