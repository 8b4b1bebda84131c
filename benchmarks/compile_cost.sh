#!/usr/bin/env bash
# Compile cost of including hotswap's umbrella header alone beside <fmt/format.h> alone:
# g++ -std=c++20 -O0 -c, median of N runs each, interleaved so that both see the same machine.
# Usage: benchmarks/compile_cost.sh [runs] [compiler]   (from the repository root)
set -euo pipefail
runs=${1:-5}
cxx=${2:-g++}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo '#include <fmt/format.h>' >"$work/fmt.cpp"
echo '#include <hotswap/hotswap.hpp>' >"$work/hotswap.cpp"
measure() {  # seconds of user + system time for one compile
  /usr/bin/time -f "%U %S" "$cxx" -std=c++20 -O0 -c -I"$root/include" "$1" -o /dev/null 2>&1 | tail -n 1 |
    awk '{ printf "%.3f\n", $1 + $2 }'
}
for ((i = 0; i < runs; ++i)); do
  measure "$work/fmt.cpp" >>"$work/fmt.times"
  measure "$work/hotswap.cpp" >>"$work/hotswap.times"
done
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
f=$(median "$work/fmt.times")
h=$(median "$work/hotswap.times")
awk -v f="$f" -v h="$h" -v cxx="$cxx" -v n="$runs" 'BEGIN {
  printf "%s -O0 -c, median of %d: <fmt/format.h> %.3f s, <hotswap/hotswap.hpp> %.3f s, ratio %.2f (target <= 1.50)\n", cxx, n, f, h, h / f }'
