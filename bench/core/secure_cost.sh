#!/usr/bin/env bash
# secure_cost.sh: what the secure build (--config=secure) costs against the default build on
# the core benchmarks. Builds bench_hakmem both ways (-c opt), runs them alternately (default,
# secure, default, ...) for R rounds per workload, one process per run, and prints the median
# operations per CPU-second of each and their ratio. Timed: on a shared machine run it under
# the benchmark lock, e.g. `flock /work/bench.lock bench/core/secure_cost.sh`.
#
#   bench/core/secure_cost.sh [--rounds R] [--seconds S] [--workloads random,request,twoheaps]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=5 secs=1 wls="random,request,twoheaps,medium"
while (($#)); do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --seconds) secs="$2"; shift 2 ;;
    --workloads) wls="$2"; shift 2 ;;
    *) echo "secure_cost.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
./bazelw build -c opt //bench/core:bench_hakmem >/dev/null 2>&1
./bazelw build -c opt --config=secure //bench/core:bench_hakmem >/dev/null 2>&1
out="$(./bazelw info -c opt output_path 2>/dev/null)"
bins=("$out/k8-opt/bin/bench/core/bench_hakmem" "$out/k8-optsecure/bin/bench/core/bench_hakmem")
for b in "${bins[@]}"; do [ -x "$b" ] || { echo "secure_cost.sh: $b missing" >&2; exit 1; }; done

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '%-10s %14s %14s %10s   (median ops per CPU-second, %d rounds x %s s)\n' \
  workload default secure secure/def "$rounds" "$secs"
IFS=, read -r -a list <<<"$wls"
for w in "${list[@]}"; do
  : >"/tmp/secure_cost.$$.0"
  : >"/tmp/secure_cost.$$.1"
  for ((r = 0; r < rounds; r++)); do
    for i in 0 1; do
      "${bins[$i]}" --workload "$w" --seconds "$secs" |
        sed -n 's/.*ops_per_cpu_s=\([0-9.]*\).*/\1/p' >>"/tmp/secure_cost.$$.$i"
    done
  done
  d="$(median <"/tmp/secure_cost.$$.0")"
  s="$(median <"/tmp/secure_cost.$$.1")"
  rm -f "/tmp/secure_cost.$$.0" "/tmp/secure_cost.$$.1"
  awk -v w="$w" -v d="$d" -v s="$s" 'BEGIN { printf "%-10s %14.0f %14.0f %9.3fx\n", w, d, s, s / d }'
done
