/*
** hak_good_size: the usable size a request of n bytes gets. Up to 1 MiB (small and medium
** classes) it equals hak_usable_size of a fresh block for every size tested; above, it equals the
** usable size of a fresh mapping, and a block on a reused mapping is never smaller.
*/
#include <criterion/criterion.h>
#include <stdint.h>

#include "test_util.h"

TestSuite(good_size, .timeout = 120);

static void expect_exact(hak_heap_t *h, size_t n) {
  size_t g = hak_good_size(n);
  void *p = hak_heap_malloc(h, n);
  cr_assert_not_null(p, "malloc(%zu)", n);
  cr_assert_eq(hak_usable_size(p), g, "n %zu: usable %zu, good %zu", n, hak_usable_size(p), g);
  cr_assert_geq(g, n);
  cr_assert_eq(hak_good_size(g), g, "good size of %zu (%zu) is not its own good size", n, g);
  hak_free(p);
}

Test(good_size, every_size_up_to_64_KiB_gets_exactly_its_good_size) {
  hak_heap_t *h = hak_heap_create(NULL);
  for (size_t n = 0; n <= 64 * HT_KIB + 64; n++) expect_exact(h, n);
  hak_heap_destroy(h);
}

Test(good_size, medium_sizes_get_exactly_their_good_size) {
  hak_heap_t *h = hak_heap_create(NULL);
  for (size_t n = 64 * HT_KIB; n <= HT_MEDIUM_MAX; n += 61) expect_exact(h, n);
  for (size_t k = 1; k <= 16; k++) {
    size_t b = k * 64 * HT_KIB;
    expect_exact(h, b - 1);
    expect_exact(h, b);
    if (b < HT_MEDIUM_MAX) expect_exact(h, b + 1);
    /* 64 KiB steps to 512 KiB, then one class of 1 MiB */
    size_t want = k <= 8 ? b : HT_MEDIUM_MAX;
    cr_expect_eq(hak_good_size(b), want, "k %zu", k);
    cr_expect_eq(hak_good_size(b - 1), want, "k %zu", k);
  }
  cr_expect_eq(hak_good_size(HT_MEDIUM_MAX), HT_MEDIUM_MAX);
  hak_heap_destroy(h);
}

/* Above 1 MiB: a fresh mapping of n rounded up to 64 KiB (the record is out of band). The blocks
** stay live until all are checked, so none can reuse a freed mapping. */
Test(good_size, large_sizes_on_fresh_mappings_get_exactly_their_good_size) {
  enum { MAX = 512 };
  static void *live[MAX];
  int n_live = 0;
  hak_heap_t *h = hak_heap_create(NULL);
  hak_heap_collect(h, true); /* no cached mapping of earlier tests */
  const size_t gran = 64 * HT_KIB;
  for (size_t k = 17; k <= 40; k++) {
    size_t edge = k * gran; /* fills a mapping of k granules exactly */
    size_t sizes[] = {edge - 1, edge, edge + 1};
    for (int i = 0; i < 3; i++) {
      size_t n = sizes[i];
      if (n <= HT_MEDIUM_MAX) continue;
      size_t g = hak_good_size(n);
      cr_assert_eq(g, ((n + gran - 1) / gran) * gran, "n %zu", n);
      live[n_live] = hak_heap_malloc(h, n);
      cr_assert_not_null(live[n_live]);
      cr_assert_eq(hak_usable_size(live[n_live]), g, "n %zu: usable %zu, good %zu", n,
                   hak_usable_size(live[n_live]), g);
      cr_assert_eq(hak_good_size(g), g);
      n_live++;
    }
  }
  cr_expect_eq(hak_good_size(HT_MEDIUM_MAX + 1), 17 * gran);
  for (size_t n = HT_MEDIUM_MAX + 1; n <= 24 * HT_MIB && n_live < MAX; n += 98317 * 3) {
    live[n_live] = hak_heap_malloc(h, n);
    cr_assert_not_null(live[n_live]);
    cr_assert_eq(hak_usable_size(live[n_live]), hak_good_size(n), "n %zu", n);
    n_live++;
  }
  for (int i = 0; i < n_live; i++) hak_free(live[i]);
  hak_heap_destroy(h);
}

Test(good_size, a_block_on_a_reused_mapping_is_never_smaller) {
  hak_heap_t *h = hak_heap_create(NULL);
  for (size_t n = 2 * HT_MIB; n <= 6 * HT_MIB; n += 333333) {
    void *big = hak_heap_malloc(h, n + HT_MIB);
    hak_free(big); /* may be cached, then reused for n */
    void *p = hak_heap_malloc(h, n);
    cr_assert_not_null(p);
    cr_assert_geq(hak_usable_size(p), hak_good_size(n), "n %zu", n);
    hak_free(p);
  }
  hak_heap_destroy(h);
}

Test(good_size, impossible_sizes_have_no_good_size) {
  cr_expect_eq(hak_good_size(SIZE_MAX), 0);
  cr_expect_eq(hak_good_size((size_t)PTRDIFF_MAX), 0);
  cr_expect_eq(hak_good_size(0), 16);
  cr_expect_eq(hak_good_size(1), 16);
  cr_expect_eq(hak_good_size(129), 160);
}
