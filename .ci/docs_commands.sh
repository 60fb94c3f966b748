#!/usr/bin/env bash
# Runs, as printed, the commands of README.md, docs/LUA.md and docs/LIBUV.md that need no
# terminal: each line below must appear verbatim in its document, then it runs from the
# repository root and must exit 0. Left out, and why: `./bazelw test //...` and the
# "Use it from your build" commands (.ci/run runs them itself), benchmarks (timing), `nc`
# (interactive).
set -euo pipefail
cd "$(dirname "$0")/.."
fails=0

documented() { # doc line: the line must be in the doc
  if ! grep -qF -- "$2" "$1"; then
    echo "FAIL $1 no longer prints: $2"; fails=$((fails + 1)); return 1
  fi
}

run() { # doc command
  documented "$1" "$2" || return 0
  echo "=== $1: $2"
  if bash -c "$2" >/tmp/hakmem-docs-cmd.log 2>&1; then
    echo "ok"
  else
    echo "FAIL (exit $?)"; tail -20 /tmp/hakmem-docs-cmd.log; fails=$((fails + 1))
  fi
}

run README.md './bazelw run //examples:quickstart'
run docs/LUA.md './bazelw run //examples:lua_embed -- examples/lua/hello.lua'
run docs/LUA.md './bazelw run //examples:lua_embed -- --limit 16777216 examples/lua/limit.lua   # hits the limit, recovers'
run docs/LUA.md './bazelw run //examples:lua_embed -- --lua-limit 4194304 examples/lua/limit.lua   # the same on Lua'"'"'s own bytes'
run docs/LUA.md './bazelw run //examples:lua_embed -- examples/lua/coroutines.lua'
run docs/LUA.md './bazelw test //tests/lua/...                                      # all of the below'
run docs/LUA.md './bazelw test --config=tsan --test_tag_filters=threaded //tests/lua/...'
run docs/LIBUV.md './bazelw test //tests/uv/...'

# The server runs until SIGINT: start it as printed, run the client as printed, then stop it.
server='./bazelw run //examples:uv_server -- --port 7000'
client='./bazelw run //examples:uv_client -- --port 7000 --total 1000'
if documented docs/LIBUV.md "$server" && documented docs/LIBUV.md "$client"; then
  echo "=== docs/LIBUV.md: $server, then $client"
  ./bazelw build //examples:uv_server //examples:uv_client >/dev/null 2>&1
  log=/tmp/hakmem-docs-server.log
  bash -c "exec $server" >"$log" 2>&1 &
  pid=$! # bazelw and bazel exec: this becomes the server itself
  for _ in $(seq 100); do grep -q '^listening' "$log" && break; sleep 0.1; done
  if bash -c "$client" >/tmp/hakmem-docs-cmd.log 2>&1; then
    kill -INT "$pid"
    if wait "$pid" && grep -q '^connections 1000 accepted, 1000 closed' "$log"; then
      echo "ok"
    else
      echo "FAIL: the server did not stop cleanly"; cat "$log"; fails=$((fails + 1))
    fi
  else
    echo "FAIL: client"; tail -20 /tmp/hakmem-docs-cmd.log; kill -INT "$pid"; wait "$pid" || true
    fails=$((fails + 1))
  fi
fi

echo "$fails failed"
exit $((fails != 0))
