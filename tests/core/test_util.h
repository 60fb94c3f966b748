/*
** Helpers shared by the hakmem core black-box tests: an error handler that records what it is
** told, uniform byte patterns that detect overlap and stray writes, RSS from /proc/self/statm,
** a probe that checks a heap is still fully usable, a check for cache lines shared between
** blocks of different threads, and actors (threads that run a test's steps on demand). Public
** header only.
*/
#ifndef HAK_TEST_UTIL_H
#define HAK_TEST_UTIL_H

#include <hakmem.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HT_KIB ((size_t)1 << 10)
#define HT_MIB ((size_t)1 << 20)

/* Largest request the issue promises to serve from slabs; larger ones are large blocks. */
#define HT_SMALL_MAX ((size_t)32 * 1024)
/* Blocks above it are large (mappings of their own); up to it, medium spans in superslabs. */
#define HT_MEDIUM_MAX ((size_t)1024 * 1024)

/* What the recording error handler saw (single-threaded use). */
typedef struct ht_errlog_s {
  int calls;
  int err;
  char msg[512];
  void *arg;
} ht_errlog_t;

/* Zero the log and register it as the error handler's destination. */
void ht_errlog_install(ht_errlog_t *log);
void ht_errlog_clear(ht_errlog_t *log);

/* A Criterion suite whose every test gets a fresh heap (`heap`) and the recording error handler
** (`errlog`), both file-local: HT_HEAP_SUITE(name, timeout_seconds) in place of TestSuite. */
#define HT_HEAP_SUITE(name, secs)                                                              \
  static hak_heap_t *heap;                                                                     \
  static ht_errlog_t errlog;                                                                   \
  static void ht_suite_init_(void) {                                                           \
    heap = hak_heap_create(NULL);                                                              \
    cr_assert_not_null(heap);                                                                  \
    ht_errlog_install(&errlog);                                                                \
  }                                                                                            \
  static void ht_suite_fini_(void) {                                                           \
    hak_set_error_handler(NULL, NULL);                                                         \
    hak_heap_destroy(heap);                                                                    \
  }                                                                                            \
  TestSuite(name, .init = ht_suite_init_, .fini = ht_suite_fini_, .timeout = secs)
/* True if msg contains the hex value of p (with or without 0x, any case, any zero padding). */
bool ht_msg_names_pointer(const char *msg, const void *p);

/* Fill n bytes with seed; check that all n bytes still equal seed. */
void ht_fill(void *p, size_t n, uint8_t seed);
bool ht_check(const void *p, size_t n, uint8_t seed);
/* Position-dependent pattern, for contents that must survive a move (realloc). */
void ht_fill_seq(void *p, size_t n, uint32_t seed);
bool ht_check_seq(const void *p, size_t n, uint32_t seed);
bool ht_all_zero(const void *p, size_t n);

/* Resident set size in bytes, from /proc/self/statm. */
size_t ht_rss_bytes(void);
/* RSS numbers mean little under ASan (shadow memory, quarantine). */
bool ht_rss_reliable(void);

/* Allocate, write, check and free a mix of small and large blocks in heap. NULL when all went
** well, else a static description of the first failure. */
const char *ht_heap_usable(hak_heap_t *heap);

hak_heap_stats_t ht_stats(hak_heap_t *heap);

/* Plain test programs (no Criterion, so they run under TSan): one check counted, "FAIL what"
** printed when it fails (any thread). ht_expect_report prints "N passed, N failed" and returns
** the exit status: 1 when a check failed or none ran. */
void ht_expect(bool ok, const char *what);
int ht_expect_report(void);

/* Cache lines shared between sets of live blocks: sets[i] holds counts[i] blocks. Returns the
** address of the first 64-byte line that holds usable bytes of blocks of two different sets
** (their indexes in *who_a, *who_b), or 0 when there is none. */
uintptr_t ht_shared_line(void **const *sets, const int *counts, int nsets, int *who_a,
                         int *who_b);

/* An actor: a thread that runs one step at a time, each on a test's request, and stays alive
** (with its thread caches) between steps. */
typedef struct ht_actor_s {
  pthread_t th;
  sem_t go, done;
  void (*fn)(void *);
  void *arg;
  bool quit;
} ht_actor_t;

/* Start the actor's thread; false if it could not be created. */
bool ht_actor_start(ht_actor_t *a);
/* Run fn(arg) on the actor's thread and wait until it returns. */
void ht_actor_run(ht_actor_t *a, void (*fn)(void *), void *arg);
/* The actor's thread exits (and with it its caches); returns once it is joined. */
void ht_actor_exit(ht_actor_t *a);

#endif
