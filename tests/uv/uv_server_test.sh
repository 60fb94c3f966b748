#!/usr/bin/env bash
# uv_server_test.sh: examples/uv_server under examples/uv_client load on 127.0.0.1. Every reply
# must be right (the client checks each one), every connection's heap must be reset at close,
# and a run with 8x the connections must not create more heaps or hold more bytes.
set -euo pipefail

find_bin() {
  local d
  for d in "${RUNFILES_DIR:-}" "${TEST_SRCDIR:-}" "$0.runfiles"; do
    if [ -n "$d" ] && [ -x "$d/hakmem/examples/$1" ]; then echo "$d/hakmem/examples/$1"; return; fi
  done
  echo "cannot find $1" >&2
  exit 1
}
server=$(find_bin uv_server)
client=$(find_bin uv_client)
tmp=${TEST_TMPDIR:-$(mktemp -d)}
passed=0 failed=0
check() { # check <description> <condition...>
  local what=$1; shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "check failed: $what" >&2; fi
}

# run <name> <concurrent> <total>: server output in $tmp/<name>.out
run() {
  local name=$1 conns=$2 total=$3 port line
  rm -f "$tmp/fifo" && mkfifo "$tmp/fifo"
  "$server" --port 0 --max-conns "$total" > "$tmp/fifo" &
  local pid=$!
  exec 3< "$tmp/fifo"
  read -r line <&3 # blocks until the server listens
  port=${line##*:}
  cat <&3 > "$tmp/$name.out" &
  local reader=$!
  exec 3<&-
  if "$client" --port "$port" --conns "$conns" --total "$total" --requests 50 --depth 4 \
      --hash-every 5 --rounds 200 --timeout-ms 30000 > "$tmp/$name.client"; then
    check "$name: every reply right" true
  else
    check "$name: every reply right ($(cat "$tmp/$name.client"))" false
    kill "$pid" 2>/dev/null || true
  fi
  wait "$pid" && check "$name: server exits 0 after --max-conns" true ||
    check "$name: server exits 0 after --max-conns" false
  wait "$reader" || true
  cat "$tmp/$name.out"
}

field() { # field <file> <sed regex with one group>
  sed -n "s/$2/\1/p" "$1" | head -1
}

run small 16 32
run large 16 256

for name in small large; do
  total=$([ $name = small ] && echo 32 || echo 256)
  out=$tmp/$name.out
  check "$name: all connections accepted and closed" \
    grep -q "^connections $total accepted, $total closed; requests $((total * 50)) " "$out"
  check "$name: each connection heap reset at close" \
    grep -q "reset $total, attached 0," "$out"
  created=$(field "$out" '^conn heaps: created \([0-9]*\),.*')
  # The client opens the next connection before the server has seen the last one close.
  check "$name: heaps recycled ($created created for 16 at once)" test "$created" -le 48
  check "$name: loop heap has nothing live at exit" grep -q "^heap loop     live 0 B in 0 blocks" "$out"
done

held_small=$(field "$tmp/small.out" '^conn heap held at close: max \([0-9]*\) B')
held_large=$(field "$tmp/large.out" '^conn heap held at close: max \([0-9]*\) B')
check "connection heap held bytes stable ($held_small vs $held_large)" \
  test "$held_large" -le $((held_small * 3 / 2))
loop_small=$(field "$tmp/small.out" '^heap loop .* held \([0-9]*\) B.*')
loop_large=$(field "$tmp/large.out" '^heap loop .* held \([0-9]*\) B.*')
check "loop heap held bytes stable ($loop_small vs $loop_large)" \
  test "$loop_large" -le $((loop_small * 3 / 2 + 262144))

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
