/*
** sh6bench.c: batches of small blocks freed in changing orders, in the style of MicroQuill's
** SmartHeap sh6bench. Each thread runs iterations; each allocates a batch of 200-2000 blocks
** of 8 B-1 KiB (uniform exponent) and then frees the previous iteration's batch, so two
** batches of different ages overlap. The previous batch is freed in one of four orders, in
** turn: first to last, last to first, even slots then odd slots, or the first half locally
** (last to first) while the second half goes to the next thread, which frees it. One block in
** eight dies on another thread. One op = one malloc (and its free, wherever it happens).
*/
#include "wl_common.h"

enum { MIN_BATCH = 200, MAX_BATCH = 2000, MIN_LOG2 = 3, MAX_LOG2 = 10 };

static void sh6_free_batch(wl_ring_t *ring, int self, void **blocks, size_t n, uint64_t order) {
  switch (order % 4) {
    case 0:
      for (size_t i = 0; i < n; i++) free(blocks[i]);
      break;
    case 1:
      for (size_t i = n; i > 0; i--) free(blocks[i - 1]);
      break;
    case 2:
      for (size_t i = 0; i < n; i += 2) free(blocks[i]);
      for (size_t i = 1; i < n; i += 2) free(blocks[i]);
      break;
    default: {
      size_t half = n / 2;
      wl_batch_t *b = wl_batch_new(n - half);
      memcpy(b->blocks, blocks + half, sizeof(void *) * (n - half));
      wl_ring_send(ring, self, (self + 1) % ring->threads, b);
      for (size_t i = half; i > 0; i--) free(blocks[i - 1]);
      break;
    }
  }
}

static void *sh6_worker(void *arg) {
  wl_ring_thread_t *t = arg;
  wl_rng_t r = wl_rng((uint64_t)t->index + 29);
  void **cur = wl_xmalloc(sizeof(void *) * MAX_BATCH);
  void **prev = wl_xmalloc(sizeof(void *) * MAX_BATCH);
  size_t prev_n = 0;
  uint64_t ops = 0;
  for (uint64_t it = 0; it < t->iterations; it++) {
    size_t n = wl_range(&r, MIN_BATCH, MAX_BATCH);
    for (size_t i = 0; i < n; i++) {
      size_t size = wl_size_skewed(&r, MIN_LOG2, MAX_LOG2);
      char *p = wl_xmalloc(size);
      p[0] = (char)i;
      p[size - 1] = (char)size;
      cur[i] = p;
    }
    ops += n;
    sh6_free_batch(t->ring, t->index, prev, prev_n, it);
    wl_ring_drain(t->ring, t->index, it & 1);
    void **swap = prev;
    prev = cur;
    cur = swap;
    prev_n = n;
  }
  for (size_t i = 0; i < prev_n; i++) free(prev[i]);
  free(prev);
  free(cur);
  wl_ring_finish(t->ring, t->index);
  t->ops = ops;
  return NULL;
}

int main(int argc, char **argv) {
  return wl_ring_main("sh6bench", argc, argv, 6000, sh6_worker);
}
