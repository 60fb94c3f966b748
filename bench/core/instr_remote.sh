#!/usr/bin/env bash
# instr_remote.sh: instructions per remote free, counted by Cachegrind (Ir) on instr_remote.c.
#   ./bazelw build -c opt //bench/core:instr_remote && bench/core/instr_remote.sh [size] [n]
set -euo pipefail
size="${1:-64}"
n="${2:-20000}"
bin="$(cd "$(dirname "$0")/../.." && pwd)/bazel-bin/bench/core/instr_remote"
ir() {
  local out
  out="$(valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$bin" "$@" 2>&1)"
  sed -n 's/.*I *refs: *\([0-9,]*\).*/\1/p' <<<"$out" | tr -d ,
}
f1=$(ir free "$size" "$n"); f2=$(ir free "$size" $((2 * n)))
s1=$(ir skip "$size" "$n"); s2=$(ir skip "$size" $((2 * n)))
echo "size $size: $(( (f2 - f1 - s2 + s1) * 100 / n )) / 100 instructions per remote free"
