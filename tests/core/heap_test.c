/*
** Heap creation: NULL and zeroed configs give default heaps named "heap"; names are copied
** (first 31 bytes); many heaps can exist and be used by one thread or by several threads at
** once, each heap keeping its own blocks and counts.
*/
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "test_util.h"

TestSuite(heap, .timeout = 30);

Test(heap, null_and_zeroed_config_give_default_heaps) {
  hak_heap_config_t zero;
  memset(&zero, 0, sizeof zero);
  hak_heap_t *a = hak_heap_create(NULL);
  hak_heap_t *b = hak_heap_create(&zero);
  cr_assert_not_null(a);
  cr_assert_not_null(b);
  cr_assert_neq(a, b);
  cr_assert_neq(a, hak_default_heap());
  cr_assert_str_eq(hak_heap_name(a), "heap");
  cr_assert_str_eq(hak_heap_name(b), "heap");
  cr_assert_eq(hak_heap_get_limit(a), 0);
  hak_heap_destroy(a);
  hak_heap_destroy(b);
}

Test(heap, name_is_copied_and_truncated_to_31_bytes) {
  char name[64];
  strcpy(name, "request-arena");
  hak_heap_config_t cfg = {.name = name};
  hak_heap_t *h = hak_heap_create(&cfg);
  cr_assert_not_null(h);
  memset(name, 'x', sizeof name - 1);
  name[sizeof name - 1] = '\0';
  cr_assert_str_eq(hak_heap_name(h), "request-arena", "the name was not copied");
  hak_heap_t *long_name = hak_heap_create(&cfg);
  cr_assert_not_null(long_name);
  cr_assert_eq(strlen(hak_heap_name(long_name)), 31);
  cr_assert_eq(strncmp(hak_heap_name(long_name), name, 31), 0);
  hak_heap_destroy(h);
  hak_heap_destroy(long_name);
}

Test(heap, heaps_keep_their_own_blocks) {
  hak_heap_t *a = hak_heap_create(NULL);
  hak_heap_t *b = hak_heap_create(NULL);
  void *pa = hak_heap_malloc(a, 64);
  void *pb = hak_heap_malloc(b, 64);
  cr_assert_eq(hak_heap_of(pa), a);
  cr_assert_eq(hak_heap_of(pb), b);
  hak_heap_destroy(a);
  cr_assert_eq(hak_heap_of(pb), b, "destroying one heap disturbed another");
  ht_fill(pb, 64, 1);
  hak_free(pb);
  cr_assert_eq(ht_stats(b).live_blocks, 0);
  hak_heap_destroy(b);
}

Test(heap, a_thread_can_use_a_thousand_heaps) {
  enum { HEAPS = 1000 };
  static hak_heap_t *heaps[HEAPS];
  static void *blocks[HEAPS][4];
  for (int h = 0; h < HEAPS; h++) {
    heaps[h] = hak_heap_create(NULL);
    cr_assert_not_null(heaps[h], "heap %d", h);
    for (int i = 0; i < 4; i++) {
      blocks[h][i] = hak_heap_malloc(heaps[h], 16 + (size_t)(h % 7) * 100);
      cr_assert_not_null(blocks[h][i]);
      ht_fill(blocks[h][i], 16, (uint8_t)h);
    }
  }
  for (int h = 0; h < HEAPS; h++) {
    for (int i = 0; i < 4; i++) {
      cr_assert_eq(hak_heap_of(blocks[h][i]), heaps[h]);
      cr_assert(ht_check(blocks[h][i], 16, (uint8_t)h));
      hak_free(blocks[h][i]);
    }
    hak_heap_stats_t s = ht_stats(heaps[h]);
    cr_assert_eq(s.alloc_count, 4, "heap %d alloc_count %llu", h, (unsigned long long)s.alloc_count);
    cr_assert_eq(s.live_blocks, 0, "heap %d live %zu", h, s.live_blocks);
  }
  for (int h = 0; h < HEAPS; h++) hak_heap_destroy(heaps[h]);
}

enum { SHARED_HEAPS = 300, USERS = 4 };
static hak_heap_t *shared_heaps[SHARED_HEAPS];

static void *use_every_heap(void *arg) {
  int self = (int)(intptr_t)arg;
  void *p[SHARED_HEAPS];
  for (int round = 0; round < 5; round++) {
    for (int h = 0; h < SHARED_HEAPS; h++) {
      p[h] = hak_heap_malloc(shared_heaps[(h + self * 37) % SHARED_HEAPS], 32 + (size_t)h);
      if (p[h] == NULL || hak_heap_of(p[h]) != shared_heaps[(h + self * 37) % SHARED_HEAPS])
        return (void *)1;
    }
    for (int h = 0; h < SHARED_HEAPS; h++) hak_free(p[(h * 7) % SHARED_HEAPS]);
  }
  return NULL;
}

Test(heap, several_threads_each_using_hundreds_of_heaps) {
  for (int h = 0; h < SHARED_HEAPS; h++) {
    shared_heaps[h] = hak_heap_create(NULL);
    cr_assert_not_null(shared_heaps[h]);
  }
  pthread_t t[USERS];
  for (int i = 0; i < USERS; i++)
    cr_assert_eq(pthread_create(&t[i], NULL, use_every_heap, (void *)(intptr_t)i), 0);
  for (int i = 0; i < USERS; i++) {
    void *ret;
    pthread_join(t[i], &ret);
    cr_assert_null(ret, "thread %d got a NULL or a block of the wrong heap", i);
  }
  for (int h = 0; h < SHARED_HEAPS; h++) {
    hak_heap_stats_t s = ht_stats(shared_heaps[h]);
    cr_assert_eq(s.live_blocks, 0, "heap %d: %zu live after its users exited", h, s.live_blocks);
    cr_assert_eq(s.alloc_count, USERS * 5, "heap %d: %llu allocations", h,
                 (unsigned long long)s.alloc_count);
    hak_heap_destroy(shared_heaps[h]);
  }
}

Test(heap, version_of_library_matches_header) {
  cr_assert_eq(HAKMEM_VERSION, 100, "0.1.0 is 100");
  cr_assert_eq(hak_version(), HAKMEM_VERSION);
}
