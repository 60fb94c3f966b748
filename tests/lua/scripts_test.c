/*
** scripts_test.c: every script under tests/lua/scripts prints the same on hak_lua_newstate as
** on luaL_newstate, and leaves no live byte in its heap once the state is closed.
*/
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <hakmem_lua.h>
#include <lauxlib.h>

#include "harness.h"

#define SCRIPT_DIR "tests/lua/scripts/"

/* Names by value: Criterion runs each case in a new process, where pointers would dangle. */
typedef struct {
  char name[32];
} script_t;

static script_t scripts[] = {
    {"strings.lua"},     {"tables.lua"}, {"closures.lua"},  {"coroutines.lua"},
    {"userdata_gc.lua"}, {"weak.lua"},   {"gc_cycles.lua"}, {"errors.lua"},
};

ParameterizedTestParameters(lua_scripts, same_output_as_luaL_newstate) {
  return cr_make_param_array(script_t, scripts, sizeof scripts / sizeof *scripts);
}

ParameterizedTest(script_t *script, lua_scripts, same_output_as_luaL_newstate) {
  const char *name = script->name;
  char path[256];
  snprintf(path, sizeof path, SCRIPT_DIR "%s", name);

  lua_State *ref = luaL_newstate();
  char *want = harness_run_file(ref, path);
  lua_close(ref);

  hak_heap_t *heap = hak_heap_create(NULL);
  lua_State *L = hak_lua_newstate(heap);
  cr_assert_not_null(L);
  char *got = harness_run_file(L, path);
  lua_close(L);

  cr_assert_not_null(want);
  cr_assert_not_null(got);
  cr_expect_null(strstr(want, "error:"), "%s fails on luaL_newstate:\n%s", name, want);
  cr_expect_gt(strlen(want), 0, "%s printed nothing", name);
  cr_expect_str_eq(got, want, "%s differs:\n--- hakmem\n%s--- luaL_newstate\n%s", name, got, want);

  hak_heap_stats_t st;
  hak_heap_collect(heap, false);
  hak_heap_get_stats(heap, &st);
  cr_expect_eq(st.live_bytes, 0, "%s: %zu live bytes after lua_close", name, st.live_bytes);
  cr_expect_eq(st.live_blocks, 0);
  free(want);
  free(got);
  hak_heap_destroy(heap);
}
