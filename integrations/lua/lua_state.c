/*
** lua_state.c: hak_lua_newstate, luaL_newstate's twin on a hakmem heap.
**
** Promises: the panic and warning behaviour of luaL_newstate (Lua 5.4 lauxlib), observable
** byte for byte on stderr. Output goes through lua_writestringerror, as lauxlib's does, so a
** build that redefines it for luaL_newstate redefines it here too.
*/
#include <errno.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "hakmem_lua.h"
#include "lua_internal.h"

static int on_panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  lua_writestringerror("PANIC: unprotected error in call to Lua API (%s)\n",
                       msg != NULL ? msg : "error object is not a string");
  return 0; /* Lua aborts when the panic function returns */
}

/*
** Warnings. The mode lives in which function is installed: off (only control messages
** matter), on (a message starts), continued (inside a message sent in pieces).
** "@on" and "@off" are control messages only as a whole message, never as a piece.
*/
static void warn_off(void *ud, const char *msg, int tocont);
static void warn_on(void *ud, const char *msg, int tocont);
static void warn_continued(void *ud, const char *msg, int tocont);

static int warn_control(lua_State *L, const char *msg, int tocont) {
  if (tocont || msg[0] != '@') return 0;
  if (strcmp(msg + 1, "on") == 0)
    lua_setwarnf(L, warn_on, L);
  else if (strcmp(msg + 1, "off") == 0)
    lua_setwarnf(L, warn_off, L);
  return 1; /* unknown controls are ignored, not printed */
}

static void warn_off(void *ud, const char *msg, int tocont) {
  warn_control(ud, msg, tocont);
}

static void warn_continued(void *ud, const char *msg, int tocont) {
  lua_State *L = ud;
  lua_writestringerror("%s", msg);
  if (tocont) {
    lua_setwarnf(L, warn_continued, L);
  } else {
    lua_writestringerror("%s", "\n");
    lua_setwarnf(L, warn_on, L);
  }
}

static void warn_on(void *ud, const char *msg, int tocont) {
  if (warn_control(ud, msg, tocont)) return;
  lua_writestringerror("%s", "Lua warning: ");
  warn_continued(ud, msg, tocont);
}

lua_State *hak_lua_newstate(hak_heap_t *heap) {
  if (heap == NULL) {
    errno = EINVAL;
    return NULL;
  }
  lua_State *L = hak__lua_newstate_raw(heap);
  if (L == NULL) {
    errno = ENOMEM;
  } else {
    lua_atpanic(L, on_panic);
    lua_setwarnf(L, warn_off, L);
  }
  return L;
}

static int open_libs(lua_State *L) {
  luaL_openlibs(L);
  if (lua_toboolean(L, 1)) hak_lua_preload(L);
  return 0;
}

lua_State *hak_lua_newstate_cfg(hak_heap_t *heap, const hak_lua_config_t *cfg) {
  lua_State *L = hak_lua_newstate(heap);
  if (L == NULL || cfg == NULL) return L;
  if (cfg->lua_limit != 0) hak_lua_set_limit(L, cfg->lua_limit);
  if (cfg->open_libs) {
    lua_pushcfunction(L, open_libs);
    lua_pushboolean(L, cfg->preload);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
      lua_close(L);
      errno = ENOMEM; /* the only error luaL_openlibs raises */
      return NULL;
    }
  }
  return L;
}
