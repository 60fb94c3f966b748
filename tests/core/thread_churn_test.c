/*
** Thread churn (plain program so it runs under TSan): 2000 short-lived threads, eight at a time,
** allocate from shared heaps, free most blocks themselves, leave some for a later thread to free
** and exit. Exited threads must give their cached blocks back: after each wave the live counts
** match exactly the blocks still handed around, and held_bytes stays bounded instead of growing
** with the number of threads. Prints "N passed, N failed"; exits 1 on failure.
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_util.h"

enum { TOTAL = 2000, WAVE = 8, HEAPS = 3, PER_THREAD = 64, LEFT = 8, TAKE = 16 };
#define HELD_BOUND (48 * HT_MIB)

typedef struct item_s {
  void *p;
  size_t size;
  int heap;
} item_t;

static hak_heap_t *heaps[HEAPS];
static pthread_mutex_t left_mu = PTHREAD_MUTEX_INITIALIZER;
static item_t left[TOTAL * LEFT];
static size_t nleft;
static atomic_long bad_pattern, alloc_failed, errors_reported;

static void on_error(int err, const char *msg, void *arg) {
  (void)arg;
  atomic_fetch_add(&errors_reported, 1);
  fprintf(stderr, "unexpected hakmem error %d: %s\n", err, msg);
}

static uint8_t seed_of(const void *p, size_t size) {
  uintptr_t x = (uintptr_t)p >> 4;
  return (uint8_t)(x ^ (x >> 8) ^ size ^ 0xA5);
}

static uint64_t next_rand(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void free_checked(const item_t *it) {
  if (!ht_check(it->p, it->size, seed_of(it->p, it->size)) ||
      hak_heap_of(it->p) != heaps[it->heap])
    atomic_fetch_add(&bad_pattern, 1);
  hak_free(it->p);
}

static void *short_lived(void *arg) {
  uint64_t rng = 0xD1B54A32D192ED03ull ^ ((uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull);
  item_t mine[PER_THREAD];
  item_t taken[TAKE];
  size_t ntaken = 0;
  pthread_mutex_lock(&left_mu);
  while (nleft > 0 && ntaken < TAKE) taken[ntaken++] = left[--nleft];
  pthread_mutex_unlock(&left_mu);
  int a = (int)(next_rand(&rng) % HEAPS), b = (a + 1) % HEAPS;
  for (int i = 0; i < PER_THREAD; i++) {
    int h = (i & 1) ? a : b;
    size_t size = (i == PER_THREAD - 1) ? 100000 : 16 + (size_t)(next_rand(&rng) % 4080);
    void *p = hak_heap_malloc(heaps[h], size);
    if (p == NULL) {
      atomic_fetch_add(&alloc_failed, 1);
      mine[i] = (item_t){NULL, 0, h};
      continue;
    }
    ht_fill(p, size, seed_of(p, size));
    mine[i] = (item_t){p, size, h};
  }
  for (size_t i = 0; i < ntaken; i++) free_checked(&taken[i]);
  for (int i = LEFT; i < PER_THREAD; i++)
    if (mine[i].p) free_checked(&mine[i]);
  pthread_mutex_lock(&left_mu);
  for (int i = 0; i < LEFT; i++)
    if (mine[i].p) left[nleft++] = mine[i];
  pthread_mutex_unlock(&left_mu);
  return NULL;
}

static int passed, failed;

static void report(const char *name, bool ok, const char *detail) {
  if (ok) {
    passed++;
    printf("PASS %s\n", name);
  } else {
    failed++;
    printf("FAIL %s: %s\n", name, detail);
  }
}

int main(void) {
  char live_detail[256] = "", held_detail[256] = "";
  bool live_exact = true, held_bounded = true;
  size_t held_base[HEAPS] = {0}, held_max[HEAPS] = {0};
  hak_set_error_handler(on_error, NULL);
  for (int h = 0; h < HEAPS; h++) {
    heaps[h] = hak_heap_create(NULL);
    if (heaps[h] == NULL) {
      printf("FAIL heap creation\n0 passed, 1 failed\n");
      return 1;
    }
  }
  int started = 0;
  for (int wave = 0; started < TOTAL; wave++) {
    pthread_t th[WAVE];
    int n = 0;
    for (; n < WAVE && started < TOTAL; n++, started++)
      if (pthread_create(&th[n], NULL, short_lived, (void *)(intptr_t)started) != 0) {
        printf("FAIL pthread_create\n0 passed, 1 failed\n");
        return 1;
      }
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    if (wave % 25 != 24) continue;
    /* Every user of the heaps has exited; the remote queues drain on collect (non-forcing). */
    size_t want[HEAPS] = {0};
    for (size_t i = 0; i < nleft; i++) want[left[i].heap]++;
    for (int h = 0; h < HEAPS; h++) {
      hak_heap_collect(heaps[h], false);
      hak_heap_stats_t s;
      hak_heap_get_stats(heaps[h], &s);
      if (s.live_blocks != want[h]) {
        live_exact = false;
        snprintf(live_detail, sizeof live_detail,
                 "after %d threads heap %d has %zu live blocks, %zu handed around", started, h,
                 s.live_blocks, want[h]);
      }
      if (wave == 24) held_base[h] = s.held_bytes;
      if (s.held_bytes > held_max[h]) held_max[h] = s.held_bytes;
      if (s.held_bytes > HELD_BOUND || (wave > 24 && s.held_bytes > 2 * held_base[h] + 4 * HT_MIB)) {
        held_bounded = false;
        snprintf(held_detail, sizeof held_detail,
                 "after %d threads heap %d holds %zu bytes (%zu after 200 threads)", started, h,
                 s.held_bytes, held_base[h]);
      }
    }
  }
  for (size_t i = 0; i < nleft; i++) free_checked(&left[i]);
  nleft = 0;
  bool zero = true;
  char zero_detail[256] = "";
  for (int h = 0; h < HEAPS; h++) {
    hak_heap_collect(heaps[h], true);
    hak_heap_stats_t s;
    hak_heap_get_stats(heaps[h], &s);
    if (s.live_blocks || s.live_bytes || s.large_count) {
      zero = false;
      snprintf(zero_detail, sizeof zero_detail, "heap %d: live_blocks %zu live_bytes %zu", h,
               s.live_blocks, s.live_bytes);
    }
    printf("heap %d: held max %zu KiB, now %zu KiB, allocs %llu\n", h, held_max[h] >> 10,
           s.held_bytes >> 10, (unsigned long long)s.alloc_count);
    hak_heap_destroy(heaps[h]);
  }
  char detail[64];
  report("exited_threads_leave_only_handed_blocks_live", live_exact, live_detail);
  report("held_bytes_stay_bounded_under_thread_churn", held_bounded, held_detail);
  report("all_blocks_freed_leaves_zero_live", zero, zero_detail);
  snprintf(detail, sizeof detail, "%ld", (long)atomic_load(&bad_pattern));
  report("byte_patterns_and_owners_intact", atomic_load(&bad_pattern) == 0, detail);
  snprintf(detail, sizeof detail, "%ld", (long)atomic_load(&alloc_failed));
  report("no_allocation_failures", atomic_load(&alloc_failed) == 0, detail);
  snprintf(detail, sizeof detail, "%ld", (long)atomic_load(&errors_reported));
  report("no_error_reports", atomic_load(&errors_reported) == 0, detail);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
