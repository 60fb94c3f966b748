/*
** rptest.c: a working-set churn with cross-thread frees, in the style of rpmalloc's benchmark.
** Each thread keeps a working set of 2048 blocks of 16 B-16 KiB (uniform exponent, so small
** sizes dominate). Each round it frees a random fraction (10-50%) of the set, a contiguous run
** of slots from a random start, and then refills those slots with new random sizes. It also
** allocates a batch of 64 blocks and hands it to the next thread, which frees it: one
** allocation in ~10 dies on another thread. Every block has its first and last byte written.
** One op = one malloc (and its free, wherever it happens).
*/
#include "wl_common.h"

enum { WORKING_SET = 2048, CROSS_BATCH = 64, MIN_LOG2 = 4, MAX_LOG2 = 13 };

static void *rp_alloc(wl_rng_t *r) {
  size_t n = wl_size_skewed(r, MIN_LOG2, MAX_LOG2);
  char *p = wl_xmalloc(n);
  p[0] = 1;
  p[n - 1] = 2;
  return p;
}

static void *rp_worker(void *arg) {
  wl_ring_thread_t *t = arg;
  wl_rng_t r = wl_rng((uint64_t)t->index + 11);
  int next = (t->index + 1) % t->ring->threads;
  void **set = wl_xmalloc(sizeof(void *) * WORKING_SET);
  uint64_t ops = 0;
  for (size_t k = 0; k < WORKING_SET; k++) set[k] = rp_alloc(&r);
  ops += WORKING_SET;
  for (uint64_t round = 0; round < t->iterations; round++) {
    size_t count = WORKING_SET * wl_range(&r, 10, 50) / 100;
    size_t start = (size_t)(wl_next(&r) % WORKING_SET);
    for (size_t j = 0; j < count; j++) free(set[(start + j) % WORKING_SET]);
    for (size_t j = 0; j < count; j++) set[(start + j) % WORKING_SET] = rp_alloc(&r);
    wl_batch_t *b = wl_batch_new(CROSS_BATCH);
    for (size_t j = 0; j < CROSS_BATCH; j++) b->blocks[j] = rp_alloc(&r);
    wl_ring_send(t->ring, t->index, next, b);
    wl_ring_drain(t->ring, t->index, 0);
    ops += count + CROSS_BATCH;
  }
  for (size_t k = 0; k < WORKING_SET; k++) free(set[k]);
  free(set);
  wl_ring_finish(t->ring, t->index);
  t->ops = ops;
  return NULL;
}

int main(int argc, char **argv) {
  return wl_ring_main("rptest", argc, argv, 3000, rp_worker);
}
