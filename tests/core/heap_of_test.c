/*
** hak_heap_of and hak_usable_size on pointers hakmem never handed out (stack, glibc malloc,
** static data, code, NULL, wild and unmapped addresses, freed blocks) give NULL / 0 without
** crashing; on live blocks of several heaps they name the owning heap.
*/
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "test_util.h"

TestSuite(heap_of, .timeout = 30);

static int static_data[64];
static const char static_text[] = "read-only data";

static void expect_foreign(const void *p, const char *what) {
  cr_assert_null(hak_heap_of(p), "hak_heap_of(%s %p) is not NULL", what, p);
  cr_assert_eq(hak_usable_size(p), 0, "hak_usable_size(%s %p) is not 0", what, p);
}

static void *unmapped_address(void) {
  long page = sysconf(_SC_PAGESIZE);
  void *p = mmap(NULL, (size_t)page * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert_neq(p, MAP_FAILED);
  munmap(p, (size_t)page * 4);
  return (char *)p + page;
}

Test(heap_of, foreign_pointers_have_no_heap) {
  int on_stack[8];
  void *glibc_small = malloc(64);
  void *glibc_large = malloc(4 * HT_MIB);
  cr_assert_not_null(glibc_small);
  cr_assert_not_null(glibc_large);
  expect_foreign(NULL, "NULL");
  expect_foreign(on_stack, "stack");
  expect_foreign(glibc_small, "glibc malloc");
  expect_foreign(glibc_large, "glibc mmapped malloc");
  expect_foreign(static_data, "static data");
  expect_foreign(static_text, "string constant");
  expect_foreign((const void *)(uintptr_t)&expect_foreign, "code");
  expect_foreign((void *)0x1234560, "wild");
  expect_foreign((void *)16, "near-NULL");
  expect_foreign(unmapped_address(), "unmapped");
  expect_foreign((void *)(uintptr_t)0x7ff000000000ull, "high user");
  expect_foreign((void *)(uintptr_t)0x800000000000ull, "non-canonical");
  expect_foreign((void *)(uintptr_t)0xffff800000001000ull, "kernel");
  expect_foreign((void *)UINTPTR_MAX, "all ones");
  free(glibc_small);
  free(glibc_large);
}

Test(heap_of, foreign_pointers_have_no_heap_while_heaps_exist) {
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  void *live = hak_heap_malloc(heap, 100);
  void *big = hak_heap_malloc(heap, 2 * HT_MIB);
  int on_stack[8];
  void *glibc = malloc(100);
  expect_foreign(on_stack, "stack");
  expect_foreign(glibc, "glibc malloc");
  expect_foreign(static_data, "static data");
  expect_foreign((void *)0x1234560, "wild");
  expect_foreign(unmapped_address(), "unmapped");
  free(glibc);
  hak_free(live);
  hak_free(big);
  hak_heap_destroy(heap);
}

Test(heap_of, live_blocks_name_their_heap) {
  enum { HEAPS = 5, PER = 40 };
  hak_heap_t *heaps[HEAPS];
  void *p[HEAPS][PER];
  for (int h = 0; h < HEAPS; h++) {
    heaps[h] = hak_heap_create(NULL);
    cr_assert_not_null(heaps[h]);
  }
  for (int i = 0; i < PER; i++) {
    for (int h = 0; h < HEAPS; h++) {
      size_t size = (i % 10 == 9) ? 100000 + (size_t)i : (size_t)(i * 97) % 5000;
      switch (i % 4) {
      case 0: p[h][i] = hak_heap_malloc(heaps[h], size); break;
      case 1: p[h][i] = hak_heap_calloc(heaps[h], 1, size); break;
      case 2: p[h][i] = hak_heap_aligned_alloc(heaps[h], 256, size); break;
      default: p[h][i] = hak_heap_realloc(heaps[h], NULL, size); break;
      }
      cr_assert_not_null(p[h][i]);
    }
  }
  for (int h = 0; h < HEAPS; h++)
    for (int i = 0; i < PER; i++)
      cr_assert_eq(hak_heap_of(p[h][i]), heaps[h], "block %d of heap %d names %p, not %p", i, h,
                   (void *)hak_heap_of(p[h][i]), (void *)heaps[h]);
  for (int h = 0; h < HEAPS; h++) {
    for (int i = 0; i < PER; i++) hak_free(p[h][i]);
    hak_heap_destroy(heaps[h]);
  }
}

Test(heap_of, default_heap_blocks_name_the_default_heap) {
  void *p = hak_malloc(10);
  void *q = hak_malloc(10 * HT_MIB);
  cr_assert_not_null(p);
  cr_assert_not_null(q);
  cr_assert_eq(hak_heap_of(p), hak_default_heap());
  cr_assert_eq(hak_heap_of(q), hak_default_heap());
  hak_free(p);
  hak_free(q);
}

Test(heap_of, freed_blocks_have_no_heap) {
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  void *keep = hak_heap_malloc(heap, 48);
  void *small = hak_heap_malloc(heap, 48);
  void *large = hak_heap_malloc(heap, 3 * HT_MIB);
  cr_assert_not_null(small);
  cr_assert_not_null(large);
  hak_free(small);
  hak_free(large);
  expect_foreign(small, "freed small");
  expect_foreign(large, "freed large");
  cr_assert_eq(hak_heap_of(keep), heap, "a neighbour of the freed block lost its heap");
  hak_free(keep);
  hak_heap_destroy(heap);
}

Test(heap_of, blocks_of_a_destroyed_heap_have_no_heap) {
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  void *small = hak_heap_malloc(heap, 64);
  void *large = hak_heap_malloc(heap, 3 * HT_MIB);
  cr_assert_not_null(small);
  cr_assert_not_null(large);
  hak_heap_destroy(heap);
  expect_foreign(small, "small block of a destroyed heap");
  expect_foreign(large, "large block of a destroyed heap");
}

Test(heap_of, heap_of_many_heaps_used_by_one_thread) {
  enum { HEAPS = 300 };
  static hak_heap_t *heaps[HEAPS];
  static void *p[HEAPS];
  for (int h = 0; h < HEAPS; h++) {
    heaps[h] = hak_heap_create(NULL);
    cr_assert_not_null(heaps[h], "hak_heap_create #%d failed", h);
    p[h] = hak_heap_malloc(heaps[h], 32 + (size_t)h);
    cr_assert_not_null(p[h]);
  }
  for (int h = 0; h < HEAPS; h++) cr_assert_eq(hak_heap_of(p[h]), heaps[h], "heap %d", h);
  for (int h = 0; h < HEAPS; h++) {
    hak_free(p[h]);
    hak_heap_stats_t s = ht_stats(heaps[h]);
    cr_assert_eq(s.live_blocks, 0, "heap %d: %zu live", h, s.live_blocks);
    cr_assert_eq(s.alloc_count, 1);
    hak_heap_destroy(heaps[h]);
  }
}
