/* Helpers shared by the hakmem core black-box tests (see test_util.h). */
#include "test_util.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void ht_record(int err, const char *msg, void *arg) {
  ht_errlog_t *log = arg;
  log->calls++;
  log->err = err;
  log->arg = arg;
  snprintf(log->msg, sizeof log->msg, "%s", msg ? msg : "(null)");
}

void ht_errlog_clear(ht_errlog_t *log) {
  memset(log, 0, sizeof *log);
}

void ht_errlog_install(ht_errlog_t *log) {
  ht_errlog_clear(log);
  hak_set_error_handler(ht_record, log);
}

bool ht_msg_names_pointer(const char *msg, const void *p) {
  char hex[32];
  snprintf(hex, sizeof hex, "%" PRIxPTR, (uintptr_t)p);
  return msg != NULL && strcasestr(msg, hex) != NULL;
}

void ht_fill(void *p, size_t n, uint8_t seed) {
  memset(p, seed, n);
}

bool ht_check(const void *p, size_t n, uint8_t seed) {
  const unsigned char *b = p;
  if (n == 0) return true;
  return b[0] == seed && memcmp(b, b + 1, n - 1) == 0;
}

static uint8_t ht_seq_byte(size_t i, uint32_t seed) {
  return (uint8_t)(seed + i * 7u + (i >> 8) * 13u + (i >> 16));
}

void ht_fill_seq(void *p, size_t n, uint32_t seed) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++) b[i] = ht_seq_byte(i, seed);
}

bool ht_check_seq(const void *p, size_t n, uint32_t seed) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != ht_seq_byte(i, seed)) return false;
  return true;
}

bool ht_all_zero(const void *p, size_t n) {
  return ht_check(p, n, 0);
}

size_t ht_rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, resident = 0;
  if (f == NULL) return 0;
  if (fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
  fclose(f);
  return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

bool ht_rss_reliable(void) {
#if defined(__SANITIZE_ADDRESS__)
  return false;
#else
  return true;
#endif
}

hak_heap_stats_t ht_stats(hak_heap_t *heap) {
  hak_heap_stats_t s;
  memset(&s, 0xff, sizeof s);
  hak_heap_get_stats(heap, &s);
  return s;
}

const char *ht_heap_usable(hak_heap_t *heap) {
  static const size_t sizes[] = {0, 1, 8, 16, 24, 48, 64, 100, 128, 256, 500, 1024, 2048,
                                 4096, 8192, 16384, 32768, 40000, 100000, 1 << 20};
  enum { N = sizeof sizes / sizeof sizes[0], REP = 3 };
  void *p[N * REP];
  const char *fail = NULL;
  int n = 0;
  for (int i = 0; i < N && !fail; i++) {
    for (int r = 0; r < REP && !fail; r++) {
      void *q = hak_heap_malloc(heap, sizes[i]);
      if (q == NULL) { fail = "allocation failed"; break; }
      p[n++] = q;
      if ((uintptr_t)q % 16 != 0) fail = "block not 16-byte aligned";
      else if (hak_usable_size(q) < sizes[i]) fail = "usable size below request";
      else if (hak_heap_of(q) != heap) fail = "hak_heap_of does not name the heap";
      else ht_fill(q, hak_usable_size(q), (uint8_t)(n * 37 + 1));
    }
  }
  for (int i = 0; i < n && !fail; i++)
    if (!ht_check(p[i], hak_usable_size(p[i]), (uint8_t)((i + 1) * 37 + 1)))
      fail = "blocks overlap or were overwritten";
  for (int i = 0; i < n; i++) hak_free(p[i]);
  return fail;
}

typedef struct {
  uintptr_t line;
  int who;
} ht_line_t;

static int cmp_line(const void *a, const void *b) {
  const ht_line_t *x = a, *y = b;
  return (x->line > y->line) - (x->line < y->line);
}

uintptr_t ht_shared_line(void **const *sets, const int *counts, int nsets, int *who_a,
                         int *who_b) {
  size_t cap = 0, k = 0;
  for (int s = 0; s < nsets; s++)
    for (int i = 0; i < counts[s]; i++) cap += hak_usable_size(sets[s][i]) / 64 + 2;
  ht_line_t *lines = malloc((cap ? cap : 1) * sizeof *lines);
  if (lines == NULL) abort();
  for (int s = 0; s < nsets; s++)
    for (int i = 0; i < counts[s]; i++) {
      uintptr_t lo = (uintptr_t)sets[s][i], hi = lo + hak_usable_size(sets[s][i]) - 1;
      for (uintptr_t l = lo >> 6; l <= hi >> 6; l++) lines[k++] = (ht_line_t){l, s};
    }
  qsort(lines, k, sizeof *lines, cmp_line);
  uintptr_t found = 0;
  for (size_t i = 1; i < k && !found; i++)
    if (lines[i].line == lines[i - 1].line && lines[i].who != lines[i - 1].who) {
      found = lines[i].line << 6;
      *who_a = lines[i - 1].who;
      *who_b = lines[i].who;
    }
  free(lines);
  return found;
}

/* ---- actors ---- */

static void wait_sem(sem_t *s) {
  while (sem_wait(s) != 0) {
  }
}

static void *actor_main(void *arg) {
  ht_actor_t *a = arg;
  for (;;) {
    wait_sem(&a->go);
    if (a->quit) return NULL;
    a->fn(a->arg);
    sem_post(&a->done);
  }
}

bool ht_actor_start(ht_actor_t *a) {
  memset(a, 0, sizeof *a);
  sem_init(&a->go, 0, 0);
  sem_init(&a->done, 0, 0);
  return pthread_create(&a->th, NULL, actor_main, a) == 0;
}

void ht_actor_run(ht_actor_t *a, void (*fn)(void *), void *arg) {
  a->fn = fn;
  a->arg = arg;
  sem_post(&a->go);
  wait_sem(&a->done);
}

void ht_actor_exit(ht_actor_t *a) {
  a->quit = true;
  sem_post(&a->go);
  pthread_join(a->th, NULL);
  sem_destroy(&a->go);
  sem_destroy(&a->done);
}

static _Atomic int expect_passed, expect_failed;

void ht_expect(bool ok, const char *what) {
  if (ok) {
    atomic_fetch_add_explicit(&expect_passed, 1, memory_order_relaxed);
  } else {
    atomic_fetch_add_explicit(&expect_failed, 1, memory_order_relaxed);
    printf("FAIL %s\n", what);
  }
}

int ht_expect_report(void) {
  int passed = atomic_load(&expect_passed), failed = atomic_load(&expect_failed);
  printf("%d passed, %d failed\n", passed, failed);
  return failed || passed == 0 ? 1 : 0;
}
