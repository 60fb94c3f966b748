/*
** Destroy and reset: reset frees every block at once (stats drop to zero live, held drops, the
** heap stays usable); destroy gives the memory of a big heap back to the OS (RSS drops), and so
** does hak_heap_collect(heap, true) once everything is freed. Creating and destroying many heaps
** does not grow the process. Caches of the calling and of idle threads never hand out blocks
** from before a reset or from a destroyed heap.
*/
#include <criterion/criterion.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdlib.h>

#include "test_util.h"

TestSuite(destroy_reset, .timeout = 30);

/* Fill a heap with about `bytes` of touched small and large blocks; returns the block count. */
/* Small blocks, every 64th a bigger one: every 4096th a large block (2 MiB, a mapping of its
** own), the others medium (512 KiB, spans in superslabs). */
static size_t fill_heap(hak_heap_t *heap, size_t bytes, void **keep, size_t keep_cap) {
  size_t total = 0, n = 0;
  while (total < bytes) {
    size_t big = n % 4096 == 4095 ? 2 * HT_MIB : 512 * HT_KIB;
    size_t size = (n % 64 == 63) ? big : 16 + (n * 40) % 2000;
    void *p = hak_heap_malloc(heap, size);
    cr_assert_not_null(p, "malloc(%zu) failed after %zu bytes", size, total);
    ht_fill(p, size, 0xC3);
    if (n < keep_cap) keep[n] = p;
    total += size;
    n++;
  }
  return n;
}

Test(destroy_reset, reset_frees_every_block_and_keeps_the_heap_usable) {
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  size_t n = fill_heap(heap, 64 * HT_MIB, NULL, 0);
  hak_heap_stats_t before = ht_stats(heap);
  cr_assert_eq(before.live_blocks, n);
  cr_assert_gt(before.large_count, 0);
  hak_heap_reset(heap);
  hak_heap_stats_t after = ht_stats(heap);
  cr_assert_eq(after.live_blocks, 0, "live_blocks %zu after reset", after.live_blocks);
  cr_assert_eq(after.live_bytes, 0, "live_bytes %zu after reset", after.live_bytes);
  cr_assert_eq(after.large_count, 0, "large_count %zu after reset", after.large_count);
  cr_assert_lt(after.held_bytes, before.held_bytes, "held_bytes did not drop on reset (%zu -> %zu)",
               before.held_bytes, after.held_bytes);
  cr_assert_geq(after.peak_held_bytes, before.held_bytes);
  const char *fail = ht_heap_usable(heap);
  cr_assert_null(fail, "heap unusable after reset: %s", fail);
  size_t n2 = fill_heap(heap, 16 * HT_MIB, NULL, 0);
  cr_assert_eq(ht_stats(heap).live_blocks, n2);
  hak_heap_destroy(heap);
}

Test(destroy_reset, repeated_resets_reuse_the_kept_memory) {
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  size_t held_first = 0;
  for (int round = 0; round < 50; round++) {
    for (int i = 0; i < 2000; i++) {
      void *p = hak_heap_malloc(heap, 16 + (size_t)(i * 13) % 4096);
      cr_assert_not_null(p);
      ht_fill(p, 16, (uint8_t)i);
    }
    hak_heap_stats_t s = ht_stats(heap);
    if (round == 0) held_first = s.peak_held_bytes;
    cr_assert_leq(s.peak_held_bytes, 2 * held_first,
                  "round %d: peak held %zu grew from %zu: reset does not reuse memory", round,
                  s.peak_held_bytes, held_first);
    hak_heap_reset(heap);
  }
  hak_heap_destroy(heap);
}

Test(destroy_reset, reset_then_blocks_of_the_reset_heap_are_not_owned) {
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  void *large = hak_heap_malloc(heap, 2 * HT_MIB);
  cr_assert_not_null(large);
  hak_heap_reset(heap);
  cr_assert_null(hak_heap_of(large), "a large block outlived the reset");
  cr_assert_eq(hak_usable_size(large), 0);
  hak_heap_destroy(heap);
}

Test(destroy_reset, destroy_of_a_big_heap_returns_memory_to_the_os) {
  if (!ht_rss_reliable()) cr_skip_test("RSS is not meaningful under ASan");
  size_t rss0 = ht_rss_bytes();
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  fill_heap(heap, 128 * HT_MIB, NULL, 0);
  size_t rss_full = ht_rss_bytes();
  cr_assert_geq(rss_full, rss0 + 100 * HT_MIB, "filling 128 MiB raised RSS only %zu -> %zu",
                rss0, rss_full);
  hak_heap_destroy(heap);
  size_t rss_after = ht_rss_bytes();
  /* A small process-wide cache of empty superslabs may stay resident: ask for 3/4 back. */
  cr_assert_leq(rss_after - rss0, (rss_full - rss0) / 4,
                "RSS %zu MiB after destroy, %zu MiB full, %zu MiB before the heap existed",
                rss_after >> 20, rss_full >> 20, rss0 >> 20);
}

Test(destroy_reset, collect_force_after_freeing_everything_returns_memory_to_the_os) {
  enum { CAP = 200000 };
  static void *blocks[CAP];
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  size_t rss0 = ht_rss_bytes();
  size_t n = fill_heap(heap, 128 * HT_MIB, blocks, CAP);
  cr_assert_leq(n, CAP);
  size_t rss_full = ht_rss_bytes();
  hak_heap_stats_t full = ht_stats(heap);
  for (size_t i = 0; i < n; i++) hak_free(blocks[i]);
  hak_heap_collect(heap, true);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.live_bytes, 0);
  cr_assert_leq(s.held_bytes, full.held_bytes / 8,
                "held_bytes %zu after collect(force), %zu when full", s.held_bytes,
                full.held_bytes);
  if (ht_rss_reliable()) {
    size_t rss_after = ht_rss_bytes();
    cr_assert_geq(rss_full, rss0 + 100 * HT_MIB);
    cr_assert_leq(rss_after - rss0, (rss_full - rss0) / 4,
                  "RSS %zu MiB after free + collect(force), %zu MiB full, %zu MiB before filling",
                  rss_after >> 20, rss_full >> 20, rss0 >> 20);
  }
  const char *fail = ht_heap_usable(heap);
  cr_assert_null(fail, "heap unusable after collect: %s", fail);
  hak_heap_destroy(heap);
}

Test(destroy_reset, creating_and_destroying_many_heaps_does_not_grow_the_process) {
  size_t rss_mid = 0;
  for (int round = 0; round < 400; round++) {
    hak_heap_t *heap = hak_heap_create(NULL);
    cr_assert_not_null(heap, "hak_heap_create failed in round %d", round);
    for (int i = 0; i < 300; i++) {
      void *p = hak_heap_malloc(heap, 16 + (size_t)i * 11);
      cr_assert_not_null(p);
      ht_fill(p, 16, 1);
    }
    void *big = hak_heap_malloc(heap, HT_MIB);
    cr_assert_not_null(big);
    ht_fill(big, HT_MIB, 2);
    hak_heap_destroy(heap);
    if (round == 50) rss_mid = ht_rss_bytes();
  }
  if (ht_rss_reliable()) {
    size_t rss_end = ht_rss_bytes();
    cr_assert_leq(rss_end, rss_mid + 8 * HT_MIB, "RSS grew from %zu to %zu MiB over 350 heaps",
                  rss_mid >> 20, rss_end >> 20);
  }
}

Test(destroy_reset, destroy_of_null_is_a_no_op) {
  hak_heap_destroy(NULL);
}

Test(destroy_reset, destroy_of_a_heap_that_was_never_used) {
  for (int i = 0; i < 100; i++) hak_heap_destroy(hak_heap_create(NULL));
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
  return (x > y) - (x < y);
}

/* Sort the blocks and fail if any two overlap (a block handed out twice). */
static void expect_disjoint(void **p, size_t n) {
  qsort(p, n, sizeof p[0], cmp_ptr);
  for (size_t i = 0; i + 1 < n; i++)
    cr_assert_leq((uintptr_t)p[i] + hak_usable_size(p[i]), (uintptr_t)p[i + 1],
                  "blocks %p and %p overlap: a block was handed out twice", p[i], p[i + 1]);
}

Test(destroy_reset, caller_cache_is_cleared_by_reset) {
  enum { N = 3000 };
  static void *p[N];
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  for (int round = 0; round < 3; round++) {
    /* Leave freed blocks in this thread's cache and live blocks in the slabs, then reset. */
    for (int i = 0; i < N; i++) p[i] = hak_heap_malloc(heap, 16 + (size_t)(i % 64) * 16);
    for (int i = 0; i < N; i += 2) hak_free(p[i]);
    hak_heap_reset(heap);
    for (int i = 0; i < N; i++) {
      p[i] = hak_heap_malloc(heap, 16 + (size_t)(i % 64) * 16);
      cr_assert_not_null(p[i]);
      cr_assert_eq(hak_heap_of(p[i]), heap);
    }
    cr_assert_eq(ht_stats(heap).live_blocks, N, "round %d: live %zu after reset + %d allocations",
                 round, ht_stats(heap).live_blocks, N);
    expect_disjoint(p, N);
    hak_heap_reset(heap);
  }
  hak_heap_destroy(heap);
}

/* A second thread that uses a heap, then idles while the main thread resets/destroys it. */
struct idle_user {
  hak_heap_t *heap;
  sem_t used, go, done;
  void **out;
  int n;
};

static void *idle_user_main(void *arg) {
  struct idle_user *u = arg;
  void *tmp[256];
  for (int i = 0; i < 256; i++) tmp[i] = hak_heap_malloc(u->heap, 16 + (size_t)(i % 64) * 16);
  for (int i = 0; i < 256; i += 2) hak_free(tmp[i]);
  sem_post(&u->used);
  while (sem_wait(&u->go) != 0) {
  }
  for (int i = 0; i < u->n; i++) u->out[i] = hak_heap_malloc(u->heap, 16 + (size_t)(i % 64) * 16);
  sem_post(&u->done);
  return NULL;
}

Test(destroy_reset, other_thread_cache_is_not_reused_after_reset) {
  enum { N = 2000 };
  static void *p[2 * N];
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  struct idle_user u = {.heap = heap, .out = p + N, .n = N};
  sem_init(&u.used, 0, 0);
  sem_init(&u.go, 0, 0);
  sem_init(&u.done, 0, 0);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, idle_user_main, &u), 0);
  while (sem_wait(&u.used) != 0) {
  }
  hak_heap_reset(heap);
  for (int i = 0; i < N; i++) {
    p[i] = hak_heap_malloc(heap, 16 + (size_t)(i % 64) * 16);
    cr_assert_not_null(p[i]);
  }
  sem_post(&u.go);
  while (sem_wait(&u.done) != 0) {
  }
  pthread_join(t, NULL);
  for (int i = N; i < 2 * N; i++) cr_assert_not_null(p[i]);
  hak_heap_collect(heap, false);
  cr_assert_eq(ht_stats(heap).live_blocks, 2 * N, "live %zu, want %d",
               ht_stats(heap).live_blocks, 2 * N);
  expect_disjoint(p, 2 * N);
  hak_heap_destroy(heap);
}

Test(destroy_reset, thread_cache_of_a_destroyed_heap_does_not_leak_into_a_new_heap) {
  enum { N = 2000 };
  static void *p[N];
  for (int round = 0; round < 20; round++) {
    hak_heap_t *old = hak_heap_create(NULL);
    cr_assert_not_null(old);
    for (int i = 0; i < N; i++) p[i] = hak_heap_malloc(old, 16 + (size_t)(i % 64) * 16);
    for (int i = 0; i < N; i += 2) hak_free(p[i]);
    hak_heap_destroy(old);
    /* The new heap probably takes the old one's slot in this thread's cache table. */
    hak_heap_t *heap = hak_heap_create(NULL);
    cr_assert_not_null(heap);
    for (int i = 0; i < N; i++) {
      p[i] = hak_heap_malloc(heap, 16 + (size_t)(i % 64) * 16);
      cr_assert_not_null(p[i]);
      cr_assert_eq(hak_heap_of(p[i]), heap, "round %d: block %p from a new heap is not its own",
                   round, p[i]);
      ht_fill(p[i], 16, 0xAB);
    }
    cr_assert_eq(ht_stats(heap).live_blocks, N);
    expect_disjoint(p, N);
    hak_heap_destroy(heap);
  }
}

Test(destroy_reset, idle_thread_cache_of_a_destroyed_heap_does_not_leak_into_a_new_heap) {
  enum { N = 2000 };
  static void *p[2 * N];
  hak_heap_t *old = hak_heap_create(NULL);
  cr_assert_not_null(old);
  struct idle_user u = {.heap = old, .out = p + N, .n = N};
  sem_init(&u.used, 0, 0);
  sem_init(&u.go, 0, 0);
  sem_init(&u.done, 0, 0);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, idle_user_main, &u), 0);
  while (sem_wait(&u.used) != 0) {
  }
  hak_heap_destroy(old);
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  u.heap = heap; /* published to the thread by sem_post below */
  for (int i = 0; i < N; i++) p[i] = hak_heap_malloc(heap, 16 + (size_t)(i % 64) * 16);
  sem_post(&u.go);
  while (sem_wait(&u.done) != 0) {
  }
  pthread_join(t, NULL);
  for (int i = 0; i < 2 * N; i++) {
    cr_assert_not_null(p[i]);
    cr_assert_eq(hak_heap_of(p[i]), heap, "block %d (%p) is not the new heap's", i, p[i]);
  }
  expect_disjoint(p, 2 * N);
  hak_heap_destroy(heap);
}

static void *free_all_of(void *arg) {
  void **p = arg;
  for (int i = 0; p[i] != NULL; i++) hak_free(p[i]);
  return NULL;
}

Test(destroy_reset, remote_frees_pending_at_reset_do_not_resurrect_blocks) {
  enum { N = 2000 };
  static void *p[2 * N + 1];
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  ht_errlog_t errlog;
  ht_errlog_install(&errlog);
  for (int round = 0; round < 5; round++) {
    for (int i = 0; i < N; i++) p[i] = hak_heap_malloc(heap, 16 + (size_t)(i % 32) * 16);
    p[N] = NULL;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, free_all_of, p), 0);
    pthread_join(t, NULL);
    /* The remote queue holds N blocks from before the reset; nothing has drained it. */
    hak_heap_reset(heap);
    for (int i = 0; i < 2 * N; i++) {
      p[i] = hak_heap_malloc(heap, 16 + (size_t)(i % 32) * 16);
      cr_assert_not_null(p[i]);
    }
    hak_heap_collect(heap, false);
    for (int i = 2 * N - 100; i < 2 * N; i++) {
      hak_free(p[i]);
      p[i] = hak_heap_malloc(heap, 16 + (size_t)(i % 32) * 16);
    }
    cr_assert_eq(ht_stats(heap).live_blocks, 2 * N, "round %d: live %zu, want %d", round,
                 ht_stats(heap).live_blocks, 2 * N);
    expect_disjoint(p, 2 * N);
    cr_assert_eq(errlog.calls, 0, "valid use reported: %s", errlog.msg);
    hak_heap_reset(heap);
  }
  hak_set_error_handler(NULL, NULL);
  hak_heap_destroy(heap);
}
