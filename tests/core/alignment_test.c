/*
** Size classes: every request from 0 to 33000 bytes gives a 16-byte aligned block whose usable
** size covers the request and can be written in full without touching other blocks; malloc(0)
** gives unique freeable blocks; sizes that cannot be served give NULL with ENOMEM.
*/
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "test_util.h"

static hak_heap_t *heap;

static void setup(void) {
  heap = hak_heap_create(NULL);
  cr_assert_not_null(heap, "hak_heap_create(NULL) failed");
}

static void teardown(void) {
  hak_heap_destroy(heap);
}

TestSuite(alignment, .init = setup, .fini = teardown, .timeout = 30);

Test(alignment, every_size_up_to_33000_is_16_byte_aligned_and_writable_in_full) {
  for (size_t size = 0; size <= 33000; size++) {
    void *p[2];
    size_t u[2];
    for (int k = 0; k < 2; k++) {
      p[k] = hak_heap_malloc(heap, size);
      cr_assert_not_null(p[k], "malloc(%zu) returned NULL", size);
      cr_assert_eq((uintptr_t)p[k] % 16, 0, "malloc(%zu) = %p is not 16-byte aligned", size, p[k]);
      u[k] = hak_usable_size(p[k]);
      cr_assert_geq(u[k], size, "usable_size %zu < request %zu", u[k], size);
      ht_fill(p[k], u[k], (uint8_t)(0x40 + k));
    }
    cr_assert_neq(p[0], p[1], "two live blocks of size %zu share an address", size);
    for (int k = 0; k < 2; k++)
      cr_assert(ht_check(p[k], u[k], (uint8_t)(0x40 + k)),
                "block %p of size %zu (usable %zu) was overwritten", p[k], size, u[k]);
    hak_free(p[1]);
    hak_free(p[0]);
  }
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
  return (x > y) - (x < y);
}

Test(alignment, live_blocks_of_all_classes_never_overlap) {
  enum { PER_SIZE = 24, MAX_BLOCKS = 8192 };
  static void *blocks[MAX_BLOCKS];
  int n = 0;
  for (size_t size = 0; size <= 33000; size += (size < 1024 ? 16 : size / 8 + 1)) {
    for (int k = 0; k < PER_SIZE; k++) {
      cr_assert_lt(n, MAX_BLOCKS);
      void *q = hak_heap_malloc(heap, size);
      cr_assert_not_null(q, "malloc(%zu) returned NULL", size);
      cr_assert_eq((uintptr_t)q % 16, 0, "malloc(%zu) = %p is not 16-byte aligned", size, q);
      blocks[n++] = q;
    }
  }
  qsort(blocks, (size_t)n, sizeof blocks[0], cmp_ptr);
  for (int i = 0; i + 1 < n; i++) {
    uintptr_t end = (uintptr_t)blocks[i] + hak_usable_size(blocks[i]);
    cr_assert_leq(end, (uintptr_t)blocks[i + 1],
                  "block %p (usable %zu) overlaps the next block %p", blocks[i],
                  hak_usable_size(blocks[i]), blocks[i + 1]);
  }
  for (int i = 0; i < n; i++) hak_free(blocks[i]);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.live_blocks, 0, "live_blocks %zu after freeing everything", s.live_blocks);
}

Test(alignment, malloc_zero_gives_unique_freeable_blocks) {
  enum { N = 1000 };
  static void *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = hak_heap_malloc(heap, 0);
    cr_assert_not_null(p[i], "malloc(0) #%d returned NULL", i);
    cr_assert_eq((uintptr_t)p[i] % 16, 0, "malloc(0) = %p is not 16-byte aligned", p[i]);
    cr_assert_eq(hak_heap_of(p[i]), heap);
  }
  qsort(p, N, sizeof p[0], cmp_ptr);
  for (int i = 0; i + 1 < N; i++)
    cr_assert_neq(p[i], p[i + 1], "malloc(0) returned %p twice", p[i]);
  for (int i = 0; i < N; i++) hak_free(p[i]);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.free_count, N);
}

Test(alignment, sizes_near_size_max_give_null_and_enomem) {
  static const size_t huge[] = {
      SIZE_MAX,          SIZE_MAX - 1,      SIZE_MAX - 15,          SIZE_MAX - 16,
      SIZE_MAX - 4096,   SIZE_MAX - HT_MIB, SIZE_MAX / 2 + 1,       (size_t)PTRDIFF_MAX,
      (size_t)1 << 62,   (size_t)1 << 56,
  };
  for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
    errno = 0;
    void *p = hak_heap_malloc(heap, huge[i]);
    cr_assert_null(p, "malloc(%#zx) returned %p", huge[i], p);
    cr_assert_eq(errno, ENOMEM, "malloc(%#zx): errno %d, want ENOMEM", huge[i], errno);
  }
  const char *fail = ht_heap_usable(heap);
  cr_assert_null(fail, "heap unusable after refused huge sizes: %s", fail);
}

Test(alignment, usable_size_of_null_is_zero) {
  cr_assert_eq(hak_usable_size(NULL), 0);
}
