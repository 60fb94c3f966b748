/*
** lua_embed.c: run a Lua script on a fresh hakmem heap, then print what the heap held.
**
**   ./bazelw run //examples:lua_embed -- [--limit BYTES] [--lua-limit BYTES] script.lua [args...]
**
** --limit caps the heap's held bytes, --lua-limit Lua's own bytes (collectgarbage("count")).
** The script sees its arguments in `arg` (as with the lua interpreter) and can
** `require "hakmem"` to read its heap's stats, collect, or change its limits. Under `bazel run`
** relative paths are taken from the directory the command was typed in.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hakmem_lua.h>
#include <lauxlib.h>
#include <lualib.h>

static void print_stats(hak_heap_t *heap) {
  hak_heap_stats_t st;
  hak_lua_type_stats_t ts;
  hak_heap_get_stats(heap, &st);
  hak_lua_get_type_stats(heap, &ts);
  printf("-- heap \"%s\": live %zu bytes in %zu blocks, held %zu (peak %zu), limit %zu\n",
         hak_heap_name(heap), st.live_bytes, st.live_blocks, st.held_bytes, st.peak_held_bytes,
         st.limit_bytes);
  printf("-- Lua memory by type (%zu bytes in %zu blocks):\n", ts.bytes, ts.count);
  for (int t = 0; t < HAK_LUA_NTAGS; t++) {
    if (ts.type[t].count == 0) continue;
    printf("   %-9s %10zu bytes %8zu blocks\n", hak_lua_tag_name(t), ts.type[t].bytes,
           ts.type[t].count);
  }
}

static int usage(const char *prog) {
  fprintf(stderr, "usage: %s [--limit BYTES] [--lua-limit BYTES] script.lua [args...]\n", prog);
  return 2;
}

int main(int argc, char **argv) {
  size_t limit = 0, lua_limit = 0;
  int i = 1;
  while (i + 1 < argc && strncmp(argv[i], "--", 2) == 0) {
    char *end;
    size_t v = strtoull(argv[i + 1], &end, 10);
    if (*end != '\0') return usage(argv[0]);
    if (strcmp(argv[i], "--limit") == 0)
      limit = v;
    else if (strcmp(argv[i], "--lua-limit") == 0)
      lua_limit = v;
    else
      return usage(argv[0]);
    i += 2;
  }
  if (i >= argc) return usage(argv[0]);
  /* bazel run starts programs in their runfiles; paths on the command line are the user's */
  const char *wd = getenv("BUILD_WORKING_DIRECTORY");
  if (wd != NULL && chdir(wd) != 0) perror(wd);

  hak_heap_t *heap = hak_heap_create(&(hak_heap_config_t){.name = "lua", .limit_bytes = limit});
  const hak_lua_config_t cfg = {.lua_limit = lua_limit, .open_libs = true, .preload = true};
  lua_State *L = heap != NULL ? hak_lua_newstate_cfg(heap, &cfg) : NULL;
  if (L == NULL) {
    fprintf(stderr, "lua_embed: cannot create a state with the standard libraries%s\n",
            limit || lua_limit ? " within the limit" : "");
    hak_heap_destroy(heap);
    return 1;
  }
  lua_createtable(L, argc - i, 1);
  for (int k = i; k < argc; k++) {
    lua_pushstring(L, argv[k]);
    lua_rawseti(L, -2, k - i);
  }
  lua_setglobal(L, "arg");

  int status = luaL_dofile(L, argv[i]);
  if (status != LUA_OK) fprintf(stderr, "lua_embed: %s\n", lua_tostring(L, -1));
  print_stats(heap);
  lua_close(L);

  hak_heap_stats_t st;
  hak_heap_get_stats(heap, &st);
  printf("-- live_bytes after lua_close: %zu\n", st.live_bytes);
  hak_heap_destroy(heap);
  return status == LUA_OK ? 0 : 1;
}
