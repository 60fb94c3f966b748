/*
** wl_common.h: shared helpers of the suite's workloads (bench/suite, one .c file each): argument parsing,
** a per-thread random generator, a monotonic clock, the one result line the runner reads, and a
** ring of mailboxes through which threads hand batches of blocks to each other to free.
** Workloads use plain malloc/free only: the allocator under test is chosen with LD_PRELOAD.
*/
#ifndef WL_COMMON_H
#define WL_COMMON_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
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

/* ** {======================================================
** Cross-thread handoff: each thread owns a mailbox; any thread pushes batches of blocks it
** allocated into another thread's mailbox, and the owner takes them all at once and frees them.
** Taking is one exchange of the head, so the stack has no ABA problem. A sender waits while the
** receiver holds WL_MAILBOX_MAX batches; while it waits it empties its own mailbox, so a ring of
** waiting senders always moves. A thread that is done keeps emptying its mailbox until every
** thread is done (wl_ring_finish): after that nobody sends and the last take gets everything.
** ======================================================= */
enum { WL_MAILBOX_MAX = 16 };

/* Batch header and block array in one malloc by the sender, freed by the receiver. */
typedef struct wl_batch_s {
  struct wl_batch_s *next;
  size_t count;
  void *blocks[];
} wl_batch_t;

/* One per thread, alone on its cache line. pending >= batches on the stack (incremented before
** the push, decremented after the take). */
typedef struct wl_mailbox_s {
  _Alignas(64) _Atomic(wl_batch_t *) head;
  atomic_int pending;
} wl_mailbox_t;

typedef struct wl_ring_s {
  int threads;
  atomic_int running; /* threads not yet in wl_ring_finish */
  wl_mailbox_t *boxes;
} wl_ring_t;

static inline void wl_ring_init(wl_ring_t *ring, int threads) {
  ring->threads = threads;
  atomic_init(&ring->running, threads);
  ring->boxes = aligned_alloc(64, sizeof(wl_mailbox_t) * (size_t)threads);
  if (ring->boxes == NULL) {
    fprintf(stderr, "out of memory (mailboxes)\n");
    exit(2);
  }
  for (int i = 0; i < threads; i++) {
    atomic_init(&ring->boxes[i].head, NULL);
    atomic_init(&ring->boxes[i].pending, 0);
  }
}

static inline void wl_ring_destroy(wl_ring_t *ring) { free(ring->boxes); }

static inline wl_batch_t *wl_batch_new(size_t count) {
  wl_batch_t *b = wl_xmalloc(sizeof(wl_batch_t) + sizeof(void *) * count);
  b->next = NULL;
  b->count = count;
  return b;
}

/* Frees the blocks (last first when reverse) and the batch. */
static inline void wl_batch_free(wl_batch_t *b, int reverse) {
  if (reverse) {
    for (size_t i = b->count; i > 0; i--) free(b->blocks[i - 1]);
  } else {
    for (size_t i = 0; i < b->count; i++) free(b->blocks[i]);
  }
  free(b);
}

/* Frees every batch in thread self's mailbox; returns how many there were. */
static inline int wl_ring_drain(wl_ring_t *ring, int self, int reverse) {
  wl_mailbox_t *m = &ring->boxes[self];
  if (atomic_load_explicit(&m->head, memory_order_relaxed) == NULL) return 0;
  wl_batch_t *b = atomic_exchange_explicit(&m->head, NULL, memory_order_acquire);
  int n = 0;
  while (b != NULL) {
    wl_batch_t *next = b->next;
    wl_batch_free(b, reverse);
    b = next;
    n++;
  }
  atomic_fetch_sub_explicit(&m->pending, n, memory_order_relaxed);
  return n;
}

/* Thread self hands batch b to thread `to`, which frees it. */
static inline void wl_ring_send(wl_ring_t *ring, int self, int to, wl_batch_t *b) {
  wl_mailbox_t *m = &ring->boxes[to];
  while (atomic_load_explicit(&m->pending, memory_order_relaxed) >= WL_MAILBOX_MAX) {
    if (wl_ring_drain(ring, self, 0) == 0) sched_yield();
  }
  atomic_fetch_add_explicit(&m->pending, 1, memory_order_relaxed);
  wl_batch_t *head = atomic_load_explicit(&m->head, memory_order_relaxed);
  do {
    b->next = head;
  } while (!atomic_compare_exchange_weak_explicit(&m->head, &head, b, memory_order_release,
                                                  memory_order_relaxed));
}

/* Called once by each thread after its last send: frees what reaches it until all are done. */
static inline void wl_ring_finish(wl_ring_t *ring, int self) {
  atomic_fetch_sub_explicit(&ring->running, 1, memory_order_acq_rel);
  while (atomic_load_explicit(&ring->running, memory_order_acquire) > 0) {
    if (wl_ring_drain(ring, self, 0) == 0) sched_yield();
  }
  wl_ring_drain(ring, self, 0);
}

/* One thread of a ring workload: its place on the ring, how many iterations to run, and the
** operations it did (out). */
typedef struct wl_ring_thread_s {
  wl_ring_t *ring;
  int index;
  uint64_t iterations;
  uint64_t ops;
} wl_ring_thread_t;

/* main() of a ring workload: parse the arguments, run `worker` (given a wl_ring_thread_t *) on
** every thread for base_iterations (scaled), report the summed operations. */
static inline int wl_ring_main(const char *name, int argc, char **argv, uint64_t base_iterations,
                               void *(*worker)(void *)) {
  wl_args_t a = wl_parse(argc, argv, 2);
  uint64_t iterations = wl_scaled(base_iterations, a.scale);
  wl_ring_t ring;
  wl_ring_init(&ring, a.threads);
  wl_ring_thread_t *ts = wl_xmalloc(sizeof(wl_ring_thread_t) * (size_t)a.threads);
  for (int i = 0; i < a.threads; i++)
    ts[i] = (wl_ring_thread_t){.ring = &ring, .index = i, .iterations = iterations, .ops = 0};
  double t0 = wl_now();
  wl_run_threads(a.threads, worker, ts, sizeof(wl_ring_thread_t));
  double secs = wl_now() - t0;
  uint64_t ops = 0;
  for (int i = 0; i < a.threads; i++) ops += ts[i].ops;
  free(ts);
  wl_ring_destroy(&ring);
  wl_report(name, a.threads, ops, secs);
  return 0;
}
/* }====================================================== */

#endif /* WL_COMMON_H */
