/*
** threaded_states.c: 8 states, each on its own heap, run by 4 threads at once, then handed to
** other threads that run them again and close them. Checks each state's output against
** luaL_newstate and that every heap ends with no live byte. A plain program (Criterion does
** not start under TSan): prints "N passed, N failed" and exits non-zero on a failure.
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hakmem_lua.h>
#include <lauxlib.h>

#include "harness.h"

enum { STATES = 8, THREADS = 4, PER_THREAD = STATES / THREADS, ROUNDS = 3 };

static const char *const work =
    "local id = ...\n"
    "local t = {}\n"
    "for i = 1, 3000 do t[i] = ('s%d'):format(i % 97) .. i end\n"
    "for i = 3000, 1, -2 do table.remove(t, i) end\n"
    "local co = coroutine.wrap(function() for i = 1, 500 do coroutine.yield({i}) end end)\n"
    "local sum = 0\n"
    "for _ = 1, 500 do sum = sum + co()[1] end\n"
    "keep = keep or {}\n"
    "keep[#keep + 1] = table.concat(t, ',', 1, 50)\n"
    "collectgarbage()\n"
    "print(#t, sum, #keep, #keep[#keep])\n";

typedef struct {
  hak_heap_t *heap;
  lua_State *L;
  char *out; /* all captured output, rounds appended */
} slot_t;

static slot_t slots[STATES];
static char *want_first, *want_second;
static atomic_int passed, failed; /* checked from the hand-over threads too */

static void check(int ok, const char *what, int i) {
  if (ok) {
    passed++;
  } else {
    failed++;
    fprintf(stderr, "FAIL: %s (state %d)\n", what, i);
  }
}

static char *run_rounds(lua_State *L, int rounds) {
  size_t cap = 0, len = 0;
  char *all = NULL;
  for (int r = 0; r < rounds; r++) {
    char *out = harness_run_string(L, work);
    size_t n = strlen(out);
    if (len + n + 1 > cap) all = realloc(all, cap = 2 * (len + n + 1));
    memcpy(all + len, out, n + 1);
    len += n;
    free(out);
  }
  return all;
}

/* Phase 1: each thread creates its states and runs them, interleaved. */
static void *first_owner(void *arg) {
  int t = (int)(intptr_t)arg;
  for (int k = 0; k < PER_THREAD; k++) {
    slot_t *s = &slots[t * PER_THREAD + k];
    s->heap = hak_heap_create(NULL);
    s->L = hak_lua_newstate(s->heap);
  }
  for (int k = 0; k < PER_THREAD; k++) {
    slot_t *s = &slots[t * PER_THREAD + k];
    s->out = run_rounds(s->L, ROUNDS);
  }
  return NULL;
}

/* Phase 2: another thread runs the same states again and closes them. */
static void *second_owner(void *arg) {
  int t = ((int)(intptr_t)arg + 1) % THREADS;
  for (int k = 0; k < PER_THREAD; k++) {
    slot_t *s = &slots[t * PER_THREAD + k];
    char *again = run_rounds(s->L, 1);
    check(strcmp(again, want_second) == 0, "output after hand-over", t * PER_THREAD + k);
    free(again);
    lua_close(s->L);
  }
  return NULL;
}

static void run_phase(void *(*fn)(void *)) {
  pthread_t th[THREADS];
  for (int t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, fn, (void *)(intptr_t)t);
  for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
}

int main(void) {
  lua_State *ref = luaL_newstate();
  want_first = run_rounds(ref, ROUNDS);
  want_second = run_rounds(ref, 1);
  lua_close(ref);

  run_phase(first_owner);
  for (int i = 0; i < STATES; i++) check(strcmp(slots[i].out, want_first) == 0, "output", i);
  run_phase(second_owner);

  for (int i = 0; i < STATES; i++) {
    hak_heap_stats_t st;
    hak_heap_collect(slots[i].heap, true);
    hak_heap_get_stats(slots[i].heap, &st);
    check(st.live_bytes == 0 && st.live_blocks == 0, "live bytes after close", i);
    hak_lua_type_stats_t ts;
    hak_lua_get_type_stats(slots[i].heap, &ts);
    check(ts.count == 0, "type accounting after close", i);
    hak_heap_destroy(slots[i].heap);
    free(slots[i].out);
  }
  free(want_first);
  free(want_second);
  printf("%d passed, %d failed\n", atomic_load(&passed), atomic_load(&failed));
  return failed != 0;
}
