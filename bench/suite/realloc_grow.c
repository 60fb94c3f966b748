/*
** realloc_grow.c: realloc-heavy growth, as string builders and vectors do. Each thread keeps 64
** buffers; each step appends 1 to 64 bytes to a random buffer with realloc; a buffer that
** reaches its random cap (256 B to 1 MiB) is shrunk to 16 bytes (1 in 4) or freed and restarted.
*/
#include "wl_common.h"

enum { BUFFERS = 64 };

typedef struct rg_thread_s {
  uint64_t seed;
  uint64_t steps;
} rg_thread_t;

typedef struct rg_buf_s {
  char *p;
  size_t len;
  size_t cap;
} rg_buf_t;

static void *rg_worker(void *arg) {
  rg_thread_t *t = arg;
  wl_rng_t r = wl_rng(t->seed);
  rg_buf_t b[BUFFERS] = {{0}};
  for (size_t k = 0; k < BUFFERS; k++) b[k].cap = wl_size_skewed(&r, 8, 19);
  for (uint64_t i = 0; i < t->steps; i++) {
    rg_buf_t *x = &b[wl_next(&r) % BUFFERS];
    size_t add = wl_range(&r, 1, 64);
    char *q = realloc(x->p, x->len + add);
    if (q == NULL) {
      fprintf(stderr, "out of memory\n");
      exit(2);
    }
    memset(q + x->len, (int)(i & 0x7f), add);
    x->p = q;
    x->len += add;
    if (x->len >= x->cap) {
      if (wl_next(&r) % 4 == 0) {
        x->p = realloc(x->p, 16);
        x->len = 16;
      } else {
        free(x->p);
        x->p = NULL;
        x->len = 0;
      }
      x->cap = wl_size_skewed(&r, 8, 19);
    }
  }
  for (size_t k = 0; k < BUFFERS; k++) free(b[k].p);
  return NULL;
}

int main(int argc, char **argv) {
  wl_args_t a = wl_parse(argc, argv, 2);
  uint64_t steps = wl_scaled(3000000, a.scale);
  rg_thread_t *ts = wl_xmalloc(sizeof(rg_thread_t) * (size_t)a.threads);
  for (int i = 0; i < a.threads; i++) {
    ts[i].seed = (uint64_t)i + 11;
    ts[i].steps = steps;
  }
  double t0 = wl_now();
  wl_run_threads(a.threads, rg_worker, ts, sizeof(rg_thread_t));
  double secs = wl_now() - t0;
  free(ts);
  wl_report("realloc", a.threads, steps * (uint64_t)a.threads, secs);
  return 0;
}
