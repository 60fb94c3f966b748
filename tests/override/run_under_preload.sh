#!/usr/bin/env bash
# run_under_preload.sh: runs a test program with the override preloaded (the program checks
# that it really runs on hakmem). Usage: run_under_preload.sh <program> [args...]
set -euo pipefail
so="$PWD/hakmem/libhakmem_override.so"
[ -f "$so" ] || { echo "missing $so"; exit 1; }
LD_PRELOAD="$so" exec "$@"
