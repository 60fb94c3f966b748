/*
** Remote frees: blocks freed by a thread that never allocated from the heap come back to the
** owner, which reuses every one of the same addresses once the freeing thread has posted them
** (hak_thread_post_remote; it then stays alive and idle), and each is counted once in
** remote_free_count; held memory stays bounded over many
** rounds; the remote-notify callback fires on the freeing thread exactly once per empty ->
** non-empty transition of the queue.
*/
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdlib.h>

#include "test_util.h"

static hak_heap_t *heap;

static void setup(void) {
  heap = hak_heap_create(NULL);
  cr_assert_not_null(heap);
}

static void teardown(void) {
  hak_heap_destroy(heap);
}

TestSuite(remote_free, .init = setup, .fini = teardown, .timeout = 30);

/* The freeing thread: frees its blocks, posts them, reports done, then waits (alive, idle) until
** released. */
struct freer {
  void **p;
  int n;
  sem_t done;
  sem_t release;
};

static void *freer_main(void *arg) {
  struct freer *f = arg;
  for (int i = 0; i < f->n; i++) hak_free(f->p[i]);
  hak_thread_post_remote();
  sem_post(&f->done);
  while (sem_wait(&f->release) != 0) {
  }
  return NULL;
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
  return (x > y) - (x < y);
}

/* How many of now[0..nnow) are among old[0..n) (sorts old). */
static int count_reused(void **old, int n, void **now, int nnow) {
  qsort(old, (size_t)n, sizeof old[0], cmp_ptr);
  int same = 0;
  for (int i = 0; i < nnow; i++)
    same += bsearch(&now[i], old, (size_t)n, sizeof old[0], cmp_ptr) != NULL;
  return same;
}

static void remote_round_trip(size_t size, int n) {
  void **first = calloc((size_t)n, sizeof(void *));
  void **second = calloc(2 * (size_t)n, sizeof(void *));
  cr_assert(first && second);
  for (int i = 0; i < n; i++) {
    first[i] = hak_heap_malloc(heap, size);
    cr_assert_not_null(first[i]);
    ht_fill(first[i], size, 0x99);
  }
  hak_heap_stats_t before = ht_stats(heap);
  struct freer f = {.p = first, .n = n};
  sem_init(&f.done, 0, 0);
  sem_init(&f.release, 0, 0);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, freer_main, &f), 0);
  while (sem_wait(&f.done) != 0) {
  }
  /* The freer is still alive and idle: whatever comes back now came through the remote queue.
  ** The owner may first hand out blocks it had not handed out yet (the rest of its last slab
  ** or refill), so it allocates 2n blocks; all n freed addresses must be among them. */
  for (int i = 0; i < 2 * n; i++) {
    second[i] = hak_heap_malloc(heap, size);
    cr_assert_not_null(second[i]);
  }
  hak_heap_stats_t s = ht_stats(heap);
  sem_post(&f.release);
  pthread_join(t, NULL);
  int same = count_reused(first, n, second, 2 * n);
  cr_assert_eq(same, n, "%zu-byte blocks: only %d of %d addresses freed remotely came back", size,
               same, n);
  int early = count_reused(first, n, second, n);
  cr_log_info("%zu-byte blocks: %d of %d back within the first %d allocations", size, early, n, n);
  cr_assert_eq(s.remote_free_count - before.remote_free_count, (uint64_t)n,
               "%zu-byte blocks: %" PRIu64 " remote frees counted, %d made", size,
               s.remote_free_count - before.remote_free_count, n);
  for (int i = 0; i < 2 * n; i++) hak_free(second[i]);
  hak_heap_collect(heap, true);
  s = ht_stats(heap);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.free_count - before.free_count, 3 * (uint64_t)n);
  cr_assert_eq(s.remote_free_count - before.remote_free_count, (uint64_t)n,
               "the owner's own frees counted as remote");
  sem_destroy(&f.done);
  sem_destroy(&f.release);
  free(first);
  free(second);
}

Test(remote_free, blocks_freed_by_another_thread_are_reused_by_the_owner) {
  remote_round_trip(64, 4096);
}

Test(remote_free, reuse_holds_for_several_size_classes) {
  static const size_t sizes[] = {16, 128, 1000, 4096, 20000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    int n = (int)(2 * HT_MIB / sizes[i]);
    remote_round_trip(sizes[i], n < 64 ? 64 : n);
  }
}

Test(remote_free, remote_frees_keep_held_bytes_bounded_over_many_rounds) {
  enum { N = 2000, ROUNDS = 60 };
  static void *p[N];
  size_t held_early = 0;
  for (int round = 0; round < ROUNDS; round++) {
    for (int i = 0; i < N; i++) {
      p[i] = hak_heap_malloc(heap, 32 + (size_t)(i % 8) * 16);
      cr_assert_not_null(p[i]);
    }
    struct freer f = {.p = p, .n = N};
    sem_init(&f.done, 0, 0);
    sem_init(&f.release, 0, 1);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, freer_main, &f), 0);
    pthread_join(t, NULL);
    sem_destroy(&f.done);
    sem_destroy(&f.release);
    hak_heap_stats_t s = ht_stats(heap);
    if (round == 2) held_early = s.held_bytes;
    if (round > 2)
      cr_assert_leq(s.held_bytes, 2 * held_early + HT_MIB,
                    "round %d: held_bytes %zu grew from %zu: remote frees are not reused", round,
                    s.held_bytes, held_early);
  }
}

struct notify_log {
  pthread_mutex_t mu;
  int calls;
  hak_heap_t *heap;
};

static void on_remote(hak_heap_t *h, void *arg) {
  struct notify_log *log = arg;
  pthread_mutex_lock(&log->mu);
  log->calls++;
  log->heap = h;
  pthread_mutex_unlock(&log->mu);
}

Test(remote_free, remote_notify_fires_coalesced_and_again_after_a_drain) {
  enum { N = 100 };
  static void *p[N];
  struct notify_log log = {.mu = PTHREAD_MUTEX_INITIALIZER};
  hak_heap_set_remote_notify(heap, on_remote, &log);
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < N; i++) {
      p[i] = hak_heap_malloc(heap, 48);
      cr_assert_not_null(p[i]);
    }
    struct freer f = {.p = p, .n = N};
    sem_init(&f.done, 0, 0);
    sem_init(&f.release, 0, 1);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, freer_main, &f), 0);
    pthread_join(t, NULL);
    sem_destroy(&f.done);
    sem_destroy(&f.release);
    /* One freer, the owner not draining in between: one empty -> non-empty transition. */
    cr_assert_eq(log.calls, round + 1, "round %d: %d notifications for %d frees in a row", round,
                 log.calls, N);
    cr_assert_eq(log.heap, heap);
    hak_heap_collect(heap, false);
  }
  hak_heap_set_remote_notify(heap, NULL, NULL);
  int before = log.calls;
  void *q = hak_heap_malloc(heap, 48);
  struct freer f = {.p = &q, .n = 1};
  sem_init(&f.done, 0, 0);
  sem_init(&f.release, 0, 1);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, freer_main, &f), 0);
  pthread_join(t, NULL);
  cr_assert_eq(log.calls, before, "notification after the callback was removed");
  sem_destroy(&f.done);
  sem_destroy(&f.release);
}
