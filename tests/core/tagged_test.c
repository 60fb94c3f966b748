/*
** Tagged blocks (hak_heap_malloc_tagged, hak_heap_realloc_tagged, hak_free_tagged): the tag byte
** sits at p[size] exactly when the block is longer than size, so a tag other than 0 takes the
** class of size + 1 and tag 0 takes the class of size (a class-size block has no byte). The tag
** survives every resize (in place, moved, medium, large, a shrink that cannot move) and comes
** back from the free, on the owner's thread and on another; the caller's per-tag counts are
** exact after every call; NULL, double frees and impossible sizes give -1 / NULL with the
** documented report or errno.
*/
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "test_util.h"

HT_HEAP_SUITE(tagged, 30);

Test(tagged, a_class_size_with_tag_0_takes_exactly_its_class) {
  for (size_t n = 16; n <= 1024; n += 16) {
    if (hak_good_size(n) != n) continue;
    unsigned char *p = hak_heap_malloc_tagged(heap, n, 0, NULL, 0);
    cr_assert_not_null(p);
    cr_assert_eq(hak_usable_size(p), n, "n %zu", n);
    ht_fill(p, n, 0xa5);
    cr_assert_eq(hak_free_tagged(p, n, NULL, 0), 0, "n %zu", n);
  }
}

Test(tagged, a_tag_takes_the_byte_after_the_size) {
  for (size_t n = 1; n <= 40000; n = n < 64 ? n + 1 : n * 3 / 2) {
    for (unsigned tag = 0; tag < 256; tag += 85) {
      unsigned char *p = hak_heap_malloc_tagged(heap, n, (unsigned char)tag, NULL, 0);
      cr_assert_not_null(p);
      size_t want = hak_good_size(tag ? n + 1 : n);
      cr_assert_eq(hak_usable_size(p), want, "n %zu tag %u", n, tag);
      if (want > n) cr_assert_eq(p[n], tag, "n %zu tag %u", n, tag);
      memset(p, 0x5a, n); /* the caller's bytes never reach the tag */
      cr_assert_eq(hak_free_tagged(p, n, NULL, 0), (int)tag, "n %zu tag %u", n, tag);
    }
  }
}

Test(tagged, large_blocks_carry_their_tag) {
  size_t n = 3 * HT_MIB + 5;
  unsigned char *p = hak_heap_malloc_tagged(heap, n, 200, NULL, 0);
  cr_assert_not_null(p);
  cr_assert_eq(p[n], 200);
  cr_assert_eq(hak_free_tagged(p, n, NULL, 0), 200);
  p = hak_heap_malloc_tagged(heap, 2 * HT_MIB, 0, NULL, 0);
  cr_assert_not_null(p);
  cr_assert_eq(hak_free_tagged(p, 2 * HT_MIB, NULL, 0), 0);
}

/* Grow and shrink through every kind of resize; the tag, the contents and the counts follow. */
Test(tagged, resizes_keep_the_tag_the_contents_and_the_counts) {
  static const size_t sizes[] = { 16, 32, 17, 100, 60, 1000, 10, 33000, 40000, 300000, 20,
                                  2 * HT_MIB + 3, 1500000, 5 * HT_MIB, 48, 1 };
  hak_tag_count_t c[10] = { { 0, 0 } };
  unsigned char *p = hak_heap_malloc_tagged(heap, 16, 9, c, 10);
  unsigned char *other = hak_heap_malloc_tagged(heap, 70, 2, c, 10);
  size_t n = 16;
  ht_fill_seq(p, n, 7);
  for (size_t i = 1; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t m = sizes[i];
    unsigned char *q = hak_heap_realloc_tagged(heap, p, n, m, c, 10);
    cr_assert_not_null(q, "%zu -> %zu", n, m);
    cr_assert(ht_check_seq(q, n < m ? n : m, 7), "%zu -> %zu: contents", n, m);
    cr_assert_gt(hak_usable_size(q), m, "%zu -> %zu", n, m);
    cr_assert_eq(q[m], 9, "%zu -> %zu", n, m);
    cr_assert_eq(c[9].bytes, m, "%zu -> %zu: bytes of tag 9", n, m);
    cr_assert_eq(c[9].count, 1, "%zu -> %zu", n, m);
    cr_assert_eq(c[2].bytes, 70);
    ht_fill_seq(q, m, 7);
    p = q;
    n = m;
  }
  cr_assert_eq(hak_free_tagged(p, n, c, 10), 9);
  cr_assert_eq(hak_free_tagged(other, 70, c, 10), 2);
  for (int t = 0; t < 10; t++) cr_assert(c[t].bytes == 0 && c[t].count == 0, "tag %d", t);
}

/* Counts on the owner's thread and another's, for every tag below ntags; a tag past ntags is
** refused at allocation and not counted at a free. */
static void *free_all_there(void *arg) {
  void **v = arg;
  hak_tag_count_t *c = v[0];
  for (int i = 1; i <= 40; i++) (void)hak_free_tagged(v[i], (size_t)i * 10, c, 4);
  return NULL;
}

Test(tagged, counts_are_exact_on_any_thread) {
  hak_tag_count_t c[4] = { { 0, 0 } };
  void *v[41] = { c };
  size_t want_bytes[4] = { 0 }, want_count[4] = { 0 };
  for (int i = 1; i <= 40; i++) {
    v[i] = hak_heap_malloc_tagged(heap, (size_t)i * 10, (unsigned char)(i % 4), c, 4);
    cr_assert_not_null(v[i]);
    want_bytes[i % 4] += (size_t)i * 10;
    want_count[i % 4]++;
  }
  for (int t = 0; t < 4; t++) {
    cr_assert_eq(c[t].bytes, want_bytes[t], "tag %d", t);
    cr_assert_eq(c[t].count, want_count[t], "tag %d", t);
  }
  errno = 0;
  cr_assert_null(hak_heap_malloc_tagged(heap, 8, 4, c, 4));
  cr_assert_eq(errno, EINVAL);
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, free_all_there, v), 0);
  pthread_join(th, NULL);
  for (int t = 0; t < 4; t++) cr_assert(c[t].bytes == 0 && c[t].count == 0, "tag %d", t);
  /* A block tagged 7 without counts, freed with counts of 4 tags: freed, not counted. */
  void *p = hak_heap_malloc_tagged(heap, 30, 7, NULL, 0);
  cr_assert_eq(hak_free_tagged(p, 30, c, 4), 7);
  for (int t = 0; t < 4; t++) cr_assert(c[t].bytes == 0 && c[t].count == 0, "tag %d", t);
  hak_heap_drain(heap);
  cr_assert_eq(ht_stats(heap).live_bytes, 0);
}

Test(tagged, a_small_shrink_or_grow_within_the_class_stays_in_place) {
  unsigned char *p = hak_heap_malloc_tagged(heap, 100, 3, NULL, 0); /* class 112 */
  cr_assert_eq(hak_usable_size(p), 112);
  cr_assert_eq(hak_heap_realloc_tagged(heap, p, 100, 110, NULL, 0), p);
  cr_assert_eq(hak_heap_realloc_tagged(heap, p, 110, 60, NULL, 0), p);
  cr_assert_eq(p[60], 3);
  cr_assert_eq(hak_free_tagged(p, 60, NULL, 0), 3);
  /* Tag 0 of a class size: growing by a byte needs the next class. */
  p = hak_heap_malloc_tagged(heap, 64, 0, NULL, 0);
  cr_assert_eq(hak_usable_size(p), 64);
  unsigned char *q = hak_heap_realloc_tagged(heap, p, 64, 65, NULL, 0);
  cr_assert_neq(q, p);
  cr_assert_eq(hak_usable_size(q), hak_good_size(65));
  cr_assert_eq(q[65], 0);
  cr_assert_eq(hak_free_tagged(q, 65, NULL, 0), 0);
}

/* At the heap's limit a shrink that should move cannot: it stays, with its tag. */
Test(tagged, a_shrink_never_fails) {
  hak_heap_t *h = hak_heap_create(NULL);
  hak_tag_count_t c[64] = { { 0, 0 } };
  unsigned char *p = hak_heap_malloc_tagged(h, 3000, 42, c, 64);
  cr_assert_not_null(p);
  hak_heap_stats_t st = ht_stats(h);
  cr_assert_eq(hak_heap_set_limit(h, st.held_bytes), 0);
  cr_assert_null(hak_heap_malloc(h, 8), "the limit leaves no room for a new class");
  errno = 0;
  cr_assert_null(hak_heap_realloc_tagged(h, p, 3000, 6000, c, 64));
  cr_assert_eq(errno, ENOMEM);
  cr_assert_eq(c[42].bytes, 3000, "a failed growth counts nothing");
  cr_assert_eq(hak_heap_realloc_tagged(h, p, 3000, 8, c, 64), p);
  cr_assert_eq(p[8], 42);
  cr_assert_eq(c[42].bytes, 8);
  cr_assert_eq(c[42].count, 1);
  cr_assert_eq(hak_free_tagged(p, 8, c, 64), 42);
  cr_assert_eq(c[42].count, 0);
  hak_heap_destroy(h);
}

static void *free_there(void *arg) {
  void **a = arg;
  a[1] = (void *)(intptr_t)hak_free_tagged(a[0], 24, NULL, 0);
  return NULL;
}

Test(tagged, a_free_on_another_thread_returns_the_tag) {
  void *a[2] = { hak_heap_malloc_tagged(heap, 24, 77, NULL, 0), NULL };
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, free_there, a), 0);
  pthread_join(t, NULL);
  cr_assert_eq((intptr_t)a[1], 77);
  hak_heap_drain(heap);
  cr_assert_eq(ht_stats(heap).live_bytes, 0);
}

Test(tagged, null_double_free_and_impossible_sizes) {
  cr_assert_eq(hak_free_tagged(NULL, 8, NULL, 0), -1);
  cr_assert_eq(errlog.calls, 0);
  unsigned char *p = hak_heap_malloc_tagged(heap, 40, 1, NULL, 0);
  cr_assert_eq(hak_free_tagged(p, 40, NULL, 0), 1);
  cr_assert_eq(hak_free_tagged(p, 40, NULL, 0), -1);
  cr_assert_eq(errlog.calls, 1);
  cr_assert_eq(errlog.err, HAK_ERR_DOUBLE_FREE);
  errno = 0;
  cr_assert_null(hak_heap_malloc_tagged(heap, SIZE_MAX, 1, NULL, 0));
  cr_assert_eq(errno, ENOMEM);
  errno = 0;
  cr_assert_null(hak_heap_malloc_tagged(heap, SIZE_MAX, 0, NULL, 0));
  cr_assert_eq(errno, ENOMEM);
  p = hak_heap_malloc_tagged(heap, 40, 5, NULL, 0);
  errno = 0;
  cr_assert_null(hak_heap_realloc_tagged(heap, p, 40, SIZE_MAX, NULL, 0));
  cr_assert_eq(errno, ENOMEM);
  cr_assert_eq(p[40], 5, "a failed growth leaves the block as it was");
  cr_assert_null(hak_heap_realloc_tagged(heap, p, 40, 0, NULL, 0), "size 0 frees");
  cr_assert_eq(ht_stats(heap).live_bytes, 0);
  p = hak_heap_realloc_tagged(heap, NULL, 0, 48, NULL, 0);
  cr_assert_not_null(p);
  cr_assert_eq(hak_usable_size(p), 48);
  cr_assert_eq(hak_free_tagged(p, 48, NULL, 0), 0);
  cr_assert_eq(errlog.calls, 1);
}
