/*
** harness.c: captured-output script runner shared by the Lua tests.
*/
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>

#include <hakmem_lua.h>
#include <lauxlib.h>
#include <lualib.h>

static int cap_print(lua_State *L) {
  FILE *out = lua_touserdata(L, lua_upvalueindex(1));
  int n = lua_gettop(L);
  for (int i = 1; i <= n; i++) {
    size_t len;
    const char *s = luaL_tolstring(L, i, &len);
    if (i > 1) fputc('\t', out);
    fwrite(s, 1, len, out);
    lua_pop(L, 1);
  }
  fputc('\n', out);
  return 0;
}

static int new_userdata(lua_State *L) {
  lua_Integer size = luaL_checkinteger(L, 1);
  lua_Integer nuv = luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, size >= 0 && nuv >= 0, 1, "sizes must be >= 0");
  lua_newuserdatauv(L, (size_t)size, (int)nuv);
  return 1;
}

static int get_uservalue(lua_State *L) {
  lua_getiuservalue(L, 1, 1);
  return 1;
}

static int set_uservalue(lua_State *L) {
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, 1);
  return 0;
}

static char *run(lua_State *L, const char *path, const char *chunk) {
  char *buf = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&buf, &len);
  if (out == NULL) return NULL;
  luaL_openlibs(L);
  hak_lua_preload(L);
  lua_pushlightuserdata(L, out);
  lua_pushcclosure(L, cap_print, 1);
  lua_setglobal(L, "print");
  lua_register(L, "newuserdata", new_userdata);
  lua_register(L, "getuservalue", get_uservalue);
  lua_register(L, "setuservalue", set_uservalue);
  int st = path != NULL ? luaL_dofile(L, path) : luaL_dostring(L, chunk);
  if (st != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(out, "error: %s\n", msg != NULL ? msg : "(not a string)");
    lua_pop(L, 1);
  }
  fclose(out);
  return buf;
}

char *harness_run_file(lua_State *L, const char *path) { return run(L, path, NULL); }

char *harness_run_string(lua_State *L, const char *chunk) { return run(L, NULL, chunk); }
