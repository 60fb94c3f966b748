#!/usr/bin/env bash
# Builds tests/fuzz/fuzz_target.c with clang-14 and libFuzzer (+ASan+UBSan, hakmem sources
# compiled in, not through Bazel whose toolchain here is gcc), replays the saved regressions,
# then fuzzes from the committed seed corpus for a bounded time. Any crash, leak, timeout or
# OOM input is saved in tests/fuzz/regressions/ and the script fails. It also fails when the
# run executed fewer than HAK_FUZZ_MIN_EXECS_PER_SEC inputs per second (default 20; a run here
# does about 190), so a fuzzer that stalls or stops early does not pass.
#
#   tests/fuzz/run_fuzz.sh [seconds]          default 60 (HAK_FUZZ_SECONDS also works)
#   HAK_FUZZ_CFLAGS=-DHAK_SECURE=1 tests/fuzz/run_fuzz.sh    fuzz the secure build
#   HAK_FUZZ_JOBS=2 ...                        parallel fuzzing processes (default 1)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-${HAK_FUZZ_SECONDS:-60}}"
jobs="${HAK_FUZZ_JOBS:-1}"
min_rate="${HAK_FUZZ_MIN_EXECS_PER_SEC:-20}"
cc="${CLANG:-clang-14}"
out="${HAK_FUZZ_OUT:-/tmp/hakmem-fuzz}"
regress=tests/fuzz/regressions
mkdir -p "$out/work" "$regress"

# shellcheck disable=SC2086
"$cc" -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -DHAK_ASAN=1 \
  ${HAK_FUZZ_CFLAGS:-} -Ihakmem/include -Ihakmem/src \
  hakmem/src/*.c tests/fuzz/fuzz_target.c -lpthread -o "$out/hakmem_fuzz"
echo "run_fuzz: built $out/hakmem_fuzz (${HAK_FUZZ_CFLAGS:-default build})"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

saved=()
while IFS= read -r -d '' f; do saved+=("$f"); done \
  < <(find "$regress" -type f ! -name 'README*' ! -name '.*' -print0)
if ((${#saved[@]})); then
  echo "run_fuzz: replaying ${#saved[@]} saved regression input(s)"
  "$out/hakmem_fuzz" -runs=0 "${saved[@]}"
fi

# New inputs go to a scratch corpus; the committed corpus only seeds it.
# With -jobs > 1 libFuzzer writes each job's output to fuzz-<job>.log in the current folder.
status=0
log="$out/fuzz.log"
rm -f fuzz-*.log
"$out/hakmem_fuzz" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 -max_len=4096 \
  -print_final_stats=1 -jobs="$jobs" -workers="$jobs" \
  -artifact_prefix="$regress/" "$out/work" tests/fuzz/corpus 2>&1 | tee "$log" || status=$?
if ((status != 0)); then
  echo "run_fuzz: FAILED (exit $status); input(s) saved in $regress/:" >&2
  find "$regress" -type f ! -name 'README*' -newer "$out/hakmem_fuzz" -print >&2
  exit 1
fi
execs=$(cat "$log" fuzz-*.log 2>/dev/null |
  awk '/^stat::number_of_executed_units:/ { n += $2 } END { print n + 0 }')
need=$(awk -v s="$secs" -v r="$min_rate" 'BEGIN { print int(s * r) }')
if ((execs < need)); then
  echo "run_fuzz: FAILED: $execs inputs executed in ${secs}s, want at least $need" >&2
  exit 1
fi
echo "run_fuzz: no failure in ${secs}s, $execs inputs executed"
