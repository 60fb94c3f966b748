/*
** Remote batches: a thread's remote frees to one owner reach the owner's queue 64 at a time, in
** one post each (counted by the owner's drains and the remote-notify hook); they count in the
** stats as soon as hak_free returns, yet the owner cannot drain them before the freeing thread
** posts (hak_thread_post_remote, a free to another owner, thread exit). A batch pending when its
** heap is destroyed or reset by another thread is discarded (counts as reset counts queued
** frees) and the freeing thread goes on working; a second free of a batched block is a double
** free at that free.
**
** The freeing thread is an actor: it runs one step at a time on request and stays alive, idle,
** in between, so nothing but the step posts its batch. Actors never assert; they record.
*/
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

enum { BATCH = 64 };

static hak_heap_t *heap;
static ht_errlog_t errlog;

static void setup(void) {
  heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
  ht_errlog_install(&errlog);
}

static void teardown(void) {
  hak_set_error_handler(NULL, NULL);
  hak_heap_destroy(heap);
}

TestSuite(remote_batch, .init = setup, .fini = teardown, .timeout = 60);

/* ** {======================================================================
** steps that actors (test_util's ht_actor_t) run
** ======================================================================= */

typedef struct frees_s {
  void **p;
  int n;
} frees_t;

static void do_free(void *arg) {
  frees_t *f = arg;
  for (int i = 0; i < f->n; i++) hak_free(f->p[i]);
}

static void do_post(void *arg) {
  (void)arg;
  hak_thread_post_remote();
}

static void do_alloc_one(void *arg) { *(void **)arg = hak_heap_malloc(heap, 64); }

static void do_drain(void *arg) { *(size_t *)arg = hak_heap_drain(heap); }

static void **alloc_n(hak_heap_t *h, int n, size_t size) {
  void **p = calloc((size_t)n, sizeof *p);
  cr_assert_not_null(p);
  for (int i = 0; i < n; i++) {
    p[i] = hak_heap_malloc(h, size);
    cr_assert_not_null(p[i]);
  }
  return p;
}

/* Counts calls; the hook runs on the freeing thread. */
static atomic_int notified;
static void on_remote(hak_heap_t *h, void *arg) {
  (void)h;
  (void)arg;
  atomic_fetch_add(&notified, 1);
}

/* }====================================================================== */

Test(remote_batch, n_frees_to_one_owner_are_posted_in_ceil_n_over_64_posts) {
  enum { N = 200 };
  void **p = alloc_n(heap, N, 48);
  atomic_store(&notified, 0);
  hak_heap_set_remote_notify(heap, on_remote, NULL);
  static ht_actor_t a;
  cr_assert(ht_actor_start(&a));
  /* One free at a time, the owner draining after each: a drain finds a post's blocks. */
  int posts = 0;
  size_t drained = 0;
  for (int i = 0; i < N; i++) {
    frees_t one = {.p = &p[i], .n = 1};
    ht_actor_run(&a, do_free, &one);
    size_t d = hak_heap_drain(heap);
    if (d) {
      cr_assert_eq(d, BATCH, "free %d: a post of %zu blocks, want a full batch", i, d);
      cr_assert_eq((i + 1) % BATCH, 0, "posted after free %d", i);
      posts++;
    }
    drained += d;
  }
  cr_assert_eq(posts, N / BATCH);
  cr_assert_eq(atomic_load(&notified), N / BATCH, "one notification per post into an empty queue");
  ht_actor_run(&a, do_post, NULL);
  cr_assert_eq(hak_heap_drain(heap), N % BATCH, "the last, partial batch");
  cr_assert_eq(atomic_load(&notified), (N + BATCH - 1) / BATCH);
  ht_actor_run(&a, do_post, NULL);
  cr_assert_eq(hak_heap_drain(heap), 0, "a second post posts nothing");
  cr_assert_eq(atomic_load(&notified), (N + BATCH - 1) / BATCH);
  hak_heap_set_remote_notify(heap, NULL, NULL);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.remote_free_count, N);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(errlog.calls, 0, "%s", errlog.msg);
  ht_actor_exit(&a);
  free(p);
}

Test(remote_batch, pending_frees_count_at_once_but_drain_only_after_the_post) {
  enum { N = 50 }; /* under a batch: nothing posted by the frees themselves */
  void **p = alloc_n(heap, N, 100);
  size_t usable = hak_usable_size(p[0]);
  hak_heap_stats_t base = ht_stats(heap);
  static ht_actor_t a;
  cr_assert(ht_actor_start(&a));
  frees_t f = {.p = p, .n = N};
  ht_actor_run(&a, do_free, &f);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.remote_free_count, base.remote_free_count + N);
  cr_assert_eq(s.free_count, base.free_count + N);
  cr_assert_eq(s.live_blocks, base.live_blocks - N);
  cr_assert_eq(s.live_bytes, base.live_bytes - N * usable);
  cr_assert_eq(hak_heap_drain(heap), 0, "the owner drained blocks that were not posted");
  ht_actor_run(&a, do_post, NULL);
  cr_assert_eq(hak_heap_drain(heap), N);
  hak_heap_stats_t after = ht_stats(heap);
  cr_assert_eq(after.remote_free_count, s.remote_free_count, "a post counted the frees again");
  cr_assert_eq(after.free_count, s.free_count);
  cr_assert_eq(after.live_blocks, s.live_blocks);
  cr_assert_eq(after.live_bytes, s.live_bytes);
  cr_assert_eq(after.live_blocks, 0);
  cr_assert_eq(after.live_bytes, 0);
  ht_actor_exit(&a);
  free(p);
}

Test(remote_batch, a_free_to_another_owner_posts_the_batch) {
  enum { N = 10 };
  void **mine = alloc_n(heap, N, 64);
  static ht_actor_t a, b;
  cr_assert(ht_actor_start(&a));
  cr_assert(ht_actor_start(&b));
  void *theirs = NULL;
  ht_actor_run(&b, do_alloc_one, &theirs); /* b owns one block of the heap */
  cr_assert_not_null(theirs);
  frees_t f = {.p = mine, .n = N};
  ht_actor_run(&a, do_free, &f);
  cr_assert_eq(hak_heap_drain(heap), 0);
  frees_t other = {.p = &theirs, .n = 1};
  ht_actor_run(&a, do_free, &other);
  cr_assert_eq(hak_heap_drain(heap), N, "switching owners posted the old batch");
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.remote_free_count, N + 1);
  cr_assert_eq(s.live_blocks, 0);
  size_t drained = 0;
  ht_actor_run(&b, do_drain, &drained);
  cr_assert_eq(drained, 0, "b's block is still in a's batch");
  ht_actor_exit(&a); /* posts it */
  ht_actor_run(&b, do_drain, &drained);
  cr_assert_eq(drained, 1);
  ht_actor_exit(&b);
  free(mine);
}

Test(remote_batch, thread_exit_posts_the_batch_of_a_thread_that_never_allocated) {
  enum { N = 10 };
  void **p = alloc_n(heap, N, 64);
  atomic_store(&notified, 0);
  hak_heap_set_remote_notify(heap, on_remote, NULL);
  static ht_actor_t a;
  cr_assert(ht_actor_start(&a));
  frees_t f = {.p = p, .n = N};
  ht_actor_run(&a, do_free, &f);
  cr_assert_eq(atomic_load(&notified), 0);
  cr_assert_eq(hak_heap_drain(heap), 0);
  ht_actor_exit(&a);
  cr_assert_eq(atomic_load(&notified), 1);
  cr_assert_eq(hak_heap_drain(heap), N, "the exit posted the batch");
  hak_heap_set_remote_notify(heap, NULL, NULL);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.remote_free_count, N);
  cr_assert_eq(s.live_blocks, 0);
  free(p);
}

Test(remote_batch, a_second_free_of_a_batched_block_is_a_double_free) {
  enum { N = 5 };
  void **p = alloc_n(heap, N, 64);
  static ht_actor_t a;
  cr_assert(ht_actor_start(&a));
  frees_t f = {.p = p, .n = N};
  ht_actor_run(&a, do_free, &f);
  frees_t again = {.p = &p[2], .n = 1};
  ht_actor_run(&a, do_free, &again);
  cr_assert_eq(errlog.calls, 1, "the freeing thread's second free was not reported");
  cr_assert_eq(errlog.err, HAK_ERR_DOUBLE_FREE);
  cr_assert(ht_msg_names_pointer(errlog.msg, p[2]), "%s", errlog.msg);
  ht_errlog_clear(&errlog);
  hak_free(p[3]); /* by the owner */
  cr_assert_eq(errlog.calls, 1, "the owner's free of a batched block was not reported");
  cr_assert_eq(errlog.err, HAK_ERR_DOUBLE_FREE);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.remote_free_count, N, "a reported double free was counted");
  cr_assert_eq(s.live_blocks, 0);
  ht_actor_run(&a, do_post, NULL);
  cr_assert_eq(hak_heap_drain(heap), N, "the batch kept each block once");
  s = ht_stats(heap);
  cr_assert_eq(s.remote_free_count, N);
  cr_assert_eq(s.live_blocks, 0);
  ht_actor_exit(&a);
  free(p);
}

Test(remote_batch, a_batch_pending_when_its_heap_is_destroyed_is_discarded_and_the_thread_goes_on) {
  enum { N = 10 };
  hak_heap_t *h2 = hak_heap_create(NULL);
  cr_assert_not_null(h2);
  void **p = alloc_n(h2, N, 64);
  hak_heap_set_remote_notify(h2, on_remote, NULL);
  static ht_actor_t a;
  cr_assert(ht_actor_start(&a));
  frees_t f = {.p = p, .n = N};
  ht_actor_run(&a, do_free, &f);
  hak_heap_destroy(h2); /* its caches are freed; a's batch pointed at one */
  /* A new heap and its cache take the freed metadata back (the pool reuses it first). */
  hak_heap_t *h3 = hak_heap_create(NULL);
  cr_assert_not_null(h3);
  void *r = hak_heap_malloc(h3, 64);
  cr_assert_not_null(r);
  /* a's next remote free (to this thread, in another heap) would post the old batch. */
  void *q = hak_heap_malloc(heap, 64);
  cr_assert_not_null(q);
  frees_t one = {.p = &q, .n = 1};
  ht_actor_run(&a, do_free, &one);
  ht_actor_run(&a, do_post, NULL);
  cr_assert_eq(hak_heap_drain(h3), 0, "a batch of the destroyed heap reached a new cache");
  cr_assert_eq(hak_heap_drain(heap), 1);
  hak_free(r);
  hak_heap_stats_t s3 = ht_stats(h3);
  cr_assert_eq(s3.remote_free_count, 0);
  cr_assert_eq(s3.live_blocks, 0);
  hak_heap_destroy(h3);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.remote_free_count, 1);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(errlog.calls, 0, "%s", errlog.msg);
  ht_actor_exit(&a);
  free(p);
}

Test(remote_batch, a_batch_pending_when_its_heap_is_reset_counts_as_reset_counts_queued_frees) {
  enum { N = 10, Q = 7 };
  hak_heap_t *h2 = hak_heap_create(NULL);
  cr_assert_not_null(h2);
  void **p = alloc_n(h2, N + Q, 64);
  static ht_actor_t a;
  cr_assert(ht_actor_start(&a));
  frees_t posted = {.p = p, .n = Q};
  ht_actor_run(&a, do_free, &posted);
  ht_actor_run(&a, do_post, NULL); /* Q queued at the owner */
  frees_t f = {.p = p + Q, .n = N};
  ht_actor_run(&a, do_free, &f); /* N batched */
  hak_heap_stats_t s = ht_stats(h2);
  cr_assert_eq(s.remote_free_count, N + Q);
  cr_assert_eq(s.live_blocks, 0);
  hak_heap_reset(h2);
  s = ht_stats(h2);
  cr_assert_eq(s.remote_free_count, N + Q, "queued and batched frees stay counted");
  cr_assert_eq(s.free_count, N + Q);
  cr_assert_eq(s.alloc_count, N + Q);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.live_bytes, 0);
  cr_assert_eq(hak_heap_drain(h2), 0, "reset discards queued and batched frees");
  /* The heap works; so does a, freeing its new blocks. */
  cr_assert_null(ht_heap_usable(h2));
  void *r = hak_heap_malloc(h2, 64);
  cr_assert_not_null(r);
  frees_t one = {.p = &r, .n = 1};
  ht_actor_run(&a, do_free, &one);
  ht_actor_run(&a, do_post, NULL);
  cr_assert_eq(hak_heap_drain(h2), 1);
  hak_heap_collect(h2, true);
  s = ht_stats(h2);
  cr_assert_eq(s.remote_free_count, N + Q + 1);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.live_bytes, 0);
  cr_assert_eq(errlog.calls, 0, "%s", errlog.msg);
  ht_actor_exit(&a);
  hak_heap_destroy(h2);
  free(p);
}
