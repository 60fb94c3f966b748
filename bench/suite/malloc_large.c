/*
** malloc_large.c: mimalloc-bench's malloc-large, as issue 10 describes it: one thread keeps 20
** live blocks of 5-25 MiB and replaces one at random 2000 times; each new block is zero-filled
** (every page written). What it measures is how much freed memory the allocator reuses before
** it goes back to the OS: a block that is unmapped at free faults in all of its pages again.
*/
#include "wl_common.h"

enum { LIVE = 20 };

int main(int argc, char **argv) {
  wl_args_t a = wl_parse(argc, argv, 1);
  uint64_t steps = wl_scaled(2000, a.scale);
  wl_rng_t r = wl_rng(42);
  char *live[LIVE] = {0};
  const size_t mib = (size_t)1 << 20;
  double t0 = wl_now();
  for (uint64_t i = 0; i < steps; i++) {
    size_t k = wl_next(&r) % LIVE;
    free(live[k]);
    size_t n = wl_range(&r, 5 * mib, 25 * mib);
    live[k] = wl_xmalloc(n);
    memset(live[k], 0, n);
  }
  double secs = wl_now() - t0;
  for (size_t k = 0; k < LIVE; k++) free(live[k]);
  wl_report("malloc-large", 1, steps, secs);
  return 0;
}
