/*
** mstress.c: a stress mix with large blocks, after mimalloc's test-stress (mstress in
** mimalloc-bench). Threads keep a table of live blocks; each step allocates (1 in 100 a large
** block of 64 KiB to 4 MiB, otherwise 8 B to 4 KiB), frees, or swaps a block with a shared
** transfer table so that blocks die on other threads. Every page of a block is touched. Threads
** are replaced each round; the transfer table survives rounds.
*/
#include <stdatomic.h>

#include "wl_common.h"

enum { LOCAL = 1000, TRANSFER = 1000, ROUNDS = 10 };

static _Atomic(void *) ms_transfer[TRANSFER];

typedef struct ms_thread_s {
  uint64_t seed;
  uint64_t steps;
} ms_thread_t;

static void *ms_alloc(wl_rng_t *r) {
  size_t n = (wl_next(r) % 100 == 0) ? wl_size_skewed(r, 16, 21) : wl_size_skewed(r, 3, 11);
  char *p = wl_xmalloc(n);
  for (size_t off = 0; off < n; off += 4096) p[off] = (char)off;
  p[n - 1] = 1;
  return p;
}

static void *ms_worker(void *arg) {
  ms_thread_t *t = arg;
  wl_rng_t r = wl_rng(t->seed);
  void **local = calloc(LOCAL, sizeof(void *));
  for (uint64_t i = 0; i < t->steps; i++) {
    unsigned op = (unsigned)(wl_next(&r) % 100);
    size_t k = (size_t)(wl_next(&r) % LOCAL);
    if (op < 50) {
      free(local[k]);
      local[k] = ms_alloc(&r);
    } else if (op < 80) {
      free(local[k]);
      local[k] = NULL;
    } else {
      size_t j = (size_t)(wl_next(&r) % TRANSFER);
      local[k] = atomic_exchange(&ms_transfer[j], local[k]);
    }
  }
  for (size_t k = 0; k < LOCAL; k++) free(local[k]);
  free(local);
  return NULL;
}

int main(int argc, char **argv) {
  wl_args_t a = wl_parse(argc, argv, 2);
  uint64_t steps = wl_scaled(40000, a.scale);
  ms_thread_t *ts = wl_xmalloc(sizeof(ms_thread_t) * (size_t)a.threads);
  double t0 = wl_now();
  for (int round = 0; round < ROUNDS; round++) {
    for (int i = 0; i < a.threads; i++) {
      ts[i].seed = (uint64_t)round * 100 + (uint64_t)i + 1;
      ts[i].steps = steps;
    }
    wl_run_threads(a.threads, ms_worker, ts, sizeof(ms_thread_t));
  }
  double secs = wl_now() - t0;
  for (size_t j = 0; j < TRANSFER; j++) free(atomic_exchange(&ms_transfer[j], NULL));
  free(ts);
  wl_report("mstress", a.threads, steps * ROUNDS * (uint64_t)a.threads, secs);
  return 0;
}
