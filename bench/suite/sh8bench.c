/*
** sh8bench.c: like sh6bench, with whole batches handed between threads, in the style of
** MicroQuill's SmartHeap sh8bench. Each iteration a thread allocates two batches of 200-2000
** blocks of 8 B-1 KiB (uniform exponent). The first it keeps until the next iteration and
** then frees, last to first and first to last in turn. The second it hands, whole, to the next
** thread, which frees it when it next looks at its mailbox (after each iteration), in the
** order opposite to its own local frees. Half the blocks die on another thread. One op = one
** malloc (and its free, wherever it happens).
*/
#include "wl_common.h"

enum { MIN_BATCH = 200, MAX_BATCH = 2000, MIN_LOG2 = 3, MAX_LOG2 = 10 };

static wl_batch_t *sh8_alloc_batch(wl_rng_t *r) {
  size_t n = wl_range(r, MIN_BATCH, MAX_BATCH);
  wl_batch_t *b = wl_batch_new(n);
  for (size_t i = 0; i < n; i++) {
    size_t size = wl_size_skewed(r, MIN_LOG2, MAX_LOG2);
    char *p = wl_xmalloc(size);
    p[0] = (char)i;
    p[size - 1] = (char)size;
    b->blocks[i] = p;
  }
  return b;
}

static void *sh8_worker(void *arg) {
  wl_ring_thread_t *t = arg;
  wl_rng_t r = wl_rng((uint64_t)t->index + 47);
  int next = (t->index + 1) % t->ring->threads;
  wl_batch_t *kept = NULL;
  uint64_t ops = 0;
  for (uint64_t it = 0; it < t->iterations; it++) {
    wl_batch_t *local = sh8_alloc_batch(&r);
    wl_batch_t *remote = sh8_alloc_batch(&r);
    ops += local->count + remote->count;
    wl_ring_send(t->ring, t->index, next, remote);
    int reverse = (it & 1) == 0;
    if (kept != NULL) wl_batch_free(kept, reverse);
    kept = local;
    wl_ring_drain(t->ring, t->index, !reverse);
  }
  if (kept != NULL) wl_batch_free(kept, 0);
  wl_ring_finish(t->ring, t->index);
  t->ops = ops;
  return NULL;
}

int main(int argc, char **argv) {
  return wl_ring_main("sh8bench", argc, argv, 2000, sh8_worker);
}
