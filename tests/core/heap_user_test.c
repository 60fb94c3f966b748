/*
** hak_heap_set_user / hak_heap_user: one word per heap, NULL in a new heap, cleared by
** hak_heap_reset, gone with the heap (a new heap at the same address starts with NULL).
*/
#include <criterion/criterion.h>
#include <pthread.h>

#include "test_util.h"

TestSuite(heap_user, .timeout = 30);

Test(heap_user, a_new_heap_has_no_user_word) {
  hak_heap_t *h = hak_heap_create(NULL);
  cr_expect_null(hak_heap_user(h));
  hak_heap_destroy(h);
}

Test(heap_user, the_word_set_is_the_word_read) {
  hak_heap_t *a = hak_heap_create(NULL), *b = hak_heap_create(NULL);
  int x, y;
  hak_heap_set_user(a, &x);
  hak_heap_set_user(b, &y);
  cr_expect_eq(hak_heap_user(a), &x);
  cr_expect_eq(hak_heap_user(b), &y);
  hak_heap_set_user(a, NULL);
  cr_expect_null(hak_heap_user(a));
  cr_expect_eq(hak_heap_user(b), &y);
  hak_heap_destroy(a);
  hak_heap_destroy(b);
}

Test(heap_user, reset_clears_the_word_and_frees_a_record_kept_in_the_heap) {
  hak_heap_t *h = hak_heap_create(NULL);
  void *record = hak_heap_calloc(h, 1, 200);
  hak_heap_set_user(h, record);
  hak_heap_reset(h);
  cr_expect_null(hak_heap_user(h));
  cr_expect_eq(ht_stats(h).live_blocks, 0);
  hak_heap_destroy(h);
}

Test(heap_user, a_heap_at_the_address_of_a_destroyed_one_starts_with_null) {
  int x;
  for (int i = 0; i < 8; i++) {
    hak_heap_t *h = hak_heap_create(NULL);
    cr_assert_null(hak_heap_user(h), "round %d", i);
    hak_heap_set_user(h, &x);
    hak_heap_destroy(h);
  }
}

static void *read_user(void *h) { return hak_heap_user(h); }

Test(heap_user, any_thread_reads_the_word) {
  hak_heap_t *h = hak_heap_create(NULL);
  int x;
  void *seen;
  pthread_t t;
  hak_heap_set_user(h, &x);
  pthread_create(&t, NULL, read_user, h);
  pthread_join(t, &seen);
  cr_expect_eq(seen, &x);
  hak_heap_destroy(h);
}

Test(heap_user, null_heap_is_ignored) {
  int x;
  hak_heap_set_user(NULL, &x);
  cr_expect_null(hak_heap_user(NULL));
}
