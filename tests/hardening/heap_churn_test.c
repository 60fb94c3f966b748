/*
** Heap churn: 10k heaps created, used and destroyed in batches of 250 live at once (more than
** the 128 thread-cache slots), a quarter of them used further and destroyed by another thread
** (which also frees the creator's blocks remotely), some created by worker threads and
** destroyed by the main thread, some destroyed with blocks still live. Nothing leaks: RSS and
** mapped size stay flat after the first batches, per-heap stats match the blocks handed out,
** and a long-lived heap used throughout ends with nothing live. Prints "N passed, N failed".
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "hz_util.h"

enum { BATCH = 250, BLOCKS = 8, WORKERS = 2, WORKER_CREATES = 16 };

typedef struct {
  hak_heap_t *h;
  void *b[BLOCKS];
  size_t size[BLOCKS];
} slot_t;

static slot_t slots[BATCH];
static hak_heap_t *created[WORKERS][WORKER_CREATES];
static hak_heap_t *keeper;
static atomic_long bad;

static size_t size_of(int i, int k) {
  static const size_t sz[] = { 8, 24, 100, 700, 3000, 16000, 40000, 90 };
  return sz[(i + k) % 8];
}

static void use_heap(slot_t *s, int i) {
  for (int k = 0; k < BLOCKS; k++) {
    size_t n = size_of(i, k);
    void *p = hak_heap_malloc(s->h, n);
    if (!p) {
      atomic_fetch_add(&bad, 1);
      continue;
    }
    memset(p, hz_seed(p, n), n < 4096 ? n : 4096);
    s->b[k] = p;
    s->size[k] = n;
  }
}

static void free_blocks(slot_t *s) {
  for (int k = 0; k < BLOCKS; k++) {
    size_t n = s->size[k];
    if (!s->b[k]) continue;
    if (!hz_filled(s->b[k], n < 4096 ? n : 4096, hz_seed(s->b[k], n))) atomic_fetch_add(&bad, 1);
    hak_free(s->b[k]);
    s->b[k] = NULL;
  }
}

static bool live_is(hak_heap_t *h, size_t blocks) {
  hak_heap_stats_t st;
  hak_heap_collect(h, false);
  hak_heap_get_stats(h, &st);
  return st.live_blocks == blocks;
}

static void *worker(void *arg) {
  int t = (int)(uintptr_t)arg;
  for (int i = t; i < BATCH; i += 4) {
    slot_t *s = &slots[i];
    free_blocks(s); /* remote frees of the creator's blocks */
    use_heap(s, i + 1);
    if (!live_is(s->h, BLOCKS)) atomic_fetch_add(&bad, 1);
    if (i % 8 < 4) free_blocks(s); /* half destroyed with blocks live */
    hak_heap_destroy(s->h);
    s->h = NULL;
  }
  for (int k = 0; k < WORKER_CREATES; k++) {
    slot_t s = { 0 };
    s.h = hak_heap_create(NULL);
    use_heap(&s, k);
    free_blocks(&s);
    void *p = hak_heap_malloc(s.h, 64);
    if (!p) atomic_fetch_add(&bad, 1);
    created[t][k] = s.h;
    void *kp = hak_heap_malloc(keeper, 48);
    hak_free(kp);
  }
  return NULL;
}

int main(void) {
  hz_errors_install();
  keeper = hak_heap_create(NULL);
  long total = hz_scaled(10000, 1000), batches = total / (BATCH + WORKERS * WORKER_CREATES);
  size_t base_rss = 0, base_vm = 0, max_rss = 0, max_vm = 0;
  long heaps = 0;
  for (long b = 0; b < batches; b++) {
    for (int i = 0; i < BATCH; i++) {
      slots[i].h = hak_heap_create(NULL);
      if (!slots[i].h) {
        atomic_fetch_add(&bad, 1);
        continue;
      }
      use_heap(&slots[i], i);
      heaps++;
    }
    pthread_t t[WORKERS];
    for (int w = 0; w < WORKERS; w++) pthread_create(&t[w], NULL, worker, (void *)(uintptr_t)w);
    /* Meanwhile the heaps the workers do not touch (i % 4 >= WORKERS) are checked and go. */
    for (int i = 0; i < BATCH; i++) {
      if (i % 4 < WORKERS) continue;
      if (!live_is(slots[i].h, BLOCKS)) atomic_fetch_add(&bad, 1);
      if (i % 3) free_blocks(&slots[i]);
      hak_heap_destroy(slots[i].h);
      slots[i].h = NULL;
      memset(slots[i].b, 0, sizeof slots[i].b);
    }
    for (int w = 0; w < WORKERS; w++) pthread_join(t[w], NULL);
    for (int w = 0; w < WORKERS; w++)
      for (int k = 0; k < WORKER_CREATES; k++) {
        hak_heap_destroy(created[w][k]);
        heaps++;
      }
    void *kp = hak_heap_malloc(keeper, 1000);
    hak_free(kp);
    size_t rss = hz_rss_bytes(), vm = hz_vm_bytes();
    if (b == 2) {
      base_rss = rss;
      base_vm = vm;
    } else if (b > 2) {
      if (rss > max_rss) max_rss = rss;
      if (vm > max_vm) max_vm = vm;
    }
  }
  printf("%ld heaps: RSS %zu -> %zu KiB, mapped %zu -> %zu MiB\n", heaps, base_rss >> 10,
         max_rss >> 10, base_vm >> 20, max_vm >> 20);
  hz_check(atomic_load(&bad) == 0, "%ld bad blocks, failed allocations or wrong stats",
           atomic_load(&bad));
  hz_check(hz_errors() == 0, "%ld error reports (%s)", hz_errors(), hz_last_msg());
  if (hz_rss_reliable() && batches > 3) {
    hz_check(max_rss <= base_rss + 16 * HZ_MIB, "RSS grew: %zu -> %zu KiB", base_rss >> 10,
             max_rss >> 10);
    hz_check(max_vm <= base_vm + 64 * HZ_MIB, "mapped size grew: %zu -> %zu MiB",
             base_vm >> 20, max_vm >> 20);
  }
  hz_check(live_is(keeper, 0), "long-lived heap has blocks live");
  hak_heap_destroy(keeper);
  return hz_finish();
}
