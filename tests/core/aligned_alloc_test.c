/*
** aligned_alloc: every power-of-two alignment from 1 byte to 64 MiB, with sizes below, at and
** above the alignment, gives an aligned, fully writable block of the heap; an alignment that is
** not a power of two gives NULL with EINVAL; an alignment or size that cannot be served gives
** NULL with ENOMEM.
*/
#include <criterion/criterion.h>
#include <errno.h>
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

TestSuite(aligned_alloc, .init = setup, .fini = teardown, .timeout = 30);

static void check_aligned(size_t align, size_t size, int live) {
  void *p[4];
  for (int k = 0; k < live; k++) {
    errno = 0;
    p[k] = hak_heap_aligned_alloc(heap, align, size);
    cr_assert_not_null(p[k], "aligned_alloc(%zu, %zu) failed, errno %d", align, size, errno);
    cr_assert_eq((uintptr_t)p[k] % align, 0, "aligned_alloc(%zu, %zu) = %p is misaligned", align,
                 size, p[k]);
    cr_assert_eq((uintptr_t)p[k] % 16, 0, "block %p not 16-byte aligned", p[k]);
    cr_assert_geq(hak_usable_size(p[k]), size);
    cr_assert_eq(hak_heap_of(p[k]), heap);
    ht_fill(p[k], hak_usable_size(p[k]), (uint8_t)(k + 1));
  }
  for (int k = 0; k < live; k++)
    cr_assert(ht_check(p[k], hak_usable_size(p[k]), (uint8_t)(k + 1)),
              "aligned_alloc(%zu, %zu) blocks overlap", align, size);
  for (int k = 0; k < live; k++) hak_free(p[k]);
}

Test(aligned_alloc, every_power_of_two_up_to_1_mib_with_several_sizes) {
  for (size_t align = 1; align <= HT_MIB; align <<= 1) {
    const size_t sizes[] = {1, 16, 24, 100, align / 2 + 1, align, align + 1, 3 * align};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
      check_aligned(align, sizes[i], 3);
  }
  hak_heap_collect(heap, true);
  cr_assert_eq(ht_stats(heap).live_blocks, 0);
}

Test(aligned_alloc, alignments_beyond_1_mib_up_to_64_mib) {
  for (size_t align = 2 * HT_MIB; align <= 64 * HT_MIB; align <<= 1) {
    check_aligned(align, 1, 2);
    check_aligned(align, 100000, 2);
    if (align <= 8 * HT_MIB) check_aligned(align, align + 1, 2);
  }
  hak_heap_collect(heap, true);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.large_count, 0);
}

Test(aligned_alloc, aligned_blocks_survive_realloc_and_free_sized) {
  void *p = hak_heap_aligned_alloc(heap, 4096, 5000);
  cr_assert_not_null(p);
  ht_fill_seq(p, 5000, 4);
  void *q = hak_heap_realloc(heap, p, 70000);
  cr_assert_not_null(q);
  cr_assert(ht_check_seq(q, 5000, 4));
  hak_free(q);
  void *r = hak_heap_aligned_alloc(heap, 256, 300);
  cr_assert_not_null(r);
  hak_free_sized(r, 300);
  cr_assert_eq(ht_stats(heap).live_blocks, 0);
}

Test(aligned_alloc, non_power_of_two_alignment_gives_null_and_einval) {
  static const size_t bad[] = {3,   5,    6,    7,        12,           24,         48,
                               100, 1000, 4097, 3 << 20,  (1 << 20) + 1, SIZE_MAX, SIZE_MAX - 1,
                               ((size_t)1 << 40) + 16};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    errno = 0;
    void *p = hak_heap_aligned_alloc(heap, bad[i], 64);
    cr_assert_null(p, "aligned_alloc(%zu, 64) returned %p", bad[i], p);
    cr_assert_eq(errno, EINVAL, "aligned_alloc(%#zx, 64): errno %d, want EINVAL", bad[i], errno);
  }
  const char *fail = ht_heap_usable(heap);
  cr_assert_null(fail, "%s", fail);
}

Test(aligned_alloc, zero_alignment_is_not_a_power_of_two) {
  errno = 0;
  void *p = hak_heap_aligned_alloc(heap, 0, 64);
  cr_assert_null(p, "aligned_alloc(0, 64) returned %p", p);
  cr_assert_eq(errno, EINVAL);
}

Test(aligned_alloc, unservable_size_or_alignment_gives_null_and_enomem) {
  static const size_t cases[][2] = {
      {16, SIZE_MAX},
      {4096, SIZE_MAX - 4096},
      {HT_MIB, (size_t)1 << 62},
      {(size_t)1 << 62, 16},
      {(size_t)1 << 63, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    errno = 0;
    void *p = hak_heap_aligned_alloc(heap, cases[i][0], cases[i][1]);
    cr_assert_null(p, "aligned_alloc(%#zx, %#zx) returned %p", cases[i][0], cases[i][1], p);
    cr_assert_eq(errno, ENOMEM, "aligned_alloc(%#zx, %#zx): errno %d, want ENOMEM", cases[i][0],
                 cases[i][1], errno);
  }
  const char *fail = ht_heap_usable(heap);
  cr_assert_null(fail, "%s", fail);
}
