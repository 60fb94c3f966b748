/*
** hak_heap_config_t.shared_guests (plain program so it runs under TSan). The creating thread is
** the heap's home; four guest threads allocating at once share one guest cache: the heap holds
** one set of slabs for all of them (exactly the slabs their blocks need), where a default heap
** holds one per thread. A free of a guest block, by a guest or by the home, goes straight back
** into the guest cache under its lock: not a remote free, no queue, no notify hook call, nothing
** left to drain, reused by the next guest. Reset and destroy with a guest cache. Prints
** "N passed, N failed".
*/
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_util.h"

enum { GUESTS = 4, N = 100, SLAB = 65536, PAGE = 4096 };

static hak_heap_t *heap;
static pthread_barrier_t start;
static void *blocks[GUESTS][2 * N];
static int failures[GUESTS];
static _Atomic int notified;

static void on_notify(hak_heap_t *h, void *arg) {
  (void)h;
  (void)arg;
  atomic_fetch_add(&notified, 1);
}

/* N blocks of 64 bytes and N of 256, interleaved, all threads at once. */
static void *guest(void *arg) {
  int t = (int)(intptr_t)arg;
  pthread_barrier_wait(&start);
  for (int i = 0; i < N; i++) {
    blocks[t][2 * i] = hak_heap_malloc(heap, 64);
    blocks[t][2 * i + 1] = hak_heap_malloc(heap, 256);
    if (!blocks[t][2 * i] || !blocks[t][2 * i + 1] || hak_heap_of(blocks[t][2 * i]) != heap)
      failures[t]++;
  }
  pthread_barrier_wait(&start); /* no thread exits before all have allocated */
  return NULL;
}

/* Frees its own blocks, then allocates as many again: the guest cache's refill drains them. */
static void *guest_churn(void *arg) {
  int t = (int)(intptr_t)arg;
  for (int r = 0; r < 20; r++) {
    for (int i = 0; i < 2 * N; i++) hak_free(blocks[t][i]);
    hak_thread_post_remote();
    for (int i = 0; i < 2 * N; i++)
      if (!(blocks[t][i] = hak_heap_malloc(heap, i % 2 ? 256 : 64))) failures[t]++;
  }
  return NULL;
}

static void *guest_block;

static void *one_guest_block(void *arg) {
  (void)arg;
  guest_block = hak_heap_malloc(heap, 48);
  return NULL;
}

static void *free_home_blocks(void *arg) {
  void **p = arg;
  for (int i = 0; i < N; i++) hak_free(p[i]);
  hak_thread_post_remote();
  return NULL;
}

static void run(void *(*fn)(void *)) {
  pthread_t th[GUESTS];
  for (int t = 0; t < GUESTS; t++) pthread_create(&th[t], NULL, fn, (void *)(intptr_t)t);
  for (int t = 0; t < GUESTS; t++) pthread_join(th[t], NULL);
}

static size_t held(void) {
  hak_heap_stats_t st;
  hak_heap_get_stats(heap, &st);
  return st.held_bytes;
}

/* Bytes held after the home allocates one 64-byte block and the guests their 2N blocks each. */
static size_t held_after_guests(bool shared) {
  hak_heap_config_t cfg = {.name = "guests", .shared_guests = shared};
  heap = hak_heap_create(&cfg);
  void *mine = hak_heap_malloc(heap, 64);
  pthread_barrier_init(&start, NULL, GUESTS);
  run(guest);
  pthread_barrier_destroy(&start);
  size_t n = held();
  for (int t = 0; t < GUESTS; t++)
    for (int i = 0; i < 2 * N; i++) hak_free(blocks[t][i]);
  hak_free(mine);
  hak_heap_destroy(heap);
  return n;
}

int main(void) {
  /* A cold class's first slab holds a page; when it runs out it grows to two pages, then to
  ** the whole slab (slab.c). The home's one 64 B block: a page. Shared: 400 blocks of 64 B
  ** (25,600 B) in a widened slab, 400 of 256 B (102,400 B) in a widened slab and a second
  ** whole one: a page + 3 slabs. A default heap, per thread: 100 of 64 B (6,400 B: 2 pages)
  ** and 100 of 256 B (25,600 B: a widened slab). */
  ht_expect(held_after_guests(true) == PAGE + 3 * SLAB,
            "shared guests hold one set of slabs: a page + 3 slabs");
  ht_expect(held_after_guests(false) == PAGE + GUESTS * (2 * PAGE + SLAB),
            "a default heap holds slabs per thread: a page + 4 x (2 pages + a slab)");

  hak_heap_config_t cfg = {.name = "guests", .shared_guests = true};
  heap = hak_heap_create(&cfg);
  hak_heap_set_remote_notify(heap, on_notify, NULL);
  void *mine[N];
  for (int i = 0; i < N; i++) mine[i] = hak_heap_malloc(heap, 64);
  pthread_barrier_init(&start, NULL, GUESTS);
  run(guest);
  int bad = 0;
  for (int t = 0; t < GUESTS; t++) bad += failures[t];
  ht_expect(bad == 0, "every guest allocation succeeded in the heap");

  /* The home frees every guest block: into the guest cache at once, under its lock. */
  for (int t = 0; t < GUESTS; t++)
    for (int i = 0; i < 2 * N; i++) hak_free(blocks[t][i]);
  hak_heap_stats_t st;
  hak_heap_get_stats(heap, &st);
  ht_expect(st.remote_free_count == 0, "frees of guest blocks are not remote: 0");
  ht_expect(st.live_blocks == N, "only the home's blocks are live");
  ht_expect(atomic_load(&notified) == 0, "frees into the guest cache call no notify hook");
  /* the home's 100 blocks of 64 B (6,400 B): 2 pages; the guest cache's current slabs (one of
  ** 64 B, one of 256 B) and the emptied 256 B slab that was not current, kept as the class's
  ** spare (tcache.c, retire) */
  ht_expect(held() == 2 * PAGE + 3 * SLAB,
            "the emptied 256 B slab that was not current is the class's spare");
  ht_expect(hak_heap_drain(heap) == 0, "nothing for the home's drain to take");

  /* Guests allocate again (reusing the freed blocks), free and reallocate their own. */
  run(guest);
  ht_expect(held() == 2 * PAGE + 3 * SLAB, "the guests allocate again: 2 pages + 3 slabs");
  run(guest_churn);
  bad = 0;
  for (int t = 0; t < GUESTS; t++) bad += failures[t];
  ht_expect(bad == 0, "guest churn: every allocation succeeded");
  ht_expect(held() == 2 * PAGE + 3 * SLAB, "guest churn: still 2 pages + 3 slabs");

  /* A guest's frees of the home's blocks are ordinary remote frees: the hook fires once. */
  hak_heap_stats_t st0;
  hak_heap_get_stats(heap, &st0);
  atomic_store(&notified, 0);
  pthread_t th;
  pthread_create(&th, NULL, free_home_blocks, mine);
  pthread_join(th, NULL);
  hak_heap_get_stats(heap, &st);
  ht_expect(st.remote_free_count - st0.remote_free_count == N, "a guest's frees of home blocks: 100");
  ht_expect(atomic_load(&notified) == 1, "and the hook fired once");

  /* Reset forgets the guest cache's slabs; guests allocate from it again afterwards. */
  hak_heap_reset(heap);
  hak_heap_get_stats(heap, &st);
  ht_expect(st.live_blocks == 0 && st.held_bytes == 0, "reset: nothing live, nothing held");
  run(guest);
  hak_heap_get_stats(heap, &st);
  ht_expect(st.live_blocks == GUESTS * 2 * N, "after reset the guests allocate: 800 live");
  ht_expect(st.held_bytes == 3 * SLAB, "in one set of slabs: 3");
  pthread_barrier_destroy(&start);
  hak_heap_destroy(heap); /* guest blocks still live: they go with the heap */

  /* A guest block freed twice: the second free is reported, nothing else happens. */
  heap = hak_heap_create(&(hak_heap_config_t){.name = "guests", .shared_guests = true});
  pthread_t th2;
  pthread_create(&th2, NULL, one_guest_block, NULL);
  pthread_join(th2, NULL);
  static ht_errlog_t log;
  ht_errlog_install(&log);
  hak_free(guest_block);
  ht_expect(log.calls == 0, "a guest block's first free by the home: no report");
  hak_free(guest_block);
  ht_expect(log.calls == 1 && log.err == HAK_ERR_DOUBLE_FREE,
            "its second free: one double-free report");
  hak_set_error_handler(NULL, NULL);
  hak_heap_get_stats(heap, &st);
  ht_expect(st.live_blocks == 0 && st.remote_free_count == 0, "nothing live, no remote free");
  hak_heap_destroy(heap);

  return ht_expect_report();
}
