/* drain_test.c: hak_heap_drain moves the caller's remote queue into the slabs it owns. */
#include <criterion/criterion.h>
#include <hakmem.h>
#include <pthread.h>

#define N 512

static void *blocks[N];

static void *free_all(void *arg) {
  (void)arg;
  for (int i = 0; i < N; i++) hak_free(blocks[i]);
  return NULL;
}

Test(drain, remote_frees_count_once_drained_and_the_blocks_are_reused) {
  hak_heap_t *h = hak_heap_create(NULL);
  for (int i = 0; i < N; i++) blocks[i] = hak_heap_malloc(h, 64);
  pthread_t t;
  pthread_create(&t, NULL, free_all, NULL);
  pthread_join(t, NULL);
  hak_heap_stats_t s;
  hak_heap_get_stats(h, &s);
  cr_assert_eq(s.live_blocks, 0, "remote frees count as frees when pushed");
  cr_assert_eq(s.remote_free_count, N);
  cr_assert_eq(s.free_count, N);
  cr_assert_eq(hak_heap_drain(h), N);
  hak_heap_get_stats(h, &s);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.remote_free_count, N);
  cr_assert_eq(hak_heap_drain(h), 0, "a second drain finds an empty queue");
  /* The drained blocks sit in this thread's cache: the next allocations reuse them. */
  int reused = 0;
  void *again[N];
  for (int i = 0; i < N; i++) {
    again[i] = hak_heap_malloc(h, 64);
    for (int j = 0; j < N; j++) reused += again[i] == blocks[j];
  }
  cr_assert_eq(reused, N, "every drained block is reused by the owner");
  for (int i = 0; i < N; i++) hak_free(again[i]);
  hak_heap_destroy(h);
}

Test(drain, null_heap_and_empty_queue_drain_nothing) {
  cr_assert_eq(hak_heap_drain(NULL), 0);
  hak_heap_t *h = hak_heap_create(NULL);
  cr_assert_eq(hak_heap_drain(h), 0);
  hak_heap_destroy(h);
}
