/*
** remote_batch_threads_test.c: remote batches with threads running at once (plain program, so it
** runs under TSan). Each round an owner allocates blocks of a fresh heap H1 (with a remote-notify
** hook) and of a long-lived heap H2; a freer frees the H1 blocks (a partial batch bound for H1)
** and then the H2 blocks, whose first free posts the H1 batch and may call H1's hook, while the
** main thread destroys H1 and a reader reads H2's stats. Nothing may touch H1's freed caches or
** H1 itself (run under ASan, which sees freed metadata); H2's counts stay exact and the owner
** drains exactly the frees into its slabs.
*/
#include <hakmem.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "test_util.h"

enum { ROUNDS = 150, N1 = 40, N2 = 90 }; /* N1 < 64: H1's only post is the racing one */

static hak_heap_t *h1, *h2;
static void *p1[N1], *p2[N2];
static pthread_barrier_t step;
static sem_t h1_freed;
static atomic_bool stop;
static atomic_int notified;
static size_t drained_total;
static int alloc_failed, reader_bad;

/* Slow on purpose: the destroy of H1 must wait for it (the post raced with the destroy). */
static void on_remote(hak_heap_t *h, void *arg) {
  (void)h;
  (void)arg;
  atomic_fetch_add(&notified, 1);
  for (int i = 0; i < 50; i++) sched_yield();
}

static void *owner(void *arg) {
  (void)arg;
  for (int r = 0; r < ROUNDS; r++) {
    pthread_barrier_wait(&step); /* A: h1 created */
    for (int i = 0; i < N1; i++) alloc_failed += (p1[i] = hak_heap_malloc(h1, 48)) == NULL;
    for (int i = 0; i < N2; i++) alloc_failed += (p2[i] = hak_heap_malloc(h2, 80)) == NULL;
    pthread_barrier_wait(&step); /* B: blocks handed over */
    pthread_barrier_wait(&step); /* C: freed, posted, h1 destroyed */
    drained_total += hak_heap_drain(h2);
    pthread_barrier_wait(&step); /* D: main checks */
  }
  return NULL;
}

static void *freer(void *arg) {
  (void)arg;
  for (int r = 0; r < ROUNDS; r++) {
    pthread_barrier_wait(&step); /* A */
    pthread_barrier_wait(&step); /* B */
    for (int i = 0; i < N1; i++) hak_free(p1[i]);
    sem_post(&h1_freed); /* main destroys h1 now, while the next free posts the h1 batch */
    for (int i = 0; i < N2; i++) hak_free(p2[i]);
    hak_thread_post_remote();
    pthread_barrier_wait(&step); /* C */
    pthread_barrier_wait(&step); /* D */
  }
  return NULL;
}

static void *reader(void *arg) {
  (void)arg;
  uint64_t last_remote = 0;
  while (!atomic_load(&stop)) {
    hak_heap_stats_t s;
    hak_heap_get_stats(h2, &s);
    if (s.live_blocks > N2 || s.remote_free_count < last_remote ||
        s.remote_free_count > (uint64_t)ROUNDS * N2)
      reader_bad++;
    last_remote = s.remote_free_count;
  }
  return NULL;
}

int main(void) {
  pthread_t o, f, rd;
  h2 = hak_heap_create(NULL);
  pthread_barrier_init(&step, NULL, 3);
  sem_init(&h1_freed, 0, 0);
  pthread_create(&o, NULL, owner, NULL);
  pthread_create(&f, NULL, freer, NULL);
  pthread_create(&rd, NULL, reader, NULL);
  int exact = 0;
  for (int r = 0; r < ROUNDS; r++) {
    h1 = hak_heap_create(NULL);
    hak_heap_set_remote_notify(h1, on_remote, NULL);
    pthread_barrier_wait(&step); /* A */
    pthread_barrier_wait(&step); /* B */
    while (sem_wait(&h1_freed) != 0) {
    }
    hak_heap_destroy(h1);
    pthread_barrier_wait(&step); /* C */
    pthread_barrier_wait(&step); /* D */
    hak_heap_stats_t s;
    hak_heap_get_stats(h2, &s);
    exact += s.live_blocks == 0 && s.live_bytes == 0 &&
             s.remote_free_count == (uint64_t)(r + 1) * N2 &&
             s.free_count == (uint64_t)(r + 1) * N2;
  }
  atomic_store(&stop, true);
  pthread_join(o, NULL);
  pthread_join(f, NULL);
  pthread_join(rd, NULL);
  ht_expect(alloc_failed == 0, "every allocation succeeded");
  ht_expect(exact == ROUNDS, "H2's counts are exact after every round");
  if (drained_total != (size_t)ROUNDS * N2)
    printf("drained %zu, want %d\n", drained_total, ROUNDS * N2);
  ht_expect(drained_total == (size_t)ROUNDS * N2, "the owner drained exactly the frees into its slabs");
  ht_expect(reader_bad == 0, "stats read during the frees stay within bounds");
  printf("%d of %d H1 batches were posted (and notified) before the destroy discarded them\n",
         atomic_load(&notified), ROUNDS);
  ht_expect(atomic_load(&notified) <= ROUNDS, "at most one H1 notification per round");
  hak_heap_destroy(h2);
  return ht_expect_report();
}
