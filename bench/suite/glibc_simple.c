/*
** glibc_simple.c: fixed-size malloc/free loops on one thread, after glibc's
** benchtests/bench-malloc-simple. For each size of 16, 32, 64, 128, 256, 512 and 1024 bytes and
** each batch of 25, 100, 400 and 1600 blocks: allocate the batch (writing each block's first
** byte), then free it first to last, repeated until 600,000 blocks of that size and batch have
** gone through. No thread is started, so allocators with a single-thread fast path (glibc's
** SINGLE_THREAD_P) may use it. The thread count argument is ignored. One op = one malloc and
** its free.
*/
#include "wl_common.h"

enum { MAX_BATCH = 1600 };

static const size_t gs_sizes[] = {16, 32, 64, 128, 256, 512, 1024};
static const size_t gs_batches[] = {25, 100, 400, MAX_BATCH};

int main(int argc, char **argv) {
  wl_args_t a = wl_parse(argc, argv, 1);
  uint64_t per_case = wl_scaled(600000, a.scale);
  void **blocks = wl_xmalloc(sizeof(void *) * MAX_BATCH);
  uint64_t ops = 0;
  double t0 = wl_now();
  for (size_t s = 0; s < sizeof gs_sizes / sizeof gs_sizes[0]; s++) {
    for (size_t c = 0; c < sizeof gs_batches / sizeof gs_batches[0]; c++) {
      size_t n = gs_batches[c];
      uint64_t reps = per_case / n > 0 ? per_case / n : 1;
      for (uint64_t rep = 0; rep < reps; rep++) {
        for (size_t i = 0; i < n; i++) {
          char *p = wl_xmalloc(gs_sizes[s]);
          p[0] = (char)i;
          blocks[i] = p;
        }
        for (size_t i = 0; i < n; i++) free(blocks[i]);
      }
      ops += reps * n;
    }
  }
  double secs = wl_now() - t0;
  free(blocks);
  wl_report("glibc-simple", 1, ops, secs);
  return 0;
}
