/*
** The process default heap: hak_default_heap is one heap for every thread, and hak_malloc,
** hak_calloc, hak_realloc and hak_aligned_alloc behave as their heap counterparts on it.
*/
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#include "test_util.h"

TestSuite(default_heap, .timeout = 30);

static void *get_default(void *arg) {
  (void)arg;
  return hak_default_heap();
}

Test(default_heap, is_one_heap_for_every_thread) {
  hak_heap_t *h = hak_default_heap();
  cr_assert_not_null(h);
  cr_assert_eq(hak_default_heap(), h);
  pthread_t t;
  void *other;
  cr_assert_eq(pthread_create(&t, NULL, get_default, NULL), 0);
  pthread_join(t, &other);
  cr_assert_eq(other, h);
  cr_assert_not_null(hak_heap_name(h));
}

Test(default_heap, hak_malloc_serves_from_the_default_heap) {
  hak_heap_stats_t before = ht_stats(hak_default_heap());
  for (size_t size = 0; size <= 33000; size += 101) {
    void *p = hak_malloc(size);
    cr_assert_not_null(p);
    cr_assert_eq((uintptr_t)p % 16, 0);
    cr_assert_geq(hak_usable_size(p), size);
    cr_assert_eq(hak_heap_of(p), hak_default_heap());
    ht_fill(p, hak_usable_size(p), 0x42);
    hak_free(p);
  }
  void *big = hak_malloc(12 * HT_MIB);
  cr_assert_not_null(big);
  ht_fill(big, 12 * HT_MIB, 1);
  cr_assert_eq(hak_heap_of(big), hak_default_heap());
  hak_free(big);
  hak_heap_stats_t after = ht_stats(hak_default_heap());
  cr_assert_eq(after.alloc_count - before.alloc_count, 328);
  cr_assert_eq(after.live_blocks, before.live_blocks);
  errno = 0;
  cr_assert_null(hak_malloc(SIZE_MAX - 32));
  cr_assert_eq(errno, ENOMEM);
}

Test(default_heap, hak_calloc_zeroes_and_detects_overflow) {
  unsigned char *p = hak_malloc(4000);
  cr_assert_not_null(p);
  ht_fill(p, 4000, 0xFF);
  hak_free(p);
  p = hak_calloc(100, 40);
  cr_assert_not_null(p);
  cr_assert(ht_all_zero(p, 4000));
  hak_free(p);
  p = hak_calloc(3, HT_MIB);
  cr_assert_not_null(p);
  cr_assert(ht_all_zero(p, 3 * HT_MIB));
  hak_free(p);
  errno = 0;
  cr_assert_null(hak_calloc(SIZE_MAX / 8, 16));
  cr_assert_eq(errno, ENOMEM);
}

Test(default_heap, hak_realloc_grows_shrinks_and_frees) {
  unsigned char *p = hak_realloc(NULL, 10);
  cr_assert_not_null(p);
  cr_assert_eq(hak_heap_of(p), hak_default_heap());
  ht_fill_seq(p, 10, 1);
  p = hak_realloc(p, 50000);
  cr_assert_not_null(p);
  cr_assert(ht_check_seq(p, 10, 1));
  ht_fill_seq(p, 50000, 2);
  p = hak_realloc(p, 3 * HT_MIB);
  cr_assert_not_null(p);
  cr_assert(ht_check_seq(p, 50000, 2));
  p = hak_realloc(p, 100);
  cr_assert_not_null(p);
  cr_assert(ht_check_seq(p, 100, 2));
  errno = 0;
  cr_assert_null(hak_realloc(p, SIZE_MAX));
  cr_assert_eq(errno, ENOMEM);
  cr_assert(ht_check_seq(p, 100, 2));
  cr_assert_null(hak_realloc(p, 0));
  cr_assert_null(hak_heap_of(p));
}

Test(default_heap, hak_realloc_moves_blocks_of_other_heaps_into_the_default_heap) {
  hak_heap_t *h = hak_heap_create(NULL);
  cr_assert_not_null(h);
  unsigned char *p = hak_heap_malloc(h, 32);
  cr_assert_not_null(p);
  ht_fill_seq(p, 32, 8);
  p = hak_realloc(p, 10000);
  cr_assert_not_null(p);
  cr_assert_eq(hak_heap_of(p), hak_default_heap());
  cr_assert(ht_check_seq(p, 32, 8));
  hak_free(p);
  cr_assert_eq(ht_stats(h).live_blocks, 0);
  hak_heap_destroy(h);
}

Test(default_heap, hak_aligned_alloc_aligns_and_rejects_bad_alignment) {
  for (size_t align = 1; align <= 4 * HT_MIB; align <<= 1) {
    void *p = hak_aligned_alloc(align, align + 7);
    cr_assert_not_null(p, "hak_aligned_alloc(%zu) failed", align);
    cr_assert_eq((uintptr_t)p % align, 0);
    cr_assert_eq(hak_heap_of(p), hak_default_heap());
    ht_fill(p, align + 7, 3);
    hak_free(p);
  }
  errno = 0;
  cr_assert_null(hak_aligned_alloc(48, 100));
  cr_assert_eq(errno, EINVAL);
}

static void *alloc_on_default(void *arg) {
  void **out = arg;
  for (int i = 0; i < 1000; i++) out[i] = hak_malloc(24 + (size_t)i);
  return NULL;
}

Test(default_heap, blocks_from_another_thread_are_freed_here) {
  static void *p[1000];
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, alloc_on_default, p), 0);
  pthread_join(t, NULL);
  for (int i = 0; i < 1000; i++) {
    cr_assert_not_null(p[i]);
    cr_assert_eq(hak_heap_of(p[i]), hak_default_heap());
    hak_free(p[i]);
  }
  hak_heap_collect(hak_default_heap(), true);
  cr_assert_eq(ht_stats(hak_default_heap()).live_blocks, 0);
}
