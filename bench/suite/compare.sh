#!/usr/bin/env bash
# compare.sh: entry point of //bench:compare; runs compare.py from the runfiles tree.
set -euo pipefail
runfiles="${RUNFILES_DIR:-$0.runfiles}/hakmem"
[ -d "$runfiles" ] || runfiles="$PWD"
exec python3 "$runfiles/bench/suite/compare.py" --runfiles "$runfiles" "$@"
