/*
** wl_common.h: shared helpers of the suite's workloads (bench/suite, one .c file each): argument parsing,
** a per-thread random generator, a monotonic clock and the one result line the runner reads.
** Workloads use plain malloc/free only: the allocator under test is chosen with LD_PRELOAD.
*/
#ifndef WL_COMMON_H
#define WL_COMMON_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Usage of every workload: <name> [threads] [scale]; scale multiplies the amount of work. */
typedef struct wl_args_s {
  int threads;
  double scale;
} wl_args_t;

static inline wl_args_t wl_parse(int argc, char **argv, int default_threads) {
  wl_args_t a = {default_threads, 1.0};
  if (argc > 1) a.threads = atoi(argv[1]);
  if (argc > 2) a.scale = atof(argv[2]);
  if (a.threads < 1) a.threads = 1;
  if (a.scale <= 0) a.scale = 1.0;
  return a;
}

static inline uint64_t wl_scaled(uint64_t n, double scale) {
  double v = (double)n * scale;
  return v < 1 ? 1 : (uint64_t)v;
}

static inline double wl_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift64*: fast, good enough to pick sizes and slots. */
typedef struct wl_rng_s {
  uint64_t s;
} wl_rng_t;

static inline wl_rng_t wl_rng(uint64_t seed) {
  wl_rng_t r = {seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull};
  if (r.s == 0) r.s = 1;
  return r;
}

static inline uint64_t wl_next(wl_rng_t *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [lo, hi]. */
static inline size_t wl_range(wl_rng_t *r, size_t lo, size_t hi) {
  return lo + (size_t)(wl_next(r) % (uint64_t)(hi - lo + 1));
}

/* Skewed toward small sizes: uniform exponent, then uniform within the power of two. */
static inline size_t wl_size_skewed(wl_rng_t *r, int min_log2, int max_log2) {
  int e = min_log2 + (int)(wl_next(r) % (uint64_t)(max_log2 - min_log2 + 1));
  size_t lo = (size_t)1 << e;
  return wl_range(r, lo, lo * 2 - 1);
}

static inline void *wl_xmalloc(size_t n) {
  void *p = malloc(n);
  if (p == NULL) {
    fprintf(stderr, "out of memory (%zu bytes)\n", n);
    exit(2);
  }
  return p;
}

/* Runs fn(i) on n threads and waits for them. */
static inline void wl_run_threads(int n, void *(*fn)(void *), void *args, size_t arg_size) {
  pthread_t *t = wl_xmalloc(sizeof(pthread_t) * (size_t)n);
  for (int i = 0; i < n; i++) {
    if (pthread_create(&t[i], NULL, fn, (char *)args + arg_size * (size_t)i) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      exit(2);
    }
  }
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
  free(t);
}

/* The line the runner parses: workload name, operations done, seconds of the timed part. */
static inline void wl_report(const char *name, int threads, uint64_t ops, double secs) {
  printf("RESULT workload=%s threads=%d ops=%llu secs=%.6f mops=%.3f\n", name, threads,
         (unsigned long long)ops, secs, secs > 0 ? (double)ops / secs / 1e6 : 0.0);
  fflush(stdout);
}

#endif /* WL_COMMON_H */
