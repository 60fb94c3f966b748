#!/usr/bin/env bash
# bazel_dependent.sh: builds and runs a program in a separate Bazel workspace that depends on
# @hakmem (WORKSPACE.dependent, BUILD.dependent, dependent_main.c), with none of this
# repository's .bazelrc flags: the libraries must carry what they need. Run by .ci/run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
"$repo/bazelw" --version >/dev/null # installs Bazel and the system libraries when missing
ws=$(mktemp -d /tmp/hakmem-dependent.XXXXXX)
trap 'rm -rf "$ws"' EXIT
sed "s|HAKMEM|$repo|g" "$here/WORKSPACE.dependent" >"$ws/WORKSPACE"
cp "$here/BUILD.dependent" "$ws/BUILD.bazel"
cp "$here/dependent_main.c" "$ws/"
cd "$ws"
# --batch: no server left behind; Debian's default sandbox_debug is only noise.
for mode in fastbuild opt; do
  bazel --batch build --nosandbox_debug --color=no --curses=no -c "$mode" //:dependent
  out=$(./bazel-bin/dependent)
  echo "$mode: $out"
  [ "$out" = "dependent ok" ]
done
