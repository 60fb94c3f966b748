/*
** lua_lib.c: the `hakmem` Lua module (stats, collect, limit) for states on a hakmem heap.
**
** Promises: works on any state whose allocator is hak_lua_alloc, raises a Lua error on others.
** The heap is found from the state itself (hak_lua_heap), never from module-global data, so
** one loaded module serves any number of states.
*/
#include <lauxlib.h>

#include "hakmem_lua.h"

static const char *const tag_names[HAK_LUA_NTAGS] = {
    [0] = "other",
    [LUA_TSTRING] = "string",
    [LUA_TTABLE] = "table",
    [LUA_TFUNCTION] = "function",
    [LUA_TUSERDATA] = "userdata",
    [LUA_TTHREAD] = "thread",
    [HAK_LUA_TUPVAL] = "upvalue",
    [HAK_LUA_TPROTO] = "proto",
};

const char *hak_lua_tag_name(int tag) {
  if (tag < 0 || tag >= HAK_LUA_NTAGS || tag_names[tag] == NULL) return "other";
  return tag_names[tag];
}

static hak_heap_t *heap_of_state(lua_State *L) {
  hak_heap_t *heap = hak_lua_heap(L);
  if (heap == NULL) luaL_error(L, "hakmem: this state does not allocate from a hakmem heap");
  return heap;
}

static void set_size(lua_State *L, const char *key, size_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, key);
}

static int l_stats(lua_State *L) {
  hak_heap_t *heap = heap_of_state(L);
  hak_heap_stats_t st;
  hak_lua_type_stats_t ts;
  hak_heap_get_stats(heap, &st);
  hak_lua_get_type_stats(heap, &ts);
  lua_createtable(L, 0, 14);
  set_size(L, "live_bytes", st.live_bytes);
  set_size(L, "live_blocks", st.live_blocks);
  set_size(L, "held_bytes", st.held_bytes);
  set_size(L, "peak_held_bytes", st.peak_held_bytes);
  set_size(L, "limit_bytes", st.limit_bytes);
  set_size(L, "alloc_count", (size_t)st.alloc_count);
  set_size(L, "free_count", (size_t)st.free_count);
  set_size(L, "remote_free_count", (size_t)st.remote_free_count);
  set_size(L, "superslab_count", st.superslab_count);
  set_size(L, "large_count", st.large_count);
  set_size(L, "lua_bytes", ts.bytes);
  set_size(L, "lua_count", ts.count);
  set_size(L, "lua_limit", hak_lua_get_limit(L));
  lua_createtable(L, 0, HAK_LUA_NTAGS);
  for (int t = 0; t < HAK_LUA_NTAGS; t++) {
    if (tag_names[t] == NULL) continue;
    lua_createtable(L, 0, 2);
    set_size(L, "bytes", ts.type[t].bytes);
    set_size(L, "count", ts.type[t].count);
    lua_setfield(L, -2, tag_names[t]);
  }
  lua_setfield(L, -2, "types");
  return 1;
}

static int l_collect(lua_State *L) {
  hak_heap_t *heap = heap_of_state(L);
  hak_heap_stats_t st;
  lua_gc(L, LUA_GCCOLLECT);
  hak_heap_collect(heap, true);
  hak_heap_get_stats(heap, &st);
  lua_pushinteger(L, (lua_Integer)st.held_bytes);
  return 1;
}

static int l_limit(lua_State *L) {
  static const char *const which[] = {"heap", "lua", NULL};
  hak_heap_t *heap = heap_of_state(L);
  int lua = luaL_checkoption(L, 2, "heap", which);
  size_t old = lua ? hak_lua_get_limit(L) : hak_heap_get_limit(heap);
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0, 1, "limit must be >= 0 (0 = no limit)");
    if (lua)
      hak_lua_set_limit(L, (size_t)n);
    else
      hak_heap_set_limit(heap, (size_t)n);
  }
  lua_pushinteger(L, (lua_Integer)old);
  return 1;
}

int luaopen_hakmem(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"stats", l_stats},
      {"collect", l_collect},
      {"limit", l_limit},
      {NULL, NULL},
  };
  luaL_newlib(L, funcs);
  return 1;
}

void hak_lua_preload(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_hakmem);
  lua_setfield(L, -2, "hakmem");
  lua_pop(L, 1);
}
