#!/usr/bin/env bash
# Compile cost of including hotswap's umbrella header alone, and the schema headers alone, beside
# <fmt/format.h> alone: g++ -std=c++20 -O0 -c.
#   benchmarks/compile_cost.sh [runs] [compiler]     time: median of `runs`, interleaved so that
#                                                    all see the same machine (swings ±30 % here)
#   benchmarks/compile_cost.sh instructions [compiler]
#                                                    the instructions cc1plus executes, counted by
#                                                    valgrind (apt-get install valgrind): exact
# Run from anywhere; it includes the repository's include/.
set -euo pipefail
mode=time
if [[ ${1:-} == instructions ]]; then
  mode=instructions
  shift
  command -v valgrind >/dev/null || { echo "compile_cost.sh: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
fi
runs=${1:-5}
[[ $mode == instructions ]] && runs=1 && cxx=${1:-g++} || cxx=${2:-g++}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo '#include <fmt/format.h>' >"$work/fmt.cpp"
echo '#include <hotswap/hotswap.hpp>' >"$work/hotswap.cpp"
printf '#include <hotswap/schemas.hpp>\n#include <hotswap/migrations.hpp>\n#include <hotswap/inspect.hpp>\n' >"$work/schemas.cpp"
compile=("$cxx" -std=c++20 -O0 -c -I"$root/include")
measure() {  # seconds of user + system time, or instructions of the compiler proper, for one compile
  if [[ $mode == time ]]; then
    /usr/bin/time -f "%U %S" "${compile[@]}" "$1" -o /dev/null 2>&1 | tail -n 1 | awk '{ printf "%.3f\n", $1 + $2 }'
  else
    rm -f "$work"/cg.*
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$work/cg.%p" "${compile[@]}" "$1" \
      -o /dev/null >/dev/null 2>&1
    grep -h '^summary:' "$work"/cg.* | awk '{ print $2 }' | sort -n | tail -n 1
  fi
}
for ((i = 0; i < runs; ++i)); do
  for file in fmt hotswap schemas; do measure "$work/$file.cpp" >>"$work/$file.values"; done
done
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
awk -v f="$(median "$work/fmt.values")" -v h="$(median "$work/hotswap.values")" -v s="$(median "$work/schemas.values")" \
  -v what="$cxx -O0 -c, $([[ $mode == time ]] && echo "seconds, median of $runs" || echo "instructions")" 'BEGIN {
  printf "%s: <fmt/format.h> %.4g, <hotswap/hotswap.hpp> %.4g (%.2f×, target <= 1.50), schema headers %.4g (%.2f×)\n",
    what, f, h, h / f, s, s / f }'
