/*
** lua_bench_child.c: runs one Lua workload on one allocator and prints its time.
** Built three times (BENCH_ALLOC_HAK, _GLIBC, _MIMALLOC), one binary per allocator, because
** linking mimalloc replaces malloc for the whole process.
**
**   lua_bench_<alloc> script.lua scale   ->  the script's output, then "ns <nanoseconds>"
**
** The time covers running the script and lua_close (freeing is the allocator's work too); the
** state's creation and library opening are the same for all and left out.
*/
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#if defined(BENCH_ALLOC_HAK)
#include <hakmem_lua.h>
static lua_State *new_state(void) { return hak_lua_newstate(hak_heap_create(NULL)); }
#elif defined(BENCH_ALLOC_MIMALLOC)
#include <mimalloc.h>
static void *mi_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    mi_free(ptr);
    return NULL;
  }
  return mi_realloc(ptr, nsize);
}
static lua_State *new_state(void) { return lua_newstate(mi_lua_alloc, NULL); }
#elif defined(BENCH_ALLOC_GLIBC)
static lua_State *new_state(void) { return luaL_newstate(); } /* l_alloc: realloc/free */
#else
#error "define BENCH_ALLOC_HAK, BENCH_ALLOC_GLIBC or BENCH_ALLOC_MIMALLOC"
#endif

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s script.lua scale\n", argv[0]);
    return 2;
  }
  lua_State *L = new_state();
  if (L == NULL) return 1;
  luaL_openlibs(L);
  lua_createtable(L, 2, 0);
  lua_pushstring(L, argv[2]);
  lua_rawseti(L, -2, 1);
  lua_setglobal(L, "arg");
  if (luaL_loadfile(L, argv[1]) != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    return 1;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int st = lua_pcall(L, 0, 0, 0);
  if (st != LUA_OK) fprintf(stderr, "%s\n", lua_tostring(L, -1));
  lua_close(L);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("ns %lld\n", (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
  return st == LUA_OK ? 0 : 1;
}
