/*
** Thread churn: thousands of short-lived threads (eight at a time) allocate from four shared
** heaps, free most of their blocks, swap some with a shared pool (so later threads free them
** remotely) and exit. Exiting threads must give back what they cached: held_bytes stays flat
** from the first half of the run to the second, RSS from the first quarter to the end, and once the pool is emptied every heap
** has nothing live. Scaled down under TSan / HAK_TEST_SCALE. Prints "N passed, N failed".
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "hz_util.h"

enum { HEAPS = 4, WAVE = 8, PER_THREAD = 48, POOL = 256 };

typedef struct {
  void *p;
  size_t size;
} item_t;

static hak_heap_t *heaps[HEAPS];
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static item_t pool[POOL];
static atomic_long bad, failed_allocs;

static void free_checked(item_t it) {
  if (!hz_filled(it.p, it.size, hz_seed(it.p, it.size))) atomic_fetch_add(&bad, 1);
  hak_free(it.p);
}

static void *short_lived(void *arg) {
  uint64_t rng = 0x9E3779B97F4A7C15ull * ((uint64_t)(uintptr_t)arg + 1);
  item_t mine[PER_THREAD];
  for (int i = 0; i < PER_THREAD; i++) {
    size_t size = hz_rand(&rng) % 8 == 0 ? 1 + hz_rand(&rng) % 20000 : 1 + hz_rand(&rng) % 1024;
    hak_heap_t *h = heaps[hz_rand(&rng) % HEAPS];
    void *p = hak_heap_malloc(h, size);
    if (!p) {
      atomic_fetch_add(&failed_allocs, 1);
      size = 0;
    } else {
      memset(p, hz_seed(p, size), size);
    }
    mine[i] = (item_t){ p, size };
  }
  /* Swap a few with the pool: the blocks taken were allocated by earlier threads. */
  for (int k = 0; k < 6; k++) {
    int i = (int)(hz_rand(&rng) % PER_THREAD), s = (int)(hz_rand(&rng) % POOL);
    pthread_mutex_lock(&pool_mu);
    item_t t = pool[s];
    pool[s] = mine[i];
    pthread_mutex_unlock(&pool_mu);
    mine[i] = t;
  }
  for (int i = 0; i < PER_THREAD; i++)
    if (mine[i].p) free_checked(mine[i]);
  return NULL;
}

static size_t held_total(void) {
  size_t sum = 0;
  for (int i = 0; i < HEAPS; i++) {
    hak_heap_stats_t st;
    hak_heap_get_stats(heaps[i], &st);
    sum += st.held_bytes;
  }
  return sum;
}

int main(void) {
  hz_errors_install();
  for (int i = 0; i < HEAPS; i++) heaps[i] = hak_heap_create(NULL);
  long total = hz_scaled(4000, 200), waves = total / WAVE;
  size_t base_held = 0, base_rss = 0, max_held = 0, max_rss = 0;
  for (long w = 0; w < waves; w++) {
    pthread_t t[WAVE];
    for (int i = 0; i < WAVE; i++)
      pthread_create(&t[i], NULL, short_lived, (void *)(uintptr_t)(w * WAVE + i));
    for (int i = 0; i < WAVE; i++) pthread_join(t[i], NULL);
    size_t held = held_total(), rss = hz_rss_bytes();
    /* held_bytes: each (thread, heap) cache owns slabs of its own, so held memory settles at a
    ** level set by the threads alive at once and the blocks they pass on (reached within the
    ** first half here); it must not grow with the number of threads that have come and gone:
    ** the second half may not exceed the first half's peak by more than half. */
    if (w < waves / 2) {
      if (held > base_held) base_held = held;
    } else if (held > max_held) {
      max_held = held;
    }
    if (w == waves / 4) {
      base_rss = rss;
    } else if (w > waves / 4) {
      if (rss > max_rss) max_rss = rss;
    }
  }
  printf("%ld threads: held at most %zu KiB in the first half, %zu KiB in the second; RSS %zu -> %zu KiB\n",
         waves * WAVE, base_held >> 10, max_held >> 10, base_rss >> 10, max_rss >> 10);
  hz_check(atomic_load(&bad) == 0, "%ld blocks lost their contents", atomic_load(&bad));
  hz_check(atomic_load(&failed_allocs) == 0, "%ld allocations failed", atomic_load(&failed_allocs));
  hz_check(hz_errors() == 0, "%ld error reports (%s)", hz_errors(), hz_last_msg());
  hz_check(max_held <= base_held + base_held / 2 + 2 * HZ_MIB,
           "held_bytes grew with the number of threads: %zu -> %zu", base_held, max_held);
  if (hz_rss_reliable())
    hz_check(max_rss <= base_rss + 16 * HZ_MIB, "RSS grew: %zu -> %zu KiB", base_rss >> 10,
             max_rss >> 10);
  for (int s = 0; s < POOL; s++)
    if (pool[s].p) free_checked(pool[s]);
  for (int i = 0; i < HEAPS; i++) {
    hak_heap_collect(heaps[i], true);
    hak_heap_stats_t st;
    hak_heap_get_stats(heaps[i], &st);
    hz_check(st.live_blocks == 0 && st.live_bytes == 0, "heap %d: %zu blocks still live", i,
             st.live_blocks);
    hak_heap_destroy(heaps[i]);
  }
  return hz_finish();
}
