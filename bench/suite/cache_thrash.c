/*
** cache_thrash.c: active false sharing, after Hoard's cache-thrash. Every thread allocates
** small objects, writes to each many times and frees it. An allocator that hands adjacent
** objects to different threads makes them fight over cache lines.
*/
#include "wl_common.h"

enum { OBJ_SIZE = 8, WRITES = 500 };

typedef struct ct_thread_s {
  uint64_t iterations;
} ct_thread_t;

static void *ct_worker(void *arg) {
  ct_thread_t *t = arg;
  for (uint64_t i = 0; i < t->iterations; i++) {
    volatile char *p = wl_xmalloc(OBJ_SIZE);
    for (int w = 0; w < WRITES; w++) {
      for (int b = 0; b < OBJ_SIZE; b++) p[b] = (char)(p[b] + 1);
    }
    free((void *)p);
  }
  return NULL;
}

int main(int argc, char **argv) {
  wl_args_t a = wl_parse(argc, argv, 2);
  uint64_t iterations = wl_scaled(150000, a.scale);
  ct_thread_t *ts = wl_xmalloc(sizeof(ct_thread_t) * (size_t)a.threads);
  for (int i = 0; i < a.threads; i++) ts[i].iterations = iterations;
  double t0 = wl_now();
  wl_run_threads(a.threads, ct_worker, ts, sizeof(ct_thread_t));
  double secs = wl_now() - t0;
  free(ts);
  wl_report("cache-thrash", a.threads, iterations * (uint64_t)a.threads, secs);
  return 0;
}
