/*
** state_test.c: hak_lua_newstate as a drop-in for luaL_newstate: memory limit handled as
** LUA_ERRMEM, nothing left behind by lua_close (on any thread), Lua's own byte count matched by
** the per-type accounting, and the panic and warning output of luaL_newstate.
*/
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <hakmem_lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "harness.h"

static hak_heap_t *heap;

static void setup(void) { heap = hak_heap_create(NULL); }
static void teardown(void) { hak_heap_destroy(heap); }

TestSuite(lua_state, .init = setup, .fini = teardown);
TestSuite(lua_limit, .init = setup, .fini = teardown);
TestSuite(lua_module, .init = setup, .fini = teardown);

static hak_heap_stats_t heap_stats(void) {
  hak_heap_stats_t st;
  hak_heap_collect(heap, false);
  hak_heap_get_stats(heap, &st);
  return st;
}

/* Runs chunk on L and returns its captured output (freed at the end of the test process). */
static const char *run(lua_State *L, const char *chunk) {
  char *out = harness_run_string(L, chunk);
  cr_assert_not_null(out);
  return out;
}

static void dostring(lua_State *L, const char *chunk) {
  if (luaL_dostring(L, chunk) != LUA_OK) cr_assert_fail("lua error: %s", lua_tostring(L, -1));
}

Test(lua_state, null_heap_gives_no_state) {
  errno = 0;
  cr_expect_null(hak_lua_newstate(NULL));
  cr_expect_eq(errno, EINVAL);
}

Test(lua_state, state_allocates_only_from_its_heap) {
  lua_State *L = hak_lua_newstate(heap);
  cr_expect_eq(hak_lua_heap(L), heap);
  cr_expect_eq(hak_heap_of(lua_getextraspace(L)), heap); /* the block starts at the extra space */
  lua_close(L);
}

Test(lua_state, heap_of_a_state_on_either_lua_alloc) {
  lua_State *made = hak_lua_newstate(heap);                /* the heap's record as ud */
  cr_assert_not_null(made);
  hak_lua_type_stats_t alone, both, after;
  cr_assert_eq(hak_lua_get_type_stats(heap, &alone), 0);
  lua_State *direct = lua_newstate(hak_lua_alloc, heap); /* ud = heap, the documented way */
  lua_State *plain = luaL_newstate();                      /* not on hakmem */
  cr_assert_not_null(direct);
  cr_assert_not_null(plain);
  cr_expect_eq(hak_lua_heap(direct), heap);
  cr_expect_eq(hak_lua_heap(made), heap);
  cr_expect_null(hak_lua_heap(plain));
  cr_expect_null(hak_lua_heap(NULL));
  lua_close(plain);
  /* both states count in the heap's one record: two bare states, twice one */
  cr_assert_eq(hak_lua_get_type_stats(heap, &both), 0);
  cr_expect_eq(both.count, 2 * alone.count);
  cr_expect_eq(both.bytes, 2 * alone.bytes);
  /* the record lasts until the heap's last Lua block is freed, whichever state closes last */
  lua_close(made);
  cr_assert_eq(hak_lua_get_type_stats(heap, &after), 0);
  cr_expect_eq(after.count, alone.count);
  cr_expect_eq(after.bytes, alone.bytes);
  cr_expect_not_null(hak_heap_user(heap));
  lua_close(direct);
  cr_assert_eq(hak_lua_get_type_stats(heap, &after), 0);
  cr_expect_eq(after.count, 0);
  cr_expect_eq(after.bytes, 0);
  cr_expect_null(hak_heap_user(heap));
}

Test(lua_state, close_leaves_no_live_byte) {
  lua_State *L = hak_lua_newstate(heap);
  run(L, "local t = {} for i = 1, 10000 do t[i] = {tostring(i)} end");
  cr_expect_gt(heap_stats().live_bytes, 0);
  lua_close(L);
  hak_heap_stats_t st;
  hak_heap_get_stats(heap, &st); /* no collect needed on the thread that ran the state */
  cr_expect_eq(st.live_bytes, 0);
  cr_expect_eq(st.live_blocks, 0);
}

Test(lua_state, accounting_matches_luas_own_count) {
  lua_State *L = hak_lua_newstate(heap);
  run(L, "s = {} for i = 1, 3000 do s[i] = ('x'):rep(i % 50) .. i end\n"
         "co = coroutine.create(function() coroutine.yield() end) coroutine.resume(co)\n"
         "u = newuserdata(1000, 2)\n"
         "f = function() return s end");
  hak_lua_type_stats_t ts;
  hak_lua_get_type_stats(heap, &ts);
  size_t lua_bytes = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
  cr_expect_eq(ts.bytes, lua_bytes);
  cr_expect_geq(ts.type[LUA_TSTRING].count, 3000);
  cr_expect_geq(ts.type[LUA_TTHREAD].count, 2); /* the main thread and co */
  cr_expect_geq(ts.type[LUA_TUSERDATA].bytes, 1000);
  cr_expect_geq(ts.type[LUA_TTABLE].count, 1);
  cr_expect_geq(ts.type[LUA_TFUNCTION].count, 1);
  cr_expect_geq(ts.type[HAK_LUA_TPROTO].count, 1);
  cr_expect_geq(ts.type[0].bytes, 3000 * sizeof(void *)); /* the array part of s */
  lua_close(L);
  hak_lua_get_type_stats(heap, &ts);
  cr_expect_eq(ts.count, 0);
}

static void *close_state(void *L) {
  lua_close(L);
  return NULL;
}

/* With the standard libraries, closing runs the io handles' finalizers, which allocate: the
** closing thread then caches blocks of the heap itself, until it exits. */
Test(lua_state, closing_on_another_thread_reclaims_everything) {
  lua_State *L = hak_lua_newstate(heap);
  run(L, "t = {} for i = 1, 20000 do t[i] = {i, tostring(i)} end");
  pthread_t th;
  pthread_create(&th, NULL, close_state, L);
  pthread_join(th, NULL);
  hak_heap_stats_t st = heap_stats();
  cr_expect_eq(st.live_bytes, 0);
  cr_expect_eq(st.live_blocks, 0);
  cr_expect_eq(st.free_count, st.alloc_count);
}

/* A state with no finalizer to run is closed without allocating: its frees are remote. */
Test(lua_state, closing_on_a_thread_that_never_allocated_frees_remotely) {
  lua_State *L = hak_lua_newstate(heap);
  dostring(L, "t = {} for i = 1, 20000 do t[i] = {i, i * 2} end");
  pthread_t th;
  pthread_create(&th, NULL, close_state, L);
  pthread_join(th, NULL);
  hak_heap_stats_t st = heap_stats();
  cr_expect_eq(st.live_bytes, 0);
  cr_expect_eq(st.live_blocks, 0);
  cr_expect_gt(st.remote_free_count, 20000);
}

static void *run_state(void *L) {
  free(harness_run_string(L, "t = {} for i = 1, 20000 do t[i] = ('v'):rep(i % 100) end"));
  return NULL;
}

Test(lua_state, state_run_on_a_finished_thread_closes_on_another) {
  lua_State *L = hak_lua_newstate(heap);
  pthread_t th;
  pthread_create(&th, NULL, run_state, L);
  pthread_join(th, NULL);
  dostring(L, "assert(#t == 20000)");
  lua_close(L);
  hak_heap_stats_t st = heap_stats();
  cr_expect_eq(st.live_bytes, 0);
  cr_expect_eq(st.live_blocks, 0);
}

/*
** {=====================================================================
** The limit
** ======================================================================
*/

static const char *const fill_to_error =
    "local big = {}\n"
    "local ok, err = pcall(function() for i = 1, 1e9 do big[i] = ('x'):rep(64) .. i end end)\n"
    "print(ok, err, #big > 0)\n"
    "big = nil\n";

/* A limit some MiB above what the fresh state (with its libraries) holds. */
static lua_State *limited_state(size_t extra) {
  lua_State *L = hak_lua_newstate(heap);
  luaL_openlibs(L);
  hak_heap_set_limit(heap, heap_stats().held_bytes + extra);
  return L;
}

Test(lua_limit, memory_error_is_caught_by_pcall_and_the_state_keeps_working) {
  lua_State *L = limited_state(8u << 20);
  cr_expect_str_eq(run(L, fill_to_error), "false\tnot enough memory\ttrue\n");
  const char *after = run(L, "collectgarbage()\n"
                             "local t = {} for i = 1, 10000 do t[i] = tostring(i) end\n"
                             "print(#t, table.concat(t, ''):len())");
  cr_expect_str_eq(after, "10000\t38894\n");
  cr_expect_str_eq(run(L, fill_to_error), "false\tnot enough memory\ttrue\n");
  hak_heap_stats_t st = heap_stats();
  cr_expect_leq(st.peak_held_bytes, st.limit_bytes);
  lua_close(L);
  cr_expect_eq(heap_stats().live_bytes, 0);
}

static int grow_forever(lua_State *L) {
  lua_newtable(L);
  for (lua_Integer i = 1; i < LUA_MAXINTEGER; i++) {
    lua_pushinteger(L, i);
    lua_rawseti(L, -2, i);
  }
  return 0;
}

Test(lua_limit, lua_pcall_returns_LUA_ERRMEM) {
  lua_State *L = limited_state(4u << 20);
  lua_pushcfunction(L, grow_forever);
  cr_expect_eq(lua_pcall(L, 0, 0, 0), LUA_ERRMEM);
  cr_expect_str_eq(lua_tostring(L, -1), "not enough memory");
  lua_pop(L, 1);
  lua_gc(L, LUA_GCCOLLECT);
  dostring(L, "x = ('y'):rep(100000) assert(#x == 100000)");
  hak_heap_stats_t st = heap_stats();
  cr_expect_leq(st.peak_held_bytes, st.limit_bytes);
  lua_close(L);
}

Test(lua_limit, string_building_fails_cleanly_at_the_limit) {
  lua_State *L = limited_state(4u << 20);
  const char *out = run(L, "local s = 'x'\n"
                           "local ok, err = pcall(function() while true do s = s .. s end end)\n"
                           "print(ok, err, #s >= 1024 * 1024)");
  cr_expect_str_eq(out, "false\tnot enough memory\ttrue\n");
  hak_heap_stats_t st = heap_stats();
  cr_expect_leq(st.peak_held_bytes, st.limit_bytes);
  lua_close(L);
}

Test(lua_limit, raising_the_limit_from_lua_lets_work_finish) {
  lua_State *L = limited_state(4u << 20);
  const char *out = run(L, "local hakmem = require 'hakmem'\n"
                           "local function work() local t = {} for i = 1, 1e6 do t[i] = {i} end return #t end\n"
                           "print(pcall(work))\n"
                           "hakmem.limit(0)\n"
                           "print(pcall(work))\n");
  cr_expect_str_eq(out, "false\tnot enough memory\ntrue\t1000000\n");
  lua_close(L);
}

/* A limit on held bytes too small for the standard libraries: no state, no abort. */
Test(lua_limit, a_heap_limit_too_small_for_the_libraries_gives_no_state) {
  const hak_lua_config_t cfg = {.open_libs = true, .preload = true};
  hak_heap_set_limit(heap, 32u << 10); /* the libraries need about 60 KiB of pages */
  errno = 0;
  cr_expect_null(hak_lua_newstate_cfg(heap, &cfg));
  cr_expect_eq(errno, ENOMEM);
  hak_heap_stats_t st = heap_stats();
  cr_expect_eq(st.live_blocks, 0);
  cr_expect_leq(st.peak_held_bytes, 32u << 10);
  hak_heap_set_limit(heap, 0);
  lua_State *L = hak_lua_newstate_cfg(heap, &cfg);
  cr_assert_not_null(L);
  cr_expect_str_eq(run(L, "print(type(require('hakmem').stats), string.rep('a', 3))"),
                   "function\taaa\n");
  lua_close(L);
}

Test(lua_limit, a_lua_bytes_limit_too_small_for_the_libraries_gives_no_state) {
  const hak_lua_config_t cfg = {.lua_limit = 16u << 10, .open_libs = true};
  errno = 0;
  cr_expect_null(hak_lua_newstate_cfg(heap, &cfg));
  cr_expect_eq(errno, ENOMEM);
  cr_expect_eq(heap_stats().live_blocks, 0);
  hak_lua_type_stats_t ts;
  hak_lua_get_type_stats(heap, &ts);
  cr_expect_eq(ts.bytes, 0);
}

static size_t lua_count(lua_State *L) {
  return (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
}

static size_t lua_limit_at_error;

static int grow_and_record(lua_State *L) {
  lua_newtable(L);
  for (lua_Integer i = 1; i < LUA_MAXINTEGER; i++) {
    lua_pushinteger(L, i);
    lua_rawseti(L, -2, i);
    size_t n = lua_count(L);
    if (n > lua_limit_at_error) lua_limit_at_error = n; /* highest count seen */
  }
  return 0;
}

Test(lua_limit, the_lua_bytes_limit_raises_LUA_ERRMEM_exactly_and_the_state_recovers) {
  lua_State *L = hak_lua_newstate_cfg(heap, &(hak_lua_config_t){.open_libs = true});
  cr_assert_not_null(L);
  lua_gc(L, LUA_GCCOLLECT);
  size_t limit = lua_count(L) + (1u << 20);
  cr_assert_eq(hak_lua_set_limit(L, limit), 0);
  cr_expect_eq(hak_lua_get_limit(L), limit);
  lua_limit_at_error = 0;
  lua_pushcfunction(L, grow_and_record);
  cr_expect_eq(lua_pcall(L, 0, 0, 0), LUA_ERRMEM);
  cr_expect_str_eq(lua_tostring(L, -1), "not enough memory");
  lua_pop(L, 1);
  cr_expect_leq(lua_limit_at_error, limit);
  cr_expect_gt(lua_limit_at_error, limit - (1u << 19)); /* it did grow to near the limit */
  hak_lua_type_stats_t ts;
  hak_lua_get_type_stats(heap, &ts);
  cr_expect_eq(ts.bytes, lua_count(L));
  lua_gc(L, LUA_GCCOLLECT);
  dostring(L, "x = ('y'):rep(100000) assert(#x == 100000)");
  cr_expect_eq(hak_lua_set_limit(L, 0), 0);
  lua_pushcfunction(L, grow_forever);
  hak_heap_set_limit(heap, heap_stats().held_bytes + (4u << 20)); /* the held-bytes limit ends it */
  cr_expect_eq(lua_pcall(L, 0, 0, 0), LUA_ERRMEM);
  lua_pop(L, 1);
  lua_close(L);
  cr_expect_eq(heap_stats().live_bytes, 0);
}

Test(lua_limit, the_lua_bytes_limit_from_lua_caps_collectgarbage_count) {
  lua_State *L = hak_lua_newstate(heap);
  const char *out = run(L, "local hakmem = require 'hakmem'\n"
                           "collectgarbage()\n"
                           "local limit = math.floor(collectgarbage('count') * 1024) + 2000000\n"
                           "print(hakmem.limit(nil, 'lua'), hakmem.limit(limit, 'lua'), hakmem.limit(nil, 'lua') == limit)\n"
                           "print(hakmem.stats().lua_limit == limit, hakmem.limit())\n"
                           "local big, peak = {}, 0\n"
                           "local ok, err = pcall(function() for i = 1, 1e9 do\n"
                           "  big[i] = ('x'):rep(100) .. i\n"
                           "  local c = collectgarbage('count') * 1024 if c > peak then peak = c end\n"
                           "end end)\n"
                           "print(ok, err, peak <= limit, peak > limit - 200000)\n"
                           "big = nil collectgarbage()\n"
                           "local t = {} for i = 1, 1000 do t[i] = ('z'):rep(100) end\n"
                           "print(#t, hakmem.limit(0, 'lua') == limit, hakmem.limit(nil, 'lua'))\n"
                           "print(pcall(hakmem.limit, 1, 'nope'))\n");
  cr_expect_str_eq(out, "0\t0\ttrue\n"
                        "true\t0\n"
                        "false\tnot enough memory\ttrue\ttrue\n"
                        "1000\ttrue\t0\n"
                        "false\tbad argument #2 to 'hakmem.limit' (invalid option 'nope')\n");
  lua_close(L);
}

/* }===================================================================== */

/*
** {=====================================================================
** Accounting that cannot go stale
** ======================================================================
*/

TestSuite(lua_accounting, .init = setup, .fini = teardown);

static void expect_accounting_matches(lua_State *L, hak_heap_t *h) {
  hak_lua_type_stats_t ts;
  hak_lua_get_type_stats(h, &ts);
  cr_expect_eq(ts.bytes, lua_count(L));
}

Test(lua_accounting, reset_without_lua_close_leaves_no_stale_counts) {
  lua_State *L = hak_lua_newstate(heap);
  run(L, "t = {} for i = 1, 5000 do t[i] = tostring(i) end");
  hak_heap_reset(heap); /* the state is gone with its blocks; it is never closed */
  hak_lua_type_stats_t ts;
  hak_lua_get_type_stats(heap, &ts);
  cr_expect_eq(ts.bytes, 0);
  cr_expect_eq(ts.count, 0);
  for (int t = 0; t < HAK_LUA_NTAGS; t++) cr_expect_eq(ts.type[t].count, 0);
  L = hak_lua_newstate(heap);
  run(L, "u = {} for i = 1, 100 do u[i] = {} end");
  expect_accounting_matches(L, heap);
  lua_close(L);
  hak_lua_get_type_stats(heap, &ts);
  cr_expect_eq(ts.count, 0);
  cr_expect_eq(heap_stats().live_blocks, 0);
}

Test(lua_accounting, a_heap_made_after_a_destroy_without_lua_close_starts_at_zero) {
  for (int round = 0; round < 4; round++) {
    hak_heap_t *h = hak_heap_create(NULL);
    lua_State *L = hak_lua_newstate(h);
    dostring(L, "t = {} for i = 1, 3000 do t[i] = {i} end");
    expect_accounting_matches(L, h);
    hak_heap_destroy(h); /* without lua_close */
    hak_heap_t *next = hak_heap_create(NULL); /* metadata is reused: usually the same address */
    hak_lua_type_stats_t ts;
    hak_lua_get_type_stats(next, &ts);
    cr_expect_eq(ts.bytes, 0, "round %d (same address: %d)", round, next == h);
    cr_expect_eq(ts.count, 0);
    L = hak_lua_newstate(next);
    expect_accounting_matches(L, next);
    lua_close(L);
    hak_heap_destroy(next);
  }
}

/* }===================================================================== */

/*
** {=====================================================================
** The hakmem module
** ======================================================================
*/

Test(lua_module, stats_report_the_heap_and_the_types) {
  lua_State *L = hak_lua_newstate(heap);
  const char *out = run(L, "local hakmem = require 'hakmem'\n"
                           "keep = {} for i = 1, 100 do keep[i] = {} end\n"
                           "local s = hakmem.stats()\n"
                           "print(s.live_bytes > 0, s.held_bytes >= s.live_bytes, s.limit_bytes)\n"
                           "print(s.types.table.count >= 100, s.types.string.bytes > 0)\n"
                           "print(s.types['function'].count > 0, s.types.thread.count, s.types.other.count > 0)\n"
                           "local lua_count = collectgarbage('count') * 1024\n"
                           "print(hakmem.stats().lua_bytes == lua_count)\n");
  cr_expect_str_eq(out, "true\ttrue\t0\ntrue\ttrue\ntrue\t1\ttrue\ntrue\n");
  lua_close(L);
}

Test(lua_module, limit_reads_and_sets_the_heaps_limit) {
  lua_State *L = hak_lua_newstate(heap);
  const char *out = run(L, "local hakmem = require 'hakmem'\n"
                           "print(hakmem.limit(), hakmem.limit(1 << 30), hakmem.limit())\n"
                           "print(pcall(hakmem.limit, -1))\n");
  cr_expect_str_eq(out, "0\t0\t1073741824\n"
                        "false\tbad argument #1 to 'hakmem.limit' (limit must be >= 0 (0 = no limit))\n");
  cr_expect_eq(hak_heap_get_limit(heap), 1u << 30);
  lua_close(L);
}

Test(lua_module, collect_returns_the_held_bytes) {
  lua_State *L = hak_lua_newstate(heap);
  run(L, "local t = {} for i = 1, 1e5 do t[i] = {} end t = nil\n"
         "held = require('hakmem').collect()");
  lua_getglobal(L, "held");
  cr_expect(lua_isinteger(L, -1));
  hak_heap_stats_t st;
  hak_heap_get_stats(heap, &st);
  cr_expect_eq((size_t)lua_tointeger(L, -1), st.held_bytes);
  lua_close(L);
}

Test(lua_module, functions_refuse_a_state_on_another_allocator) {
  lua_State *L = luaL_newstate();
  const char *out = run(L, "local hakmem = require 'hakmem'\nprint(pcall(hakmem.stats))");
  cr_expect_str_eq(out, "false\thakmem: this state does not allocate from a hakmem heap\n");
  lua_close(L);
}

/* }===================================================================== */

/*
** {=====================================================================
** Panic and warnings, compared with luaL_newstate in child processes
** ======================================================================
*/

typedef struct {
  char text[4096];
  int status;
} child_t;

static hak_heap_t *child_heap;

static lua_State *make_hak(void) { return hak_lua_newstate(child_heap = hak_heap_create(NULL)); }

/* Runs body on a new state from make in a child whose stderr is captured. */
static child_t in_child(lua_State *(*make)(void), void (*body)(lua_State *)) {
  child_t c = {{0}, 0};
  int fd[2];
  cr_assert_eq(pipe(fd), 0);
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    dup2(fd[1], 2);
    close(fd[0]);
    body(make());
    _exit(0);
  }
  close(fd[1]);
  size_t n = 0;
  ssize_t r;
  while ((r = read(fd[0], c.text + n, sizeof c.text - 1 - n)) > 0) n += (size_t)r;
  close(fd[0]);
  waitpid(pid, &c.status, 0);
  return c;
}

static void panic_with_string(lua_State *L) {
  lua_pushstring(L, "unprotected boom");
  lua_error(L);
}

static void panic_with_table(lua_State *L) {
  lua_newtable(L);
  lua_error(L);
}

static void warnings(lua_State *L) {
  lua_warning(L, "hidden while off", 0);
  lua_warning(L, "@on", 0);
  lua_warning(L, "one", 0);
  lua_warning(L, "two ", 1);
  lua_warning(L, "@off", 1); /* a piece, not a control message */
  lua_warning(L, " parts", 0);
  lua_warning(L, "@whatever", 0);
  lua_warning(L, "@off", 0);
  lua_warning(L, "hidden again", 0);
  lua_warning(L, "@on", 0);
  lua_warning(L, "last", 0);
  luaL_openlibs(L);
  (void)luaL_dostring(L, "warn('from ', 'lua') warn('@off') warn('not shown')");
}

static void expect_same_as_luaL_newstate(void (*body)(lua_State *)) {
  child_t want = in_child(luaL_newstate, body);
  child_t got = in_child(make_hak, body);
  cr_expect_str_eq(got.text, want.text);
  cr_expect_eq(got.status, want.status);
}

Test(lua_state, panic_on_a_string_error_prints_and_aborts_like_luaL_newstate) {
  expect_same_as_luaL_newstate(panic_with_string);
  child_t got = in_child(make_hak, panic_with_string);
  cr_expect_str_eq(got.text, "PANIC: unprotected error in call to Lua API (unprotected boom)\n");
  cr_expect(WIFSIGNALED(got.status) && WTERMSIG(got.status) == SIGABRT);
}

Test(lua_state, panic_on_a_non_string_error_prints_like_luaL_newstate) {
  expect_same_as_luaL_newstate(panic_with_table);
}

Test(lua_state, warnings_are_off_until_on_and_print_like_luaL_newstate) {
  expect_same_as_luaL_newstate(warnings);
  child_t got = in_child(make_hak, warnings);
  cr_expect_str_eq(got.text, "Lua warning: one\nLua warning: two @off parts\n"
                             "Lua warning: last\nLua warning: from lua\n");
}

/* }===================================================================== */
