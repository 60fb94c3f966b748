/*
** glibc_thread.c: random malloc/free per thread, after glibc's benchtests/bench-malloc-thread.
** Each thread works on its own table of 1024 slots: at each step a random slot is freed if
** full, else filled with a block of a random size (mostly small, up to 32 KiB). No block
** crosses threads: this measures the thread-local fast paths.
*/
#include "wl_common.h"

enum { SLOTS = 1024 };

typedef struct gt_thread_s {
  uint64_t seed;
  uint64_t steps;
} gt_thread_t;

static void *gt_worker(void *arg) {
  gt_thread_t *t = arg;
  wl_rng_t r = wl_rng(t->seed);
  void *slots[SLOTS] = {0};
  for (uint64_t i = 0; i < t->steps; i++) {
    size_t k = (size_t)(wl_next(&r) % SLOTS);
    if (slots[k] != NULL) {
      free(slots[k]);
      slots[k] = NULL;
    } else {
      /* glibc's bench draws sizes from a distribution falling off as 1/size; this is close. */
      size_t n = (wl_next(&r) % 64 == 0) ? wl_size_skewed(&r, 10, 14) : wl_size_skewed(&r, 4, 9);
      char *p = wl_xmalloc(n);
      p[0] = 1;
      slots[k] = p;
    }
  }
  for (size_t k = 0; k < SLOTS; k++) free(slots[k]);
  return NULL;
}

int main(int argc, char **argv) {
  wl_args_t a = wl_parse(argc, argv, 2);
  uint64_t steps = wl_scaled(15000000, a.scale);
  gt_thread_t *ts = wl_xmalloc(sizeof(gt_thread_t) * (size_t)a.threads);
  for (int i = 0; i < a.threads; i++) {
    ts[i].seed = (uint64_t)i + 3;
    ts[i].steps = steps;
  }
  double t0 = wl_now();
  wl_run_threads(a.threads, gt_worker, ts, sizeof(gt_thread_t));
  double secs = wl_now() - t0;
  free(ts);
  wl_report("glibc-thread", a.threads, steps * (uint64_t)a.threads, secs);
  return 0;
}
