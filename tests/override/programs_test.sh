#!/usr/bin/env bash
# programs_test.sh: runs a real program unchanged, once as is and once with the hakmem override
# preloaded, and requires identical output. Usage: programs_test.sh python|lua|git|gcc|sort|redis
set -euo pipefail
so="$PWD/hakmem/libhakmem_override.so"
[ -f "$so" ] || { echo "missing $so"; exit 1; }
data="$PWD/tests/override/data"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/hakmem-override-XXXXXX")"
cleanup() { [ -n "${redis_pids:-}" ] && kill $redis_pids 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# A missing program fails the test: a pass must mean the program ran (./bazelw installs them).
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "FAIL: $1 is not installed (Debian package: $2)"
  exit 1
}

# same <label> <command...>: the command's stdout and exit status with and without the override.
same() {
  local label="$1"; shift
  local rc1=0 rc2=0
  "$@" >"$tmp/plain.out" 2>"$tmp/plain.err" || rc1=$?
  LD_PRELOAD="$so" "$@" >"$tmp/hak.out" 2>"$tmp/hak.err" || rc2=$?
  if [ "$rc1" != "$rc2" ] || ! cmp -s "$tmp/plain.out" "$tmp/hak.out"; then
    echo "FAIL $label: exit $rc1 vs $rc2 under hakmem"
    diff "$tmp/plain.out" "$tmp/hak.out" | head -20 || true
    tail -20 "$tmp/hak.err"
    exit 1
  fi
  echo "ok $label ($(wc -c <"$tmp/hak.out") bytes of identical output, exit $rc1)"
}

case "$1" in
  python)
    need python3 python3
    same "python3 stdlib script" /usr/bin/python3 "$data/stdlib_heavy.py"
    ;;
  lua)
    need lua5.4 lua5.4
    same "lua5.4 GC script" lua5.4 "$data/gc_heavy.lua"
    ;;
  git)
    need git git
    git_run() {
      local d; d="$(mktemp -d "$tmp/repo-XXXX")"
      cd "$d"
      export HOME="$d" GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
      git init -q -b main .
      git config user.name test && git config user.email test@example.com
      for i in $(seq 1 200); do printf 'file %d\n%s\n' "$i" "$(seq "$i" $((i + 50)))" >"f$i.txt"; done
      git add . && git commit -q -m "first"
      sed -i 's/1/one/' f1*.txt && git commit -q -am "second"
      git log --format='%H %s' && git cat-file -p HEAD && git diff HEAD~1 --stat && git gc -q && git fsck 2>&1
    }
    export -f git_run; export tmp
    same "git init/add/commit/gc/fsck" bash -c git_run
    ;;
  gcc)
    need gcc gcc
    gcc_run() {
      gcc -O2 -c "$data/compile_me.c" -o "$1/out.o" && gcc "$1/out.o" -o "$1/out" && "$1/out" && sha256sum <"$1/out.o"
    }
    export -f gcc_run; export data
    mkdir -p "$tmp/g"
    same "gcc -O2 compile, link and run" bash -c 'gcc_run "$0"' "$tmp/g"
    ;;
  sort)
    need sort coreutils
    # ~120 MB of lines; sort with a 64 MB buffer so it also merges temporary files.
    awk 'BEGIN { srand(7); for (i = 0; i < 4000000; i++) printf "%08x %d %s\n", int(rand() * 4294967295), i, substr("abcdefghijklmnopqrstuvwxyz", 1 + i % 20) }' >"$tmp/in.txt"
    echo "input: $(wc -c <"$tmp/in.txt") bytes"
    same "sort 120 MB" bash -c 'sort -S 64M -T "$0" "$0/in.txt" | sha256sum' "$tmp"
    ;;
  redis)
    need redis-server redis-server
    need redis-cli redis-tools
    need redis-benchmark redis-tools
    free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
    start_redis() { # start_redis <port> [LD_PRELOAD value]
      LD_PRELOAD="${2:-}" redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$tmp" --loglevel warning >"$tmp/redis-$1.log" 2>&1 &
      redis_pids="${redis_pids:-} $!"
      for _ in $(seq 1 200); do # readiness poll of an external server, bounded to ~10 s
        redis-cli -p "$1" ping 2>/dev/null | grep PONG >/dev/null && return 0
        sleep 0.05
      done
      echo "FAIL: redis-server on port $1 did not start"; cat "$tmp/redis-$1.log"; exit 1
    }
    script() { # a fixed command sequence; prints every reply
      for i in $(seq 1 300); do echo "SET key:$i $(printf 'v%.0s' $(seq 1 $((i % 50 + 1))))"; done
      for i in $(seq 1 300); do echo "RPUSH list $i"; echo "SADD set m$((i % 97))"; echo "HSET hash f$i $((i * i))"; done
      echo "GET key:77"; echo "LRANGE list 100 120"; echo "SCARD set"; echo "HGET hash f123"
      echo "APPEND key:5 tail"; echo "GET key:5"; echo "DEL key:1 key:2 key:3"; echo "DBSIZE"
      echo "STRLEN key:299"; echo "LPOP list 5"; echo "SINTERCARD 1 set"; echo "FLUSHALL"; echo "DBSIZE"
    }
    p1="$(free_port)"; start_redis "$p1"
    p2="$(free_port)"; start_redis "$p2" "$so"
    script | redis-cli -p "$p1" >"$tmp/plain.out"
    script | redis-cli -p "$p2" >"$tmp/hak.out"
    cmp -s "$tmp/plain.out" "$tmp/hak.out" || { echo "FAIL redis replies differ"; diff "$tmp/plain.out" "$tmp/hak.out" | head; exit 1; }
    echo "ok redis command script ($(wc -l <"$tmp/hak.out") identical replies)"
    redis-benchmark -h 127.0.0.1 -p "$p2" -n 20000 -c 20 -r 10000 -d 100 -t set,get,lpush,lpop,sadd,hset,mset -q --csv >"$tmp/bench.csv"
    echo "ok redis-benchmark under hakmem: $(tail -n +2 "$tmp/bench.csv" | cut -d, -f1,2 | tr '\n' ' ')"
    redis-cli -p "$p2" info memory | grep used_memory: >/dev/null || { echo "FAIL: INFO memory"; exit 1; }
    redis-cli -p "$p2" shutdown nosave >/dev/null 2>&1 || true
    redis-cli -p "$p1" shutdown nosave >/dev/null 2>&1 || true
    wait
    redis_pids=""
    grep -i -E "hakmem|crash|assert" "$tmp/redis-$p2.log" && { echo "FAIL: redis log under hakmem"; exit 1; }
    echo "ok redis-server shut down cleanly"
    ;;
  *)
    echo "unknown program $1"; exit 2 ;;
esac
