/*
** Thread exit returns cached blocks: a thread that allocated and freed (its cache holds the
** blocks) and exits leaves nothing live, and hak_heap_collect(heap, true) then gives back all
** the memory (held_bytes as before the thread ran), also when another thread freed the blocks
** the exited thread left live. hak_thread_flush does the same without exiting. A thread that outlives a heap it
** used exits cleanly.
*/
#include <criterion/criterion.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>

#include "test_util.h"

TestSuite(thread_exit, .timeout = 30);

struct work {
  hak_heap_t *heaps[4];
  int nheaps;
  int n;
  bool flush_and_wait; /* call hak_thread_flush, post `flushed`, wait for `release` */
  sem_t flushed, release;
  void **leak;         /* if set: the first `nleak` blocks are left live here */
  int nleak;
};

static void *churn(void *arg) {
  struct work *w = arg;
  enum { CAP = 20000 };
  static _Thread_local void *p[CAP];
  for (int h = 0; h < w->nheaps; h++) {
    int n = w->n < CAP ? w->n : CAP;
    for (int i = 0; i < n; i++) {
      p[i] = hak_heap_malloc(w->heaps[h], 16 + (size_t)(i * 29) % 2000);
      if (p[i] == NULL) return (void *)1;
      ((unsigned char *)p[i])[0] = 1;
    }
    int keep = (h == 0 && w->leak) ? w->nleak : 0;
    for (int i = 0; i < keep; i++) w->leak[i] = p[i];
    for (int i = keep; i < n; i++) hak_free(p[i]);
  }
  if (w->flush_and_wait) {
    hak_thread_flush();
    sem_post(&w->flushed);
    while (sem_wait(&w->release) != 0) {
    }
  }
  return NULL;
}

static void run(struct work *w) {
  pthread_t t;
  void *ret;
  cr_assert_eq(pthread_create(&t, NULL, churn, w), 0);
  cr_assert_eq(pthread_join(t, &ret), 0);
  cr_assert_null(ret, "allocation failed in the worker");
}

Test(thread_exit, exited_thread_leaves_nothing_live_and_memory_can_be_released) {
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  size_t held_before = ht_stats(heap).held_bytes;
  struct work w = {.heaps = {heap}, .nheaps = 1, .n = 20000};
  run(&w);
  /* This thread never used the heap, so nothing may hide in a cache of its own. */
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.live_blocks, 0, "%zu blocks live after the only user exited", s.live_blocks);
  cr_assert_eq(s.live_bytes, 0);
  cr_assert_eq(s.alloc_count, 20000);
  cr_assert_eq(s.free_count, 20000);
  size_t held = s.held_bytes;
  cr_assert_gt(s.peak_held_bytes, 0);
  hak_heap_collect(heap, true);
  s = ht_stats(heap);
  cr_assert_eq(s.held_bytes, held_before,
               "held_bytes %zu (was %zu, peak %zu, %zu before the thread) after the thread "
               "exited and collect(force)",
               s.held_bytes, held, s.peak_held_bytes, held_before);
  hak_heap_destroy(heap);
}

Test(thread_exit, exit_returns_blocks_of_every_heap_the_thread_used) {
  struct work w = {.nheaps = 4, .n = 3000};
  for (int h = 0; h < 4; h++) {
    w.heaps[h] = hak_heap_create(NULL);
    cr_assert_not_null(w.heaps[h]);
  }
  run(&w);
  for (int h = 0; h < 4; h++) {
    hak_heap_stats_t s = ht_stats(w.heaps[h]);
    cr_assert_eq(s.live_blocks, 0, "heap %d: %zu live", h, s.live_blocks);
    cr_assert_eq(s.live_bytes, 0);
    hak_heap_destroy(w.heaps[h]);
  }
}

Test(thread_exit, blocks_left_by_an_exited_thread_can_be_freed_by_another) {
  enum { LEAK = 500 };
  void *leak[LEAK];
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  size_t held_before = ht_stats(heap).held_bytes;
  struct work w = {.heaps = {heap}, .nheaps = 1, .n = 2000, .leak = leak, .nleak = LEAK};
  run(&w);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.live_blocks, LEAK);
  for (int i = 0; i < LEAK; i++) {
    cr_assert_eq(hak_heap_of(leak[i]), heap);
    hak_free(leak[i]);
  }
  hak_heap_collect(heap, true);
  s = ht_stats(heap);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.live_bytes, 0);
  cr_assert_eq(s.held_bytes, held_before, "held %zu after the frees and collect, %zu before",
               s.held_bytes, held_before);
  hak_heap_destroy(heap);
}

Test(thread_exit, thread_flush_returns_cached_blocks_without_exiting) {
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  struct work w = {.heaps = {heap}, .nheaps = 1, .n = 10000, .flush_and_wait = true};
  sem_init(&w.flushed, 0, 0);
  sem_init(&w.release, 0, 0);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, churn, &w), 0);
  while (sem_wait(&w.flushed) != 0) {
  }
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.live_blocks, 0, "%zu live after the user flushed", s.live_blocks);
  hak_heap_collect(heap, true);
  s = ht_stats(heap);
  cr_assert_lt(s.held_bytes, s.peak_held_bytes / 2, "held %zu of peak %zu after flush + collect",
               s.held_bytes, s.peak_held_bytes);
  sem_post(&w.release);
  pthread_join(t, NULL);
  sem_destroy(&w.flushed);
  sem_destroy(&w.release);
  hak_heap_destroy(heap);
}

Test(thread_exit, thread_that_outlives_a_destroyed_heap_exits_cleanly) {
  hak_heap_t *heap = hak_heap_create(NULL);
  hak_heap_t *other = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  cr_assert_not_null(other);
  struct work w = {.heaps = {heap, other}, .nheaps = 2, .n = 1000, .flush_and_wait = true};
  sem_init(&w.flushed, 0, 0);
  sem_init(&w.release, 0, 0);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, churn, &w), 0);
  while (sem_wait(&w.flushed) != 0) {
  }
  /* The worker is idle and holds a (flushed) cache for both heaps: destroy one under it. */
  hak_heap_destroy(heap);
  hak_heap_t *fresh = hak_heap_create(NULL);
  cr_assert_not_null(fresh);
  sem_post(&w.release);
  pthread_join(t, NULL);
  hak_heap_stats_t s = ht_stats(other);
  cr_assert_eq(s.live_blocks, 0);
  const char *fail = ht_heap_usable(fresh);
  cr_assert_null(fail, "%s", fail);
  fail = ht_heap_usable(other);
  cr_assert_null(fail, "%s", fail);
  sem_destroy(&w.flushed);
  sem_destroy(&w.release);
  hak_heap_destroy(fresh);
  hak_heap_destroy(other);
}

static void *use_then_wait(void *arg) {
  struct work *w = arg;
  void *p[100];
  for (int i = 0; i < 100; i++) p[i] = hak_heap_malloc(w->heaps[0], 64);
  for (int i = 0; i < 100; i++) hak_free(p[i]);
  sem_post(&w->flushed);
  while (sem_wait(&w->release) != 0) {
  }
  return NULL;
}

Test(thread_exit, thread_with_unflushed_cache_of_a_destroyed_heap_exits_cleanly) {
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  struct work w = {.heaps = {heap}, .nheaps = 1};
  sem_init(&w.flushed, 0, 0);
  sem_init(&w.release, 0, 0);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, use_then_wait, &w), 0);
  while (sem_wait(&w.flushed) != 0) {
  }
  hak_heap_destroy(heap);
  for (int i = 0; i < 20; i++) hak_heap_destroy(hak_heap_create(NULL));
  sem_post(&w.release);
  pthread_join(t, NULL);
  hak_heap_t *again = hak_heap_create(NULL);
  const char *fail = ht_heap_usable(again);
  cr_assert_null(fail, "%s", fail);
  hak_heap_destroy(again);
}
