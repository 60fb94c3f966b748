#!/usr/bin/env bash
# cmake_check.sh: the CMake build as a user meets it. Configures, builds and installs into an empty
# temporary prefix (build tree in /tmp, never in the repository), checks what was installed
# (versioned libraries with their SONAME, headers, .pc files, the CMake package, nothing but hak_
# names exported), then builds and runs programs against the installed copy only: with
# pkg-config, with find_package(hakmem) from a separate CMake project, a Lua embedding, the
# LD_PRELOAD library, and tests/packaging/dlopen_many.c against the default (dlopen-compatible
# TLS) library and against one built with -DHAKMEM_DLOPEN_TLS=OFF, which must fail.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

# ---- what it needs (Debian packages), installed when missing and we are root ----
missing=()
for p in cmake pkg-config gcc liblua5.4-dev libuv1-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "cmake_check: missing ${missing[*]}; install them (apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "cmake_check: installing ${missing[*]}" >&2
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
fi

work=$(mktemp -d /tmp/hakmem-cmake.XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
lib=$prefix/lib
mkdir "$prefix"
jobs=$(nproc)
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { # check DESCRIPTION COMMAND...: records the result of COMMAND
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
logged() { # logged LOG COMMAND...: COMMAND's output goes to LOG, shown if COMMAND fails
  local log=$1; shift
  "$@" >>"$log" 2>&1 || { cat "$log"; echo "cmake_check: failed: $*"; exit 1; }
}

# ---- configure, build, install, as docs/BUILD.md says ----
logged "$work/build.log" cmake -S "$repo" -B "$work/build"
logged "$work/build.log" cmake --build "$work/build" -j "$jobs"
logged "$work/build.log" cmake --install "$work/build" --prefix "$prefix"
check "the build gives no compiler warnings" bash -c "! grep -A3 'warning:' '$work/build.log'"

version=$(sed -n 's/^#define HAKMEM_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' \
  hakmem/include/hakmem.h | paste -sd.)
major=${version%%.*}
echo "hakmem $version installed into $prefix"

# ---- installed files ----
versioned() { # versioned NAME: libNAME.so.X.Y.Z with SONAME libNAME.so.X, and both symlinks
  local so=$lib/lib$1.so.$version
  [ -f "$so" ] && [ -L "$lib/lib$1.so.$major" ] && [ -L "$lib/lib$1.so" ] &&
    readelf -d "$so" | grep "(SONAME) *Library soname: \[lib$1.so.$major\]" >/dev/null
}
for name in hakmem hakmem_lua hakmem_uv; do
  check "lib/lib$name.so.$version, SONAME lib$name.so.$major, symlinks" versioned "$name"
  check "lib/pkgconfig/$name.pc" test -f "$lib/pkgconfig/$name.pc"
  check "lib/cmake/hakmem/${name}Targets.cmake" test -f "$lib/cmake/hakmem/${name}Targets.cmake"
done
check "lib/libhakmem.a" test -f "$lib/libhakmem.a"
check "lib/libhakmem_override.so" test -f "$lib/libhakmem_override.so"
for h in hakmem.h hakmem_lua.h hakmem_uv.h; do check "include/$h" test -f "$prefix/include/$h"; done
for f in hakmemConfig.cmake hakmemConfigVersion.cmake; do
  check "lib/cmake/hakmem/$f" test -f "$lib/cmake/hakmem/$f"
done

# ---- exported symbols: the public API only ----
exports_only() { # exports_only LIBRARY REGEX: every defined dynamic symbol matches REGEX
  local other
  other=$(nm -D --defined-only "$1" | awk '{print $3}' | grep -Ev "$2" || true)
  [ -z "$other" ] || { echo "     unexpected exports of ${1##*/}: $other"; return 1; }
}
check "libhakmem.so exports only hak_ names" exports_only "$lib/libhakmem.so" '^hak_'
check "libhakmem_lua.so exports only hak_lua_ names and luaopen_hakmem" \
  exports_only "$lib/libhakmem_lua.so" '^(hak_lua_|luaopen_hakmem$)'
check "libhakmem_uv.so exports only hak_uv_ names" exports_only "$lib/libhakmem_uv.so" '^hak_uv_'

# ---- programs built against the installed copy (sources copied out of the repository) ----
app=$work/app
mkdir "$app"
cp examples/quickstart.c examples/lua_embed.c examples/uv_server.c examples/lua/hello.lua \
  tests/packaging/dlopen_many.c "$app/"
export PKG_CONFIG_PATH=$lib/pkgconfig
export LD_LIBRARY_PATH=$lib
# grep reads all its input: with pipefail, grep -q's early exit would fail the pipeline whenever
# the writer was still writing (SIGPIPE), a failure seen once in CI.
uses_installed() { ldd "$1" | grep "libhakmem.so.$major => $lib/libhakmem.so.$major" >/dev/null; }
quickstart_ok() { # quickstart_ok PROGRAM: runs the quickstart and checks its deterministic lines
  local out
  out=$("$1") || return 1
  grep -q "^1. main thread allocates 10000 messages from 'msgs'$" <<<"$out" &&
    grep -q "a 64 B block fits$" <<<"$out" && grep -q "^done$" <<<"$out"
}

check "pkg-config --modversion hakmem is $version" \
  test "$(pkg-config --modversion hakmem)" = "$version"
# shellcheck disable=SC2046 # the flags are words
cc -std=c11 -O2 -pthread -o "$app/quickstart_pc" "$app/quickstart.c" \
  $(pkg-config --cflags --libs hakmem)
check "quickstart (pkg-config) links the installed libhakmem.so" uses_installed "$app/quickstart_pc"
check "quickstart (pkg-config) runs" quickstart_ok "$app/quickstart_pc"

# The integrations' examples with the compiler's default C dialect, as their users build them
# (uv.h needs POSIX types that -std=c11 without _GNU_SOURCE hides).
# shellcheck disable=SC2046
cc -O2 -o "$app/lua_embed" "$app/lua_embed.c" $(pkg-config --cflags --libs hakmem_lua)
lua_ok() { # lua_ok PROGRAM: runs lua_embed on hello.lua
  local out
  out=$("$1" "$app/hello.lua") || return 1
  grep -q "^heap: [0-9]* live bytes" <<<"$out" && grep -q "live_bytes after lua_close: 0$" <<<"$out"
}
check "lua_embed (pkg-config hakmem_lua) runs hello.lua, nothing live after lua_close" \
  lua_ok "$app/lua_embed"
# shellcheck disable=SC2046
check "uv_server (pkg-config hakmem_uv) compiles and links" \
  cc -O2 -o "$app/uv_server" "$app/uv_server.c" $(pkg-config --cflags --libs hakmem_uv)

# A separate CMake project: find_package(hakmem) with the lua component.
mkdir "$app/cmake"
cat >"$app/cmake/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.25)
project(hakmem_user C)
find_package(hakmem 0 REQUIRED COMPONENTS lua)
add_executable(quickstart_shared ../quickstart.c)
target_link_libraries(quickstart_shared hakmem::hakmem)
add_executable(quickstart_static ../quickstart.c)
target_link_libraries(quickstart_static hakmem::hakmem_static)
add_executable(lua_embed_cmake ../lua_embed.c)
target_link_libraries(lua_embed_cmake hakmem::hakmem_lua)
EOF
logged "$work/app.log" cmake -S "$app/cmake" -B "$app/cmake/build" -DCMAKE_PREFIX_PATH="$prefix"
logged "$work/app.log" cmake --build "$app/cmake/build" -j "$jobs"
built=$app/cmake/build
check "quickstart (find_package, hakmem::hakmem) links the installed libhakmem.so" \
  uses_installed "$built/quickstart_shared"
check "quickstart (find_package, hakmem::hakmem) runs" quickstart_ok "$built/quickstart_shared"
check "quickstart (find_package, hakmem::hakmem_static) needs no libhakmem.so" \
  bash -c "! ldd '$built/quickstart_static' | grep -q libhakmem"
check "quickstart (find_package, hakmem::hakmem_static) runs" \
  quickstart_ok "$built/quickstart_static"
check "lua_embed (find_package, hakmem::hakmem_lua) runs" lua_ok "$built/lua_embed_cmake"

# ---- the LD_PRELOAD library ----
seq 20000 | shuf --random-source=<(yes) >"$app/numbers"
preload_ok() {
  local err
  err=$(HAKMEM_VERBOSE=1 LD_PRELOAD=$lib/libhakmem_override.so sort -n "$app/numbers" 2>&1 \
    >"$app/sorted") && seq 20000 | cmp -s - "$app/sorted" &&
    grep -q "^hakmem: malloc override active" <<<"$err"
}
check "sort -n under LD_PRELOAD=libhakmem_override.so: hakmem active, output sorted" preload_ok

# ---- dlopen: the default shared library loads in every namespace, initial-exec TLS does not ----
# Unset GLIBC_TUNABLES: the static TLS space glibc reserves is what this measures.
# shellcheck disable=SC2046
cc -std=c11 -O2 -o "$app/dlopen_many" "$app/dlopen_many.c" $(pkg-config --cflags hakmem) -ldl
dlopen_ok() { env -u GLIBC_TUNABLES "$app/dlopen_many" "$1" | grep "namespaces ok$" >/dev/null; }
check "dlopen_many: installed libhakmem.so (HAKMEM_DLOPEN_TLS=ON) in 8 namespaces" \
  dlopen_ok "$lib/libhakmem.so.$major"
check "installed libhakmem.so has no STATIC_TLS flag" \
  bash -c "! readelf -d '$lib/libhakmem.so.$major' | grep -q STATIC_TLS"

logged "$work/build-ie.log" cmake -S "$repo" -B "$work/build-ie" -DHAKMEM_DLOPEN_TLS=OFF \
  -DHAKMEM_LUA=OFF -DHAKMEM_UV=OFF
logged "$work/build-ie.log" cmake --build "$work/build-ie" -j "$jobs" --target hakmem
ie=$work/build-ie/libhakmem.so.$major
check "libhakmem.so with HAKMEM_DLOPEN_TLS=OFF has the STATIC_TLS flag" \
  bash -c "readelf -d '$ie' | grep -q STATIC_TLS"
ie_fails() { # dlopen_many must fail, and for want of static TLS
  local out status=0
  out=$(env -u GLIBC_TUNABLES "$app/dlopen_many" "$ie") || status=$?
  echo "     $out"
  ((status != 0)) &&
    grep -q "libhakmem.so.$major: cannot allocate memory in static TLS block" <<<"$out"
}
check "dlopen_many: libhakmem.so with HAKMEM_DLOPEN_TLS=OFF runs out of static TLS" ie_fails

if ((fails)); then
  echo "cmake_check: $fails check(s) failed (logs in $work kept)"
  trap - EXIT
  exit 1
fi
echo "cmake_check: all checks passed"
