/*
** cache_scratch.c: passive false sharing, after Hoard's cache-scratch. The main thread
** allocates one small object per thread, back to back, and hands them out; each thread frees
** its object and then repeatedly allocates an object of the same size and writes to it. An
** allocator that reuses the freed object for the thread makes neighbouring threads write into
** one cache line.
*/
#include "wl_common.h"

enum { OBJ_SIZE = 8, WRITES = 500 };

typedef struct cs_thread_s {
  char *first;
  uint64_t iterations;
} cs_thread_t;

static void *cs_worker(void *arg) {
  cs_thread_t *t = arg;
  free(t->first);
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
  cs_thread_t *ts = wl_xmalloc(sizeof(cs_thread_t) * (size_t)a.threads);
  for (int i = 0; i < a.threads; i++) {
    ts[i].first = wl_xmalloc(OBJ_SIZE);
    ts[i].iterations = iterations;
  }
  double t0 = wl_now();
  wl_run_threads(a.threads, cs_worker, ts, sizeof(cs_thread_t));
  double secs = wl_now() - t0;
  free(ts);
  wl_report("cache-scratch", a.threads, iterations * (uint64_t)a.threads, secs);
  return 0;
}
