/*
** Heap statistics: in a single thread alloc_count, free_count, live_blocks and live_bytes are
** exact at every step; peak_held_bytes bounds held_bytes; frees from another thread show up in
** remote_free_count, each exactly once; once everything is freed and collected nothing is live.
*/
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>

#include "test_util.h"

static hak_heap_t *heap;

static void setup(void) {
  heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
}

static void teardown(void) {
  hak_heap_destroy(heap);
}

TestSuite(stats, .init = setup, .fini = teardown, .timeout = 30);

Test(stats, fresh_heap_has_nothing_live) {
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.live_bytes, 0);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.alloc_count, 0);
  cr_assert_eq(s.free_count, 0);
  cr_assert_eq(s.remote_free_count, 0);
  cr_assert_eq(s.large_count, 0);
  cr_assert_eq(s.limit_bytes, 0);
  cr_assert_geq(s.peak_held_bytes, s.held_bytes);
}

Test(stats, single_thread_counts_are_exact_at_every_step) {
  enum { N = 3000 };
  static void *p[N];
  size_t live_bytes = 0;
  for (int i = 0; i < N; i++) {
    size_t size = (i % 500 == 499) ? HT_MEDIUM_MAX + 1 + (size_t)i : (size_t)(i * 37) % 3000;
    p[i] = (i % 3 == 0) ? hak_heap_calloc(heap, 1, size) : hak_heap_malloc(heap, size);
    cr_assert_not_null(p[i]);
    live_bytes += hak_usable_size(p[i]);
    if (i % 97 == 0) {
      hak_heap_stats_t s = ht_stats(heap);
      cr_assert_eq(s.alloc_count, (uint64_t)i + 1);
      cr_assert_eq(s.live_blocks, (size_t)i + 1);
      cr_assert_eq(s.live_bytes, live_bytes, "after %d allocations live_bytes %zu, want %zu", i + 1,
                   s.live_bytes, live_bytes);
      cr_assert_eq(s.free_count, 0);
    }
  }
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.alloc_count, N);
  cr_assert_eq(s.live_blocks, N);
  cr_assert_eq(s.live_bytes, live_bytes);
  cr_assert_eq(s.large_count, N / 500);
  cr_assert_geq(s.held_bytes, live_bytes);
  cr_assert_geq(s.superslab_count, 1);
  for (int i = 0; i < N; i++) {
    live_bytes -= hak_usable_size(p[i]);
    if (i % 2)
      hak_free(p[i]);
    else
      hak_free_sized(p[i], (i % 500 == 499) ? HT_MEDIUM_MAX + 1 + (size_t)i : (size_t)(i * 37) % 3000);
    if (i % 89 == 0) {
      s = ht_stats(heap);
      cr_assert_eq(s.free_count, (uint64_t)i + 1);
      cr_assert_eq(s.live_blocks, (size_t)(N - i - 1));
      cr_assert_eq(s.live_bytes, live_bytes, "after %d frees live_bytes %zu, want %zu", i + 1,
                   s.live_bytes, live_bytes);
    }
  }
  s = ht_stats(heap);
  cr_assert_eq(s.alloc_count, N);
  cr_assert_eq(s.free_count, N);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.live_bytes, 0);
  cr_assert_eq(s.large_count, 0);
  cr_assert_eq(s.remote_free_count, 0, "same-thread frees counted as remote");
}

Test(stats, peak_held_bytes_is_monotonic_and_bounds_held_bytes) {
  size_t peak = 0;
  for (int round = 0; round < 20; round++) {
    void *p[64];
    for (int i = 0; i < 64; i++) {
      p[i] = hak_heap_malloc(heap, (size_t)(round * 1000 + i * 50) + 16);
      cr_assert_not_null(p[i]);
    }
    hak_heap_stats_t s = ht_stats(heap);
    cr_assert_geq(s.peak_held_bytes, s.held_bytes);
    cr_assert_geq(s.peak_held_bytes, peak, "peak_held_bytes went down");
    peak = s.peak_held_bytes;
    for (int i = 0; i < 64; i++) hak_free(p[i]);
    hak_heap_collect(heap, true);
    s = ht_stats(heap);
    cr_assert_geq(s.peak_held_bytes, peak, "peak_held_bytes went down after collect");
  }
}

Test(stats, counts_of_other_heaps_are_separate) {
  hak_heap_t *other = hak_heap_create(NULL);
  cr_assert_not_null(other);
  void *a = hak_heap_malloc(heap, 100);
  void *b = hak_heap_malloc(other, 100);
  void *c = hak_heap_malloc(other, 100);
  hak_heap_stats_t s = ht_stats(heap), o = ht_stats(other);
  cr_assert_eq(s.alloc_count, 1);
  cr_assert_eq(o.alloc_count, 2);
  hak_free(c);
  hak_free(b);
  hak_free(a);
  s = ht_stats(heap);
  o = ht_stats(other);
  cr_assert_eq(s.free_count, 1);
  cr_assert_eq(o.free_count, 2);
  hak_heap_destroy(other);
}

struct frees {
  void **p;
  int n;
};

static void *free_all(void *arg) {
  struct frees *f = arg;
  for (int i = 0; i < f->n; i++) hak_free(f->p[i]);
  return NULL;
}

Test(stats, cross_thread_frees_count_as_remote_and_drain_to_zero_live) {
  enum { N = 2000 };
  static void *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = hak_heap_malloc(heap, 16 + (size_t)(i % 300));
    cr_assert_not_null(p[i]);
  }
  struct frees f = {p, N};
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, free_all, &f), 0);
  pthread_join(t, NULL);
  hak_heap_collect(heap, false);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.remote_free_count, N, "%" PRIu64 " of %d frees by another thread were remote",
               s.remote_free_count, N);
  cr_assert_eq(s.free_count, N);
  cr_assert_eq(s.live_blocks, 0, "live_blocks %zu after remote frees and collect", s.live_blocks);
  cr_assert_eq(s.live_bytes, 0);
  cr_assert_eq(s.alloc_count, N);
}

Test(stats, everything_freed_and_collected_leaves_zero_live) {
  enum { N = 5000 };
  static void *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = hak_heap_malloc(heap, (i % 1000 == 0) ? 2 * HT_MIB : 8 + (size_t)(i * 13) % 20000);
    cr_assert_not_null(p[i]);
  }
  struct frees f = {p, N / 2};
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, free_all, &f), 0);
  for (int i = N / 2; i < N; i++) hak_free(p[i]);
  pthread_join(t, NULL);
  hak_heap_collect(heap, true);
  hak_heap_stats_t s = ht_stats(heap);
  /* Large blocks have no slab and no owner: their frees never go through a remote queue. */
  uint64_t remote_small = 0;
  for (int i = 0; i < N / 2; i++) remote_small += i % 1000 != 0;
  cr_assert_eq(s.remote_free_count, remote_small, "remote frees %" PRIu64 ", want %" PRIu64,
               s.remote_free_count, remote_small);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.live_bytes, 0);
  cr_assert_eq(s.large_count, 0);
  cr_assert_eq(s.alloc_count, s.free_count);
}
