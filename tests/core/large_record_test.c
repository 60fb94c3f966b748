/*
** large_record_test: a large block's record is out of band and never followed when it is not
** whole (white-box: the record, the registry, the cache bins). The record lies outside the block
** and holds no plain pointer into it; a forged size, state or list link, and a registry entry
** that names another block's record, are each reported as HAK_ERR_CORRUPTION at free, naming the
** pointer, and change nothing; the cache's bins cover every cached size exactly.
*/
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hakmem.h"
#include "large.h"
#include "registry.h"

#define GRAN ((size_t)1 << HAK_REG_GRAN_SHIFT)
#define MIB ((size_t)1 << 20)

static int calls, last_err;
static char last_msg[256];

static void record(int err, const char *msg, void *arg) {
  (void)arg;
  calls++;
  last_err = err;
  snprintf(last_msg, sizeof last_msg, "%s", msg);
}

static hak_heap_t *heap;

static void setup(void) {
  hak_set_error_handler(record, NULL);
  heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
}

static void teardown(void) { hak_heap_destroy(heap); }

TestSuite(large_record, .init = setup, .fini = teardown, .timeout = 30);

static hak__large_t *record_of(const void *p) {
  uintptr_t e = hak__reg_lookup((uintptr_t)p);
  cr_assert_eq(e & HAK_REG_TAG_MASK, HAK_REG_LARGE);
  return (hak__large_t *)(e & ~HAK_REG_TAG_MASK);
}

static bool names(const void *p) {
  char hex[32];
  snprintf(hex, sizeof hex, "%" PRIxPTR, (uintptr_t)p);
  return strstr(last_msg, hex) != NULL;
}

/* A free of p reports corruption once, naming p, with a message containing why. */
static void expect_corruption(void *p, const char *why) {
  calls = 0;
  hak_free(p);
  cr_assert_eq(calls, 1, "%d reports", calls);
  cr_assert_eq(last_err, HAK_ERR_CORRUPTION, "err %d: %s", last_err, last_msg);
  cr_assert(names(p), "message \"%s\" does not name %p", last_msg, p);
  cr_assert(strstr(last_msg, why) != NULL, "message \"%s\", want \"%s\"", last_msg, why);
}

static void expect_clean_free(void *p) {
  calls = 0;
  hak_free(p);
  cr_assert_eq(calls, 0, "free reported \"%s\"", last_msg);
}

Test(large_record, bins_cover_every_cached_size_exactly) {
  unsigned prev = 0;
  for (size_t g = 1; g <= HAK_LARGE_CACHE_GRANS; g++) {
    unsigned b = hak__large_bin(g);
    cr_assert_lt(b, HAK_LARGE_BINS);
    cr_assert_leq(hak__large_bin_lo(b), g, "granules %zu in bin %u", g, b);
    cr_assert_gt(hak__large_bin_lo(b + 1), g, "granules %zu in bin %u", g, b);
    cr_assert(b == prev || b == prev + 1 || g == 1);
    prev = b;
  }
  cr_assert_eq(prev, HAK_LARGE_BINS - 1);
}

Test(large_record, the_record_is_outside_the_block_and_holds_no_pointer_into_it) {
  unsigned char *p = hak_heap_malloc(heap, 2 * MIB);
  cr_assert_not_null(p);
  hak__large_t *l = record_of(p);
  uintptr_t r = (uintptr_t)l;
  cr_assert(r + sizeof *l <= (uintptr_t)p || r >= (uintptr_t)p + 2 * MIB,
            "record %p inside its block %p", (void *)l, (void *)p);
  cr_assert_eq(hak__reg_lookup(r) & HAK_REG_TAG_MASK, HAK_REG_NONE,
               "the record is in no block, superslab or large mapping");
  cr_assert_eq(hak__large_base(l), (uintptr_t)p);
  cr_assert_eq(l->usable, 2 * MIB);
  cr_assert_eq(l->heap, heap);
  for (size_t i = 0; i < sizeof *l / sizeof(uintptr_t); i++) {
    uintptr_t w;
    memcpy(&w, (char *)l + i * sizeof w, sizeof w);
    cr_assert(w < (uintptr_t)p || w >= (uintptr_t)p + 2 * MIB, "word %zu of the record points into the block", i);
  }
  memset(p, 0xFF, 2 * MIB); /* every byte of the block: nothing of the allocator's is there */
  expect_clean_free(p);
}

Test(large_record, a_forged_size_is_reported_and_not_followed) {
  unsigned char *p = hak_heap_malloc(heap, 2 * MIB);
  cr_assert_not_null(p);
  hak__large_t *l = record_of(p);
  l->usable = 64 * MIB;
  expect_corruption(p, "corrupt large block record");
  cr_assert_eq(hak_usable_size(p), 0);
  /* Even a size with a matching seal disagrees with the registry. */
  l->usable = 4 * MIB;
  l->seal = hak__large_seal_of(l);
  expect_corruption(p, "disagrees with the registry");
  l->usable = 2 * MIB;
  l->seal = hak__large_seal_of(l);
  cr_assert_eq(hak_heap_get_limit(heap), 0);
  hak_heap_stats_t s;
  hak_heap_get_stats(heap, &s);
  cr_assert_eq(s.large_count, 1, "the forged frees freed nothing");
  expect_clean_free(p);
}

Test(large_record, a_forged_state_is_reported_and_not_followed) {
  void *p = hak_heap_malloc(heap, 2 * MIB);
  cr_assert_not_null(p);
  hak__large_t *l = record_of(p);
  l->state = 77;
  expect_corruption(p, "corrupt large block record");
  l->state = HAK_LARGE_LIVE;
  expect_clean_free(p);
}

Test(large_record, a_registry_entry_naming_another_record_is_reported) {
  unsigned char *a = hak_heap_malloc(heap, 2 * MIB);
  unsigned char *b = hak_heap_malloc(heap, 3 * MIB);
  cr_assert_not_null(a);
  cr_assert_not_null(b);
  hak__large_t *la = record_of(a), *lb = record_of(b);
  hak__reg_set((uintptr_t)a, GRAN, (uintptr_t)lb | HAK_REG_LARGE);
  expect_corruption(a, "registry entry does not match its large block record");
  hak__reg_set((uintptr_t)a, GRAN, (uintptr_t)la | HAK_REG_LARGE);
  expect_clean_free(a);
  expect_clean_free(b);
}

Test(large_record, list_links_that_do_not_point_back_are_not_followed) {
  void *ps[3];
  for (int i = 0; i < 3; i++) {
    ps[i] = hak_heap_malloc(heap, 2 * MIB);
    cr_assert_not_null(ps[i]);
  }
  hak__large_t *mid = record_of(ps[1]);
  hak__large_t fake;
  memset(&fake, 0x5A, sizeof fake);
  hak__large_t saved = fake;
  hak__large_t *next = mid->link[HAK_LL_MAIN].next;
  mid->link[HAK_LL_MAIN].next = &fake;
  expect_corruption(ps[1], "corrupt large block list");
  cr_assert(memcmp(&fake, &saved, sizeof fake) == 0, "the forged neighbour was written");
  mid->link[HAK_LL_MAIN].next = next;
  for (int i = 0; i < 3; i++) expect_clean_free(ps[i]);
  hak_heap_stats_t s;
  hak_heap_get_stats(heap, &s);
  cr_assert_eq(s.large_count, 0);
}

/* ---- kernel mappings inside a block ---- */

/* How many kernel mappings (lines of /proc/self/maps) overlap [p, p + n). */
static int kernel_mappings(const void *p, size_t n) {
  FILE *f = fopen("/proc/self/maps", "r");
  cr_assert_not_null(f);
  uintptr_t lo = (uintptr_t)p, hi = lo + n, a, b;
  int count = 0;
  char line[512];
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &a, &b) == 2 && a < hi && b > lo) count++;
  fclose(f);
  return count;
}

/* Blocks assembled from moved pages span several kernel mappings: as many as their record's
** cuts say, or fewer (the kernel may merge), never more than HAK_LARGE_MAX_CUTS + 1; the
** process-wide count of cuts is what the records hold. Contents survive every move. */
Test(large_record, cuts_track_the_kernel_mappings_a_block_spans) {
  enum { SLOTS = 30, STEPS = 3000 };
  hak_heap_config_t cfg = {.name = "cuts"};
  hak_heap_t *h = hak_heap_create(&cfg);
  unsigned char *slot[SLOTS] = {0};
  size_t len[SLOTS] = {0};
  uint64_t seed = 12345;
  uint32_t most = 0;
  for (int i = 0; i < STEPS; i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    int k = (int)((seed >> 33) % SLOTS);
    if (slot[k]) {
      cr_assert_eq(slot[k][0], (unsigned char)k);
      cr_assert_eq(slot[k][len[k] - 1], (unsigned char)(k + 1));
      hak_free(slot[k]);
    }
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    len[k] = 2 * (1u << 20) + (size_t)((seed >> 20) % (14u << 20));
    slot[k] = hak_heap_malloc(h, len[k]);
    cr_assert_not_null(slot[k]);
    slot[k][0] = (unsigned char)k; /* a page at each end: the rest is never touched */
    slot[k][len[k] - 1] = (unsigned char)(k + 1);
    if (i % 250 == 249)
      for (int j = 0; j < SLOTS; j++) {
        hak__large_t *r = record_of(slot[j]);
        if (r->cuts.n > HAK_LARGE_MAX_CUTS) cr_assert_fail("block %d: %u cuts", j, r->cuts.n);
        int m = kernel_mappings(slot[j], r->usable);
        if ((uint32_t)m > r->cuts.n + 1)
          cr_assert_fail("block %d spans %d kernel mappings, its record %u cuts", j, m, r->cuts.n);
        if (r->cuts.n > most) most = r->cuts.n;
      }
  }
  cr_assert_gt(most, 0, "this seeded run assembles blocks from moved pages");
  for (int j = 0; j < SLOTS; j++) hak_free(slot[j]);
  hak_heap_destroy(h);
}
