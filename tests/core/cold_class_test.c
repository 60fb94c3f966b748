/*
** Cold classes: the first slab of a size class in a thread's cache holds one page (its blocks'
** bytes rounded up to pages); when it runs out it grows to two pages, then to the whole 64 KiB
** slab, and the class is then warm: the cache's next slabs of it start whole. held_bytes (and
** the limit) count exactly that. Reset makes every class cold again.
*/
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "test_util.h"

TestSuite(cold_class, .timeout = 30);

enum { PAGE = 4096, SLAB = 65536 };

static size_t held(hak_heap_t *h) { return ht_stats(h).held_bytes; }

/* 64-byte blocks: 64 fit a page, 1024 the slab: 1, 2 pages, the slab, then a whole second one. */
Test(cold_class, a_class_widens_from_a_page_to_the_slab) {
  hak_heap_t *h = hak_heap_create(NULL);
  static void *p[2048];
  size_t want[2049];
  for (size_t i = 1; i <= 2048; i++)
    want[i] = i <= 64 ? PAGE : i <= 128 ? 2 * PAGE : i <= 1024 ? SLAB : 2 * SLAB;
  for (size_t i = 0; i < 2048; i++) {
    p[i] = hak_heap_malloc(h, 64);
    cr_assert_not_null(p[i]);
    cr_assert_eq(held(h), want[i + 1], "after %zu blocks of 64 B: held %zu, want %zu", i + 1,
                 held(h), want[i + 1]);
  }
  for (size_t i = 0; i < 2048; i++) hak_free(p[i]);
  hak_heap_destroy(h);
}

/* One block in each of several classes: a page each, whatever the class's block size (a
** block above a page holds its own pages). */
Test(cold_class, one_block_per_class_holds_its_pages) {
  static const size_t sizes[] = {16, 48, 100, 512, 1024, 3000, 4096, 6000, 20000, 32768};
  static const size_t pages[] = {1, 1, 1, 1, 1, 1, 1, 2, 5, 8};
  hak_heap_t *h = hak_heap_create(NULL);
  size_t total = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *q = hak_heap_malloc(h, sizes[i]);
    cr_assert_not_null(q);
    size_t us = hak_usable_size(q);
    size_t expect = (us + PAGE - 1) / PAGE; /* one block: its pages */
    cr_assert_eq(expect, pages[i], "a %zu-byte block (usable %zu) covers %zu pages", sizes[i],
                 us, expect);
    total += pages[i] * PAGE;
    cr_assert_eq(held(h), total, "after a %zu-byte block: held %zu, want %zu", sizes[i],
                 held(h), total);
  }
  hak_heap_destroy(h);
}

/* A heap limit of three pages: a cold class fits where a whole slab would not; it widens to two
** pages, the next step (the whole slab) is refused at the limit, and the class gets another
** one-page slab (three pages); then nothing fits, not even another class; freeing makes room
** again. */
Test(cold_class, widening_respects_the_limit) {
  hak_heap_t *h = hak_heap_create(&(hak_heap_config_t){.limit_bytes = 3 * PAGE});
  void *p[300];
  size_t n = 0;
  while (n < 300 && (p[n] = hak_heap_malloc(h, 64)) != NULL) n++;
  cr_expect_eq(n, 192, "three one-page slabs of 64-byte blocks: %zu blocks", n);
  cr_expect_eq(errno, ENOMEM);
  cr_expect_eq(held(h), 3 * PAGE);
  cr_expect_null(hak_heap_malloc(h, 128), "no page left for another class");
  for (size_t i = 0; i < n; i++) hak_free(p[i]);
  /* Empty, the class keeps its current slab and one empty spare (tcache.c, retire). */
  cr_expect_eq(held(h), 3 * PAGE, "empty: the current slab and a spare: held %zu", held(h));
  /* Another class at the limit: the cache gives its empty slabs back, then fits a page. */
  void *q = hak_heap_malloc(h, 128);
  cr_expect_not_null(q, "another cold class fits a page again");
  cr_expect_eq(held(h), PAGE, "held %zu", held(h));
  hak_free(q);
  hak_heap_destroy(h);
}

/* A warm class's next slab is whole; after a reset the class is cold again. */
Test(cold_class, warm_until_reset) {
  hak_heap_t *h = hak_heap_create(NULL);
  static void *p[1100];
  for (size_t i = 0; i < 1025; i++) cr_assert_not_null(p[i] = hak_heap_malloc(h, 64));
  cr_expect_eq(held(h), 2 * SLAB, "1025 blocks: the widened slab and a whole second one");
  hak_heap_reset(h);
  cr_expect_eq(held(h), 0);
  cr_assert_not_null(hak_heap_malloc(h, 64));
  cr_expect_eq(held(h), PAGE, "after reset the class is cold: a page");
  hak_heap_destroy(h);
}

/* Slabs that empty: a small class keeps up to four empty slabs besides its current one (spares,
** at the tail of its list: reused whole by the next refills), a fifth empty one goes back to the
** heap at its last free; hak_heap_collect gives the spares back too. 64-byte blocks of a warm
** class: 1024 to a slab. */
Test(cold_class, four_spare_slabs_per_class) {
  hak_heap_t *h = hak_heap_create(NULL);
  static void *p[7 * 1024];
  for (size_t i = 0; i < 7 * 1024; i++) cr_assert_not_null(p[i] = hak_heap_malloc(h, 64));
  cr_assert_eq(held(h), 7 * SLAB, "seven whole slabs (the first widened)");
  /* Empty the first six (parked full: not the current slab, the seventh). */
  for (size_t i = 0; i < 6 * 1024; i++) hak_free(p[i]);
  cr_expect_eq(held(h), 5 * SLAB, "the current slab and four spares: held %zu", held(h));
  /* The spares are reused whole: the next 4096 blocks need no new slab. */
  for (size_t i = 0; i < 4 * 1024; i++) cr_assert_not_null(p[i] = hak_heap_malloc(h, 64));
  cr_expect_eq(held(h), 5 * SLAB, "held %zu", held(h));
  for (size_t i = 0; i < 4 * 1024; i++) hak_free(p[i]);
  hak_heap_collect(h, true);
  cr_expect_eq(held(h), SLAB, "collect gives the empty slabs back; the full one stays: held %zu",
               held(h));
  for (size_t i = 6 * 1024; i < 7 * 1024; i++) hak_free(p[i]);
  hak_heap_destroy(h);
}
