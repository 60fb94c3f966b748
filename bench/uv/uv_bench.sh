#!/usr/bin/env bash
# uv_bench.sh: bench/uv/uv_http (HTTP/1.1 keep-alive, libuv) loaded by wrk on 127.0.0.1, on
# hakmem (a heap per connection) and on glibc, mimalloc and jemalloc (--malloc; mimalloc and
# jemalloc preloaded, the same way for both). One server process per run; rounds interleave the
# allocators (A B C D A B C D ...); tables give medians and hakmem's ratios to each.
# Per run: wrk's req/s and p99 latency, the server's CPU per request (utime+stime from
# /proc/<pid>/stat over the wrk run, divided by the requests the server answered) and its peak
# RSS (VmHWM).
# Usage: uv_bench.sh [--rounds N] [--duration S] [--conns "50 500"] [--paths "/1k /64k /work"]
#                    [--allocators "hakmem glibc mimalloc jemalloc"] [--wrk-threads T]
#                    [--server-args "..."]
set -euo pipefail

rounds=3 duration=4 conns="50 500" paths="/1k /64k /work" wrk_threads=2 server_args=""
allocators="hakmem glibc mimalloc jemalloc"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2 ;;
    --duration) duration=$2 ;;
    --conns) conns=$2 ;;
    --paths) paths=$2 ;;
    --allocators) allocators=$2 ;;
    --wrk-threads) wrk_threads=$2 ;;
    --server-args) server_args=$2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done

find_bin() {
  local name=$1 d
  for d in "${RUNFILES_DIR:-}" "$0.runfiles" "$(dirname "$0")/uv_bench.runfiles"; do
    if [ -n "$d" ] && [ -x "$d/hakmem/bench/uv/$name" ]; then echo "$d/hakmem/bench/uv/$name"; return; fi
  done
  echo "cannot find $name (run with ./bazelw run -c opt //bench:uv)" >&2
  exit 1
}
server=$(find_bin uv_http)
command -v wrk > /dev/null || { echo "wrk is not installed (apt-get install -y wrk; ./bazelw does it)" >&2; exit 1; }
lib=/usr/lib/x86_64-linux-gnu
declare -A preload=([mimalloc]=$lib/libmimalloc.so.2 [jemalloc]=$lib/libjemalloc.so.2)
for a in $allocators; do
  if [ -n "${preload[$a]:-}" ] && [ ! -r "${preload[$a]}" ]; then
    echo "no ${preload[$a]}: $a skipped" >&2
    allocators=$(echo " $allocators " | sed "s/ $a / /")
  fi
done
tick=$(getconf CLK_TCK)
tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# One run: prints "req_per_s p99_ms cpu_us_per_request peak_rss_kib".
run_one() {
  local alloc=$1 path=$2 c=$3 out=$tmp/server.out port="" i args=(--port 0)
  [ "$alloc" = hakmem ] || args+=(--malloc)
  # shellcheck disable=SC2206
  args+=($server_args)
  : > "$out"
  if [ -n "${preload[$alloc]:-}" ]; then
    LD_PRELOAD=${preload[$alloc]} "$server" "${args[@]}" > "$out" 2>&1 &
  else
    "$server" "${args[@]}" > "$out" 2>&1 &
  fi
  pid=$!
  for i in $(seq 200); do
    port=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\)$/\1/p' "$out")
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "$alloc: server did not start: $(cat "$out")" >&2; exit 1; }
  local t0 t1 wrk_out hwm reqs errs
  t0=$(cpu_ticks "$pid")
  wrk_out=$(wrk -t "$wrk_threads" -c "$c" -d "${duration}s" --latency "http://127.0.0.1:$port$path")
  t1=$(cpu_ticks "$pid")
  hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$pid/status")
  kill -TERM "$pid"
  wait "$pid" || { echo "$alloc: server failed: $(cat "$out")" >&2; exit 1; }
  pid=""
  reqs=$(sed -n 's/^requests \([0-9]*\) errors.*/\1/p' "$out")
  errs=$(sed -n 's/^requests [0-9]* errors \([0-9]*\)$/\1/p' "$out")
  if [ "$errs" != 0 ] || echo "$wrk_out" | grep -q "Non-2xx"; then
    echo "$alloc $path: errors: $wrk_out $(cat "$out")" >&2; exit 1
  fi
  echo "$wrk_out" | awk -v t0="$t0" -v t1="$t1" -v tick="$tick" -v reqs="$reqs" -v hwm="$hwm" '
    /^Requests\/sec:/ { rps = $2 }
    $1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
                  p99 = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v }
    END { printf "%.0f %.3f %.2f %d\n", rps, p99, (t1 - t0) * 1e6 / tick / reqs, hwm }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "uv_http under wrk -t$wrk_threads -d${duration}s on 127.0.0.1; connections: $conns; paths: $paths;"
echo "allocators: $allocators; $rounds interleaved rounds; server args: ${server_args:-none}"
for r in $(seq "$rounds"); do
  for c in $conns; do
    for p in $paths; do
      for a in $allocators; do
        read -r rps p99 cpu rss < <(run_one "$a" "$p" "$c")
        key="$c${p//\//_}_$a"
        echo "$rps" >> "$tmp/$key.rps"; echo "$p99" >> "$tmp/$key.p99"
        echo "$cpu" >> "$tmp/$key.cpu"; echo "$rss" >> "$tmp/$key.rss"
        echo "round $r c=$c $p $a: $rps req/s, p99 $p99 ms, CPU $cpu us/req, peak RSS $rss KiB"
      done
    done
  done
done

echo
echo "| conns | path | allocator | req/s | p99 ms | CPU us/req | peak RSS KiB | hakmem req/s | hakmem p99 | hakmem CPU/req | hakmem RSS |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for c in $conns; do
  for p in $paths; do
    h="$tmp/$c${p//\//_}_hakmem"
    for a in $allocators; do
      k="$tmp/$c${p//\//_}_$a"
      awk -v c="$c" -v p="$p" -v a="$a" \
        -v rps="$(median < "$k.rps")" -v p99="$(median < "$k.p99")" -v cpu="$(median < "$k.cpu")" -v rss="$(median < "$k.rss")" \
        -v hrps="$(median < "$h.rps")" -v hp99="$(median < "$h.p99")" -v hcpu="$(median < "$h.cpu")" -v hrss="$(median < "$h.rss")" \
        'BEGIN { printf "| %s | %s | %s | %.0f | %.2f | %.2f | %d | %.2fx | %.2fx | %.2fx | %.2fx |\n",
                 c, p, a, rps, p99, cpu, rss, hrps / rps, hp99 / p99, hcpu / cpu, hrss / rss }'
    done
  done
done
echo
echo "medians of $rounds rounds. Ratios are hakmem's value divided by the row's: above 1 is better"
echo "for req/s, below 1 is better for p99, CPU per request and peak RSS."
