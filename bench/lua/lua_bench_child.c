/*
** lua_bench_child.c: runs one Lua workload on one allocator and prints its time.
** Built three times (BENCH_ALLOC_HAK, _GLIBC, _MIMALLOC), one binary per allocator, because
** linking mimalloc replaces malloc for the whole process.
**
**   lua_bench_<alloc> script.lua scale [threads]  ->  the script's output, then "ns <nanoseconds>"
**   lua_bench_<alloc> --states N                   ->  "states N", then "ns <nanoseconds>"
**
** The time covers running the script and lua_close (freeing is the allocator's work too); the
** state's creation and library opening are the same for all and left out. With threads > 1,
** that many threads each run the script in a state of their own at once (with hakmem, each on
** a heap of its own) and the time is the wall time of all. --states N creates N short states
** in turn (luaL_openlibs, a small chunk, lua_close), creation included in the time. hakmem
** gives every state a heap of its own, destroyed after lua_close (the time includes that).
*/
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#if defined(BENCH_ALLOC_HAK)
#include <hakmem_lua.h>
/* A heap per state, destroyed after lua_close; a thread has one state at a time. */
static _Thread_local hak_heap_t *t_heap;
static lua_State *new_state(void) { return hak_lua_newstate(t_heap = hak_heap_create(NULL)); }
static void close_state(lua_State *L) {
  lua_close(L);
  hak_heap_destroy(t_heap);
}
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
static void close_state(lua_State *L) { lua_close(L); }
#elif defined(BENCH_ALLOC_GLIBC)
static lua_State *new_state(void) { return luaL_newstate(); } /* l_alloc: realloc/free */
static void close_state(lua_State *L) { lua_close(L); }
#else
#error "define BENCH_ALLOC_HAK, BENCH_ALLOC_GLIBC or BENCH_ALLOC_MIMALLOC"
#endif

enum { MAX_THREADS = 16 };

typedef struct {
  const char *script, *scale;
  bool quiet; /* every thread but the first: print does nothing (lines would interleave) */
  lua_State *L;
  pthread_barrier_t *go;
  int status;
} run_t;

static lua_State *prepare(const char *script, const char *scale) {
  lua_State *L = new_state();
  if (L == NULL) return NULL;
  luaL_openlibs(L);
  lua_createtable(L, 2, 0);
  lua_pushstring(L, scale);
  lua_rawseti(L, -2, 1);
  lua_setglobal(L, "arg");
  if (luaL_loadfile(L, script) != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    close_state(L);
    return NULL;
  }
  return L;
}

static int quiet_print(lua_State *L) {
  (void)L;
  return 0;
}

/* Each thread makes its own state (with hakmem, on its own heap), then all start together. */
static void *run(void *arg) {
  run_t *r = arg;
  r->L = prepare(r->script, r->scale);
  if (r->L && r->quiet) {
    lua_pushcfunction(r->L, quiet_print);
    lua_setglobal(r->L, "print");
  }
  pthread_barrier_wait(r->go);
  if (r->L == NULL) {
    r->status = LUA_ERRRUN;
    return NULL;
  }
  r->status = lua_pcall(r->L, 0, 0, 0);
  if (r->status != LUA_OK) fprintf(stderr, "%s\n", lua_tostring(r->L, -1));
  close_state(r->L);
  return NULL;
}

static long long elapsed_ns(const struct timespec *t0, const struct timespec *t1) {
  return (long long)(t1->tv_sec - t0->tv_sec) * 1000000000LL + (t1->tv_nsec - t0->tv_nsec);
}

static int short_states(long n) {
  static const char chunk[] = "local t = {} for i = 1, 100 do t[i] = tostring(i) end "
                              "return #table.concat(t, ',')";
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < n; i++) {
    lua_State *L = new_state();
    if (L == NULL) return 1;
    luaL_openlibs(L);
    if (luaL_dostring(L, chunk) != LUA_OK || lua_tointeger(L, -1) != 291) return 1;
    close_state(L);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("states %ld\nns %lld\n", n, elapsed_ns(&t0, &t1));
  return 0;
}

int main(int argc, char **argv) {
  int threads = argc == 4 ? atoi(argv[3]) : 1;
  if (argc == 3 && strcmp(argv[1], "--states") == 0) return short_states(atol(argv[2]));
  if ((argc != 3 && argc != 4) || threads < 1 || threads > MAX_THREADS) {
    fprintf(stderr, "usage: %s script.lua scale [threads] | --states N\n", argv[0]);
    return 2;
  }
  run_t r[MAX_THREADS];
  pthread_t th[MAX_THREADS];
  pthread_barrier_t go;
  pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
  for (int i = 0; i < threads; i++) {
    r[i] = (run_t){.script = argv[1], .scale = argv[2], .quiet = i > 0, .go = &go};
    pthread_create(&th[i], NULL, run, &r[i]);
  }
  struct timespec t0, t1;
  pthread_barrier_wait(&go); /* every state made */
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int st = LUA_OK;
  for (int i = 0; i < threads; i++) {
    pthread_join(th[i], NULL);
    if (r[i].status != LUA_OK) st = r[i].status;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("ns %lld\n", elapsed_ns(&t0, &t1));
  return st == LUA_OK ? 0 : 1;
}
