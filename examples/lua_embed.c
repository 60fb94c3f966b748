/*
** lua_embed.c: run a Lua script on a fresh hakmem heap, then print what the heap held.
**
**   ./bazelw run //examples:lua_embed -- [--limit BYTES] script.lua [args...]
**
** The script sees its arguments in `arg` (as with the lua interpreter) and can
** `require "hakmem"` to read its heap's stats, collect, or change its limit.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  fprintf(stderr, "usage: %s [--limit BYTES] script.lua [args...]\n", prog);
  return 2;
}

int main(int argc, char **argv) {
  size_t limit = 0;
  int i = 1;
  if (i + 1 < argc && strcmp(argv[i], "--limit") == 0) {
    char *end;
    limit = strtoull(argv[i + 1], &end, 10);
    if (*end != '\0') return usage(argv[0]);
    i += 2;
  }
  if (i >= argc) return usage(argv[0]);

  hak_heap_t *heap = hak_heap_create(&(hak_heap_config_t){.name = "lua", .limit_bytes = limit});
  lua_State *L = heap != NULL ? hak_lua_newstate(heap) : NULL;
  if (L == NULL) {
    fprintf(stderr, "lua_embed: cannot create a state\n");
    return 1;
  }
  luaL_openlibs(L);
  hak_lua_preload(L);
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
