/*
** Medium blocks (above 32 KiB, up to 1 MiB): spans of whole 64 KiB slabs in the heap's
** superslabs, owned by thread caches like small slabs: 64 KiB steps to 512 KiB, then one class
** of 1 MiB (16 slabs) for everything above. Every class: usable size, alignment,
** calloc zeroing of a reused span, realloc (shrink in place, growth, between heaps), limits
** counted in whole spans, exact stats, reset and destroy, frees by other threads counted as
** remote frees, and the errors for interior pointers and double frees.
*/
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "test_util.h"

#define SPAN ((size_t)64 * 1024)

HT_HEAP_SUITE(medium, 60);

/* Slabs of the span a request of n bytes gets: its 64 KiB multiple up to 512 KiB, 16 above. */
static size_t spans_of(size_t n) {
  size_t k = (n + SPAN - 1) / SPAN;
  return k > 8 ? 16 : k;
}

Test(medium, every_class_usable_size_alignment_and_stats) {
  static void *p[2 * 16];
  size_t n = 0, live = 0;
  for (size_t k = 1; k <= 16; k++) {
    size_t sizes[2] = { (k - 1) * SPAN + 1, k * SPAN }; /* both ends of class k */
    if (k == 1) sizes[0] = HT_SMALL_MAX + 1;
    for (int j = 0; j < 2; j++) {
      void *q = hak_heap_malloc(heap, sizes[j]);
      cr_assert_not_null(q, "malloc(%zu)", sizes[j]);
      cr_assert_eq((uintptr_t)q % SPAN, 0, "malloc(%zu) = %p is not 64 KiB aligned", sizes[j], q);
      cr_assert_eq(hak_usable_size(q), spans_of(sizes[j]) * SPAN, "usable of malloc(%zu)",
                   sizes[j]);
      cr_assert_eq(hak_heap_of(q), heap);
      ht_fill(q, sizes[j], (uint8_t)(n + 1));
      live += spans_of(sizes[j]) * SPAN;
      p[n++] = q;
    }
  }
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.live_blocks, n);
  cr_assert_eq(s.live_bytes, live);
  cr_assert_eq(s.alloc_count, n);
  cr_assert_eq(s.large_count, 0, "medium blocks are not large blocks");
  cr_assert_eq(s.held_bytes, live, "held %zu: exactly the spans, %zu", s.held_bytes, live);
  for (size_t i = 0; i < n; i++) {
    size_t k = i / 2 + 1;
    size_t size = i % 2 ? k * SPAN : (k == 1 ? HT_SMALL_MAX + 1 : (k - 1) * SPAN + 1);
    cr_assert(ht_check(p[i], size, (uint8_t)(i + 1)), "block %zu overwritten", i);
    hak_free(p[i]);
  }
  s = ht_stats(heap);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.live_bytes, 0);
  cr_assert_eq(s.free_count, n);
  cr_assert_eq(errlog.calls, 0);
}

Test(medium, a_freed_span_is_reused_without_a_new_mapping_and_calloc_zeroes_it) {
  void *a = hak_heap_malloc(heap, 300000);
  cr_assert_not_null(a);
  memset(a, 0xA5, 300000);
  hak_free(a);
  size_t held = ht_stats(heap).held_bytes;
  unsigned char *b = hak_heap_calloc(heap, 3, 100000);
  cr_assert_eq((void *)b, a, "the thread's current span of the class comes back");
  cr_assert(ht_all_zero(b, 300000), "calloc of a reused span is zero");
  cr_assert_eq(ht_stats(heap).held_bytes, held);
  hak_free(b);
}

Test(medium, realloc_shrink_stays_growth_keeps_contents) {
  unsigned char *p = hak_heap_malloc(heap, 700000);
  cr_assert_not_null(p);
  ht_fill_seq(p, 700000, 7);
  cr_assert_eq(hak_heap_realloc(heap, p, 100000), p, "a medium block never moves to shrink");
  cr_assert_eq(hak_heap_realloc(heap, p, 100), p);
  cr_assert_eq(hak_usable_size(p), spans_of(700000) * SPAN);
  unsigned char *q = hak_heap_realloc(heap, p, 1000000);
  cr_assert_not_null(q);
  cr_assert(ht_check_seq(q, 100, 7), "contents kept");
  ht_fill_seq(q, 1000000, 9);
  unsigned char *r = hak_heap_realloc(heap, q, 3 * HT_MIB); /* to a large block */
  cr_assert_not_null(r);
  cr_assert(ht_check_seq(r, 1000000, 9));
  hak_free(r);
  cr_assert_eq(ht_stats(heap).live_blocks, 0);
  cr_assert_eq(errlog.calls, 0);
}

Test(medium, realloc_into_another_heap_moves_the_block) {
  hak_heap_t *other = hak_heap_create(NULL);
  void *p = hak_heap_malloc(heap, 200000);
  ht_fill(p, 200000, 3);
  void *q = hak_heap_realloc(other, p, 400000);
  cr_assert_not_null(q);
  cr_assert_eq(hak_heap_of(q), other);
  cr_assert(ht_check(q, 200000, 3));
  cr_assert_eq(ht_stats(heap).live_blocks, 0);
  cr_assert_eq(ht_stats(other).live_blocks, 1);
  hak_free(q);
  hak_heap_destroy(other);
}

Test(medium, limit_counts_whole_spans) {
  hak_heap_t *h = hak_heap_create(&(hak_heap_config_t){ .limit_bytes = HT_MIB });
  void *p[17];
  int n = 0;
  while (n < 17 && (p[n] = hak_heap_malloc(h, 40000)) != NULL) n++;
  cr_assert_eq(n, 16, "a 1 MiB limit holds 16 spans of 64 KiB, got %d", n);
  cr_assert_eq(errno, ENOMEM);
  cr_assert_eq(ht_stats(h).held_bytes, HT_MIB);
  errno = 0;
  cr_assert_null(hak_heap_malloc(h, 600000));
  cr_assert_eq(errno, ENOMEM);
  for (int i = 0; i < n; i++) hak_free(p[i]);
  void *big = hak_heap_malloc(h, HT_MIB); /* 16 slabs in a row: after the frees, room again */
  cr_assert_not_null(big);
  hak_free(big);
  hak_heap_destroy(h);
}

Test(medium, aligned_up_to_a_slab_comes_from_the_medium_classes) {
  void *p = hak_heap_aligned_alloc(heap, SPAN, 100);
  cr_assert_not_null(p);
  cr_assert_eq((uintptr_t)p % SPAN, 0);
  void *q = hak_heap_aligned_alloc(heap, 32768, 100000);
  cr_assert_eq((uintptr_t)q % 32768, 0);
  cr_assert_eq(ht_stats(heap).large_count, 0);
  cr_assert_eq(hak_usable_size(p), SPAN);
  cr_assert_eq(hak_usable_size(q), 2 * SPAN);
  hak_free(p);
  hak_free(q);
}

Test(medium, reset_and_destroy_release_medium_blocks) {
  void *p[40];
  for (int i = 0; i < 40; i++) p[i] = hak_heap_malloc(heap, 50000 + (size_t)i * 20000);
  cr_assert_eq(ht_stats(heap).live_blocks, 40);
  hak_heap_reset(heap);
  cr_assert_eq(ht_stats(heap).live_blocks, 0);
  cr_assert_eq(ht_stats(heap).live_bytes, 0);
  cr_assert_null(hak_heap_of(p[0]));
  cr_assert_null(ht_heap_usable(heap));
  for (int i = 0; i < 40; i++) p[i] = hak_heap_malloc(heap, 50000 + (size_t)i * 20000);
  cr_assert_eq(ht_stats(heap).live_blocks, 40);
}

struct frees {
  void **p;
  int n;
};

static void *free_them(void *arg) {
  struct frees *f = arg;
  for (int i = 0; i < f->n; i++) hak_free(f->p[i]);
  hak_thread_post_remote();
  return NULL;
}

Test(medium, frees_by_another_thread_are_remote_and_counted_exactly) {
  enum { N = 48 };
  void *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = hak_heap_malloc(heap, 40000 + (size_t)(i % 12) * 80000);
    ht_fill(p[i], 40000, (uint8_t)i);
  }
  struct frees f = { p, N };
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, free_them, &f), 0);
  pthread_join(t, NULL);
  cr_assert_eq(hak_heap_drain(heap), N, "the owner drains each remote free once");
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.remote_free_count, N);
  cr_assert_eq(s.free_count, N);
  cr_assert_eq(s.live_blocks, 0);
  void *again = hak_heap_malloc(heap, 40000);
  cr_assert_not_null(again);
  hak_free(again);
  cr_assert_eq(errlog.calls, 0);
}

Test(medium, interior_pointers_and_double_frees_are_reported) {
  unsigned char *p = hak_heap_malloc(heap, 300000); /* a span of 5 slabs */
  cr_assert_not_null(p);
  size_t offs[] = { 16, 4096, SPAN - 16, SPAN, 2 * SPAN + 48, 299984 };
  for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
    ht_errlog_clear(&errlog);
    cr_assert_eq(hak_usable_size(p + offs[i]), 0);
    hak_free(p + offs[i]);
    cr_assert_eq(errlog.calls, 1, "offset %zu", offs[i]);
    cr_assert_eq(errlog.err, HAK_ERR_INTERIOR_POINTER, "offset %zu: error %d", offs[i],
                 errlog.err);
    cr_assert(ht_msg_names_pointer(errlog.msg, p + offs[i]));
  }
  ht_errlog_clear(&errlog);
  hak_free(p);
  cr_assert_eq(errlog.calls, 0);
  hak_free(p);
  cr_assert_eq(errlog.calls, 1);
  cr_assert_eq(errlog.err, HAK_ERR_DOUBLE_FREE);
  cr_assert_eq(ht_stats(heap).free_count, 1);
}

Test(medium, realloc_grows_in_place_over_free_slabs_and_moves_when_they_are_taken) {
  unsigned char *p = hak_heap_malloc(heap, 100000); /* 2 slabs, nothing after it yet */
  cr_assert_not_null(p);
  ht_fill_seq(p, 100000, 5);
  size_t held = ht_stats(heap).held_bytes;
  unsigned char *q = hak_heap_realloc(heap, p, 900000);
  cr_assert_eq(q, p, "growth over free slabs stays in place");
  cr_assert_eq(hak_usable_size(q), 16 * SPAN, "above 512 KiB: the 1 MiB class");
  cr_assert(ht_check_seq(q, 100000, 5));
  ht_fill_seq(q, 900000, 6);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.held_bytes, held + 14 * SPAN);
  cr_assert_eq(s.live_bytes, 16 * SPAN);
  cr_assert_eq(s.live_blocks, 1);
  cr_assert_eq(s.alloc_count, 1, "growth in place is no allocation");
  /* A neighbour right after it: the next growth must move. */
  void *next = hak_heap_malloc(heap, 40000);
  cr_assert_eq((unsigned char *)next, q + 16 * SPAN, "the next span starts right after it");
  cr_assert_eq(hak_heap_realloc(heap, q, HT_MIB), q, "within its 1 MiB: in place");
  unsigned char *r = hak_heap_realloc(heap, q, HT_MIB + 1); /* a large block now */
  cr_assert_not_null(r);
  cr_assert_neq(r, q, "moved");
  cr_assert(ht_check_seq(r, 900000, 6));
  hak_free(next);
  hak_free(r);
  s = ht_stats(heap);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.live_bytes, 0);
  /* The grown span went back whole: a 1 MiB block fits where it was. */
  cr_assert_eq(errlog.calls, 0);
}

Test(medium, a_grown_block_freed_by_another_thread_is_counted_once) {
  void *p = hak_heap_malloc(heap, 70000);
  p = hak_heap_realloc(heap, p, 500000);
  cr_assert_eq(hak_usable_size(p), 8 * SPAN);
  struct frees f = { &p, 1 };
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, free_them, &f), 0);
  pthread_join(t, NULL);
  cr_assert_eq(hak_heap_drain(heap), 1);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.remote_free_count, 1);
  cr_assert_eq(s.live_bytes, 0);
  cr_assert_eq(s.live_blocks, 0);
}

/* Issue 11: a thread with the smallest stack POSIX allows (16 KiB) allocates every kind of
** block: nothing in hakmem's paths needs more (secure builds shuffle carving on the stack). */
static void *small_stack_worker(void *arg) {
  (void)arg;
  static const size_t sizes[] = { 16, 100, 1000, 16000, 32768, 40000, 300000, HT_MIB, 3 * HT_MIB };
  for (int round = 0; round < 20; round++)
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      void *p = hak_heap_malloc(heap, sizes[i]);
      if (!p) return (void *)1;
      ((volatile unsigned char *)p)[sizes[i] - 1] = 1;
      hak_free(p);
    }
  return NULL;
}

Test(medium, a_thread_with_a_16_KiB_stack_allocates_every_size) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  cr_assert_eq(pthread_attr_setstacksize(&attr, 16384), 0);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, &attr, small_stack_worker, NULL), 0);
  void *r = (void *)2;
  pthread_join(t, &r);
  cr_assert_null(r);
  pthread_attr_destroy(&attr);
  cr_assert_eq(ht_stats(heap).live_blocks, 0);
}
