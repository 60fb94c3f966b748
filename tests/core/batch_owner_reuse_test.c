/*
** batch_owner_reuse_test.c (plain program, so it runs under TSan): a thread's remote batch stays
** bound, empty, to the owner cache of its last post. When that cache is freed while its heap
** lives (its thread exited and hak_heap_collect settled it) and a cache of another heap is made
** in the same memory, the next remote free into that new cache must be counted as the new
** heap's: a destroy of the new heap drops it, and no later post links its block, by then a
** block of some other heap, into a live queue. Before the fix every round reported a
** "corrupted remote-free list" on a correct program. Also: the new heap's stats count the
** batched free while it waits.
*/
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "test_util.h"

enum { ROUNDS = 50, N = 64 };

static void *got;
static int errors;

static void *alloc_in(void *heap) {
  got = hak_heap_malloc(heap, 48);
  return NULL;
}

/* A block of heap allocated by a thread that then exits (its cache becomes idle). */
static void *from_exited_thread(hak_heap_t *heap) {
  pthread_t t;
  pthread_create(&t, NULL, alloc_in, heap);
  pthread_join(t, NULL);
  return got;
}

/* hb's stats read by another thread: a batched free counts in the heap it is bound for. */
static void *read_stats(void *heap) {
  hak_heap_stats_t st;
  hak_heap_get_stats(heap, &st);
  got = (void *)(uintptr_t)(st.live_blocks == 0 && st.remote_free_count == 1);
  return NULL;
}

static bool counted_by_other_thread(hak_heap_t *heap) {
  pthread_t t;
  pthread_create(&t, NULL, read_stats, heap);
  pthread_join(t, NULL);
  return got != NULL;
}

static void on_error(int err, const char *msg, void *arg) {
  (void)err;
  (void)arg;
  errors++;
  fprintf(stderr, "reported: %s\n", msg);
}

int main(void) {
  hak_set_error_handler(on_error, NULL);
  int twice = 0, miscounted = 0;
  for (int round = 0; round < ROUNDS; round++) {
    hak_heap_t *ha = hak_heap_create(NULL);
    hak_free(from_exited_thread(ha)); /* remote: this thread's batch bound for that cache */
    hak_thread_post_remote();         /* posted: the batch stays bound, empty */
    hak_heap_t *hb = hak_heap_create(NULL);
    hak_heap_collect(ha, true); /* the idle cache owns nothing now: freed */
    void *b = from_exited_thread(hb); /* its cache: the freed one's memory, as the pool goes */
    hak_free(b);                      /* remote, batched: a free of hb's */
    miscounted += !counted_by_other_thread(hb); /* stats here would post the batch */
    hak_heap_destroy(hb); /* drops the batch */
    hak_heap_t *hc = hak_heap_create(NULL);
    void *c[N], *d[N];
    for (int i = 0; i < N; i++) c[i] = hak_heap_malloc(hc, 48); /* hb's superslab, reused */
    hak_thread_post_remote();
    hak_heap_drain(hc);
    for (int i = 0; i < N; i++) hak_free(c[i]);
    for (int i = 0; i < N; i++) d[i] = hak_heap_malloc(hc, 48);
    for (int i = 0; i < N; i++)
      for (int j = 0; j < i; j++) twice += d[i] == d[j];
    for (int i = 0; i < N; i++) hak_free(d[i]);
    hak_heap_destroy(hc);
    hak_heap_destroy(ha);
  }
  ht_expect(errors == 0, "no error reported on a correct program");
  ht_expect(twice == 0, "no block handed out twice");
  ht_expect(miscounted == 0, "the batched free counted as the new heap's (1 remote free, 0 live)");
  return ht_expect_report();
}
