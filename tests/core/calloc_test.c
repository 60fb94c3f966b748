/*
** calloc: the requested bytes are zero for every class and for large blocks, also when the
** blocks reuse memory written before (freed here, freed by another thread, or reset);
** count*size overflow and sizes near SIZE_MAX give NULL with ENOMEM.
*/
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
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

TestSuite(calloc, .init = setup, .fini = teardown, .timeout = 30);

static const size_t sizes[] = {1,     8,     15,    16,    17,     31,     32,     48,
                               64,    100,   128,   255,   256,    500,    1000,   1024,
                               2000,  4096,  5000,  8192,  12000,  16384,  24576,  32768,
                               32769, 40000, 65536, 100000, 1 << 20, (1 << 20) + 5, 5 << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])

Test(calloc, fresh_blocks_of_every_size_are_zeroed) {
  for (size_t size = 0; size <= 33000; size += 13) {
    unsigned char *p = hak_heap_calloc(heap, 1, size);
    cr_assert_not_null(p, "calloc(1, %zu) returned NULL", size);
    cr_assert_eq((uintptr_t)p % 16, 0);
    cr_assert(ht_all_zero(p, size), "calloc(1, %zu) = %p is not zeroed", size, (void *)p);
    hak_free(p);
  }
  for (size_t i = 0; i < NSIZES; i++) {
    unsigned char *p = hak_heap_calloc(heap, sizes[i] / 4 + 1, 4);
    cr_assert_not_null(p);
    cr_assert(ht_all_zero(p, (sizes[i] / 4 + 1) * 4), "calloc(%zu, 4) not zeroed", sizes[i] / 4 + 1);
    hak_free(p);
  }
}

static int reps(size_t size, int small_reps) {
  return size > 64 * HT_KIB ? 3 : small_reps;
}

Test(calloc, reused_dirty_blocks_are_zeroed) {
  for (size_t i = 0; i < NSIZES; i++) {
    void *p[16];
    const int N = reps(sizes[i], 16);
    for (int k = 0; k < N; k++) {
      p[k] = hak_heap_malloc(heap, sizes[i]);
      cr_assert_not_null(p[k]);
      ht_fill(p[k], hak_usable_size(p[k]), 0xA5);
    }
    for (int k = 0; k < N; k++) hak_free(p[k]);
    for (int k = 0; k < N; k++) {
      p[k] = hak_heap_calloc(heap, 1, sizes[i]);
      cr_assert_not_null(p[k]);
      cr_assert(ht_all_zero(p[k], sizes[i]), "calloc(1, %zu) = %p returned dirty memory",
                sizes[i], p[k]);
    }
    for (int k = 0; k < N; k++) hak_free(p[k]);
  }
}

struct batch {
  void **p;
  int n;
};

static void *free_batch(void *arg) {
  struct batch *b = arg;
  for (int i = 0; i < b->n; i++) hak_free(b->p[i]);
  return NULL;
}

Test(calloc, blocks_coming_back_through_remote_frees_are_zeroed) {
  enum { N = 2000 };
  static void *p[N];
  static const size_t remote_sizes[] = {16, 64, 200, 1024, 5000, 30000};
  for (size_t k = 0; k < sizeof remote_sizes / sizeof remote_sizes[0]; k++) {
    size_t size = remote_sizes[k];
    int n = size > 4096 ? 200 : N;
    for (int i = 0; i < n; i++) {
      p[i] = hak_heap_malloc(heap, size);
      cr_assert_not_null(p[i]);
      ht_fill(p[i], hak_usable_size(p[i]), 0xC7);
    }
    struct batch b = {p, n};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, free_batch, &b), 0);
    pthread_join(t, NULL);
    for (int i = 0; i < n; i++) {
      p[i] = hak_heap_calloc(heap, size, 1);
      cr_assert_not_null(p[i]);
      cr_assert(ht_all_zero(p[i], size), "calloc(%zu, 1) = %p after remote frees is dirty", size,
                p[i]);
    }
    for (int i = 0; i < n; i++) hak_free(p[i]);
  }
}

Test(calloc, blocks_after_reset_are_zeroed) {
  for (size_t i = 0; i < NSIZES; i++) {
    for (int k = 0; k < reps(sizes[i], 64); k++) {
      void *p = hak_heap_malloc(heap, sizes[i]);
      cr_assert_not_null(p);
      ht_fill(p, hak_usable_size(p), 0x5A);
    }
  }
  hak_heap_reset(heap);
  for (size_t i = 0; i < NSIZES; i++) {
    for (int k = 0; k < reps(sizes[i], 64); k++) {
      void *p = hak_heap_calloc(heap, sizes[i], 1);
      cr_assert_not_null(p);
      cr_assert(ht_all_zero(p, sizes[i]), "calloc(%zu, 1) after reset returned dirty memory",
                sizes[i]);
    }
  }
}

Test(calloc, zero_count_or_zero_size_gives_unique_freeable_block) {
  void *a = hak_heap_calloc(heap, 0, 16);
  void *b = hak_heap_calloc(heap, 16, 0);
  void *c = hak_heap_calloc(heap, 0, 0);
  cr_assert_not_null(a);
  cr_assert_not_null(b);
  cr_assert_not_null(c);
  cr_assert(a != b && b != c && a != c, "calloc with a zero factor returned a shared block");
  hak_free(a);
  hak_free(b);
  hak_free(c);
  cr_assert_eq(ht_stats(heap).live_blocks, 0);
}

Test(calloc, count_times_size_overflow_gives_null_and_enomem) {
  static const size_t pairs[][2] = {
      {SIZE_MAX, 2},
      {2, SIZE_MAX},
      {SIZE_MAX, SIZE_MAX},
      {SIZE_MAX / 2 + 1, 2},
      {(size_t)1 << 32, (size_t)1 << 32},
      {((size_t)1 << 32) + 1, (size_t)1 << 32},
      {SIZE_MAX / 16 + 1, 16},
      {3, SIZE_MAX / 3 + 1},
  };
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    errno = 0;
    void *p = hak_heap_calloc(heap, pairs[i][0], pairs[i][1]);
    cr_assert_null(p, "calloc(%#zx, %#zx) returned %p", pairs[i][0], pairs[i][1], p);
    cr_assert_eq(errno, ENOMEM, "calloc(%#zx, %#zx): errno %d, want ENOMEM", pairs[i][0],
                 pairs[i][1], errno);
  }
  const char *fail = ht_heap_usable(heap);
  cr_assert_null(fail, "heap unusable after refused callocs: %s", fail);
}

Test(calloc, products_near_size_max_give_null_and_enomem) {
  static const size_t pairs[][2] = {
      {1, SIZE_MAX}, {SIZE_MAX, 1}, {SIZE_MAX / 2, 2}, {(size_t)1 << 31, (size_t)1 << 31},
  };
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    errno = 0;
    void *p = hak_heap_calloc(heap, pairs[i][0], pairs[i][1]);
    cr_assert_null(p, "calloc(%#zx, %#zx) returned %p", pairs[i][0], pairs[i][1], p);
    cr_assert_eq(errno, ENOMEM);
  }
}
