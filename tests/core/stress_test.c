/*
** Multi-threaded stress (plain program so it runs under TSan): several threads allocate from
** several shared heaps with random sizes including large blocks, write a byte pattern on
** allocation and check it on free, hand blocks to other threads through queues to be freed
** there, reallocate across heaps, flush their caches, and create, use and destroy private heaps
** while the others run; a janitor thread reads stats and collects the shared heaps meanwhile.
** Ends with every shared heap at zero live. A time bound stops a slow run, but every worker must
** still have done MIN_OPS operations. Prints "N passed, N failed"; exits 1 on failure.
*/
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_util.h"

/* MAX_SECONDS stops a slow run; it must not stop it before MIN_OPS operations per worker. */
enum { THREADS = 4, HEAPS = 3, OPS = 60000, MIN_OPS = OPS / 2, LOCAL_CAP = 512, MAX_SECONDS = 8 };

typedef struct item_s {
  void *p;
  size_t size;
  hak_heap_t *heap;
} item_t;

typedef struct inbox_s {
  pthread_mutex_t mu;
  item_t *items;
  size_t n, cap;
} inbox_t;

static hak_heap_t *shared[HEAPS];
static inbox_t inbox[THREADS];
static atomic_int errors_reported;
static atomic_long bad_pattern, bad_owner, alloc_failed, private_failed;
static struct timespec start;
static atomic_bool workers_done;
static atomic_long janitor_rounds;
static atomic_long ops_done[THREADS], episodes_done[THREADS];
static sem_t janitor_kick; /* posted by workers every 500 operations */

static void on_error(int err, const char *msg, void *arg) {
  (void)arg;
  atomic_fetch_add(&errors_reported, 1);
  fprintf(stderr, "unexpected hakmem error %d: %s\n", err, msg);
}

static uint64_t next_rand(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static uint8_t seed_of(const void *p, size_t size) {
  uintptr_t x = (uintptr_t)p >> 4;
  return (uint8_t)(x ^ (x >> 8) ^ size ^ 0x5A);
}

static double elapsed(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) * 1e-9;
}

static size_t random_size(uint64_t *rng) {
  uint64_t r = next_rand(rng) % 1000;
  if (r < 850) return (size_t)(next_rand(rng) % 1025);
  if (r < 997) return 1025 + (size_t)(next_rand(rng) % (32 * 1024 - 1024));
  return 32 * 1024 + 1 + (size_t)(next_rand(rng) % HT_MIB);
}

static item_t alloc_item(uint64_t *rng, hak_heap_t *heap) {
  size_t size = random_size(rng);
  void *p;
  switch (next_rand(rng) % 8) {
  case 0: p = hak_heap_calloc(heap, 1, size); break;
  case 1: p = hak_heap_aligned_alloc(heap, (size_t)64 << (next_rand(rng) % 6), size); break;
  case 2: p = hak_heap_realloc(heap, NULL, size); break;
  default: p = hak_heap_malloc(heap, size); break;
  }
  item_t it = {p, size, heap};
  if (p == NULL) {
    atomic_fetch_add(&alloc_failed, 1);
    return it;
  }
  ht_fill(p, size, seed_of(p, size));
  return it;
}

static void check_item(const item_t *it) {
  if (!ht_check(it->p, it->size, seed_of(it->p, it->size))) {
    if (atomic_fetch_add(&bad_pattern, 1) < 5)
      fprintf(stderr, "pattern broken in %p (%zu bytes)\n", it->p, it->size);
  }
  if (hak_heap_of(it->p) != it->heap || hak_usable_size(it->p) < it->size) {
    if (atomic_fetch_add(&bad_owner, 1) < 5)
      fprintf(stderr, "block %p: heap %p (want %p), usable %zu (want >= %zu)\n", it->p,
              (void *)hak_heap_of(it->p), (void *)it->heap, hak_usable_size(it->p), it->size);
  }
}

static void free_item(const item_t *it, uint64_t *rng) {
  check_item(it);
  if (next_rand(rng) & 1)
    hak_free(it->p);
  else
    hak_free_sized(it->p, it->size);
}

static void push(int to, item_t it) {
  inbox_t *b = &inbox[to];
  pthread_mutex_lock(&b->mu);
  if (b->n == b->cap) {
    b->cap = b->cap ? 2 * b->cap : 256;
    b->items = realloc(b->items, b->cap * sizeof *b->items);
    if (b->items == NULL) abort();
  }
  b->items[b->n++] = it;
  pthread_mutex_unlock(&b->mu);
}

static void drain(int self, uint64_t *rng) {
  inbox_t *b = &inbox[self];
  item_t local[256];
  for (;;) {
    size_t k = 0;
    pthread_mutex_lock(&b->mu);
    while (b->n > 0 && k < 256) local[k++] = b->items[--b->n];
    pthread_mutex_unlock(&b->mu);
    if (k == 0) return;
    for (size_t i = 0; i < k; i++) free_item(&local[i], rng);
  }
}

/* Create a heap, fill it, check it, maybe reset and refill, destroy it: while others run. */
static void private_heap_episode(uint64_t *rng) {
  hak_heap_config_t cfg = {.name = "private"};
  if (next_rand(rng) % 4 == 0) cfg.limit_bytes = 2 * HT_MIB;
  hak_heap_t *h = hak_heap_create(&cfg);
  if (h == NULL) {
    atomic_fetch_add(&private_failed, 1);
    return;
  }
  item_t it[200];
  int n = 0;
  for (int round = 0; round < 2; round++) {
    n = 0;
    for (int i = 0; i < 200; i++) {
      size_t size = random_size(rng);
      void *p = hak_heap_malloc(h, size);
      if (p == NULL) {
        if (cfg.limit_bytes == 0) atomic_fetch_add(&private_failed, 1);
        continue;
      }
      ht_fill(p, size, seed_of(p, size));
      it[n++] = (item_t){p, size, h};
    }
    for (int i = 0; i < n; i++) check_item(&it[i]);
    hak_heap_stats_t s;
    hak_heap_get_stats(h, &s);
    if (s.live_blocks != (size_t)n || (cfg.limit_bytes && s.held_bytes > cfg.limit_bytes)) {
      atomic_fetch_add(&private_failed, 1);
      fprintf(stderr, "private heap: live %zu (want %d), held %zu (limit %zu)\n", s.live_blocks, n,
              s.held_bytes, cfg.limit_bytes);
    }
    if (round == 0) hak_heap_reset(h);
  }
  for (int i = 0; i < n / 2; i++) hak_free(it[i].p);
  hak_heap_destroy(h);
}

static void *worker(void *arg) {
  int self = (int)(intptr_t)arg;
  uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(self + 1);
  item_t live[LOCAL_CAP];
  int n = 0;
  int op = 0;
  long episodes = 0;
  for (; op < OPS; op++) {
    if ((op & 1023) == 0 && elapsed() > MAX_SECONDS) break;
    if ((op & 63) == 0) drain(self, &rng);
    if (op % 2000 == 1999) {
      private_heap_episode(&rng);
      episodes++;
    }
    if (op % 5000 == 4999) hak_thread_flush();
    if (op % 500 == 0) sem_post(&janitor_kick);
    uint64_t r = next_rand(&rng) % 100;
    if (n == LOCAL_CAP || (n > 0 && r < 35)) {
      int i = (int)(next_rand(&rng) % (uint64_t)n);
      free_item(&live[i], &rng);
      live[i] = live[--n];
    } else if (n > 0 && r < 50) {
      int i = (int)(next_rand(&rng) % (uint64_t)n);
      int to = (int)(next_rand(&rng) % THREADS);
      if (to == self) to = (to + 1) % THREADS;
      check_item(&live[i]);
      push(to, live[i]);
      live[i] = live[--n];
    } else if (n > 0 && r < 53) {
      int i = (int)(next_rand(&rng) % (uint64_t)n);
      hak_heap_t *to = shared[next_rand(&rng) % HEAPS];
      size_t size = random_size(&rng);
      check_item(&live[i]);
      void *q = hak_heap_realloc(to, live[i].p, size);
      if (size == 0) {
        /* realloc(p, 0) frees p and returns NULL. */
        if (q != NULL) atomic_fetch_add(&bad_owner, 1);
        live[i] = live[--n];
        continue;
      }
      if (q == NULL) {
        atomic_fetch_add(&alloc_failed, 1);
        continue;
      }
      size_t keep = size < live[i].size ? size : live[i].size;
      if (!ht_check(q, keep, seed_of(live[i].p, live[i].size))) atomic_fetch_add(&bad_pattern, 1);
      hak_heap_t *owner = hak_heap_of(q);
      if (q != live[i].p && owner != to) atomic_fetch_add(&bad_owner, 1);
      ht_fill(q, size, seed_of(q, size));
      live[i] = (item_t){q, size, owner};
    } else {
      item_t it = alloc_item(&rng, shared[next_rand(&rng) % HEAPS]);
      if (it.p != NULL) live[n++] = it;
    }
  }
  for (int i = 0; i < n; i++) {
    int to = (int)(next_rand(&rng) % THREADS);
    if (to == self) {
      free_item(&live[i], &rng);
    } else {
      push(to, live[i]);
    }
  }
  drain(self, &rng);
  atomic_store(&ops_done[self], op);
  atomic_store(&episodes_done[self], episodes);
  return NULL;
}

/* Reads stats and collects the shared heaps while the workers use them. */
static void *janitor(void *arg) {
  (void)arg;
  long rounds = 0;
  for (;;) {
    while (sem_wait(&janitor_kick) != 0) {
    }
    if (atomic_load(&workers_done)) break;
    for (int h = 0; h < HEAPS; h++) {
      hak_heap_stats_t s;
      hak_heap_get_stats(shared[h], &s);
      hak_heap_collect(shared[h], rounds % 8 == 7);
    }
    rounds++;
  }
  atomic_store(&janitor_rounds, rounds);
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
  char detail[256];
  clock_gettime(CLOCK_MONOTONIC, &start);
  hak_set_error_handler(on_error, NULL);
  for (int h = 0; h < HEAPS; h++) {
    shared[h] = hak_heap_create(NULL);
    if (shared[h] == NULL) {
      printf("FAIL heap creation\n0 passed, 1 failed\n");
      return 1;
    }
  }
  for (int t = 0; t < THREADS; t++) pthread_mutex_init(&inbox[t].mu, NULL);
  pthread_t th[THREADS], jan;
  sem_init(&janitor_kick, 0, 0);
  pthread_create(&jan, NULL, janitor, NULL);
  for (int t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
  for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
  atomic_store(&workers_done, true);
  sem_post(&janitor_kick);
  pthread_join(jan, NULL);
  /* Workers drained their inboxes before exiting, but later pushes may have arrived. */
  uint64_t rng = 1;
  for (int t = 0; t < THREADS; t++) {
    for (size_t i = 0; i < inbox[t].n; i++) free_item(&inbox[t].items[i], &rng);
    inbox[t].n = 0;
  }
  double secs = elapsed();

  snprintf(detail, sizeof detail, "%ld blocks", (long)atomic_load(&bad_pattern));
  report("byte_patterns_survive_until_free", atomic_load(&bad_pattern) == 0, detail);
  snprintf(detail, sizeof detail, "%ld blocks", (long)atomic_load(&bad_owner));
  report("heap_of_and_usable_size_match_every_block", atomic_load(&bad_owner) == 0, detail);
  snprintf(detail, sizeof detail, "%ld failures", (long)atomic_load(&alloc_failed));
  report("unlimited_heaps_never_refuse", atomic_load(&alloc_failed) == 0, detail);
  snprintf(detail, sizeof detail, "%ld failures", (long)atomic_load(&private_failed));
  report("private_heaps_created_and_destroyed_while_others_run",
         atomic_load(&private_failed) == 0, detail);
  snprintf(detail, sizeof detail, "%d reports", atomic_load(&errors_reported));
  report("no_error_reports_for_valid_frees", atomic_load(&errors_reported) == 0, detail);

  bool zero = true;
  detail[0] = '\0';
  for (int h = 0; h < HEAPS; h++) {
    hak_heap_collect(shared[h], true);
    hak_heap_stats_t s;
    hak_heap_get_stats(shared[h], &s);
    if (s.live_blocks != 0 || s.live_bytes != 0 || s.large_count != 0 ||
        s.alloc_count != s.free_count) {
      zero = false;
      snprintf(detail, sizeof detail,
               "heap %d: live_blocks %zu live_bytes %zu large %zu allocs %llu frees %llu", h,
               s.live_blocks, s.live_bytes, s.large_count, (unsigned long long)s.alloc_count,
               (unsigned long long)s.free_count);
    }
    hak_heap_destroy(shared[h]);
  }
  report("shared_heaps_drain_to_zero_live", zero, detail);
  snprintf(detail, sizeof detail, "%.1f s", secs);
  report("finishes_within_bound", secs < MAX_SECONDS + 2, detail);
  long min_ops = OPS, min_episodes = OPS;
  for (int t = 0; t < THREADS; t++) {
    if (atomic_load(&ops_done[t]) < min_ops) min_ops = atomic_load(&ops_done[t]);
    if (atomic_load(&episodes_done[t]) < min_episodes)
      min_episodes = atomic_load(&episodes_done[t]);
  }
  snprintf(detail, sizeof detail, "slowest worker: %ld operations, %ld private heaps (want %d, %d)",
           min_ops, min_episodes, MIN_OPS, MIN_OPS / 2000);
  report("every_worker_did_the_minimum_work", min_ops >= MIN_OPS && min_episodes >= MIN_OPS / 2000,
         detail);
  snprintf(detail, sizeof detail, "%ld rounds", (long)atomic_load(&janitor_rounds));
  report("janitor_collected_while_workers_ran", atomic_load(&janitor_rounds) > 0, detail);
  printf("%d passed, %d failed (%.2f s, %ld janitor rounds)\n", passed, failed, secs,
         (long)atomic_load(&janitor_rounds));
  return failed ? 1 : 0;
}
