#!/usr/bin/env bash
# typed_pointer_test.sh: proves the typed-pointer rule is a compile error. Each variant that
# passes a user pointer where a block base is required must fail to compile; the control
# variant must compile (so a failure is about the types, not the set-up).
set -u
src="$1"; shift
inc=$(dirname "$(ls "$@" | grep 'src/ptr.h$')")
pub=$(dirname "$(ls "$@" | grep 'include/hakmem.h$')")
cc=${CC:-gcc}
passed=0; failed=0
try() { "$cc" -std=c11 -D_GNU_SOURCE -fsyntax-only -Werror -I"$inc" -I"$pub" -DVARIANT="$1" "$src" 2>/tmp/typed_$$.log; }
if try 0; then passed=$((passed+1)); echo "PASS control variant compiles"
else failed=$((failed+1)); echo "FAIL control variant does not compile:"; cat /tmp/typed_$$.log; fi
for v in 1 2 3; do
  if try "$v"; then failed=$((failed+1)); echo "FAIL variant $v compiled but must not"
  else passed=$((passed+1)); echo "PASS variant $v rejected: $(grep -m1 error /tmp/typed_$$.log)"; fi
done
rm -f /tmp/typed_$$.log
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
