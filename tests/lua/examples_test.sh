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
exit $fails
