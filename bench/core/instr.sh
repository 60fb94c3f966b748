#!/usr/bin/env bash
# instr.sh: instructions per malloc+free pair, hakmem against mimalloc, counted exactly by
# Cachegrind (Ir) on the loops of bench/core/instr.c.
#
#   ./bazelw run -c opt //bench:instr -- [--sizes 16,32,64,128] [--pairs N]
#
# Each figure is (Ir(run of 2N pairs) - Ir(run of N pairs)) / N: process start-up, heap creation
# and everything else outside the loop cancel. Both programs are built with -O2 and call their
# allocator as a shared library (see bench/core/BUILD.bazel). Rows:
#   pair     malloc one block, write its first byte, free it
#   batch100 malloc 100 blocks (writing each), then free them in order
#   heaps    the pair loop on a thread's only heap vs on the 500th of 1000 heaps the thread uses
#   dlopen build: batch100 against libhakmem_dlopen.so (local-dynamic TLS, for dlopen)
#   loop alone: the same loops calling out-of-line stubs, i.e. what every row includes besides
#            the allocator
# About 80 Valgrind runs of ~0.3 s each, one at a time. Build with -c opt: with asserts on the
# counts are meaningless, and the script warns.
set -euo pipefail

sizes="16,32,64,128"
pairs=20000
while (($#)); do
  case "$1" in
    --sizes) sizes="$2"; shift 2 ;;
    --pairs) pairs="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "instr.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
if ! [[ "$pairs" =~ ^[0-9]+$ ]] || ((pairs < 100 || pairs % 100)); then
  echo "instr.sh: --pairs must be a multiple of 100" >&2
  exit 2
fi

runfiles="${RUNFILES_DIR:-$0.runfiles}/hakmem"
bindir="$runfiles/bench/core"
if [ ! -x "$bindir/instr_hakmem" ]; then
  bindir="$(cd "$(dirname "$0")/../.." && pwd)/bazel-bin/bench/core"
fi
for b in instr_hakmem instr_hakmem_dlopen instr_mimalloc; do
  [ -x "$bindir/$b" ] || { echo "instr.sh: $b not built; use ./bazelw run -c opt //bench:instr" >&2; exit 2; }
done
command -v valgrind >/dev/null || { echo "instr.sh: valgrind not found (./bazelw installs it)" >&2; exit 2; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/hakmem-instr.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
warned=0

# Ir of one run: instr_<alloc> <api> <loop> <size> <iterations>.
ir() {
  local bin="$bindir/instr_$1"; shift
  if ! valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$tmp/cg.out" \
      "$bin" "$@" >"$tmp/out" 2>"$tmp/log"; then
    echo "instr.sh: failed: $bin $*" >&2
    cat "$tmp/log" "$tmp/out" >&2
    exit 1
  fi
  if ((!warned)) && grep -q "ndebug=0" "$tmp/out"; then
    echo "instr.sh: WARNING: built without -c opt (asserts on); use ./bazelw run -c opt //bench:instr" >&2
    warned=1
  fi
  awk '/^summary:/ { print $2 }' "$tmp/cg.out"
}

# Instructions per pair: <alloc> <api> <loop> <size>. Counts are deterministic: each is run once.
per_pair() {
  local key="$tmp/$1.$2.$3.$4"
  if [ -f "$key" ]; then cat "$key"; return; fi
  local per=1
  [ "$3" = batch100 ] && per=100
  local n=$((pairs / per))
  local a b
  a="$(ir "$1" "$2" "$3" "$4" "$n")"
  b="$(ir "$1" "$2" "$3" "$4" $((2 * n)))"
  awk -v a="$a" -v b="$b" -v p="$pairs" 'BEGIN { printf "%.1f", (b - a) / p }' | tee "$key"
}

IFS=, read -r -a size_list <<<"$sizes"
row() { # <label> <alloc> <api> <loop>
  printf '  %-40s' "$1"
  for s in "${size_list[@]}"; do printf ' %8s' "$(per_pair "$2" "$3" "$4" "$s")"; done
  printf '\n'
}
header() {
  printf '%-42s' "$1"
  for s in "${size_list[@]}"; do printf ' %8s' "$s B"; done
  printf '\n'
}

echo "Instructions per malloc+free pair (Cachegrind Ir; (Ir(2N) - Ir(N)) / N, N = $pairs pairs)"
echo
header "pair loop: malloc, write, free"
row "hakmem   hak_heap_malloc + hak_free" hakmem heap pair
row "hakmem   hak_malloc + hak_free" hakmem default pair
row "mimalloc mi_heap_malloc + mi_free" mimalloc heap pair
row "mimalloc mi_malloc + mi_free" mimalloc default pair
row "loop alone (out-of-line stubs)" hakmem stub pair
echo
header "batch100 loop: 100 mallocs, then 100 frees"
row "hakmem   hak_heap_malloc + hak_free" hakmem heap batch100
row "hakmem   hak_malloc + hak_free" hakmem default batch100
row "hakmem   dlopen build (HAK_TLS_DYNAMIC)" hakmem_dlopen heap batch100
row "mimalloc mi_heap_malloc + mi_free" mimalloc heap batch100
row "mimalloc mi_malloc + mi_free" mimalloc default batch100
row "loop alone (out-of-line stubs)" hakmem stub batch100
echo
header "pair loop: only heap vs heap #500 of 1000"
row "hakmem   only heap" hakmem heap pair
row "hakmem   heap #500 of 1000" hakmem heaps1000 pair
row "mimalloc only heap" mimalloc heap pair
row "mimalloc heap #500 of 1000" mimalloc heaps1000 pair
