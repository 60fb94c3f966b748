/*
** realloc: NULL acts as malloc; growth and shrink keep the contents; a change that fits the
** block's usable size stays in place; a block of heap A reallocated on heap B moves into B when
** it has to move; size 0 frees and returns NULL; failure leaves the block untouched.
*/
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include "test_util.h"

static hak_heap_t *heap_a, *heap_b;

static void setup(void) {
  hak_heap_config_t a = {.name = "A"}, b = {.name = "B"};
  heap_a = hak_heap_create(&a);
  heap_b = hak_heap_create(&b);
  cr_assert_not_null(heap_a);
  cr_assert_not_null(heap_b);
}

static void teardown(void) {
  hak_heap_destroy(heap_a);
  hak_heap_destroy(heap_b);
}

TestSuite(realloc, .init = setup, .fini = teardown, .timeout = 30);

static const size_t steps[] = {0,     1,     7,     16,    24,     64,      100,      256,
                               1000,  4096,  5000,  16000, 32768,  32769,   50000,    300000,
                               1 << 20, 3 << 20, 9 << 20};
#define NSTEPS (sizeof steps / sizeof steps[0])


Test(realloc, null_pointer_acts_as_malloc) {
  void *p = hak_heap_realloc(heap_a, NULL, 100);
  cr_assert_not_null(p);
  cr_assert_geq(hak_usable_size(p), 100);
  cr_assert_eq(hak_heap_of(p), heap_a);
  ht_fill(p, 100, 1);
  void *z = hak_heap_realloc(heap_b, NULL, 0);
  cr_assert_not_null(z, "realloc(NULL, 0) must act as malloc(0)");
  cr_assert_eq(hak_heap_of(z), heap_b);
  hak_free(p);
  hak_free(z);
}

Test(realloc, growth_keeps_contents) {
  for (size_t i = 0; i + 1 < NSTEPS; i++) {
    for (size_t j = i + 1; j < NSTEPS; j++) {
      unsigned char *p = hak_heap_malloc(heap_a, steps[i]);
      cr_assert_not_null(p);
      ht_fill_seq(p, steps[i], (uint32_t)(i * 31 + j));
      unsigned char *q = hak_heap_realloc(heap_a, p, steps[j]);
      cr_assert_not_null(q, "realloc %zu -> %zu failed", steps[i], steps[j]);
      cr_assert_geq(hak_usable_size(q), steps[j]);
      cr_assert(ht_check_seq(q, steps[i], (uint32_t)(i * 31 + j)),
                "realloc %zu -> %zu lost contents", steps[i], steps[j]);
      ht_fill(q, hak_usable_size(q), 0xEE);
      hak_free(q);
    }
  }
  cr_assert_eq(ht_stats(heap_a).live_blocks, 0);
}

Test(realloc, shrink_keeps_prefix) {
  for (size_t i = 1; i < NSTEPS; i++) {
    for (size_t j = 0; j < i; j++) {
      unsigned char *p = hak_heap_malloc(heap_a, steps[i]);
      cr_assert_not_null(p);
      ht_fill_seq(p, steps[i], (uint32_t)(i * 17 + j));
      unsigned char *q = hak_heap_realloc(heap_a, p, steps[j]);
      if (steps[j] == 0) {
        cr_assert_null(q, "realloc(p, 0) must free and return NULL");
        continue;
      }
      cr_assert_not_null(q, "realloc %zu -> %zu failed", steps[i], steps[j]);
      cr_assert_geq(hak_usable_size(q), steps[j]);
      cr_assert(ht_check_seq(q, steps[j], (uint32_t)(i * 17 + j)),
                "realloc %zu -> %zu lost the prefix", steps[i], steps[j]);
      hak_free(q);
    }
  }
  cr_assert_eq(ht_stats(heap_a).live_blocks, 0);
}

Test(realloc, growth_within_usable_size_stays_in_place) {
  int slack_seen = 0;
  for (size_t size = 1; size <= 33000; size += (size < 512 ? 1 : 97)) {
    unsigned char *p = hak_heap_malloc(heap_a, size);
    cr_assert_not_null(p);
    size_t u = hak_usable_size(p);
    ht_fill_seq(p, size, (uint32_t)size);
    if (u > size) slack_seen++;
    unsigned char *q = hak_heap_realloc(heap_a, p, u);
    cr_assert_eq(q, p, "realloc(%p, usable %zu) of a %zu-byte block moved to %p", (void *)p, u,
                 size, (void *)q);
    cr_assert(ht_check_seq(q, size, (uint32_t)size));
    q = hak_heap_realloc(heap_a, p, size);
    cr_assert_eq(q, p, "realloc to the same size %zu moved the block", size);
    hak_free(q);
  }
  cr_assert_gt(slack_seen, 0, "no size class had usable size above the request");
}

Test(realloc, small_shrink_within_class_stays_in_place) {
  unsigned char *p = hak_heap_malloc(heap_a, 1000);
  cr_assert_not_null(p);
  ht_fill_seq(p, 1000, 3);
  cr_assert_eq(hak_heap_realloc(heap_a, p, 999), p, "shrinking 1000 -> 999 bytes moved the block");
  cr_assert(ht_check_seq(p, 999, 3));
  hak_free(p);
}

Test(realloc, in_place_realloc_does_not_count_an_allocation) {
  void *p = hak_heap_malloc(heap_a, 40);
  cr_assert_not_null(p);
  hak_heap_stats_t before = ht_stats(heap_a);
  cr_assert_eq(hak_heap_realloc(heap_a, p, hak_usable_size(p)), p);
  hak_heap_stats_t after = ht_stats(heap_a);
  cr_assert_eq(after.alloc_count, before.alloc_count);
  cr_assert_eq(after.live_blocks, before.live_blocks);
  hak_free(p);
}

Test(realloc, moving_realloc_counts_one_allocation_and_keeps_live_blocks) {
  void *p = hak_heap_malloc(heap_a, 40);
  cr_assert_not_null(p);
  hak_heap_stats_t before = ht_stats(heap_a);
  void *q = hak_heap_realloc(heap_a, p, 100000);
  cr_assert_not_null(q);
  cr_assert_neq(q, p);
  hak_heap_stats_t after = ht_stats(heap_a);
  cr_assert_eq(after.alloc_count, before.alloc_count + 1);
  cr_assert_eq(after.live_blocks, before.live_blocks);
  hak_free(q);
}

Test(realloc, growth_on_another_heap_moves_the_block_into_that_heap) {
  uint64_t moved = 0;
  for (size_t i = 0; i + 1 < NSTEPS; i++) {
    unsigned char *p = hak_heap_malloc(heap_a, steps[i]);
    cr_assert_not_null(p);
    size_t u = hak_usable_size(p);
    size_t grow = u + u / 2 + 64;
    ht_fill_seq(p, steps[i], (uint32_t)i);
    unsigned char *q = hak_heap_realloc(heap_b, p, grow);
    cr_assert_not_null(q, "realloc on B %zu -> %zu failed", steps[i], grow);
    if (steps[i] <= HT_SMALL_MAX) {
      /* Beyond the usable size of a slab block: it cannot stay, so it must land in B. */
      cr_assert_neq(q, p, "small block grown past its usable size stayed in place");
    }
    if (q == p) {
      /* A large block may grow in place (e.g. mremap); then it is still A's. */
      cr_assert_eq(hak_heap_of(q), heap_a);
    } else {
      moved++;
      cr_assert_eq(hak_heap_of(q), heap_b,
                   "block grown %zu -> %zu on heap B is owned by %p, not B (%p)", steps[i], grow,
                   (void *)hak_heap_of(q), (void *)heap_b);
    }
    cr_assert(ht_check_seq(q, steps[i], (uint32_t)i), "move A -> B lost contents");
    hak_free(q);
  }
  hak_heap_collect(heap_a, true);
  hak_heap_collect(heap_b, true);
  hak_heap_stats_t a = ht_stats(heap_a), b = ht_stats(heap_b);
  cr_assert_eq(a.live_blocks, 0, "heap A keeps %zu live blocks after they moved to B",
               a.live_blocks);
  cr_assert_eq(b.live_blocks, 0);
  cr_assert_eq(a.alloc_count, NSTEPS - 1);
  cr_assert_eq(a.free_count, NSTEPS - 1);
  cr_assert_eq(b.alloc_count, moved);
  cr_assert_eq(b.free_count, moved);
}

Test(realloc, same_size_on_another_heap_keeps_contents) {
  unsigned char *p = hak_heap_malloc(heap_a, 200);
  cr_assert_not_null(p);
  ht_fill_seq(p, 200, 9);
  unsigned char *q = hak_heap_realloc(heap_b, p, 200);
  cr_assert_not_null(q);
  /* Either stays in place (still A's block) or moves into B: never into a third heap. */
  if (q == p)
    cr_assert_eq(hak_heap_of(q), heap_a);
  else
    cr_assert_eq(hak_heap_of(q), heap_b);
  cr_assert(ht_check_seq(q, 200, 9));
  hak_free(q);
}

Test(realloc, size_zero_frees_and_returns_null) {
  void *small = hak_heap_malloc(heap_a, 64);
  void *large = hak_heap_malloc(heap_a, 2 * HT_MIB);
  cr_assert_not_null(small);
  cr_assert_not_null(large);
  cr_assert_null(hak_heap_realloc(heap_a, small, 0));
  cr_assert_null(hak_heap_realloc(heap_a, large, 0));
  hak_heap_stats_t s = ht_stats(heap_a);
  cr_assert_eq(s.live_blocks, 0, "realloc(p, 0) did not free: %zu live", s.live_blocks);
  cr_assert_eq(s.free_count, 2);
  cr_assert_eq(s.large_count, 0);
}

Test(realloc, failure_gives_enomem_and_leaves_block_untouched) {
  static const size_t from[] = {16, 1000, 30000, 200000};
  for (size_t i = 0; i < sizeof from / sizeof from[0]; i++) {
    unsigned char *p = hak_heap_malloc(heap_a, from[i]);
    cr_assert_not_null(p);
    ht_fill_seq(p, from[i], 77);
    errno = 0;
    cr_assert_null(hak_heap_realloc(heap_a, p, SIZE_MAX - 8));
    cr_assert_eq(errno, ENOMEM);
    errno = 0;
    cr_assert_null(hak_heap_realloc(heap_b, p, (size_t)1 << 62));
    cr_assert_eq(errno, ENOMEM);
    cr_assert_eq(hak_heap_of(p), heap_a, "failed realloc changed the block's owner");
    cr_assert_geq(hak_usable_size(p), from[i]);
    cr_assert(ht_check_seq(p, from[i], 77), "failed realloc changed the contents");
    hak_free(p);
  }
  cr_assert_eq(ht_stats(heap_a).live_blocks, 0);
}
