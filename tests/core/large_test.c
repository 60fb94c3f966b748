/*
** Large blocks (above the largest slab class, up to tens of MiB): aligned, usable size covers the
** request, contents are kept, many live at once do not overlap, stats count them in large_count
** and held_bytes, and freeing them gives the memory back.
*/
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#include "test_util.h"

static hak_heap_t *heap;

static void setup(void) {
  heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
}

static void teardown(void) {
  hak_heap_destroy(heap);
}

TestSuite(large, .init = setup, .fini = teardown, .timeout = 30);

static const size_t sizes[] = {HT_MEDIUM_MAX + 1, (1 << 20) + 65536, 1500000,   2 << 20,
                               (2 << 20) + 1,     3000000,           5 << 20,   8 << 20,
                               (16 << 20) + 123,  48 << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])

Test(large, blocks_are_aligned_writable_and_keep_contents) {
  for (size_t i = 0; i < NSIZES; i++) {
    unsigned char *p = hak_heap_malloc(heap, sizes[i]);
    cr_assert_not_null(p, "malloc(%zu) failed", sizes[i]);
    cr_assert_eq((uintptr_t)p % 16, 0);
    size_t u = hak_usable_size(p);
    cr_assert_geq(u, sizes[i], "usable %zu < request %zu", u, sizes[i]);
    cr_assert_eq(hak_heap_of(p), heap);
    ht_fill(p, u, (uint8_t)(i + 1));
    cr_assert(ht_check(p, u, (uint8_t)(i + 1)));
    hak_free(p);
  }
}

Test(large, stats_count_live_large_blocks_and_their_bytes) {
  void *p[NSIZES];
  size_t usable = 0;
  hak_heap_stats_t s0 = ht_stats(heap);
  for (size_t i = 0; i < NSIZES; i++) {
    p[i] = hak_heap_malloc(heap, sizes[i]);
    cr_assert_not_null(p[i]);
    usable += hak_usable_size(p[i]);
    ht_fill(p[i], sizes[i], (uint8_t)(i + 1));
  }
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.large_count, s0.large_count + NSIZES, "large_count %zu, want %zu", s.large_count,
               s0.large_count + NSIZES);
  cr_assert_eq(s.live_blocks, NSIZES);
  cr_assert_eq(s.live_bytes, usable, "live_bytes %zu, want the sum of usable sizes %zu",
               s.live_bytes, usable);
  cr_assert_geq(s.held_bytes, usable, "held_bytes %zu below the live large bytes %zu",
                s.held_bytes, usable);
  cr_assert_geq(s.peak_held_bytes, s.held_bytes);
  for (size_t i = 0; i < NSIZES; i++) {
    cr_assert(ht_check(p[i], sizes[i], (uint8_t)(i + 1)), "large block %zu overwritten", i);
    hak_free(p[i]);
  }
  hak_heap_collect(heap, true);
  s = ht_stats(heap);
  cr_assert_eq(s.large_count, 0);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.live_bytes, 0);
  cr_assert_lt(s.held_bytes, usable / 2, "held_bytes %zu still high after freeing %zu bytes",
               s.held_bytes, usable);
  cr_assert_geq(s.peak_held_bytes, usable);
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
  return (x > y) - (x < y);
}

Test(large, many_live_large_blocks_do_not_overlap) {
  enum { N = 200 };
  static void *p[N];
  for (int i = 0; i < N; i++) {
    size_t size = HT_MEDIUM_MAX + 1 + (size_t)i * 40999;
    p[i] = hak_heap_malloc(heap, size);
    cr_assert_not_null(p[i]);
    ht_fill(p[i], size, (uint8_t)i);
  }
  for (int i = 0; i < N; i++)
    cr_assert(ht_check(p[i], HT_MEDIUM_MAX + 1 + (size_t)i * 40999, (uint8_t)i),
              "block %d overwritten", i);
  qsort(p, N, sizeof p[0], cmp_ptr);
  for (int i = 0; i + 1 < N; i++)
    cr_assert_leq((uintptr_t)p[i] + hak_usable_size(p[i]), (uintptr_t)p[i + 1]);
  cr_assert_eq(ht_stats(heap).large_count, N);
  for (int i = 0; i < N; i++) hak_free(p[i]);
  cr_assert_eq(ht_stats(heap).large_count, 0);
}

Test(large, calloc_and_realloc_of_large_blocks) {
  unsigned char *p = hak_heap_calloc(heap, 5, HT_MIB);
  cr_assert_not_null(p);
  cr_assert(ht_all_zero(p, 5 * HT_MIB));
  ht_fill_seq(p, 5 * HT_MIB, 11);
  p = hak_heap_realloc(heap, p, 20 * HT_MIB);
  cr_assert_not_null(p);
  cr_assert(ht_check_seq(p, 5 * HT_MIB, 11));
  p = hak_heap_realloc(heap, p, 2 * HT_MIB);
  cr_assert_not_null(p);
  cr_assert(ht_check_seq(p, 2 * HT_MIB, 11));
  p = hak_heap_realloc(heap, p, 1000);
  cr_assert_not_null(p);
  cr_assert(ht_check_seq(p, 1000, 11));
  hak_free(p);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.large_count, 0);
}

Test(large, repeated_large_alloc_free_does_not_grow_held_bytes) {
  for (int round = 0; round < 200; round++) {
    void *p = hak_heap_malloc(heap, 4 * HT_MIB + (size_t)round * 64);
    cr_assert_not_null(p);
    ((volatile unsigned char *)p)[0] = 1;
    ((volatile unsigned char *)p)[4 * HT_MIB - 1] = 1;
    hak_free(p);
  }
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_leq(s.held_bytes, 16 * HT_MIB, "held_bytes %zu after 200 alloc/free rounds",
                s.held_bytes);
  cr_assert_leq(s.peak_held_bytes, 16 * HT_MIB, "peak_held_bytes %zu", s.peak_held_bytes);
}
