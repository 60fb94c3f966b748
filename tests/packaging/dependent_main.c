/* dependent_main.c: a program of another Bazel workspace that depends on @hakmem
** (tests/packaging/bazel_dependent.sh builds it there): a heap, a Lua state on its own heap, a
** libuv loop bound to a third heap. Prints "dependent ok" and exits 0 when every check holds. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "hakmem.h"
#include "hakmem_lua.h"
#include "hakmem_uv.h"

#define CHECK(c)                                               \
  do {                                                         \
    if (!(c)) {                                                \
      fprintf(stderr, "dependent: check failed: %s\n", #c);    \
      return 1;                                                \
    }                                                          \
  } while (0)

static int timer_blocks;

/* On the loop thread: a block from the loop's heap. */
static void on_timer(uv_timer_t *t) {
  void *b = hak_heap_malloc(hak_uv_loop_heap(t->loop), 64);
  timer_blocks += b != NULL && hak_heap_of(b) == hak_uv_loop_heap(t->loop);
  hak_free(b);
}

int main(void) {
  CHECK(hak_version() == HAKMEM_VERSION);
  hak_heap_t *h = hak_heap_create(NULL);
  CHECK(h != NULL);
  char *p = hak_heap_malloc(h, 100);
  CHECK(p != NULL && hak_heap_of(p) == h);
  strcpy(p, "hello");
  hak_free(p);
  hak_heap_stats_t st;
  hak_heap_get_stats(h, &st);
  CHECK(st.alloc_count == 1 && st.free_count == 1 && st.live_blocks == 0);
  hak_heap_destroy(h);

  hak_heap_t *lh = hak_heap_create(NULL);
  lua_State *L = hak_lua_newstate(lh);
  CHECK(L != NULL);
  luaL_openlibs(L);
  CHECK(luaL_dostring(L, "local t = {} for i = 1, 1000 do t[i] = ('x'):rep(i) end return #t") == 0);
  CHECK(lua_tointeger(L, -1) == 1000);
  lua_close(L);
  hak_heap_get_stats(lh, &st);
  CHECK(st.live_blocks == 0);
  hak_heap_destroy(lh);

  uv_loop_t loop;
  CHECK(uv_loop_init(&loop) == 0);
  hak_heap_t *uh = hak_heap_create(NULL);
  CHECK(hak_uv_loop_bind(&loop, uh) == 0);
  CHECK(hak_uv_loop_heap(&loop) == uh);
  uv_timer_t timer;
  CHECK(uv_timer_init(&loop, &timer) == 0);
  CHECK(uv_timer_start(&timer, on_timer, 1, 0) == 0);
  CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);
  CHECK(timer_blocks == 1);
  uv_close((uv_handle_t *)&timer, NULL);
  CHECK(hak_uv_loop_unbind(&loop) == 0);
  uv_run(&loop, UV_RUN_DEFAULT); /* close callbacks */
  CHECK(uv_loop_close(&loop) == 0);
  hak_heap_destroy(uh);
  puts("dependent ok");
  return 0;
}
