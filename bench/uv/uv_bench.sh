#!/usr/bin/env bash
# uv_bench.sh: req/s and peak RSS of examples/uv_server on three allocators, side by side:
# hakmem (heap per connection), glibc malloc (--malloc) and mimalloc (--malloc + LD_PRELOAD).
# Rounds are interleaved (A B C A B C ...); the table shows medians and ratios to hakmem.
# Loopback only. Usage: uv_bench.sh [--rounds N] [--conns C] [--total T] [--requests R]
#                                   [--depth D] [--hash-every K] [--hash-rounds N]
set -euo pipefail

rounds=5 conns=32 total=256 requests=200 depth=4 hash_every=10 hash_rounds=500
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2 ;;
    --conns) conns=$2 ;;
    --total) total=$2 ;;
    --requests) requests=$2 ;;
    --depth) depth=$2 ;;
    --hash-every) hash_every=$2 ;;
    --hash-rounds) hash_rounds=$2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done

find_bin() {
  local name=$1 d
  for d in "${RUNFILES_DIR:-}" "$0.runfiles" "$(dirname "$0")/uv_bench.runfiles"; do
    if [ -n "$d" ] && [ -x "$d/hakmem/examples/$name" ]; then echo "$d/hakmem/examples/$name"; return; fi
  done
  if [ -x "examples/$name" ]; then echo "$PWD/examples/$name"; return; fi
  echo "cannot find $name (run with ./bazelw run -c opt //bench:uv)" >&2
  exit 1
}
server=$(find_bin uv_server)
client=$(find_bin uv_client)
mimalloc=${MIMALLOC_SO:-/usr/lib/x86_64-linux-gnu/libmimalloc.so.2}
variants="hakmem glibc"
if [ -r "$mimalloc" ]; then variants="$variants mimalloc"; else echo "no $mimalloc: mimalloc skipped" >&2; fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One run: prints "req_per_s peak_rss_kb server_cpu_us_per_request".
run_one() {
  local variant=$1 out=$tmp/server.out pid port i
  local args=(--port 0 --max-conns "$total" --quiet)
  : > "$out"
  case $variant in
    hakmem) "$server" "${args[@]}" > "$out" 2>&1 & ;;
    glibc) "$server" "${args[@]}" --malloc > "$out" 2>&1 & ;;
    mimalloc) LD_PRELOAD=$mimalloc "$server" "${args[@]}" --malloc > "$out" 2>&1 & ;;
  esac
  pid=$!
  for i in $(seq 200); do
    port=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\)$/\1/p' "$out")
    [ -n "$port" ] && break
    sleep 0.05
  done
  if [ -z "$port" ]; then echo "$variant: server did not start" >&2; kill "$pid"; exit 1; fi
  local res
  if ! res=$("$client" --port "$port" --conns "$conns" --total "$total" --requests "$requests" \
              --depth "$depth" --hash-every "$hash_every" --rounds "$hash_rounds" --timeout-ms 60000); then
    echo "$variant: client reported errors: $res" >&2; kill "$pid" 2>/dev/null; exit 1
  fi
  wait "$pid"
  local rps rss cpu reqs
  rps=$(echo "$res" | sed -n 's/.*req_per_s \([0-9.]*\).*/\1/p')
  reqs=$(echo "$res" | sed -n 's/^requests \([0-9]*\).*/\1/p')
  rss=$(sed -n 's/^peak_rss_kb \([0-9]*\)$/\1/p' "$out")
  cpu=$(sed -n 's/^cpu_us \([0-9]*\)$/\1/p' "$out")
  echo "$rps $rss $(awk -v c="$cpu" -v n="$reqs" 'BEGIN { printf "%.2f", c / n }')"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "uv_server under uv_client: $conns concurrent, $total connections x $requests requests," \
     "depth $depth, HASH every $hash_every ($hash_rounds rounds); $rounds interleaved rounds"
for r in $(seq "$rounds"); do
  for v in $variants; do
    read -r rps rss cpu < <(run_one "$v")
    echo "$rps" >> "$tmp/$v.rps"
    echo "$rss" >> "$tmp/$v.rss"
    echo "$cpu" >> "$tmp/$v.cpu"
    echo "round $r $v: $rps req/s, peak RSS $rss KiB, server CPU $cpu us/request"
  done
done

hrps=$(median < "$tmp/hakmem.rps")
hrss=$(median < "$tmp/hakmem.rss")
hcpu=$(median < "$tmp/hakmem.cpu")
echo
echo "| allocator | req/s | peak RSS KiB | server CPU us/req | hakmem req/s ratio | hakmem RSS ratio | hakmem CPU ratio |"
echo "|---|---|---|---|---|---|---|"
for v in $variants; do
  rps=$(median < "$tmp/$v.rps")
  rss=$(median < "$tmp/$v.rss")
  cpu=$(median < "$tmp/$v.cpu")
  awk -v v="$v" -v rps="$rps" -v rss="$rss" -v cpu="$cpu" -v hrps="$hrps" -v hrss="$hrss" -v hcpu="$hcpu" \
    'BEGIN { printf "| %s | %.0f | %d | %.2f | %.2fx | %.2fx | %.2fx |\n", v, rps, rss, cpu, hrps / rps, hrss / rss, hcpu / cpu }'
done
echo
echo "medians of $rounds rounds; ratios are hakmem divided by the row: req/s higher is better for"
echo "hakmem, RSS and CPU per request lower is better. CPU is the server's user+sys time per request"
echo "(less sensitive than req/s to other load on the machine)."

