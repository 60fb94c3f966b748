/*
** Slab ownership: a thread's cache for a heap owns the slabs it allocates from. A free by the
** owner goes straight back; a free by any other thread, even one that allocates from the same
** heap, is a remote free onto the owner's queue, counted in remote_free_count (and as a free)
** exactly once, as soon as hak_free returns; the owner drains it (malloc slow path,
** hak_heap_drain, hak_heap_collect, thread exit) and the counts do not move again. Blocks handed to two threads never share a 64-byte line. A thread that exits with
** live blocks abandons its slabs to the heap; frees into them work, collect gives all the memory
** back, and later threads adopt them so thread generations do not grow the heap. One thread can
** use 1000 heaps with exact stats in each; the default heap follows the same rules.
**
** Steps that must run on a given thread go through an actor: a thread that runs one function at
** a time on request and stays alive, idle, in between. Actors never assert; they record. They
** are static, so an actor left waiting by a failed assertion still points at valid memory.
*/
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

HT_HEAP_SUITE(ownership, 60);

/* ** {======================================================================
** steps that actors (test_util's ht_actor_t) run on a thread of the test's choosing
** ======================================================================= */

/* One batch of blocks and what to do with it on some thread. */
typedef struct batch_s {
  hak_heap_t *heap;
  void **p;
  int n;
  size_t size;  /* 0: the mixed sizes of mixed_size() */
  int failed;   /* allocations that returned NULL */
  size_t drained;
} batch_t;

/* Small sizes only (all below HT_SMALL_MAX): ownership is about slabs. */
static size_t mixed_size(int i) {
  return (i % 97 == 0) ? 20000 + (size_t)i : 16 + (size_t)(i * 37) % 4000;
}

static void do_alloc(void *arg) {
  batch_t *b = arg;
  for (int i = 0; i < b->n; i++) {
    size_t size = b->size ? b->size : mixed_size(i);
    b->p[i] = hak_heap_malloc(b->heap, size);
    if (b->p[i] == NULL) b->failed++;
    else ht_fill(b->p[i], size, (uint8_t)i);
  }
}

static void do_free(void *arg) {
  batch_t *b = arg;
  for (int i = 0; i < b->n; i++) hak_free(b->p[i]);
}

/* The freeing thread stays alive and idle: its last remote batch goes to the owner now. */
static void do_post(void *arg) {
  (void)arg;
  hak_thread_post_remote();
}

static void do_drain(void *arg) {
  batch_t *b = arg;
  b->drained = hak_heap_drain(b->heap);
}

static void do_default_alloc(void *arg) {
  batch_t *b = arg;
  for (int i = 0; i < b->n; i++) {
    b->p[i] = hak_malloc(b->size);
    if (b->p[i] == NULL) b->failed++;
  }
}

static void **blocks(int n) {
  void **p = calloc((size_t)n, sizeof *p);
  cr_assert_not_null(p);
  return p;
}

static void alloc_here(batch_t *b) {
  do_alloc(b);
  cr_assert_eq(b->failed, 0);
}

/*
** A remote free counts as soon as hak_free returns, before its owner drains it: `base` was read
** just before the n frees of `freed`; free and remote counts moved by exactly n, live blocks
** went down by n (and live bytes by at least 16 per block; exact sizes are checked after the
** drain by the callers).
*/
static void expect_counted_when_pushed(hak_heap_t *h, const hak_heap_stats_t *base,
                                       const batch_t *freed, const char *what) {
  hak_heap_stats_t s = ht_stats(h);
  uint64_t n = (uint64_t)freed->n;
  cr_assert_eq(s.remote_free_count, base->remote_free_count + n,
               "%s: %" PRIu64 " remote frees counted, want %" PRIu64, what,
               s.remote_free_count - base->remote_free_count, n);
  cr_assert_eq(s.free_count, base->free_count + n, "%s: %" PRIu64 " frees counted", what,
               s.free_count - base->free_count);
  cr_assert_eq(s.live_blocks, base->live_blocks - n, "%s: %zu live, %zu before", what,
               s.live_blocks, base->live_blocks);
  cr_assert_leq(s.live_bytes, base->live_bytes - 16 * n, "%s", what);
}

/* }====================================================================== */

/* ** {======================================================================
** remote frees: who counts them, and when
** ======================================================================= */

Test(ownership, free_by_a_thread_that_also_allocates_is_remote_counted_at_once_and_drained_by_the_owner) {
  enum { N = 1000, M = 300 };
  batch_t mine = {.heap = heap, .p = blocks(N), .n = N, .size = 64};
  batch_t theirs = {.heap = heap, .p = blocks(M), .n = M, .size = 64};
  alloc_here(&mine);
  static ht_actor_t b;
  cr_assert(ht_actor_start(&b));
  ht_actor_run(&b, do_alloc, &theirs);
  cr_assert_eq(theirs.failed, 0);
  hak_heap_stats_t base = ht_stats(heap);
  cr_assert_eq(base.live_blocks, N + M);
  ht_actor_run(&b, do_free, &mine);
  expect_counted_when_pushed(heap, &base, &mine, "frees by a thread that also allocates");
  ht_actor_run(&b, do_post, NULL);
  cr_assert_eq(hak_heap_drain(heap), N, "the owner's drain must return every remote free");
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.remote_free_count, N);
  cr_assert_eq(s.free_count, N);
  cr_assert_eq(s.live_blocks, M);
  cr_assert_eq(hak_heap_drain(heap), 0, "a second drain finds an empty queue");
  ht_actor_run(&b, do_free, &theirs);
  s = ht_stats(heap);
  cr_assert_eq(s.remote_free_count, N, "the owner's own frees counted as remote");
  cr_assert_eq(s.free_count, N + M);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(errlog.calls, 0, "%s", errlog.msg);
  ht_actor_exit(&b);
  free(mine.p);
  free(theirs.p);
}

Test(ownership, remote_frees_are_counted_once_by_the_owners_malloc_slow_path) {
  enum { N = 4096 };
  void *one = NULL;
  batch_t mine = {.heap = heap, .p = blocks(N), .n = N, .size = 64};
  batch_t again = {.heap = heap, .p = blocks(N), .n = N, .size = 64};
  batch_t theirs = {.heap = heap, .p = &one, .n = 1, .size = 64};
  alloc_here(&mine);
  static ht_actor_t b;
  cr_assert(ht_actor_start(&b));
  ht_actor_run(&b, do_alloc, &theirs);
  hak_heap_stats_t base = ht_stats(heap);
  ht_actor_run(&b, do_free, &mine);
  expect_counted_when_pushed(heap, &base, &mine, "before the owner's slow path");
  /* More allocations than any refill batch: the bin runs dry and the slow path drains. */
  alloc_here(&again);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.remote_free_count, N, "after the owner's slow path: %" PRIu64 " remote frees",
               s.remote_free_count);
  cr_assert_eq(s.live_blocks, N + 1);
  cr_assert_eq(hak_heap_drain(heap), 0, "the slow path left remote frees in the queue");
  ht_actor_run(&b, do_free, &theirs);
  do_free(&again);
  s = ht_stats(heap);
  cr_assert_eq(s.remote_free_count, N);
  cr_assert_eq(s.live_blocks, 0);
  ht_actor_exit(&b);
  free(mine.p);
  free(again.p);
}

Test(ownership, remote_frees_are_counted_by_the_owners_collect) {
  enum { N = 2000 };
  batch_t mine = {.heap = heap, .p = blocks(N), .n = N};
  alloc_here(&mine);
  static ht_actor_t b;
  cr_assert(ht_actor_start(&b));
  hak_heap_stats_t base = ht_stats(heap);
  ht_actor_run(&b, do_free, &mine);
  expect_counted_when_pushed(heap, &base, &mine, "before the owner's collect");
  hak_heap_collect(heap, false);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.remote_free_count, N);
  cr_assert_eq(s.free_count, N);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.live_bytes, 0);
  ht_actor_exit(&b);
  free(mine.p);
}

Test(ownership, remote_frees_are_drained_when_the_owner_thread_exits) {
  enum { N = 2000 };
  batch_t theirs = {.heap = heap, .p = blocks(N), .n = N, .size = 48};
  static ht_actor_t a;
  cr_assert(ht_actor_start(&a));
  ht_actor_run(&a, do_alloc, &theirs);
  cr_assert_eq(theirs.failed, 0);
  /* This thread uses the heap too: its frees of a's blocks are still remote. */
  void *here = hak_heap_malloc(heap, 48);
  cr_assert_not_null(here);
  hak_heap_stats_t base = ht_stats(heap);
  do_free(&theirs);
  expect_counted_when_pushed(heap, &base, &theirs, "before the owner exits");
  ht_actor_exit(&a);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.remote_free_count, N, "the owner's exit drained %" PRIu64 " of %d",
               s.remote_free_count, N);
  cr_assert_eq(s.live_blocks, 1);
  hak_free(here);
  s = ht_stats(heap);
  cr_assert_eq(s.remote_free_count, N);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(errlog.calls, 0, "%s", errlog.msg);
  free(theirs.p);
}

/* }====================================================================== */

/* ** {======================================================================
** no cache line is shared by live blocks of two threads
** ======================================================================= */

/* The first 64-byte line that holds bytes of a block of a and of a block of b, or 0. */
static uintptr_t shared_line(void **a, int na, void **b, int nb) {
  void **const sets[2] = {a, b};
  const int counts[2] = {na, nb};
  int x, y;
  return ht_shared_line(sets, counts, 2, &x, &y);
}

Test(ownership, live_blocks_of_two_threads_never_share_a_cache_line) {
  static const size_t sizes[] = {16, 24, 32, 40, 48, 56, 64};
  enum { N = 1200, STEP = 100 };
  static ht_actor_t b;
  cr_assert(ht_actor_start(&b));
  for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
    hak_heap_t *h = hak_heap_create(NULL);
    cr_assert_not_null(h);
    void **pa = blocks(N), **pb = blocks(N);
    /* Interleaved, so both threads refill from the heap while the other holds blocks. */
    for (int i = 0; i < N; i += STEP) {
      batch_t ba = {.heap = h, .p = pa + i, .n = STEP, .size = sizes[z]};
      batch_t bb = {.heap = h, .p = pb + i, .n = STEP, .size = sizes[z]};
      alloc_here(&ba);
      ht_actor_run(&b, do_alloc, &bb);
      cr_assert_eq(bb.failed, 0);
    }
    uintptr_t l = shared_line(pa, N, pb, N);
    cr_assert_eq(l, 0, "%zu-byte blocks: line %#lx holds blocks of both threads", sizes[z],
                 (unsigned long)l);
    hak_heap_stats_t s = ht_stats(h);
    cr_assert_eq(s.live_blocks, 2 * N);
    batch_t fa = {.heap = h, .p = pa, .n = N}, fb = {.heap = h, .p = pb, .n = N};
    do_free(&fa);
    ht_actor_run(&b, do_free, &fb);
    free(pa);
    free(pb);
    hak_heap_destroy(h);
  }
  ht_actor_exit(&b);
}

Test(ownership, blocks_freed_by_another_thread_are_not_reused_by_it_next_to_the_owners) {
  static const size_t sizes[] = {16, 32, 48, 64};
  enum { N = 2000, HALF = N / 2 };
  static ht_actor_t b;
  cr_assert(ht_actor_start(&b));
  for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
    hak_heap_t *h = hak_heap_create(NULL);
    cr_assert_not_null(h);
    void **pa = blocks(N), **kept = blocks(HALF), **given = blocks(HALF);
    void **pb = blocks(N), **pa2 = blocks(N);
    batch_t ba = {.heap = h, .p = pa, .n = N, .size = sizes[z]};
    alloc_here(&ba);
    /* a keeps every other block and gives the rest to b, which frees them and allocates. */
    for (int i = 0; i < HALF; i++) {
      kept[i] = pa[2 * i];
      given[i] = pa[2 * i + 1];
    }
    batch_t bg = {.heap = h, .p = given, .n = HALF};
    batch_t bb = {.heap = h, .p = pb, .n = N, .size = sizes[z]};
    ht_actor_run(&b, do_free, &bg);
    ht_actor_run(&b, do_alloc, &bb);
    cr_assert_eq(bb.failed, 0);
    uintptr_t l = shared_line(kept, HALF, pb, N);
    cr_assert_eq(l, 0,
                 "%zu-byte blocks: after freeing a's blocks, b got a block on line %#lx, where "
                 "a still has a live block",
                 sizes[z], (unsigned long)l);
    /* a allocates again (and drains what b freed): still no line shared with b's blocks. */
    batch_t ba2 = {.heap = h, .p = pa2, .n = N, .size = sizes[z]};
    alloc_here(&ba2);
    l = shared_line(pa2, N, pb, N);
    cr_assert_eq(l, 0, "%zu-byte blocks: a's new block on line %#lx next to b's", sizes[z],
                 (unsigned long)l);
    l = shared_line(kept, HALF, pb, N);
    cr_assert_eq(l, 0);
    hak_heap_stats_t s = ht_stats(h);
    cr_assert_eq(s.live_blocks, HALF + 2 * N);
    batch_t fk = {.heap = h, .p = kept, .n = HALF}, fa2 = {.heap = h, .p = pa2, .n = N};
    batch_t fb = {.heap = h, .p = pb, .n = N};
    do_free(&fk);
    do_free(&fa2);
    ht_actor_run(&b, do_free, &fb);
    cr_assert_eq(errlog.calls, 0, "%s", errlog.msg);
    free(pa);
    free(kept);
    free(given);
    free(pb);
    free(pa2);
    hak_heap_destroy(h);
  }
  ht_actor_exit(&b);
}

/* }====================================================================== */

/* ** {======================================================================
** a thread that exits with live blocks: abandoned slabs, adoption
** ======================================================================= */

static void check_contents(void **p, int n, size_t size) {
  for (int i = 0; i < n; i++) {
    size_t z = size ? size : mixed_size(i);
    cr_assert(ht_check(p[i], z, (uint8_t)i), "block %d (%p) lost its contents", i, p[i]);
  }
}

Test(ownership, frees_into_slabs_of_an_exited_thread_work_and_collect_gives_all_memory_back) {
  enum { N = 3000 };
  size_t held_before = ht_stats(heap).held_bytes;
  batch_t theirs = {.heap = heap, .p = blocks(N), .n = N};
  static ht_actor_t t;
  cr_assert(ht_actor_start(&t));
  ht_actor_run(&t, do_alloc, &theirs);
  cr_assert_eq(theirs.failed, 0);
  ht_actor_exit(&t);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.live_blocks, N, "blocks of the exited thread are still live");
  cr_assert_eq(s.alloc_count, N);
  check_contents(theirs.p, N, 0);
  for (int i = 0; i < N; i++) cr_assert_eq(hak_heap_of(theirs.p[i]), heap);
  do_free(&theirs);
  cr_assert_eq(errlog.calls, 0, "a free into an abandoned slab was reported: %s", errlog.msg);
  hak_heap_collect(heap, true);
  s = ht_stats(heap);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.live_bytes, 0);
  cr_assert_eq(s.free_count, N);
  cr_assert_eq(s.remote_free_count, N, "every free was by a thread other than the owner");
  cr_assert_eq(s.large_count, 0);
  cr_assert_eq(s.held_bytes, held_before, "held %zu after collect, %zu before the thread ran",
               s.held_bytes, held_before);
  free(theirs.p);
}

Test(ownership, remote_frees_pending_at_exit_are_drained_by_the_exit_and_the_rest_by_collect) {
  enum { N = 3000, HALF = N / 2 };
  size_t held_before = ht_stats(heap).held_bytes;
  batch_t theirs = {.heap = heap, .p = blocks(N), .n = N};
  static ht_actor_t t;
  cr_assert(ht_actor_start(&t));
  ht_actor_run(&t, do_alloc, &theirs);
  cr_assert_eq(theirs.failed, 0);
  batch_t first = {.heap = heap, .p = theirs.p, .n = HALF};
  batch_t rest = {.heap = heap, .p = theirs.p + HALF, .n = N - HALF};
  hak_heap_stats_t base = ht_stats(heap);
  do_free(&first);
  expect_counted_when_pushed(heap, &base, &first, "before the owner exits");
  ht_actor_exit(&t);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.remote_free_count, HALF, "the exit drained %" PRIu64 " of %d",
               s.remote_free_count, HALF);
  cr_assert_eq(s.live_blocks, N - HALF);
  /* The other half: frees into abandoned slabs, from a thread that never used the heap. */
  static ht_actor_t u;
  cr_assert(ht_actor_start(&u));
  ht_actor_run(&u, do_free, &rest);
  ht_actor_exit(&u);
  cr_assert_eq(errlog.calls, 0, "%s", errlog.msg);
  hak_heap_collect(heap, true);
  s = ht_stats(heap);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.live_bytes, 0);
  cr_assert_eq(s.free_count, N);
  cr_assert_eq(s.remote_free_count, N, "remote frees: %" PRIu64, s.remote_free_count);
  cr_assert_eq(s.held_bytes, held_before, "held %zu after collect, %zu before the thread ran",
               s.held_bytes, held_before);
  free(theirs.p);
}

/* One generation: free the previous generation's leftovers, allocate, keep some, exit. */
enum { GEN_BLOCKS = 600, GEN_LEFT = 60, GENERATIONS = 200 };

typedef struct gen_s {
  hak_heap_t *heap;
  void *left[GEN_LEFT];
  int nleft;
  int failed;
} gen_t;

static void generation(void *arg) {
  gen_t *g = arg;
  void *p[GEN_BLOCKS];
  for (int i = 0; i < g->nleft; i++) hak_free(g->left[i]);
  for (int i = 0; i < GEN_BLOCKS; i++) {
    p[i] = hak_heap_malloc(g->heap, mixed_size(i));
    if (p[i] == NULL) g->failed++;
  }
  g->nleft = 0;
  for (int i = 0; i < GEN_BLOCKS; i++) {
    if (i % (GEN_BLOCKS / GEN_LEFT) == 0) g->left[g->nleft++] = p[i];
    else hak_free(p[i]);
  }
}

Test(ownership, threads_adopt_abandoned_slabs_so_generations_do_not_grow_the_heap) {
  gen_t g = {.heap = heap};
  size_t held2 = 0, rss2 = 0;
  for (int gen = 1; gen <= GENERATIONS; gen++) {
    static ht_actor_t t;
    cr_assert(ht_actor_start(&t));
    ht_actor_run(&t, generation, &g);
    ht_actor_exit(&t);
    cr_assert_eq(g.failed, 0);
    hak_heap_stats_t s = ht_stats(heap);
    if (gen == 2) {
      held2 = s.held_bytes;
      rss2 = ht_rss_bytes();
    }
    if (gen > 2)
      cr_assert_leq(s.held_bytes, held2, "generation %d: held_bytes %zu, %zu after generation 2",
                    gen, s.held_bytes, held2);
  }
  if (ht_rss_reliable())
    cr_assert_leq(ht_rss_bytes(), rss2 + 4 * HT_MIB, "RSS %zu after %d generations, %zu after 2",
                  ht_rss_bytes(), GENERATIONS, rss2);
  for (int i = 0; i < g.nleft; i++) hak_free(g.left[i]);
  hak_heap_collect(heap, true);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.live_blocks, 0);
  cr_assert_eq(s.alloc_count, (uint64_t)GENERATIONS * GEN_BLOCKS);
  cr_assert_eq(s.free_count, (uint64_t)GENERATIONS * GEN_BLOCKS);
  cr_assert_eq(errlog.calls, 0, "%s", errlog.msg);
}

/* }====================================================================== */

/* ** {======================================================================
** one thread, 1000 heaps
** ======================================================================= */

enum { MANY = 1000, PER_HEAP_MAX = 7 };

static int blocks_of(int h) {
  return 1 + h % PER_HEAP_MAX;
}

static size_t size_of(int h, int r) {
  return (h % 50 == 0 && r == 0) ? HT_MEDIUM_MAX + 50000 : 8 + (size_t)((h * 131 + r * 977) % 3000);
}

Test(ownership, one_thread_uses_1000_heaps_with_exact_stats_in_each) {
  static hak_heap_t *heaps[MANY];
  static void *p[MANY][PER_HEAP_MAX];
  static size_t live[MANY];
  for (int h = 0; h < MANY; h++) {
    heaps[h] = hak_heap_create(NULL);
    cr_assert_not_null(heaps[h], "heap %d", h);
  }
  /* Round-robin over the heaps, so every heap's cache is looked up while 999 others exist. */
  for (int r = 0; r < PER_HEAP_MAX; r++)
    for (int h = 0; h < MANY; h++) {
      if (r >= blocks_of(h)) continue;
      p[h][r] = hak_heap_malloc(heaps[h], size_of(h, r));
      cr_assert_not_null(p[h][r], "heap %d block %d", h, r);
      cr_assert_eq(hak_heap_of(p[h][r]), heaps[h]);
      ht_fill(p[h][r], size_of(h, r), (uint8_t)(h + r));
      live[h] += hak_usable_size(p[h][r]);
    }
  for (int h = 0; h < MANY; h++) {
    hak_heap_stats_t s = ht_stats(heaps[h]);
    size_t n = (size_t)blocks_of(h);
    cr_assert_eq(s.alloc_count, n, "heap %d: alloc_count %" PRIu64 ", want %zu", h,
                 s.alloc_count, n);
    cr_assert_eq(s.live_blocks, n, "heap %d", h);
    cr_assert_eq(s.live_bytes, live[h], "heap %d", h);
    cr_assert_eq(s.free_count, 0, "heap %d", h);
    cr_assert_eq(s.remote_free_count, 0, "heap %d", h);
    cr_assert_eq(s.large_count, h % 50 == 0 ? 1u : 0u, "heap %d", h);
    for (int r = 0; r < blocks_of(h); r++)
      cr_assert(ht_check(p[h][r], size_of(h, r), (uint8_t)(h + r)), "heap %d block %d", h, r);
  }
  /* Free the even blocks, round-robin again; then the odd ones. */
  for (int pass = 0; pass < 2; pass++) {
    for (int r = pass; r < PER_HEAP_MAX; r += 2)
      for (int h = 0; h < MANY; h++)
        if (r < blocks_of(h)) {
          live[h] -= hak_usable_size(p[h][r]);
          hak_free(p[h][r]);
        }
    for (int h = 0; h < MANY; h++) {
      hak_heap_stats_t s = ht_stats(heaps[h]);
      size_t n = (size_t)blocks_of(h), even = (n + 1) / 2;
      size_t freed = pass == 0 ? even : n;
      cr_assert_eq(s.free_count, freed, "heap %d pass %d: free_count %" PRIu64 ", want %zu", h,
                   pass, s.free_count, freed);
      cr_assert_eq(s.live_blocks, n - freed, "heap %d pass %d", h, pass);
      cr_assert_eq(s.live_bytes, live[h], "heap %d pass %d", h, pass);
      cr_assert_eq(s.alloc_count, n, "heap %d", h);
      cr_assert_eq(s.remote_free_count, 0, "heap %d", h);
    }
  }
  for (int h = 0; h < MANY; h++) {
    cr_assert_eq(ht_stats(heaps[h]).large_count, 0);
    hak_heap_destroy(heaps[h]);
  }
  cr_assert_eq(errlog.calls, 0, "%s", errlog.msg);
}

/* }====================================================================== */

/* ** {======================================================================
** the default heap
** ======================================================================= */

Test(ownership, cross_thread_frees_of_hak_malloc_blocks_are_remote_in_the_default_heap) {
  enum { N = 1500 };
  hak_heap_t *d = hak_default_heap();
  batch_t theirs = {.heap = d, .p = blocks(N), .n = N, .size = 48};
  static ht_actor_t t;
  cr_assert(ht_actor_start(&t));
  ht_actor_run(&t, do_default_alloc, &theirs);
  cr_assert_eq(theirs.failed, 0);
  for (int i = 0; i < N; i++) cr_assert_eq(hak_heap_of(theirs.p[i]), d);
  void *here = hak_malloc(48);
  cr_assert_not_null(here);
  hak_heap_stats_t before = ht_stats(d);
  do_free(&theirs);
  expect_counted_when_pushed(d, &before, &theirs, "default heap, before the owner drains");
  ht_actor_run(&t, do_drain, &theirs);
  cr_assert_eq(theirs.drained, N, "the owner drained %zu of %d", theirs.drained, N);
  hak_heap_stats_t after = ht_stats(d);
  cr_assert_eq(after.remote_free_count - before.remote_free_count, N);
  cr_assert_eq(before.live_blocks - after.live_blocks, N);
  ht_actor_exit(&t);
  hak_free(here);
  free(theirs.p);
}

Test(ownership, frees_by_another_user_of_the_default_heap_are_remote_and_drained_by_the_owner) {
  enum { N = 1500 };
  hak_heap_t *d = hak_default_heap();
  void *one = NULL;
  batch_t mine = {.heap = d, .p = blocks(N), .n = N, .size = 100};
  batch_t theirs = {.heap = d, .p = &one, .n = 1, .size = 100};
  do_default_alloc(&mine);
  cr_assert_eq(mine.failed, 0);
  static ht_actor_t t;
  cr_assert(ht_actor_start(&t));
  ht_actor_run(&t, do_default_alloc, &theirs);
  cr_assert_eq(theirs.failed, 0);
  hak_heap_stats_t before = ht_stats(d);
  ht_actor_run(&t, do_free, &mine);
  expect_counted_when_pushed(d, &before, &mine, "default heap, before the owner drains");
  ht_actor_run(&t, do_post, NULL);
  cr_assert_eq(hak_heap_drain(d), N);
  hak_heap_stats_t after = ht_stats(d);
  cr_assert_eq(after.remote_free_count - before.remote_free_count, N);
  cr_assert_eq(before.live_blocks - after.live_blocks, N);
  ht_actor_run(&t, do_free, &theirs);
  after = ht_stats(d);
  cr_assert_eq(after.remote_free_count - before.remote_free_count, N,
               "a free by the owner counted as remote");
  ht_actor_exit(&t);
  free(mine.p);
}

/* }====================================================================== */
