/*
** larson.c: a Larson-style server simulation (Larson & Krishnan, "Memory allocation for
** long-running server applications"). Each thread owns a table of live blocks and replaces a
** random one at each step (free, then malloc of a random size in [16, 1000]). Threads live for
** one epoch; the next epoch's threads inherit the tables rotated by one, so most frees hit
** blocks another (now dead) thread allocated, as when a server hands requests to new workers.
*/
#include "wl_common.h"

enum { SLOTS = 1000, MIN_SIZE = 16, MAX_SIZE = 1000 };

typedef struct larson_thread_s {
  void **slots;
  uint64_t seed;
  uint64_t steps;
} larson_thread_t;

static void *larson_worker(void *arg) {
  larson_thread_t *t = arg;
  wl_rng_t r = wl_rng(t->seed);
  for (uint64_t i = 0; i < t->steps; i++) {
    size_t k = (size_t)(wl_next(&r) % SLOTS);
    free(t->slots[k]);
    size_t n = wl_range(&r, MIN_SIZE, MAX_SIZE);
    char *p = wl_xmalloc(n);
    p[0] = (char)i;
    p[n - 1] = (char)k;
    t->slots[k] = p;
  }
  return NULL;
}

int main(int argc, char **argv) {
  wl_args_t a = wl_parse(argc, argv, 2);
  int epochs = 30;
  uint64_t steps = wl_scaled(300000, a.scale);
  void ***tables = wl_xmalloc(sizeof(void **) * (size_t)a.threads);
  wl_rng_t r = wl_rng(42);
  for (int i = 0; i < a.threads; i++) {
    tables[i] = wl_xmalloc(sizeof(void *) * SLOTS);
    for (int k = 0; k < SLOTS; k++) tables[i][k] = wl_xmalloc(wl_range(&r, MIN_SIZE, MAX_SIZE));
  }
  larson_thread_t *ts = wl_xmalloc(sizeof(larson_thread_t) * (size_t)a.threads);
  double t0 = wl_now();
  for (int e = 0; e < epochs; e++) {
    for (int i = 0; i < a.threads; i++) {
      ts[i].slots = tables[(i + e) % a.threads];
      ts[i].seed = (uint64_t)e * 1000 + (uint64_t)i;
      ts[i].steps = steps;
    }
    wl_run_threads(a.threads, larson_worker, ts, sizeof(larson_thread_t));
  }
  double secs = wl_now() - t0;
  for (int i = 0; i < a.threads; i++) {
    for (int k = 0; k < SLOTS; k++) free(tables[i][k]);
    free(tables[i]);
  }
  free(tables);
  free(ts);
  wl_report("larson", a.threads, (uint64_t)epochs * steps * (uint64_t)a.threads, secs);
  return 0;
}
