/*
** bench_core.c: the core benchmarks of issue 2, built once per allocator (-DBENCH_HAKMEM,
** -DBENCH_MIMALLOC or -DBENCH_GLIBC). One process runs one named workload for a given time and
** prints one machine-readable line:
**   core alloc=<name> workload=<name> ops=<n> seconds=<s> ops_per_s=<x> ops_per_cpu_s=<y>
**        rss_kib=<peak>
** ops_per_s is over wall time. ops_per_cpu_s is over the working threads' CPU time (summed per
** thread for twoheaps; 0 for prodcons, whose threads spin while waiting), steadier on a shared
** machine. The runner (run.c) takes the peak RSS from wait4, which is the same number.
**
** Workloads:
**   random    one thread, 10k live blocks of 8-1024 B; replace a random slot (free, malloc).
**             One op = one free + one malloc.
**   request   per-request heap: create, ~1000 allocations (3/4 of 16-256 B, 1/4 of 256 B-4 KiB)
**             plus 4 of 64-256 KiB, every page touched, destroy. One op = one request. glibc
**             has no heaps: it frees each block.
**   prodcons  thread A mallocs 16-512 B and passes blocks through an SPSC ring to thread B,
**             which frees them (all frees remote). One op = one block.
**   twoheaps  two threads, each on its own heap, running `random`. Ops of both threads.
**   medium    one thread, 64 live blocks of 32 KiB-1 MiB (default heap); each op picks a slot
**             and either grows its block with realloc (1 in 4, by up to its size, capped at
**             1 MiB) or frees it and mallocs a new random size; every new page is touched.
**             One op = one realloc or one free + malloc. Issue 10 also counts page faults:
**             loop_faults= is those taken in the timed loop (the initial fill is left out).
*/
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* ** {======================================================
** Allocator shims: the same names for every allocator.
** ======================================================= */
#if defined(BENCH_HAKMEM)
#include "hakmem.h"
#define ALLOC_NAME "hakmem"
typedef hak_heap_t bheap_t;
static inline void *b_malloc(size_t n) { return hak_malloc(n); }
static inline void b_free(void *p) { hak_free(p); }
static inline void *b_realloc(void *p, size_t n) { return hak_realloc(p, n); }
static bheap_t *b_heap_new(void) { return hak_heap_create(NULL); }
static inline void *b_heap_malloc(bheap_t *h, size_t n) { return hak_heap_malloc(h, n); }
static void b_heap_destroy(bheap_t *h) { hak_heap_destroy(h); }
#define B_HAVE_HEAPS 1
#elif defined(BENCH_MIMALLOC)
#include <mimalloc.h>
#define ALLOC_NAME "mimalloc"
typedef mi_heap_t bheap_t;
static inline void *b_malloc(size_t n) { return mi_malloc(n); }
static inline void b_free(void *p) { mi_free(p); }
static inline void *b_realloc(void *p, size_t n) { return mi_realloc(p, n); }
static bheap_t *b_heap_new(void) { return mi_heap_new(); }
static inline void *b_heap_malloc(bheap_t *h, size_t n) { return mi_heap_malloc(h, n); }
static void b_heap_destroy(bheap_t *h) { mi_heap_destroy(h); }
#define B_HAVE_HEAPS 1
#elif defined(BENCH_GLIBC)
#define ALLOC_NAME "glibc"
typedef void bheap_t;
static inline void *b_malloc(size_t n) { return malloc(n); }
static inline void b_free(void *p) { free(p); }
static inline void *b_realloc(void *p, size_t n) { return realloc(p, n); }
static bheap_t *b_heap_new(void) { return (void *)1; }
static inline void *b_heap_malloc(bheap_t *h, size_t n) { (void)h; return malloc(n); }
static void b_heap_destroy(bheap_t *h) { (void)h; }
#define B_HAVE_HEAPS 0
#else
#error "define one of BENCH_HAKMEM, BENCH_MIMALLOC, BENCH_GLIBC"
#endif
/* }====================================================== */

/* ** {======================================================
** Helpers: clock, PRNG, touching memory.
** ======================================================= */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of the calling thread: less disturbed than wall time on a shared machine. */
static double thread_cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift64*: cheap and the same sequence for every allocator. */
typedef struct { uint64_t s; } rng_t;
static inline uint64_t rng_next(rng_t *r) {
  uint64_t x = r->s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  r->s = x;
  return x * 0x2545F4914F6CDD1DULL;
}
/* Uniform in [0, n) without a division (Lemire's multiply-shift). */
static inline uint32_t rng_below(rng_t *r, uint32_t n) {
  return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}
static inline size_t rng_range(rng_t *r, size_t lo, size_t hi) {
  return lo + rng_below(r, (uint32_t)(hi - lo + 1));
}

/* Write the first and last byte and one byte per 4 KiB page, so every page is really used. */
static inline void touch(void *p, size_t n) {
  volatile char *c = p;
  for (size_t i = 0; i < n; i += 4096) c[i] = (char)i;
  c[n - 1] = 1;
}

/* Page faults of this process so far (minor + major). */
static long faults_now(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt + ru.ru_majflt;
}
/* Faults taken inside the timed loop of the workload that sets it (medium); -1 = not measured. */
static long loop_faults = -1;

static void *xcheck(void *p, size_t n) {
  if (p == NULL) {
    fprintf(stderr, "bench_core(%s): allocation of %zu bytes failed: %s\n", ALLOC_NAME, n,
            strerror(errno));
    exit(2);
  }
  return p;
}
/* }====================================================== */

/* ** {======================================================
** random and twoheaps: replace a random slot among 10k live blocks.
** ======================================================= */
#define RANDOM_SLOTS 10000
#define RANDOM_MIN 8
#define RANDOM_MAX 1024
#define CLOCK_EVERY 4096 /* ops between clock reads */

typedef struct {
  double seconds;      /* in: run time */
  uint64_t seed;       /* in */
  int own_heap;        /* in: allocate from a heap of this thread (twoheaps) */
  pthread_barrier_t *start; /* in: NULL when single-threaded */
  uint64_t ops;        /* out */
  double elapsed;      /* out: wall seconds */
  double cpu;          /* out: thread CPU seconds */
} random_arg_t;

static void *random_run(void *argp) {
  random_arg_t *a = argp;
  rng_t r = {a->seed};
  void **slot = xcheck(calloc(RANDOM_SLOTS, sizeof(void *)), RANDOM_SLOTS * sizeof(void *));
  bheap_t *h = a->own_heap ? b_heap_new() : NULL;
  if (a->own_heap) xcheck(h, 0);
  for (int i = 0; i < RANDOM_SLOTS; i++) {
    size_t n = rng_range(&r, RANDOM_MIN, RANDOM_MAX);
    slot[i] = xcheck(h ? b_heap_malloc(h, n) : b_malloc(n), n);
    *(char *)slot[i] = 1;
  }
  if (a->start) pthread_barrier_wait(a->start);
  double t0 = now_s(), t1 = t0, end = t0 + a->seconds, c0 = thread_cpu_s();
  uint64_t ops = 0;
  do {
    for (int k = 0; k < CLOCK_EVERY; k++) {
      uint32_t i = rng_below(&r, RANDOM_SLOTS);
      size_t n = rng_range(&r, RANDOM_MIN, RANDOM_MAX);
      b_free(slot[i]);
      void *p = h ? b_heap_malloc(h, n) : b_malloc(n);
      slot[i] = xcheck(p, n);
      *(char *)p = (char)k;
    }
    ops += CLOCK_EVERY;
    t1 = now_s();
  } while (t1 < end);
  a->ops = ops;
  a->elapsed = t1 - t0;
  a->cpu = thread_cpu_s() - c0;
  for (int i = 0; i < RANDOM_SLOTS; i++) b_free(slot[i]);
  if (h) b_heap_destroy(h);
  free(slot);
  return NULL;
}

static uint64_t wl_random(double seconds, double *elapsed, double *cpu_rate) {
  random_arg_t a = {.seconds = seconds, .seed = 0x9E3779B97F4A7C15ULL};
  random_run(&a);
  *elapsed = a.elapsed;
  *cpu_rate = (double)a.ops / a.cpu;
  return a.ops;
}

static uint64_t wl_twoheaps(double seconds, double *elapsed, double *cpu_rate) {
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, 2);
  random_arg_t a[2];
  pthread_t t[2];
  for (int i = 0; i < 2; i++) {
    a[i] = (random_arg_t){.seconds = seconds, .seed = 0x9E3779B97F4A7C15ULL + 77 * (uint64_t)i,
                          .own_heap = 1, .start = &start};
    if (pthread_create(&t[i], NULL, random_run, &a[i]) != 0) exit(2);
  }
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&start);
  *elapsed = a[0].elapsed > a[1].elapsed ? a[0].elapsed : a[1].elapsed;
  *cpu_rate = (double)a[0].ops / a[0].cpu + (double)a[1].ops / a[1].cpu;
  return a[0].ops + a[1].ops;
}
/* }====================================================== */

/* ** {======================================================
** request: a heap per request.
** ======================================================= */
#define REQ_BLOCKS 1004
#define REQ_LARGE_EVERY 251 /* every 251st block is large: 4 of 1004 */

static uint64_t wl_request(double seconds, double *elapsed, double *cpu_rate) {
  rng_t r = {0xD1B54A32D192ED03ULL};
  void *ptrs[REQ_BLOCKS];
  double t0 = now_s(), t1 = t0, end = t0 + seconds, c0 = thread_cpu_s();
  uint64_t reqs = 0;
  do {
    bheap_t *h = xcheck(b_heap_new(), 0);
    int np = 0;
    for (int i = 0; i < REQ_BLOCKS; i++) {
      size_t n;
      if (i % REQ_LARGE_EVERY == REQ_LARGE_EVERY - 1)
        n = rng_range(&r, 64 << 10, 256 << 10);
      else if (rng_below(&r, 4) != 0)
        n = rng_range(&r, 16, 256);
      else
        n = rng_range(&r, 256, 4096);
      void *p = xcheck(b_heap_malloc(h, n), n);
      touch(p, n);
      ptrs[np++] = p;
    }
    if (!B_HAVE_HEAPS)
      for (int i = 0; i < np; i++) b_free(ptrs[i]);
    b_heap_destroy(h);
    reqs++;
    t1 = now_s();
  } while (t1 < end);
  *elapsed = t1 - t0;
  *cpu_rate = (double)reqs / (thread_cpu_s() - c0);
  return reqs;
}
/* }====================================================== */

/* ** {======================================================
** prodcons: SPSC ring from an allocating thread to a freeing thread.
** ======================================================= */
#define RING_CAP 1024 /* power of two */
#define SPIN_BEFORE_YIELD 64

typedef struct {
  _Alignas(64) _Atomic uint64_t head; /* written by the producer only */
  _Alignas(64) _Atomic uint64_t tail; /* written by the consumer only */
  _Alignas(64) void *slot[RING_CAP];
  _Alignas(64) double seconds;
  pthread_barrier_t start;
  uint64_t consumed, sink;
  double t0, t1;
} ring_t;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* Two threads on two shared cores: spin briefly, then yield so a descheduled peer can run. */
static inline void backoff(int *spins) {
  if (++*spins < SPIN_BEFORE_YIELD) cpu_relax();
  else { *spins = 0; sched_yield(); }
}

static void ring_push(ring_t *q, void *p, uint64_t *head, uint64_t *tail_cache) {
  int spins = 0;
  while (*head - *tail_cache == RING_CAP) {
    *tail_cache = atomic_load_explicit(&q->tail, memory_order_acquire);
    if (*head - *tail_cache == RING_CAP) backoff(&spins);
  }
  q->slot[*head & (RING_CAP - 1)] = p;
  atomic_store_explicit(&q->head, ++*head, memory_order_release);
}

static void *producer(void *argp) {
  ring_t *q = argp;
  rng_t r = {0x2545F4914F6CDD1DULL};
  uint64_t head = 0, tail_cache = 0;
  pthread_barrier_wait(&q->start);
  double end = now_s() + q->seconds;
  for (;;) {
    for (int k = 0; k < 256; k++) {
      size_t n = rng_range(&r, 16, 512);
      char *p = xcheck(b_malloc(n), n);
      p[0] = (char)n;
      ring_push(q, p, &head, &tail_cache);
    }
    if (now_s() >= end) break;
  }
  ring_push(q, NULL, &head, &tail_cache);
  return NULL;
}

static void *consumer(void *argp) {
  ring_t *q = argp;
  uint64_t tail = 0, head_cache = 0, n = 0, sink = 0;
  pthread_barrier_wait(&q->start);
  q->t0 = now_s();
  for (;;) {
    int spins = 0;
    while (tail == head_cache) {
      head_cache = atomic_load_explicit(&q->head, memory_order_acquire);
      if (tail == head_cache) backoff(&spins);
    }
    char *p = q->slot[tail & (RING_CAP - 1)];
    atomic_store_explicit(&q->tail, ++tail, memory_order_release);
    if (p == NULL) break;
    sink += (unsigned char)p[0]; /* read the block as a real consumer would */
    b_free(p);
    n++;
  }
  q->t1 = now_s();
  q->consumed = n;
  q->sink = sink;
  return NULL;
}

static uint64_t wl_prodcons(double seconds, double *elapsed, double *cpu_rate) {
  ring_t *q = xcheck(aligned_alloc(64, sizeof(ring_t)), sizeof(ring_t));
  memset(q, 0, sizeof *q);
  q->seconds = seconds;
  pthread_barrier_init(&q->start, NULL, 2);
  pthread_t a, b;
  if (pthread_create(&b, NULL, consumer, q) != 0 || pthread_create(&a, NULL, producer, q) != 0)
    exit(2);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  pthread_barrier_destroy(&q->start);
  *elapsed = q->t1 - q->t0;
  *cpu_rate = 0; /* both threads spin while waiting: CPU time says nothing here */
  uint64_t n = q->consumed;
  free(q);
  return n;
}
/* }====================================================== */

/* ** {======================================================
** medium: 32 KiB-1 MiB blocks, malloc/free and realloc growth.
** ======================================================= */
#define MEDIUM_SLOTS 64
#define MEDIUM_LO ((size_t)32 * 1024 + 1)
#define MEDIUM_HI ((size_t)1024 * 1024)

static uint64_t wl_medium(double seconds, double *elapsed, double *cpu_rate) {
  rng_t r = {0x243F6A8885A308D3ULL};
  void *slot[MEDIUM_SLOTS];
  size_t size[MEDIUM_SLOTS];
  for (int i = 0; i < MEDIUM_SLOTS; i++) {
    size[i] = rng_range(&r, MEDIUM_LO, MEDIUM_HI);
    slot[i] = xcheck(b_malloc(size[i]), size[i]);
    touch(slot[i], size[i]);
  }
  double t0 = now_s(), t1 = t0, end = t0 + seconds, c0 = thread_cpu_s();
  long f0 = faults_now();
  uint64_t ops = 0;
  do {
    for (int k = 0; k < 64; k++) {
      uint32_t i = rng_below(&r, MEDIUM_SLOTS);
      if (rng_below(&r, 4) == 0 && size[i] < MEDIUM_HI) {
        size_t n = size[i] + rng_range(&r, 1, size[i]);
        if (n > MEDIUM_HI) n = MEDIUM_HI;
        char *p = xcheck(b_realloc(slot[i], n), n);
        touch(p + size[i], n - size[i]);
        slot[i] = p;
        size[i] = n;
      } else {
        b_free(slot[i]);
        size[i] = rng_range(&r, MEDIUM_LO, MEDIUM_HI);
        slot[i] = xcheck(b_malloc(size[i]), size[i]);
        touch(slot[i], size[i]);
      }
    }
    ops += 64;
    t1 = now_s();
  } while (t1 < end);
  loop_faults = faults_now() - f0;
  *elapsed = t1 - t0;
  *cpu_rate = (double)ops / (thread_cpu_s() - c0);
  for (int i = 0; i < MEDIUM_SLOTS; i++) b_free(slot[i]);
  return ops;
}
/* }====================================================== */

static const struct {
  const char *name;
  uint64_t (*run)(double seconds, double *elapsed, double *cpu_rate);
} workloads[] = {
  {"random", wl_random},
  {"request", wl_request},
  {"prodcons", wl_prodcons},
  {"twoheaps", wl_twoheaps},
  {"medium", wl_medium},
};
#define NWORKLOADS (sizeof workloads / sizeof workloads[0])

/*
** VmHWM: the peak RSS of this process image alone. ru_maxrss also counts the forked parent's
** RSS from before exec, which matters only for a process as small as the baseline.
*/
static long vm_hwm_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = 0;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
  if (f) fclose(f);
  return kib;
}

static void usage(void) {
  fprintf(stderr, "usage: bench_%s --workload NAME [--seconds S]\n  workloads: none", ALLOC_NAME);
  for (size_t i = 0; i < NWORKLOADS; i++) fprintf(stderr, " %s", workloads[i].name);
  fprintf(stderr, "\n");
  exit(64);
}

int main(int argc, char **argv) {
  const char *name = NULL;
  double seconds = 1.0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--workload") == 0 && i + 1 < argc) name = argv[++i];
    else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) seconds = atof(argv[++i]);
    else usage();
  }
  if (name == NULL || !(seconds > 0)) usage();
  if (strcmp(name, "none") == 0) { /* the process baseline, for the runner's RSS-base row */
    printf("core alloc=%s workload=none ops=0 seconds=0 ops_per_s=0 ops_per_cpu_s=0 hwm_kib=%ld\n",
           ALLOC_NAME, vm_hwm_kib());
    return 0;
  }
  for (size_t i = 0; i < NWORKLOADS; i++) {
    if (strcmp(name, workloads[i].name) != 0) continue;
    double elapsed = 0, cpu_rate = 0;
    uint64_t ops = workloads[i].run(seconds, &elapsed, &cpu_rate);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("core alloc=%s workload=%s ops=%llu seconds=%.6f ops_per_s=%.1f ops_per_cpu_s=%.1f "
           "rss_kib=%ld loop_faults=%ld\n", ALLOC_NAME, name, (unsigned long long)ops, elapsed,
           (double)ops / elapsed, cpu_rate, ru.ru_maxrss, loop_faults);
    return 0;
  }
  usage();
}
