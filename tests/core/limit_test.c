/*
** Limits: with limit_bytes in the config or set later, allocations that would take held_bytes
** above the limit give NULL with ENOMEM, held_bytes never exceeds the limit, and once some
** blocks are freed the heap serves again. Applies to small and large blocks, calloc, realloc
** and aligned_alloc.
*/
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "test_util.h"

TestSuite(limit, .timeout = 30);

enum { CAP = 1 << 17 };
static void *blocks[CAP];

/* Allocate `size` blocks until refusal; checks errno and held_bytes <= limit on the way. */
static size_t fill_to_limit(hak_heap_t *heap, size_t size, size_t limit) {
  size_t n = 0;
  for (;;) {
    cr_assert_lt(n, CAP, "limit %zu never refused %zu-byte blocks", limit, size);
    errno = 0;
    void *p = hak_heap_malloc(heap, size);
    if (p == NULL) {
      cr_assert_eq(errno, ENOMEM, "refusal at the limit set errno %d, want ENOMEM", errno);
      break;
    }
    ht_fill(p, size, 0x77);
    blocks[n++] = p;
    hak_heap_stats_t s = ht_stats(heap);
    cr_assert_leq(s.held_bytes, limit, "held_bytes %zu above the limit %zu after %zu blocks",
                  s.held_bytes, limit, n);
  }
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_leq(s.peak_held_bytes, limit, "peak_held_bytes %zu above the limit %zu",
                s.peak_held_bytes, limit);
  return n;
}

Test(limit, config_limit_refuses_small_blocks_beyond_it_then_serves_after_frees) {
  const size_t limit = 4 * HT_MIB;
  hak_heap_config_t cfg = {.name = "limited", .limit_bytes = limit};
  hak_heap_t *heap = hak_heap_create(&cfg);
  cr_assert_not_null(heap);
  cr_assert_eq(hak_heap_get_limit(heap), limit);
  cr_assert_eq(ht_stats(heap).limit_bytes, limit);
  size_t n = fill_to_limit(heap, 64, limit);
  cr_assert_geq(n * 64, limit / 4, "only %zu bytes served under a %zu-byte limit", n * 64, limit);
  /* Still refused: nothing was freed. */
  errno = 0;
  cr_assert_null(hak_heap_malloc(heap, 64));
  cr_assert_eq(errno, ENOMEM);
  for (size_t i = 0; i < n; i += 2) hak_free(blocks[i]);
  for (size_t i = 0; i < n; i += 2) {
    blocks[i] = hak_heap_malloc(heap, 64);
    cr_assert_not_null(blocks[i], "block %zu not served again after freeing half", i);
  }
  for (size_t i = 0; i < n; i++) hak_free(blocks[i]);
  hak_heap_collect(heap, true);
  cr_assert_eq(ht_stats(heap).live_blocks, 0);
  cr_assert_leq(ht_stats(heap).held_bytes, limit);
  hak_heap_destroy(heap);
}

Test(limit, config_limit_refuses_large_blocks_beyond_it_then_serves_after_frees) {
  const size_t limit = 8 * HT_MIB;
  hak_heap_config_t cfg = {.limit_bytes = limit};
  hak_heap_t *heap = hak_heap_create(&cfg);
  cr_assert_not_null(heap);
  errno = 0;
  cr_assert_null(hak_heap_malloc(heap, 16 * HT_MIB), "a 16 MiB block under an 8 MiB limit");
  cr_assert_eq(errno, ENOMEM);
  void *a = hak_heap_malloc(heap, 3 * HT_MIB);
  void *b = hak_heap_malloc(heap, 3 * HT_MIB);
  cr_assert_not_null(a);
  cr_assert_not_null(b);
  errno = 0;
  cr_assert_null(hak_heap_malloc(heap, 3 * HT_MIB), "9 MiB held under an 8 MiB limit");
  cr_assert_eq(errno, ENOMEM);
  cr_assert_leq(ht_stats(heap).held_bytes, limit);
  hak_free(a);
  a = hak_heap_malloc(heap, 3 * HT_MIB);
  cr_assert_not_null(a, "a large block not served again after freeing one");
  ht_fill(a, 3 * HT_MIB, 1);
  hak_free(a);
  hak_free(b);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_leq(s.peak_held_bytes, limit);
  hak_heap_destroy(heap);
}

Test(limit, large_block_from_a_reused_mapping_never_exceeds_the_limit) {
  /* Another heap leaves a 640 KiB mapping behind; a 460 KiB request under a 512 KiB limit fits
  ** the limit only if it is not served from that bigger mapping. */
  hak_heap_t *other = hak_heap_create(NULL);
  cr_assert_not_null(other);
  hak_free(hak_heap_malloc(other, 640 * HT_KIB - 100));
  const size_t limit = 512 * HT_KIB;
  hak_heap_config_t cfg = {.limit_bytes = limit};
  hak_heap_t *heap = hak_heap_create(&cfg);
  cr_assert_not_null(heap);
  void *p = hak_heap_malloc(heap, 460 * HT_KIB);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_leq(s.held_bytes, limit, "malloc(460 KiB) = %p (usable %zu) took held_bytes to %zu, limit %zu",
                p, hak_usable_size(p), s.held_bytes, limit);
  cr_assert_leq(s.peak_held_bytes, limit);
  hak_free(p);
  hak_heap_destroy(heap);
  hak_heap_destroy(other);
}

Test(limit, large_sizes_of_every_rounding_stay_under_a_tight_limit) {
  hak_heap_t *other = hak_heap_create(NULL);
  cr_assert_not_null(other);
  int served = 0;
  for (size_t size = HT_SMALL_MAX + 1; size < 6 * HT_MIB; size += 97 * HT_KIB + 13) {
    /* Leave mappings of assorted sizes behind, as a busy process would. */
    hak_free(hak_heap_malloc(other, size + size / 3));
    hak_heap_config_t cfg = {.limit_bytes = size + 68 * HT_KIB};
    hak_heap_t *heap = hak_heap_create(&cfg);
    cr_assert_not_null(heap);
    void *p = hak_heap_malloc(heap, size);
    served += p != NULL;
    hak_heap_stats_t s = ht_stats(heap);
    cr_assert_leq(s.held_bytes, cfg.limit_bytes, "malloc(%zu) under limit %zu: held %zu (usable %zu)",
                  size, cfg.limit_bytes, s.held_bytes, hak_usable_size(p));
    hak_free(p);
    hak_heap_destroy(heap);
  }
  cr_assert_gt(served, 0, "no request was served with 68 KiB of headroom");
  hak_heap_destroy(other);
}

Test(limit, mixed_small_and_large_never_hold_more_than_the_limit) {
  const size_t limit = 6 * HT_MIB;
  hak_heap_config_t cfg = {.limit_bytes = limit};
  hak_heap_t *heap = hak_heap_create(&cfg);
  cr_assert_not_null(heap);
  size_t n = 0, refused = 0;
  for (int i = 0; i < 20000 && n < CAP; i++) {
    size_t size = (i % 50 == 0) ? 200 * HT_KIB + (size_t)i : 16 + (size_t)(i * 97) % 8000;
    errno = 0;
    void *p = hak_heap_malloc(heap, size);
    if (p == NULL) {
      cr_assert_eq(errno, ENOMEM);
      refused++;
      continue;
    }
    blocks[n++] = p;
    cr_assert_leq(ht_stats(heap).held_bytes, limit);
  }
  cr_assert_gt(refused, 0, "a 6 MiB limit never refused ~80 MiB of requests");
  for (size_t i = 0; i < n; i++) hak_free(blocks[i]);
  /* Everything freed: a modest mix of all kinds fits under the limit again. */
  n = 0;
  for (int i = 0; i < 200; i++) {
    size_t size = (i % 100 == 0) ? 200 * HT_KIB : 16 + (size_t)(i * 97) % 8000;
    blocks[n] = hak_heap_malloc(heap, size);
    cr_assert_not_null(blocks[n], "%zu-byte block refused after freeing everything (held %zu)",
                       size, ht_stats(heap).held_bytes);
    ht_fill(blocks[n++], size, 1);
  }
  cr_assert_leq(ht_stats(heap).held_bytes, limit);
  for (size_t i = 0; i < n; i++) hak_free(blocks[i]);
  hak_heap_destroy(heap);
}

Test(limit, calloc_realloc_and_aligned_alloc_respect_the_limit) {
  const size_t limit = 4 * HT_MIB;
  hak_heap_config_t cfg = {.limit_bytes = limit};
  hak_heap_t *heap = hak_heap_create(&cfg);
  cr_assert_not_null(heap);
  errno = 0;
  cr_assert_null(hak_heap_calloc(heap, 5, HT_MIB));
  cr_assert_eq(errno, ENOMEM);
  errno = 0;
  cr_assert_null(hak_heap_aligned_alloc(heap, HT_MIB, 5 * HT_MIB));
  cr_assert_eq(errno, ENOMEM);
  unsigned char *p = hak_heap_malloc(heap, 1000);
  cr_assert_not_null(p);
  ht_fill_seq(p, 1000, 5);
  errno = 0;
  cr_assert_null(hak_heap_realloc(heap, p, 5 * HT_MIB));
  cr_assert_eq(errno, ENOMEM);
  cr_assert(ht_check_seq(p, 1000, 5), "refused realloc changed the block");
  cr_assert_eq(hak_heap_of(p), heap);
  p = hak_heap_realloc(heap, p, HT_MIB);
  cr_assert_not_null(p);
  cr_assert(ht_check_seq(p, 1000, 5));
  hak_free(p);
  cr_assert_leq(ht_stats(heap).peak_held_bytes, limit);
  hak_heap_destroy(heap);
}

Test(limit, set_limit_and_get_limit_round_trip) {
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  cr_assert_eq(hak_heap_get_limit(heap), 0);
  cr_assert_eq(ht_stats(heap).limit_bytes, 0);
  cr_assert_eq(hak_heap_set_limit(heap, 10 * HT_MIB), 0);
  cr_assert_eq(hak_heap_get_limit(heap), 10 * HT_MIB);
  cr_assert_eq(ht_stats(heap).limit_bytes, 10 * HT_MIB);
  cr_assert_eq(hak_heap_set_limit(heap, 0), 0);
  cr_assert_eq(hak_heap_get_limit(heap), 0);
  hak_heap_destroy(heap);
}

Test(limit, set_limit_on_null_heap_gives_einval) {
  errno = 0;
  cr_assert_eq(hak_heap_set_limit(NULL, HT_MIB), -1);
  cr_assert_eq(errno, EINVAL);
}

Test(limit, set_limit_applies_to_later_allocations) {
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  const size_t limit = 2 * HT_MIB;
  cr_assert_eq(hak_heap_set_limit(heap, limit), 0);
  size_t n = fill_to_limit(heap, 1024, limit);
  cr_assert_gt(n, 0);
  errno = 0;
  cr_assert_null(hak_heap_malloc(heap, 4 * HT_MIB));
  cr_assert_eq(errno, ENOMEM);
  /* Lifting the limit makes the heap grow again. */
  cr_assert_eq(hak_heap_set_limit(heap, 0), 0);
  void *big = hak_heap_malloc(heap, 4 * HT_MIB);
  cr_assert_not_null(big, "allocation refused after the limit was removed");
  hak_free(big);
  for (size_t i = 0; i < n; i++) hak_free(blocks[i]);
  hak_heap_destroy(heap);
}

Test(limit, limit_below_current_holding_refuses_growth_until_enough_is_freed) {
  hak_heap_t *heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  void *big[4];
  for (int i = 0; i < 4; i++) {
    big[i] = hak_heap_malloc(heap, 2 * HT_MIB);
    cr_assert_not_null(big[i]);
  }
  size_t held = ht_stats(heap).held_bytes;
  cr_assert_geq(held, 8 * HT_MIB);
  cr_assert_eq(hak_heap_set_limit(heap, 5 * HT_MIB), 0, "a limit below the holding is allowed");
  cr_assert_eq(hak_heap_get_limit(heap), 5 * HT_MIB);
  errno = 0;
  cr_assert_null(hak_heap_malloc(heap, 2 * HT_MIB), "growth above a lowered limit");
  cr_assert_eq(errno, ENOMEM);
  for (int i = 0; i < 3; i++) hak_free(big[i]);
  hak_heap_collect(heap, true);
  void *again = hak_heap_malloc(heap, 2 * HT_MIB);
  cr_assert_not_null(again, "not served after freeing below the lowered limit (held %zu)",
                     ht_stats(heap).held_bytes);
  hak_free(again);
  hak_free(big[3]);
  hak_heap_destroy(heap);
}

Test(limit, limit_smaller_than_any_slab_refuses_everything) {
  hak_heap_config_t cfg = {.limit_bytes = 1024};
  hak_heap_t *heap = hak_heap_create(&cfg);
  cr_assert_not_null(heap);
  for (int i = 0; i < 100; i++) {
    errno = 0;
    void *p = hak_heap_malloc(heap, 16);
    if (p == NULL) {
      cr_assert_eq(errno, ENOMEM);
      continue;
    }
    /* Served: then it must fit under the limit. */
    cr_assert_leq(ht_stats(heap).held_bytes, 1024, "held %zu under a 1 KiB limit",
                  ht_stats(heap).held_bytes);
  }
  hak_heap_destroy(heap);
}

Test(limit, other_heaps_are_not_limited) {
  hak_heap_config_t cfg = {.limit_bytes = HT_MIB};
  hak_heap_t *small = hak_heap_create(&cfg);
  hak_heap_t *free_heap = hak_heap_create(NULL);
  cr_assert_not_null(small);
  cr_assert_not_null(free_heap);
  cr_assert_null(hak_heap_malloc(small, 4 * HT_MIB));
  void *p = hak_heap_malloc(free_heap, 4 * HT_MIB);
  cr_assert_not_null(p);
  hak_free(p);
  hak_heap_destroy(small);
  hak_heap_destroy(free_heap);
}

struct limited_worker {
  hak_heap_t *heap;
  int seed;
  int refused;
  int bad_errno;
};

static void *limited_worker_main(void *arg) {
  struct limited_worker *w = arg;
  void **mine = calloc(20000, sizeof(void *));
  int n = 0;
  for (int i = 0; i < 20000 && w->refused < 300; i++) {
    size_t size = (i % 40 == 0) ? 150 * HT_KIB : 16 + (size_t)((i * 131 + w->seed * 7) % 6000);
    errno = 0;
    void *p = hak_heap_malloc(w->heap, size);
    if (p == NULL) {
      w->refused++;
      if (errno != ENOMEM) w->bad_errno++;
      if (n > 0) hak_free(mine[--n]); /* make room and go on */
      continue;
    }
    mine[n++] = p;
  }
  for (int i = 0; i < n; i++) hak_free(mine[i]);
  free(mine);
  return NULL;
}

Test(limit, threads_allocating_at_once_never_take_the_heap_above_the_limit) {
  enum { T = 4 };
  const size_t limit = 8 * HT_MIB;
  hak_heap_config_t cfg = {.limit_bytes = limit};
  hak_heap_t *heap = hak_heap_create(&cfg);
  cr_assert_not_null(heap);
  struct limited_worker w[T];
  pthread_t t[T];
  for (int i = 0; i < T; i++) {
    w[i] = (struct limited_worker){.heap = heap, .seed = i};
    cr_assert_eq(pthread_create(&t[i], NULL, limited_worker_main, &w[i]), 0);
  }
  int refused = 0;
  for (int i = 0; i < T; i++) {
    pthread_join(t[i], NULL);
    refused += w[i].refused;
    cr_assert_eq(w[i].bad_errno, 0, "refusals without ENOMEM");
  }
  cr_assert_gt(refused, 0);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_leq(s.peak_held_bytes, limit, "peak_held_bytes %zu above the limit %zu with %d threads",
                s.peak_held_bytes, limit, T);
  cr_assert_eq(s.live_blocks, 0);
  hak_heap_destroy(heap);
}

/* A freed large mapping the heap keeps for reuse counts as held; at the limit it makes way for
** slabs (and medium spans) before they fail. */
Test(limit, cached_large_mappings_give_way_to_slabs_at_the_limit) {
  hak_heap_t *h = hak_heap_create(&(hak_heap_config_t){ .limit_bytes = 4 * HT_MIB });
  void *big = hak_heap_malloc(h, 3 * HT_MIB);
  cr_assert_not_null(big);
  hak_free(big);
  cr_assert_eq(ht_stats(h).held_bytes, 3 * HT_MIB, "the mapping stays cached");
  void *m[3];
  for (int i = 0; i < 3; i++) {
    m[i] = hak_heap_malloc(h, 500000); /* medium: 8 slabs each */
    cr_assert_not_null(m[i], "medium block %d failed at the limit", i);
  }
  hak_heap_stats_t s = ht_stats(h);
  cr_assert_eq(s.held_bytes, 3 * 8 * 64 * HT_KIB, "held %zu: the cached mapping was unmapped",
               s.held_bytes);
  cr_assert_leq(s.peak_held_bytes, 4 * HT_MIB);
  for (int i = 0; i < 3; i++) hak_free(m[i]);
  hak_heap_destroy(h);
}
