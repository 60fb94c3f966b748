/*
** harness.h: runs Lua scripts with captured output, for the Lua tests (not a test itself).
*/
#ifndef HAKMEM_LUA_TEST_HARNESS_H
#define HAKMEM_LUA_TEST_HARNESS_H

#include <lua.h>

/*
** Opens the standard libraries and hak_lua_preload, replaces print with one that writes into a
** buffer, adds newuserdata(size, nuv) / getuservalue(u) / setuservalue(u, v), runs the file.
** Returns the captured output (malloc'd, caller frees) followed by "error: <msg>\n" when the
** script raised one. NULL only when out of memory.
*/
char *harness_run_file(lua_State *L, const char *path);

/* Same for a chunk given as a string. */
char *harness_run_string(lua_State *L, const char *chunk);

#endif
