/*
** Large blocks (2 MiB and up, and alignments above 64 KiB) and the heap's mapping cache: a block
** is its request rounded up to 64 KiB, held exactly; a freed mapping stays held and serves the
** next request of its size or smaller at the same address (the rest stays cached), zeroed for
** calloc; a bigger request takes other cached mappings' pages (moved, not faulted); it is purged after the heap's purge delay, at once by hak_heap_collect(h, true), by a
** negative delay, at the limit and at destroy; reset keeps it for reuse. Alignment costs
** nothing but address space, up to 1 GiB. A shrink never moves; growth keeps contents. Large
** blocks freed by other threads, and an overflow past a block's end into its neighbour, leave
** the allocator's state exact.
*/
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

#define GRAN ((size_t)64 << 10)
#define ROUND(n) (((n) + GRAN - 1) & ~(GRAN - 1))

TestSuite(large_cache, .timeout = 60);

static ht_errlog_t errlog;

static hak_heap_t *heap_with(int32_t delay_ms, size_t limit) {
  hak_heap_config_t cfg = {.name = "large", .limit_bytes = limit, .purge_delay_ms = delay_ms};
  hak_heap_t *h = hak_heap_create(&cfg);
  cr_assert_not_null(h);
  return h;
}

static size_t held(hak_heap_t *h) { return ht_stats(h).held_bytes; }

/* Every page of [p, p + n) is mapped (and, since it was written, resident). */
static bool mapped(const void *p, size_t n) {
  size_t pages = n / 4096;
  unsigned char *vec = malloc(pages);
  int r = mincore((void *)p, n, vec);
  bool all = r == 0;
  for (size_t i = 0; all && i < pages; i++) all = (vec[i] & 1) != 0;
  free(vec);
  return all;
}

/* No page of [p, p + n) is mapped. */
static bool unmapped(const void *p, size_t n) {
  unsigned char v;
  for (size_t off = 0; off < n; off += 4096)
    if (mincore((char *)p + off, 4096, &v) == 0 || errno != ENOMEM) return false;
  return true;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

Test(large_cache, usable_size_and_held_bytes_are_the_request_rounded_up_to_64_KiB) {
  static const size_t sizes[] = {2 * HT_MIB, 2 * HT_MIB + 1, 3000000, 5 * HT_MIB + 123,
                                 48 * HT_MIB};
  hak_heap_t *h = heap_with(-1, 0);
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned char *p = hak_heap_malloc(h, sizes[i]);
    cr_assert_not_null(p);
    cr_assert_eq((uintptr_t)p % GRAN, 0, "a large block starts its 64 KiB aligned mapping");
    cr_assert_eq(hak_usable_size(p), ROUND(sizes[i]));
    cr_assert_eq(held(h), ROUND(sizes[i]));
    ht_fill(p, hak_usable_size(p), 0x3C);
    cr_assert(ht_check(p, hak_usable_size(p), 0x3C));
    hak_free(p);
    cr_assert_eq(held(h), 0, "purge delay < 0: unmapped at free");
    cr_assert(unmapped(p, ROUND(sizes[i])));
  }
  hak_heap_destroy(h);
}

Test(large_cache, a_freed_mapping_serves_the_next_request_of_its_size_at_its_address) {
  hak_heap_t *h = heap_with(0, 0);
  void *p = hak_heap_malloc(h, 4 * HT_MIB);
  cr_assert_not_null(p);
  ht_fill(p, 4 * HT_MIB, 1);
  hak_free(p);
  hak_heap_stats_t s = ht_stats(h);
  cr_assert_eq(s.held_bytes, 4 * HT_MIB, "a freed mapping stays held (cached)");
  cr_assert_eq(s.large_count, 0);
  cr_assert_eq(s.live_bytes, 0);
  cr_assert(mapped(p, 4 * HT_MIB), "a cached mapping stays committed");
  void *q = hak_heap_malloc(h, 4 * HT_MIB - 1000);
  cr_assert_eq(q, p);
  cr_assert_eq(held(h), 4 * HT_MIB);
  cr_assert_eq(ht_stats(h).large_count, 1);
  hak_free(q);
  hak_heap_destroy(h);
}

/* A smaller request takes the head of a cached mapping; the rest stays cached, committed, and
** serves the next request at the address after it. */
Test(large_cache, a_cached_mapping_is_split_and_its_rest_stays_cached) {
  hak_heap_t *h = heap_with(0, 0);
  unsigned char *p = hak_heap_malloc(h, 8 * HT_MIB);
  cr_assert_not_null(p);
  ht_fill(p, 8 * HT_MIB, 2);
  hak_free(p);
  unsigned char *a = hak_heap_malloc(h, 3 * HT_MIB);
  cr_assert_eq(a, p, "the head of the cached mapping");
  cr_assert_eq(hak_usable_size(a), 3 * HT_MIB);
  cr_assert_eq(held(h), 8 * HT_MIB, "3 MiB live, 5 MiB still cached");
  cr_assert_eq(ht_stats(h).live_bytes, 3 * HT_MIB);
  cr_assert(mapped(p, 8 * HT_MIB), "nothing was unmapped");
  unsigned char *b = hak_heap_malloc(h, 4 * HT_MIB);
  cr_assert_eq(b, p + 3 * HT_MIB, "the rest's head");
  cr_assert_eq(hak_usable_size(b), 4 * HT_MIB);
  cr_assert_eq(held(h), 8 * HT_MIB);
  cr_assert_eq(ht_stats(h).live_bytes, 7 * HT_MIB);
  cr_assert(ht_check(b, 4 * HT_MIB, 2), "malloc does not clear a reused mapping");
  hak_free(a);
  hak_free(b);
  hak_heap_collect(h, true);
  cr_assert_eq(held(h), 0);
  cr_assert(unmapped(p, 8 * HT_MIB));
  hak_heap_destroy(h);
}

/* A rest under 1 MiB could serve no large request alone: it stays with the block. */
Test(large_cache, a_rest_under_1_MiB_stays_with_the_block) {
  hak_heap_t *h = heap_with(0, 0);
  unsigned char *p = hak_heap_malloc(h, 5 * HT_MIB);
  cr_assert_not_null(p);
  hak_free(p);
  unsigned char *q = hak_heap_malloc(h, 4 * HT_MIB + 1);
  cr_assert_eq(q, p);
  cr_assert_eq(hak_usable_size(q), 5 * HT_MIB, "a rest of 1 MiB - 64 KiB: kept whole");
  cr_assert_eq(held(h), 5 * HT_MIB);
  cr_assert_eq(ht_stats(h).live_bytes, 5 * HT_MIB);
  hak_free(q);
  q = hak_heap_malloc(h, 4 * HT_MIB);
  cr_assert_eq(q, p);
  cr_assert_eq(hak_usable_size(q), 4 * HT_MIB, "a rest of exactly 1 MiB: split");
  cr_assert_eq(held(h), 5 * HT_MIB);
  hak_free(q);
  hak_heap_destroy(h);
}

/* The rest of a split mapping is as old as the mapping: purged when the mapping would be. */
Test(large_cache, the_rest_of_a_split_mapping_keeps_its_age) {
  hak_heap_t *h = heap_with(200, 0);
  unsigned char *p = hak_heap_malloc(h, 8 * HT_MIB);
  cr_assert_not_null(p);
  hak_free(p);
  sleep_ms(120);
  unsigned char *a = hak_heap_malloc(h, 3 * HT_MIB);
  cr_assert_eq(a, p);
  sleep_ms(120); /* 240 ms after the free, 120 after the split */
  hak_heap_collect(h, false);
  cr_assert_eq(held(h), 3 * HT_MIB, "the 5 MiB rest was freed 240 ms ago: purged");
  cr_assert(unmapped(p + 3 * HT_MIB, 5 * HT_MIB));
  hak_free(a);
  hak_heap_destroy(h);
}

/* A request bigger than any cached mapping: the biggest grows, and the pages of others move in
** (no page of the new block is fresh: all are resident before it is written). */
Test(large_cache, a_bigger_request_is_assembled_from_cached_mappings) {
  hak_heap_t *h = heap_with(0, 0);
  unsigned char *a = hak_heap_malloc(h, 4 * HT_MIB), *b = hak_heap_malloc(h, 3 * HT_MIB),
                *c = hak_heap_malloc(h, 2 * HT_MIB);
  cr_assert(a && b && c);
  ht_fill(a, 4 * HT_MIB, 1);
  ht_fill(b, 3 * HT_MIB, 2);
  ht_fill(c, 2 * HT_MIB, 3);
  hak_free(a);
  hak_free(b);
  hak_free(c);
  cr_assert_eq(held(h), 9 * HT_MIB);
  unsigned char *q = hak_heap_calloc(h, 9, HT_MIB);
  cr_assert_not_null(q);
  cr_assert_eq(hak_usable_size(q), 9 * HT_MIB);
  cr_assert_eq(held(h), 9 * HT_MIB, "nothing but the three mappings' pages");
  cr_assert_eq(ht_stats(h).live_bytes, 9 * HT_MIB);
  cr_assert(mapped(q, 9 * HT_MIB), "every page moved in, none fresh");
  cr_assert(ht_all_zero(q, 9 * HT_MIB), "calloc from moved pages is zero");
  cr_assert(unmapped(b, 3 * HT_MIB), "the donors' old ranges are gone");
  cr_assert(unmapped(c, 2 * HT_MIB));
  ht_fill(q, 9 * HT_MIB, 4);
  cr_assert(ht_check(q, 9 * HT_MIB, 4));
  hak_free(q);
  hak_heap_collect(h, true);
  cr_assert_eq(held(h), 0);
  hak_heap_destroy(h);
}

/* realloc growth takes cached pages too, and keeps the contents. */
Test(large_cache, realloc_growth_moves_cached_pages_in) {
  hak_heap_t *h = heap_with(0, 0);
  unsigned char *p = hak_heap_malloc(h, 2 * HT_MIB), *d = hak_heap_malloc(h, 3 * HT_MIB);
  cr_assert(p && d);
  ht_fill(p, 2 * HT_MIB, 7);
  ht_fill(d, 3 * HT_MIB, 8);
  hak_free(d);
  unsigned char *q = hak_heap_realloc(h, p, 5 * HT_MIB);
  cr_assert_not_null(q);
  cr_assert_eq(hak_usable_size(q), 5 * HT_MIB);
  cr_assert(ht_check(q, 2 * HT_MIB, 7), "contents kept");
  cr_assert_eq(held(h), 5 * HT_MIB, "the cached 3 MiB became the growth");
  cr_assert(mapped(q, 5 * HT_MIB), "the growth is the cached mapping's resident pages");
  cr_assert(unmapped(d, 3 * HT_MIB));
  hak_free(q);
  hak_heap_destroy(h);
}

/* Past the cap, the oldest mapping loses only the excess, from its tail. */
Test(large_cache, the_cap_trims_the_oldest_mapping_by_the_excess) {
  hak_heap_t *h = heap_with(0, 0);
  unsigned char *a = hak_heap_malloc(h, 40 * HT_MIB), *b = hak_heap_malloc(h, 20 * HT_MIB),
                *c = hak_heap_malloc(h, 10 * HT_MIB);
  cr_assert(a && b && c);
  ht_fill(a, 40 * HT_MIB, 5);
  hak_free(a);
  hak_free(b);
  cr_assert_eq(held(h), 70 * HT_MIB);
  hak_free(c); /* 70 MiB cached, over the 64 MiB cap: a's last 6 MiB go */
  cr_assert_eq(held(h), 64 * HT_MIB);
  cr_assert(unmapped(a + 34 * HT_MIB, 6 * HT_MIB));
  cr_assert(mapped(a, 34 * HT_MIB));
  unsigned char *q = hak_heap_malloc(h, 34 * HT_MIB);
  cr_assert_eq(q, a, "the trimmed mapping serves what it still holds");
  hak_free(q);
  hak_heap_destroy(h);
}

/* The cap is half the heap's live large bytes when that is more than 64 MiB. */
Test(large_cache, the_cap_grows_with_the_live_large_bytes) {
  hak_heap_t *h = heap_with(0, 0);
  void *live[4], *f[3];
  for (int i = 0; i < 4; i++) cr_assert_not_null(live[i] = hak_heap_malloc(h, 50 * HT_MIB));
  for (int i = 0; i < 3; i++) cr_assert_not_null(f[i] = hak_heap_malloc(h, 30 * HT_MIB));
  for (int i = 0; i < 3; i++) hak_free(f[i]);
  cr_assert_eq(held(h), 290 * HT_MIB, "200 MiB live: a 100 MiB cap keeps all 90 MiB");
  for (int i = 0; i < 4; i++) hak_free(live[i]);
  cr_assert_eq(held(h), 64 * HT_MIB, "nothing live: 64 MiB");
  hak_heap_destroy(h);
}

Test(large_cache, a_smaller_cached_mapping_grows_to_serve_a_bigger_request) {
  hak_heap_t *h = heap_with(0, 0);
  unsigned char *p = hak_heap_malloc(h, 2 * HT_MIB);
  memset(p, 0xCD, 2 * HT_MIB);
  hak_free(p);
  cr_assert_eq(held(h), 2 * HT_MIB, "cached");
  unsigned char *q = hak_heap_calloc(h, 3, HT_MIB); /* bigger than anything cached */
  cr_assert_not_null(q);
  cr_assert(ht_all_zero(q, 3 * HT_MIB), "calloc from a grown mapping is zero");
  cr_assert_eq(hak_usable_size(q), 3 * HT_MIB);
  cr_assert_eq(held(h), 3 * HT_MIB, "the 2 MiB mapping grew: nothing else held");
  hak_heap_stats_t s = ht_stats(h);
  cr_assert_eq(s.large_count, 1);
  cr_assert_eq(s.live_bytes, 3 * HT_MIB);
  ht_fill(q, 3 * HT_MIB, 9);
  hak_free(q);
  hak_heap_collect(h, true);
  cr_assert_eq(held(h), 0);
  hak_heap_destroy(h);
}

Test(large_cache, calloc_from_a_reused_mapping_is_zero) {
  hak_heap_t *h = heap_with(0, 0);
  unsigned char *p = hak_heap_malloc(h, 4 * HT_MIB);
  cr_assert_not_null(p);
  memset(p, 0xAB, 4 * HT_MIB);
  hak_free(p);
  unsigned char *q = hak_heap_calloc(h, 2, 2 * HT_MIB);
  cr_assert_eq(q, p, "calloc reused the cached mapping");
  cr_assert(ht_all_zero(q, 4 * HT_MIB));
  hak_free(q);
  hak_heap_destroy(h);
}

Test(large_cache, a_freed_mapping_is_purged_once_the_delay_has_passed) {
  hak_heap_t *h = heap_with(50, 0);
  void *p = hak_heap_malloc(h, 4 * HT_MIB);
  cr_assert_not_null(p);
  ht_fill(p, 4 * HT_MIB, 3);
  hak_free(p);
  hak_heap_collect(h, false);
  cr_assert_eq(held(h), 4 * HT_MIB, "purged before its delay");
  cr_assert(mapped(p, 4 * HT_MIB));
  sleep_ms(120);
  cr_assert_eq(held(h), 4 * HT_MIB, "nothing purges without allocator activity");
  hak_heap_collect(h, false);
  cr_assert_eq(held(h), 0);
  cr_assert(unmapped(p, 4 * HT_MIB));
  hak_heap_destroy(h);
}

Test(large_cache, the_next_large_allocation_purges_mappings_past_the_delay) {
  hak_heap_t *h = heap_with(50, 0);
  void *p = hak_heap_malloc(h, 4 * HT_MIB);
  cr_assert_not_null(p);
  hak_free(p);
  sleep_ms(120);
  void *q = hak_heap_malloc(h, 2 * HT_MIB);
  cr_assert_not_null(q);
  cr_assert_eq(held(h), 2 * HT_MIB, "the expired 4 MiB mapping was not purged");
  hak_free(q);
  hak_heap_destroy(h);
}

Test(large_cache, collect_with_force_purges_at_once_and_a_negative_delay_at_free) {
  hak_heap_t *h = heap_with(0, 0);
  void *p = hak_heap_malloc(h, 4 * HT_MIB);
  void *q = hak_heap_malloc(h, 6 * HT_MIB);
  cr_assert_not_null(p);
  cr_assert_not_null(q);
  hak_free(p);
  hak_free(q);
  cr_assert_eq(held(h), 10 * HT_MIB);
  hak_heap_collect(h, true);
  cr_assert_eq(held(h), 0);
  cr_assert(unmapped(p, 4 * HT_MIB));
  cr_assert(unmapped(q, 6 * HT_MIB));
  p = hak_heap_malloc(h, 4 * HT_MIB);
  hak_free(p);
  cr_assert_eq(held(h), 4 * HT_MIB);
  cr_assert_eq(hak_heap_set_purge_delay(h, -1), 0);
  cr_assert_eq(held(h), 0, "setting a negative delay purges the cache");
  p = hak_heap_malloc(h, 4 * HT_MIB);
  hak_free(p);
  cr_assert_eq(held(h), 0);
  cr_assert_eq(hak_heap_set_purge_delay(NULL, 5), -1);
  cr_assert_eq(errno, EINVAL);
  hak_heap_destroy(h);
}

Test(large_cache, cached_mappings_are_held_and_purged_to_keep_the_limit_exact) {
  const size_t limit = 10 * HT_MIB;
  hak_heap_t *h = heap_with(0, limit);
  void *a = hak_heap_malloc(h, 6 * HT_MIB);
  cr_assert_not_null(a);
  hak_free(a);
  cr_assert_eq(held(h), 6 * HT_MIB);
  void *b = hak_heap_malloc(h, 8 * HT_MIB); /* the 6 MiB cached one is purged to make room */
  cr_assert_not_null(b);
  cr_assert_eq(held(h), 8 * HT_MIB);
  errno = 0;
  cr_assert_null(hak_heap_malloc(h, 4 * HT_MIB), "12 MiB under a 10 MiB limit");
  cr_assert_eq(errno, ENOMEM);
  hak_free(b);
  void *c = hak_heap_malloc(h, 4 * HT_MIB);
  cr_assert_eq(c, b, "served from the cached 8 MiB mapping's head");
  void *e = hak_heap_malloc(h, 3 * HT_MIB);
  cr_assert_eq(e, (char *)b + 4 * HT_MIB, "and from its rest");
  cr_assert_eq(held(h), 8 * HT_MIB, "7 MiB live, 1 MiB cached");
  void *d = hak_heap_malloc(h, 3 * HT_MIB); /* the cached 1 MiB goes to make room */
  cr_assert_not_null(d);
  cr_assert_eq(held(h), limit);
  cr_assert_eq(ht_stats(h).peak_held_bytes, limit);
  errno = 0;
  cr_assert_null(hak_heap_malloc(h, 2 * HT_MIB), "12 MiB under a 10 MiB limit");
  cr_assert_eq(errno, ENOMEM);
  hak_free(c);
  hak_free(d);
  hak_free(e);
  cr_assert_eq(held(h), limit);
  hak_heap_destroy(h);
}

Test(large_cache, destroy_unmaps_live_and_cached_mappings) {
  ht_errlog_install(&errlog);
  hak_heap_t *h = heap_with(0, 0);
  void *cached = hak_heap_malloc(h, 4 * HT_MIB);
  void *live = hak_heap_malloc(h, 6 * HT_MIB);
  cr_assert_not_null(cached);
  cr_assert_not_null(live);
  ht_fill(live, 6 * HT_MIB, 4);
  hak_free(cached);
  hak_heap_destroy(h);
  cr_assert(unmapped(cached, 4 * HT_MIB));
  cr_assert(unmapped(live, 6 * HT_MIB));
  hak_free(live);
  cr_assert_eq(errlog.calls, 1);
  cr_assert_eq(errlog.err, HAK_ERR_HEAP_DESTROYED);
}

Test(large_cache, reset_keeps_large_mappings_for_reuse) {
  ht_errlog_install(&errlog);
  hak_heap_t *h = heap_with(0, 0);
  void *p = hak_heap_malloc(h, 4 * HT_MIB);
  cr_assert_not_null(p);
  hak_heap_reset(h);
  hak_heap_stats_t s = ht_stats(h);
  cr_assert_eq(s.large_count, 0);
  cr_assert_eq(s.live_bytes, 0);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.held_bytes, 4 * HT_MIB, "the reset block's mapping is cached");
  cr_assert_null(hak_heap_of(p));
  hak_free(p);
  cr_assert_eq(errlog.calls, 1);
  cr_assert_eq(errlog.err, HAK_ERR_DOUBLE_FREE);
  cr_assert(strstr(errlog.msg, "hak_heap_reset") != NULL, "message \"%s\"", errlog.msg);
  void *q = hak_heap_malloc(h, 4 * HT_MIB);
  cr_assert_eq(q, p);
  cr_assert_eq(held(h), 4 * HT_MIB);
  hak_heap_destroy(h);
}

Test(large_cache, aligned_blocks_up_to_1_GiB_hold_one_granule) {
  hak_heap_t *h = heap_with(-1, 0);
  for (size_t align = 2 * GRAN; align <= ((size_t)1 << 30); align <<= 1) {
    unsigned char *p = hak_heap_aligned_alloc(h, align, 16);
    cr_assert_not_null(p, "aligned_alloc(%zu, 16)", align);
    cr_assert_eq((uintptr_t)p % align, 0);
    cr_assert_eq(hak_usable_size(p), GRAN);
    cr_assert_eq(held(h), GRAN, "aligned to %zu: held %zu", align, held(h));
    memset(p, 5, GRAN);
    hak_free(p);
    cr_assert_eq(held(h), 0);
  }
  unsigned char *p = hak_heap_aligned_alloc(h, 16 * HT_MIB, 3 * HT_MIB);
  cr_assert_not_null(p);
  cr_assert_eq((uintptr_t)p % (16 * HT_MIB), 0);
  cr_assert_eq(held(h), 3 * HT_MIB);
  hak_free(p);
  hak_heap_destroy(h);
}

Test(large_cache, a_64_MiB_limited_heap_gets_a_small_block_aligned_to_64_MiB) {
  hak_heap_t *h = heap_with(0, 64 * HT_MIB);
  void *p = hak_heap_aligned_alloc(h, 64 * HT_MIB, 16);
  cr_assert_not_null(p);
  cr_assert_eq((uintptr_t)p % (64 * HT_MIB), 0);
  cr_assert_eq(held(h), GRAN);
  hak_free(p);
  hak_heap_destroy(h);
}

Test(large_cache, a_shrink_never_moves_and_unmaps_the_tail) {
  hak_heap_t *h = heap_with(0, 0);
  unsigned char *p = hak_heap_malloc(h, 20 * HT_MIB);
  cr_assert_not_null(p);
  ht_fill_seq(p, 20 * HT_MIB, 7);
  cr_assert_eq(hak_heap_realloc(h, p, 3 * HT_MIB + 5), p);
  cr_assert_eq(hak_usable_size(p), ROUND(3 * HT_MIB + 5));
  cr_assert_eq(held(h), ROUND(3 * HT_MIB + 5));
  cr_assert(unmapped(p + ROUND(3 * HT_MIB + 5), 20 * HT_MIB - ROUND(3 * HT_MIB + 5)));
  cr_assert(ht_check_seq(p, 3 * HT_MIB + 5, 7));
  cr_assert_eq(hak_heap_realloc(h, p, 100), p);
  cr_assert_eq(hak_usable_size(p), GRAN);
  cr_assert_eq(held(h), GRAN);
  cr_assert(ht_check_seq(p, 100, 7));
  hak_heap_stats_t s = ht_stats(h);
  cr_assert_eq(s.live_bytes, GRAN);
  cr_assert_eq(s.alloc_count, 1);
  hak_free(p);
  hak_heap_destroy(h);
}

Test(large_cache, growth_keeps_contents_and_holds_the_new_size) {
  hak_heap_t *h = heap_with(-1, 0);
  unsigned char *p = hak_heap_malloc(h, 2 * HT_MIB);
  void *other = hak_heap_malloc(h, 2 * HT_MIB); /* a neighbour in the way of some growths */
  cr_assert_not_null(p);
  cr_assert_not_null(other);
  ht_fill_seq(p, 2 * HT_MIB, 9);
  for (size_t n = 3 * HT_MIB; n <= 40 * HT_MIB; n = n * 2 + 12345) {
    unsigned char *q = hak_heap_realloc(h, p, n);
    cr_assert_not_null(q);
    cr_assert_eq((uintptr_t)q % GRAN, 0);
    cr_assert(ht_check_seq(q, 2 * HT_MIB, 9), "contents lost growing to %zu", n);
    cr_assert_eq(hak_usable_size(q), ROUND(n));
    cr_assert_eq(held(h), ROUND(n) + 2 * HT_MIB);
    if (q != p) cr_assert_eq(hak_usable_size(p), 0, "the old address is no block");
    memset(q + 2 * HT_MIB, 1, n - 2 * HT_MIB);
    p = q;
  }
  hak_heap_stats_t s = ht_stats(h);
  cr_assert_eq(s.alloc_count, 2, "growth by mremap counts no new allocation");
  cr_assert_eq(s.large_count, 2);
  hak_free(p);
  hak_free(other);
  cr_assert_eq(held(h), 0);
  hak_heap_destroy(h);
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
  return (x > y) - (x < y);
}

Test(large_cache, an_overflow_past_a_block_into_its_neighbour_reaches_no_allocator_state) {
  /* Growth in place (mremap) closes the gap between two mappings; before the records went out
  ** of band, the overflow below then rewrote the upper block's header. */
  ht_errlog_install(&errlog);
  hak_heap_t *h = heap_with(0, 0);
  enum { N = 16 };
  unsigned char *ps[N];
  for (int i = 0; i < N; i++) {
    ps[i] = hak_heap_malloc(h, 2 * HT_MIB);
    cr_assert_not_null(ps[i]);
  }
  qsort(ps, N, sizeof ps[0], cmp_ptr);
  int lo = -1;
  for (int i = 0; i + 1 < N && lo < 0; i++) {
    size_t gap = (size_t)(ps[i + 1] - ps[i]) - 2 * HT_MIB;
    if (gap > 0 && gap <= 8 * GRAN &&
        hak_heap_realloc(h, ps[i], 2 * HT_MIB + gap) == ps[i])
      lo = i;
  }
  cr_assert_geq(lo, 0, "no two blocks could be made adjacent by growing one in place");
  unsigned char *below = ps[lo], *above = ps[lo + 1];
  size_t us = hak_usable_size(below);
  cr_assert_eq(below + us, above);
  ht_fill(above, 2 * HT_MIB, 0x11);
  memset(below + us - 64, 0xEE, 64 + 4096); /* 4 KiB into the block above */
  cr_assert_eq(hak_usable_size(above), 2 * HT_MIB);
  cr_assert_eq(hak_heap_of(above), h);
  hak_heap_stats_t s = ht_stats(h);
  cr_assert_eq(s.large_count, N);
  cr_assert_eq(s.live_bytes, (N - 1) * 2 * HT_MIB + us);
  for (int i = 0; i < N; i++) hak_free(ps[i]);
  cr_assert_eq(errlog.calls, 0, "a free reported \"%s\"", errlog.msg);
  s = ht_stats(h);
  cr_assert_eq(s.large_count, 0);
  cr_assert_eq(s.live_bytes, 0);
  cr_assert_eq(s.held_bytes, (N - 1) * 2 * HT_MIB + us);
  void *again = hak_heap_malloc(h, 2 * HT_MIB);
  cr_assert_not_null(again);
  hak_free(again);
  hak_heap_destroy(h);
}

/* ---- other threads ---- */

enum { XN = 12 };
static hak_heap_t *xheap;
static void *xblocks[XN];

static void *free_all(void *arg) {
  (void)arg;
  for (int i = 0; i < XN; i++) hak_free(xblocks[i]);
  return NULL;
}

Test(large_cache, large_blocks_freed_by_another_thread_are_cached_by_their_heap) {
  xheap = heap_with(0, 0);
  size_t total = 0;
  for (int i = 0; i < XN; i++) {
    size_t n = 2 * HT_MIB + (size_t)i * 100000;
    xblocks[i] = hak_heap_malloc(xheap, n);
    cr_assert_not_null(xblocks[i]);
    ht_fill(xblocks[i], n, (uint8_t)i);
    total += ROUND(n);
  }
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, free_all, NULL), 0);
  pthread_join(t, NULL);
  hak_heap_stats_t s = ht_stats(xheap);
  cr_assert_eq(s.large_count, 0);
  cr_assert_eq(s.live_bytes, 0);
  cr_assert_eq(s.free_count, XN);
  cr_assert_eq(s.held_bytes, total, "all %d mappings cached (%zu bytes): held %zu", XN, total,
               s.held_bytes);
  void *p = hak_heap_malloc(xheap, 2 * HT_MIB);
  int j = 0;
  while (j < XN && xblocks[j] != p) j++;
  cr_assert_lt(j, XN, "the owner heap reuses a mapping another thread freed");
  /* Served from that mapping, whole: a rest below 1 MiB stays with the block. */
  cr_assert_eq(hak_usable_size(p), ROUND(2 * HT_MIB + (size_t)j * 100000));
  cr_assert_eq(held(xheap), total);
  hak_free(p);
  hak_heap_collect(xheap, true);
  cr_assert_eq(held(xheap), 0);
  hak_heap_destroy(xheap);
}

static void *churn(void *arg) {
  uintptr_t seed = (uintptr_t)arg;
  void *mine[4] = {0};
  for (int i = 0; i < 300; i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    int k = (int)(seed >> 60) & 3;
    if (mine[k]) {
      hak_free(mine[k]);
      mine[k] = NULL;
    } else {
      size_t n = 2 * HT_MIB + (size_t)(seed >> 40) % (6 * HT_MIB);
      mine[k] = hak_heap_malloc(xheap, n);
      if (!mine[k]) return (void *)1;
      ((volatile char *)mine[k])[n - 1] = 1;
    }
  }
  for (int k = 0; k < 4; k++) hak_free(mine[k]);
  return NULL;
}

Test(large_cache, threads_allocating_and_freeing_large_blocks_leave_exact_stats) {
  xheap = heap_with(0, 0);
  pthread_t t[4];
  for (uintptr_t i = 0; i < 4; i++) cr_assert_eq(pthread_create(&t[i], NULL, churn, (void *)(i + 1)), 0);
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(t[i], &r);
    cr_assert_null(r, "an allocation failed");
  }
  hak_heap_stats_t s = ht_stats(xheap);
  cr_assert_eq(s.large_count, 0);
  cr_assert_eq(s.live_bytes, 0);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.alloc_count, s.free_count);
  cr_assert_leq(s.held_bytes, 64 * HT_MIB, "the cache stays under its cap");
  hak_heap_collect(xheap, true);
  cr_assert_eq(held(xheap), 0);
  hak_heap_destroy(xheap);
}

