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

typedef struct sh8_thread_s {
  wl_ring_t *ring;
  int index;
  uint64_t iterations;
  uint64_t ops; /* out */
} sh8_thread_t;

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
  sh8_thread_t *t = arg;
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
  wl_args_t a = wl_parse(argc, argv, 2);
  uint64_t iterations = wl_scaled(2000, a.scale);
  wl_ring_t ring;
  wl_ring_init(&ring, a.threads);
  sh8_thread_t *ts = wl_xmalloc(sizeof(sh8_thread_t) * (size_t)a.threads);
  for (int i = 0; i < a.threads; i++) {
    ts[i].ring = &ring;
    ts[i].index = i;
    ts[i].iterations = iterations;
    ts[i].ops = 0;
  }
  double t0 = wl_now();
  wl_run_threads(a.threads, sh8_worker, ts, sizeof(sh8_thread_t));
  double secs = wl_now() - t0;
  uint64_t ops = 0;
  for (int i = 0; i < a.threads; i++) ops += ts[i].ops;
  free(ts);
  wl_ring_destroy(&ring);
  wl_report("sh8bench", a.threads, ops, secs);
  return 0;
}
