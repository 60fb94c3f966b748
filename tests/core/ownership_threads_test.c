/*
** Ownership with threads running at once (plain program so it runs under TSan; ownership_test
** states the same rules step by step). Four threads allocate from one heap together: no 64-byte
** line holds blocks of two of them. Each frees its neighbour's blocks while the neighbour waits;
** each owner's hak_heap_drain then returns exactly the blocks freed into its slabs, and
** remote_free_count is exactly the sum. Then a wave of threads exits with live blocks and a
** second wave frees them while allocating (adopting the abandoned slabs); after collect(true)
** nothing is live and held_bytes is what it was before. Prints "N passed, N failed".
*/
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_util.h"

enum { THREADS = 4, N = 3000 };

static hak_heap_t *heap;
static pthread_barrier_t step;
static void *blocks[THREADS][N];
static size_t drained[THREADS];
static int alloc_failed[THREADS];

static size_t small_size(int t, int i) {
  return 16 + (size_t)((i * 7 + t) % 4) * 16; /* 16..64 */
}

static void *owner(void *arg) {
  int t = (int)(intptr_t)arg;
  for (int i = 0; i < N; i++) {
    blocks[t][i] = hak_heap_malloc(heap, small_size(t, i));
    if (blocks[t][i] == NULL) alloc_failed[t]++;
  }
  pthread_barrier_wait(&step); /* 1: all blocks live; main checks lines */
  pthread_barrier_wait(&step); /* 2: free the neighbour's blocks */
  int next = (t + 1) % THREADS;
  for (int i = 0; i < N; i++) hak_free(blocks[next][i]);
  hak_thread_post_remote(); /* this thread stays alive: its last batch goes out now */
  pthread_barrier_wait(&step); /* 3: every remote free is made; drain mine */
  drained[t] = hak_heap_drain(heap);
  pthread_barrier_wait(&step); /* 4: main reads the stats while the owners are alive */
  pthread_barrier_wait(&step); /* 5: exit */
  return NULL;
}

static bool no_shared_line(void) {
  void **sets[THREADS];
  int counts[THREADS];
  for (int t = 0; t < THREADS; t++) {
    sets[t] = blocks[t];
    counts[t] = N;
  }
  int a, b;
  uintptr_t line = ht_shared_line((void **const *)sets, counts, THREADS, &a, &b);
  if (line) printf("line %#" PRIxPTR " holds blocks of threads %d and %d\n", line, a, b);
  return line == 0;
}

static void concurrent_owners_and_remote_frees(void) {
  pthread_t th[THREADS];
  pthread_barrier_init(&step, NULL, THREADS + 1);
  for (int t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, owner, (void *)(intptr_t)t);
  pthread_barrier_wait(&step); /* 1 */
  int nofail = 0;
  for (int t = 0; t < THREADS; t++) nofail += alloc_failed[t] == 0;
  ht_expect(nofail == THREADS, "every allocation succeeded");
  ht_expect(no_shared_line(), "blocks allocated at once by four threads never share a line");
  pthread_barrier_wait(&step); /* 2 */
  pthread_barrier_wait(&step); /* 3 */
  pthread_barrier_wait(&step); /* 4 */
  int exact = 0;
  for (int t = 0; t < THREADS; t++) {
    if (drained[t] != N) printf("thread %d drained %zu, want %d\n", t, drained[t], N);
    exact += drained[t] == N;
  }
  ht_expect(exact == THREADS, "each owner's drain returns exactly the frees into its slabs");
  hak_heap_stats_t s = ht_stats(heap);
  if (s.remote_free_count != (uint64_t)THREADS * N || s.live_blocks != 0)
    printf("remote_free_count %" PRIu64 " (want %d), live_blocks %zu\n", s.remote_free_count,
           THREADS * N, s.live_blocks);
  ht_expect(s.remote_free_count == (uint64_t)THREADS * N, "remote_free_count is the sum");
  ht_expect(s.live_blocks == 0 && s.live_bytes == 0, "nothing live after the drains");
  pthread_barrier_wait(&step); /* 5 */
  for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
  pthread_barrier_destroy(&step);
}

static void *leave_blocks(void *arg) {
  int t = (int)(intptr_t)arg;
  for (int i = 0; i < N; i++) {
    blocks[t][i] = hak_heap_malloc(heap, 16 + (size_t)(i * 37 + t) % 3000);
    if (blocks[t][i] == NULL) alloc_failed[t]++;
  }
  return NULL;
}

static void *free_others_while_allocating(void *arg) {
  int t = (int)(intptr_t)arg;
  void *mine[64];
  for (int i = 0; i < N; i++) {
    hak_free(blocks[t][i]);
    int k = i % 64;
    if (i >= 64) hak_free(mine[k]);
    mine[k] = hak_heap_malloc(heap, 16 + (size_t)(i * 53) % 3000);
    if (mine[k] == NULL) alloc_failed[t]++;
  }
  for (int k = 0; k < 64; k++) hak_free(mine[k]);
  return NULL;
}

static void abandoned_slabs_freed_and_adopted_at_once(void) {
  hak_heap_collect(heap, true);
  size_t held_before = ht_stats(heap).held_bytes;
  pthread_t th[THREADS];
  for (int t = 0; t < THREADS; t++) alloc_failed[t] = 0;
  for (int t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, leave_blocks, (void *)(intptr_t)t);
  for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
  hak_heap_stats_t s = ht_stats(heap);
  ht_expect(s.live_blocks == (size_t)THREADS * N, "blocks of exited threads stay live");
  for (int t = 0; t < THREADS; t++)
    pthread_create(&th[t], NULL, free_others_while_allocating, (void *)(intptr_t)t);
  for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
  int nofail = 0;
  for (int t = 0; t < THREADS; t++) nofail += alloc_failed[t] == 0;
  ht_expect(nofail == THREADS, "every allocation succeeded");
  hak_heap_collect(heap, true);
  s = ht_stats(heap);
  if (s.live_blocks != 0 || s.held_bytes != held_before)
    printf("after collect: %zu live blocks, held %zu (before %zu)\n", s.live_blocks, s.held_bytes,
           held_before);
  ht_expect(s.live_blocks == 0 && s.live_bytes == 0, "nothing live after the second wave");
  ht_expect(s.held_bytes == held_before, "collect gives back every slab of both waves");
}

static int errors;

static void on_error(int err, const char *msg, void *arg) {
  (void)arg;
  __atomic_fetch_add(&errors, 1, __ATOMIC_RELAXED);
  fprintf(stderr, "unexpected hakmem error %d: %s\n", err, msg);
}

int main(void) {
  hak_set_error_handler(on_error, NULL);
  heap = hak_heap_create(NULL);
  if (heap == NULL) {
    ht_expect(false, "heap creation");
    return ht_expect_report();
  }
  concurrent_owners_and_remote_frees();
  abandoned_slabs_freed_and_adopted_at_once();
  ht_expect(__atomic_load_n(&errors, __ATOMIC_RELAXED) == 0, "no error reports");
  hak_heap_destroy(heap);
  return ht_expect_report();
}
