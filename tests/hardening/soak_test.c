/*
** Soak: four threads run random operations on eight heaps for HAK_SOAK_SECONDS (default 10,
** 2 under TSan; CI sets 60): malloc, calloc, aligned_alloc, realloc (also into another heap),
** free and free_sized of their own blocks and of blocks swapped through shared slots (remote
** frees), stats and collect. Heaps 0-3 are shared; heap 4+t belongs to thread t, which also
** resets it, or destroys and recreates it. Every block carries its size and a fill byte that
** is checked before it is freed or moved. At the end nothing is reported, no block lost its
** contents, every heap has exactly zero live bytes and blocks, and every thread did at least
** MIN_OPS_PER_SECOND operations per second. Prints "N passed, N failed".
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hz_util.h"

enum { THREADS = 4, SHARED = 4, HEAPS = SHARED + THREADS, MINE = 256, SWAP = 512 };
/* Work each thread must do per second of soak, whatever the build: about a quarter of what a
** TSan build does on a 2-core machine (a default build does 40 times this). */
enum { MIN_OPS_PER_SECOND = 5000 };

/* Block layout: word 0 is the size asked for; bytes from 8 on are the fill byte. */
typedef struct {
  unsigned char *p;
  int heap; /* for private heaps: the heap they must die with on reset */
} blk_t;

static hak_heap_t *heaps[HEAPS];
static _Atomic(unsigned char *) swap[SWAP];
static atomic_long bad, failed, ops, thread_ops[THREADS];
static double deadline;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static size_t pick_size(uint64_t *rng) {
  uint64_t r = hz_rand(rng);
  switch (r % 16) {
    case 0: return 8 + (r >> 8) % 200000;
    case 1: case 2: return 8 + (r >> 8) % 32768;
    default: return 8 + (r >> 8) % 1024;
  }
}

static void stamp(unsigned char *p, size_t size) {
  memcpy(p, &size, sizeof size);
  size_t n = size < 4096 ? size : 4096;
  memset(p + 8, hz_seed(p, size), n - 8);
  if (size > 4096) memset(p + size - 64, hz_seed(p, size), 64);
}

static size_t verify(const unsigned char *p) {
  size_t size;
  memcpy(&size, p, sizeof size);
  size_t n = size < 4096 ? size : 4096;
  bool ok = size >= 8 && hak_usable_size(p) >= size && hz_filled(p + 8, n - 8, hz_seed(p, size));
  if (ok && size > 4096) ok = hz_filled(p + size - 64, 64, hz_seed(p, size));
  if (!ok) atomic_fetch_add(&bad, 1);
  return size;
}

static void release(unsigned char *p, uint64_t *rng) {
  size_t size = verify(p);
  if (hz_rand(rng) & 1) hak_free_sized(p, size);
  else hak_free(p);
}

static unsigned char *alloc(hak_heap_t *h, uint64_t *rng) {
  size_t size = pick_size(rng);
  uint64_t r = hz_rand(rng) % 8;
  unsigned char *p;
  if (r == 0) {
    p = hak_heap_calloc(h, 1, size);
    if (p && !hz_filled(p, size < 4096 ? size : 4096, 0)) atomic_fetch_add(&bad, 1);
  } else if (r == 1) {
    p = hak_heap_aligned_alloc(h, (size_t)16 << (hz_rand(rng) % 10), size);
  } else {
    p = hak_heap_malloc(h, size);
  }
  if (!p) {
    atomic_fetch_add(&failed, 1);
    return NULL;
  }
  stamp(p, size);
  return p;
}

static void *soak(void *arg) {
  int t = (int)(uintptr_t)arg;
  uint64_t rng = 0x2545F4914F6CDD1Dull * (uint64_t)(t + 1);
  blk_t mine[MINE] = { { 0 } };
  int own = SHARED + t;
  long n = 0;
  for (;; n++) {
    if ((n & 255) == 0 && now() > deadline) break;
    uint64_t r = hz_rand(&rng);
    int i = (int)((r >> 8) % MINE);
    blk_t *b = &mine[i];
    switch (r % 32) {
      case 0: /* reset my heap: its blocks die with it */
      case 1:
        for (int k = 0; k < MINE; k++)
          if (mine[k].p && mine[k].heap == own) verify(mine[k].p), mine[k].p = NULL;
        if (r % 32 == 0) {
          hak_heap_reset(heaps[own]);
        } else {
          hak_heap_destroy(heaps[own]);
          heaps[own] = hak_heap_create(NULL);
        }
        break;
      case 2: { /* swap a shared block with another thread */
        if (b->p && b->heap == own) break;
        unsigned char *got = atomic_exchange(&swap[(r >> 20) % SWAP], b->p);
        b->p = got;
        b->heap = -1;
        break;
      }
      case 3: {
        hak_heap_stats_t st;
        hak_heap_get_stats(heaps[(r >> 20) % SHARED], &st);
        if ((r >> 30) % 8 == 0) hak_heap_collect(heaps[(r >> 20) % SHARED], (r >> 40) & 1);
        break;
      }
      case 4: case 5: case 6: { /* realloc, moving shared blocks between shared heaps */
        if (!b->p) break;
        int to = b->heap == own ? own : (int)((r >> 20) % SHARED);
        size_t old = verify(b->p), size = pick_size(&rng);
        unsigned char *q = hak_heap_realloc(heaps[to], b->p, size);
        if (!q) {
          atomic_fetch_add(&failed, 1);
          break;
        }
        size_t keep = old < size ? old : size;
        if (keep > 72 && !hz_filled(q + 8, 64, hz_seed(b->p, old))) atomic_fetch_add(&bad, 1);
        stamp(q, size);
        b->p = q;
        if (b->heap != own) b->heap = to;
        break;
      }
      default:
        if (b->p) {
          release(b->p, &rng);
          b->p = NULL;
        } else {
          int hi = (r >> 20) % 3 == 0 ? own : (int)((r >> 24) % SHARED);
          b->p = alloc(heaps[hi], &rng);
          b->heap = hi;
        }
    }
  }
  for (int k = 0; k < MINE; k++)
    if (mine[k].p) release(mine[k].p, &rng);
  atomic_fetch_add(&ops, n);
  atomic_store(&thread_ops[t], n);
  return NULL;
}

int main(void) {
  double secs = 10;
#ifdef HZ_TSAN
  secs = 2;
#endif
  const char *env = getenv("HAK_SOAK_SECONDS");
  if (env && atof(env) > 0) secs = atof(env);
  hz_errors_install();
  for (int i = 0; i < HEAPS; i++) heaps[i] = hak_heap_create(NULL);
  deadline = now() + secs;
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, soak, (void *)(uintptr_t)i);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  uint64_t rng = 1;
  for (int s = 0; s < SWAP; s++) {
    unsigned char *p = atomic_exchange(&swap[s], NULL);
    if (p) release(p, &rng);
  }
  printf("soak %.0f s, 4 threads, 8 heaps, %ld operations\n", secs, atomic_load(&ops));
  for (int i = 0; i < THREADS; i++)
    hz_check(atomic_load(&thread_ops[i]) >= (long)(secs * MIN_OPS_PER_SECOND),
             "thread %d did %ld operations in %.0f s, want at least %.0f", i,
             atomic_load(&thread_ops[i]), secs, secs * MIN_OPS_PER_SECOND);
  hz_check(atomic_load(&bad) == 0, "%ld blocks lost their contents", atomic_load(&bad));
  hz_check(atomic_load(&failed) == 0, "%ld allocations failed", atomic_load(&failed));
  hz_check(hz_errors() == 0, "%ld error reports (%s)", hz_errors(), hz_last_msg());
  for (int i = 0; i < HEAPS; i++) {
    hak_heap_collect(heaps[i], true);
    hak_heap_stats_t st;
    hak_heap_get_stats(heaps[i], &st);
    hz_check(st.live_bytes == 0 && st.live_blocks == 0, "heap %d: %zu bytes in %zu blocks live",
             i, st.live_bytes, st.live_blocks);
    hak_heap_destroy(heaps[i]);
  }
  return hz_finish();
}
