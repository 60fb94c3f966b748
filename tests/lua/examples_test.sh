#!/usr/bin/env bash
# Runs examples/lua_embed on every example script; each must exit 0 and print the heap's stats.
set -euo pipefail
embed=examples/lua_embed
fails=0
for script in examples/lua/*.lua; do
  args=()
  [[ $script == */limit.lua ]] && args=(--limit 16777216)
  if out=$("$embed" "${args[@]}" "$script" 2>&1) && grep -q "live_bytes after lua_close: 0" <<<"$out"; then
    echo "ok   $script"
  else
    echo "FAIL $script"; echo "$out"; fails=$((fails + 1))
  fi
done
# The Lua-bytes limit: hit, reported, recovered from.
if out=$("$embed" --lua-limit 4194304 examples/lua/limit.lua 2>&1) &&
   grep -q "filling:.false.not enough memory" <<<"$out" && grep -q "live_bytes after lua_close: 0" <<<"$out"; then
  echo "ok   --lua-limit limit.lua"
else
  echo "FAIL --lua-limit limit.lua"; echo "$out"; fails=$((fails + 1))
fi
# A limit too small for the standard libraries: a clean failure, no abort.
out=$("$embed" --limit 40000 examples/lua/hello.lua 2>&1) && st=0 || st=$?
if [[ $st == 1 ]] && grep -q "cannot create a state with the standard libraries within the limit" <<<"$out"; then
  echo "ok   --limit 40000 (too small) fails cleanly"
else
  echo "FAIL --limit 40000 (exit $st)"; echo "$out"; fails=$((fails + 1))
fi
exit $fails
