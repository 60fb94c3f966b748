/* slab.c: slab assignment and return between a heap and its caches, carving, decommit. */
#include "slab.h"

#include <errno.h>
#include <time.h>

#include "block.h"
#include "error.h"
#include "heap.h"
#include "large.h"
#include "os.h"
#include "ptr_bridge.h"
#include "size_class.h"
#include "superslab.h"

/*
** Unassigned slabs whose pages stay committed, per heap, before a release decommits: as many
** as the most slabs the heap held in the last one to two seconds, at least 64. A working set
** that shrinks and grows back (threads that exit and are replaced, a burst of frees) then
** reuses committed slabs instead of paying madvise and a page fault per page each time: with a
** fixed cap of 64, sh8bench spent a fifth of its CPU time in madvise and refaults (50-745
** madvise calls per run; 2 with this cap). Memory is still given back when the heap stays
** smaller for a second or more (the next release decommits the excess), and at once by
** hak_heap_collect.
*/
#define HAK_DIRTY_SLABS_MIN 64
/* Fresh blocks carved per refill: about one page, so a slab's pages are touched as used. */
#define HAK_CARVE_BYTES 4096u
/*
** A cold class (one the cache has never had a whole slab of) gets a first slab that holds one
** page: its capacity is the blocks of HAK_COLD_BYTES (at least one), and only those pages count
** in the heap's held bytes and against its limit. When the owner runs out, the capacity grows
** under the heap lock (hak__slab_widen) to two pages, and the next time to the whole slab; the
** class is then warm for that cache: its next slabs start whole. A heap that serves a few blocks
** of many classes (a fresh Lua state, a connection's heap) holds a page or two per class, not
** 64 KiB, and a hot class pays two more lock round trips once per cache. (Doubling up to the
** slab, 1-2-4-8-16 pages, cost bench:core `request` 4.5% more instructions; the two-page step
** alone 1.6%, and it takes a fresh Lua state from 120 to 64 KiB held.)
*/
#define HAK_COLD_BYTES 4096u
#define HAK_PAGE_BYTES ((size_t)4096)

/* The blocks a slab of s's span and block size has room for. */
static uint32_t full_capacity(const hak__slab_t *s) {
  return (uint32_t)(((size_t)s->span << HAK_SLAB_SHIFT) / s->block_size);
}

/* The pages that n blocks of bs bytes cover. */
static size_t pages_of(uint32_t n, uint32_t bs) {
  return ((size_t)n * bs + HAK_PAGE_BYTES - 1) & ~(HAK_PAGE_BYTES - 1);
}

size_t hak__slab_held(const hak__slab_t *s) {
  if (s->capacity >= full_capacity(s)) return (size_t)s->span << HAK_SLAB_SHIFT;
  return pages_of(s->capacity, s->block_size);
}

static uint64_t coarse_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec;
}

/* h->lock held. */
static void note_held(hak_heap_t *h) {
  uint64_t now = coarse_seconds();
  if (now != h->peak_window) {
    h->peak_prev = now == h->peak_window + 1 ? h->peak_cur : 0;
    h->peak_cur = h->held;
    h->peak_window = now;
  }
  if (h->held > h->peak_cur) h->peak_cur = h->held;
}

/* h->lock held. */
static size_t dirty_cap(hak_heap_t *h) {
  note_held(h);
  size_t peak = h->peak_cur > h->peak_prev ? h->peak_cur : h->peak_prev;
  size_t slabs = peak / HAK_SLAB_SIZE;
  return slabs > HAK_DIRTY_SLABS_MIN ? slabs : HAK_DIRTY_SLABS_MIN;
}

/* Bits i of m such that bits i .. i+n-1 are all set: the starts of runs of n free slabs. */
static uint64_t run_starts(uint64_t m, unsigned n) {
  uint64_t r = m;
  for (unsigned i = 1; i < n && r; i++) r &= m >> i;
  return r;
}

/* h->lock held: the first slab of n free contiguous slabs of one superslab, preferring a span
** whose head page is still committed (reusing it costs no page faults, and keeps the dirty
** count, hence madvise calls, down); NULL if none. */
static hak__slab_t *pick_free_span(hak_heap_t *h, unsigned n) {
  hak__slab_t *clean = NULL;
  for (hak__superslab_t *ss = h->ss_list; ss; ss = ss->next) {
    uint64_t m = run_starts(ss->free_mask, n);
    /* With no committed free slab in the heap, the first run is as good as any: no scan (nor
    ** reads of records no slab has used yet). */
    if (m && !h->dirty_slabs) return &ss->slabs[__builtin_ctzll(m)];
    for (; m; m &= m - 1) {
      hak__slab_t *s = &ss->slabs[__builtin_ctzll(m)];
      if (s->dirty) return s;
      if (!clean) clean = s;
    }
    if (clean && !h->dirty_slabs) return clean;
  }
  return clean;
}

static void link_superslab(hak_heap_t *h, hak__superslab_t *ss) {
  ss->prev = NULL;
  ss->next = h->ss_list;
  if (ss->next) ss->next->prev = ss;
  h->ss_list = ss;
  h->ss_count++;
}

void hak__slab_unlink_superslab(hak_heap_t *h, hak__superslab_t *ss) {
  if (ss->prev) ss->prev->next = ss->next;
  else h->ss_list = ss->next;
  if (ss->next) ss->next->prev = ss->prev;
  ss->next = ss->prev = NULL;
  h->ss_count--;
  for (int i = 1; i < HAK_SLABS_PER_SS; i++)
    if (ss->slabs[i].dirty) h->dirty_slabs--;
}

/* h->lock held: the n free slabs from t leave the free mask (counts, dirty count) for a span;
** all but its head (t itself when t_is_head) become its tail (HAK_SLAB_CONT). */
static void take_slabs(hak_heap_t *h, hak__superslab_t *ss, hak__slab_t *t, unsigned n,
                       bool t_is_head) {
  for (unsigned i = 0; i < n; i++, t++) {
    ss->free_mask &= ~((uint64_t)1 << (t - ss->slabs));
    ss->assigned++;
    if (t->dirty) {
      t->dirty = 0;
      h->dirty_slabs--;
    }
    t->live = 1;
    if (i || !t_is_head) t->cls = HAK_SLAB_CONT;
  }
}

/* h->lock held: bytes more held by slabs (the dirty cap's window and the peak follow). */
static void hold_slabs(hak_heap_t *h, size_t bytes) {
  hak__heap_hold(h, bytes);
  note_held(h);
}

hak__slab_t *hak__slab_assign(hak_heap_t *h, hak__tcache_t *tc, unsigned cls) {
  hak__superslab_t *fresh = NULL;
  hak__slab_t *s;
  unsigned n = hak__class_span(cls);
  uint32_t bs = hak__class_size[cls];
  uint32_t capacity = (uint32_t)(((size_t)n << HAK_SLAB_SHIFT) / bs);
  size_t bytes = (size_t)n << HAK_SLAB_SHIFT;
  if (cls < HAK_SMALL_CLASSES && !(tc->warm >> cls & 1)) {
    uint32_t cold = HAK_COLD_BYTES / bs ? HAK_COLD_BYTES / bs : 1;
    if (cold < capacity) {
      capacity = cold;
      bytes = pages_of(cold, bs);
    }
  }
  if (bytes == (size_t)n << HAK_SLAB_SHIFT) tc->warm |= (uint64_t)1 << cls;
  bool purged = false;
  for (;;) {
    pthread_mutex_lock(&h->lock);
    if (!hak__heap_fits(h, bytes)) {
      pthread_mutex_unlock(&h->lock);
      /* Freed large mappings the heap keeps for reuse count as held: they go first. */
      if (!purged && (purged = true, hak__large_make_room(h, bytes))) continue;
      if (fresh) hak__ss_release(fresh, true);
      errno = ENOMEM;
      return NULL;
    }
    if (fresh) link_superslab(h, fresh);
    s = pick_free_span(h, n);
    if (s) break;
    pthread_mutex_unlock(&h->lock);
    fresh = hak__ss_acquire(h); /* mmap with no lock held */
    if (!fresh) return NULL;
  }
  hak__superslab_t *ss = hak__ss_of_slab(s);
  take_slabs(h, ss, s, n, true);
  s->free = NULL;
  HAK_OWNED_SET(s->allocs, 0);
  HAK_OWNED_SET(s->armed, HAK_ARM_FAR); /* frees == 0; the caller lists it and re-arms */
  HAK_OWNED_SET(s->left, HAK_ARM_FAR);
  s->owner = tc;
  atomic_store_explicit(&s->owner_tid, tc->thread, memory_order_relaxed);
#ifdef HAK_SECURE
  hak__blk_new_keys(h, s);
#endif
  s->block_size = bs;
  s->div = hak__slab_div(bs);
  s->capacity = capacity;
  s->carved = 0;
  atomic_store_explicit(&s->bound, 0, memory_order_relaxed);
  s->cls = (uint8_t)cls;
  s->span = (uint8_t)n;
  s->state = HAK_SLAB_AVAIL;
  s->next = s->prev = NULL;
  hold_slabs(h, bytes);
  pthread_mutex_unlock(&h->lock);
  HAK_TRACK_CLOSE((void *)hak__slab_start(ss, s), (size_t)n << HAK_SLAB_SHIFT);
  return s;
}

bool hak__slab_widen(hak_heap_t *h, hak__tcache_t *tc, hak__slab_t *s) {
  uint32_t full = full_capacity(s), cap = s->capacity;
  if (cap >= full) return false;
  /* A one-page slab grows to two pages (at least one more block), anything bigger to the whole
  ** slab: a class that needs more than two pages is hot, and each step is a lock round trip. */
  uint32_t next = full;
  if (pages_of(cap, s->block_size) == HAK_PAGE_BYTES) {
    next = (uint32_t)(2 * HAK_PAGE_BYTES / s->block_size);
    if (next <= cap) next = cap + 1;
    if (next > full) next = full;
  }
  pthread_mutex_lock(&h->lock);
  size_t before = hak__slab_held(s);
  s->capacity = next;
  size_t grow = hak__slab_held(s) - before;
  bool ok = hak__heap_fits(h, grow);
  if (ok) {
    /* The peak window rolls at the next slab taken or released (note_held reads the clock). */
    hak__heap_hold(h, grow);
    if (h->held > h->peak_cur) h->peak_cur = h->held;
  } else {
    s->capacity = cap;
  }
  pthread_mutex_unlock(&h->lock);
  if (ok && next == full) tc->warm |= (uint64_t)1 << s->cls;
  return ok;
}

bool hak__slab_grow(hak_heap_t *h, hak__slab_t *s, unsigned cls) {
  hak__superslab_t *ss = hak__ss_of_slab(s);
  unsigned n = s->span, m = hak__class_span(cls);
  unsigned first = (unsigned)(s - ss->slabs) + n;
  HAK_ASSERT(s->cls >= HAK_SMALL_CLASSES && m > n && s->capacity == 1);
  if (first + (m - n) > (unsigned)HAK_SLABS_PER_SS) return false;
  uint64_t want = (((uint64_t)1 << (m - n)) - 1) << first;
  size_t bytes = (size_t)(m - n) << HAK_SLAB_SHIFT;
  pthread_mutex_lock(&h->lock);
  if ((ss->free_mask & want) != want || !hak__heap_fits(h, bytes)) {
    pthread_mutex_unlock(&h->lock);
    return false;
  }
  take_slabs(h, ss, s + n, m - n, false);
  hold_slabs(h, bytes);
  s->cls = (uint8_t)cls;
  s->span = (uint8_t)m;
  s->block_size = hak__class_size[cls];
  s->div = hak__slab_div(s->block_size);
  atomic_store_explicit(&s->bound, hak__slab_bound(s, s->carved), memory_order_release);
  pthread_mutex_unlock(&h->lock);
  return true;
}

/* h->lock held: s leaves its owner; its counters join the heap's. */
static void unassign(hak_heap_t *h, hak__slab_t *s) {
  uint64_t a = HAK_OWNED_GET(s->allocs);
  uint64_t f = hak__slab_frees(s);
  h->cls_allocs[s->cls] += a;
  h->cls_frees[s->cls] += f;
  h->held -= hak__slab_held(s);
  for (unsigned i = 1; i < s->span; i++) {
    s[i].cls = HAK_SLAB_UNUSED;
    s[i].live = 0;
  }
  s->span = 1;
  s->cls = HAK_SLAB_UNUSED;
  s->live = 0;
  s->free = NULL;
  s->owner = NULL;
  atomic_store_explicit(&s->owner_tid, 0, memory_order_relaxed);
  atomic_store_explicit(&s->bound, 0, memory_order_relaxed);
  s->carved = 0;
  s->block_size = 0;
  s->div = 0;
  s->capacity = 0;
}

void hak__slab_fold_all_freed(hak_heap_t *h, const hak__slab_t *s) {
  uint64_t a = HAK_OWNED_GET(s->allocs);
  h->cls_allocs[s->cls] += a;
  h->cls_frees[s->cls] += a;
}

/* h->lock held: s joins the free mask; returns its superslab when that is now unused and
** should go (the caller releases it after unlocking): when it is not the heap's only one and the
** heap holds more committed free slabs than the dirty cap. Below the cap an empty superslab
** stays, its slabs reusable without a page fault: releasing it at once made a working set that
** empties one superslab now and then (medium blocks) map and fault in 4 MiB each time. */
static hak__superslab_t *mark_free(hak_heap_t *h, hak__superslab_t *ss, hak__slab_t *s,
                                   bool dirty) {
  int i = (int)(s - ss->slabs);
  ss->free_mask |= (uint64_t)1 << i;
  ss->assigned--;
  s->dirty = dirty;
  if (dirty) h->dirty_slabs++;
  if (ss->assigned == 0 && h->ss_count > 1 && h->dirty_slabs > dirty_cap(h)) {
    hak__slab_unlink_superslab(h, ss);
    return ss;
  }
  return NULL;
}

/* h->lock held: the n slabs from s join the free mask (see mark_free). */
static hak__superslab_t *mark_span_free(hak_heap_t *h, hak__superslab_t *ss, hak__slab_t *s,
                                        unsigned n, bool dirty) {
  hak__superslab_t *drop = NULL;
  for (unsigned i = 0; i < n; i++) {
    s[i].decommitting = 0;
    hak__superslab_t *d = mark_free(h, ss, s + i, dirty);
    if (d) drop = d;
  }
  return drop;
}

void hak__slab_release(hak_heap_t *h, hak__slab_t *s) {
  hak__superslab_t *ss = hak__ss_of_slab(s);
  HAK_ASSERT(s->cls < HAK_CLASSES && ss->heap == h && !s->next && !s->prev);
  HAK_ASSERT(HAK_OWNED_GET(s->allocs) == hak__slab_frees(s));
  unsigned n = s->span;
  size_t bytes = (size_t)n << HAK_SLAB_SHIFT;
  void *start = (void *)hak__slab_start(ss, s);
  HAK_TRACK_CLOSE(start, bytes);
  pthread_mutex_lock(&h->lock);
  unassign(h, s);
  hak__superslab_t *drop = NULL;
  bool decommit = h->dirty_slabs + n > dirty_cap(h);
  if (decommit) { /* out of the free mask, so nobody assigns them meanwhile */
    for (unsigned i = 0; i < n; i++) s[i].decommitting = 1;
  } else {
    drop = mark_span_free(h, ss, s, n, true);
  }
  pthread_mutex_unlock(&h->lock);
  if (decommit) {
    hak__os_decommit(start, bytes);
    pthread_mutex_lock(&h->lock);
    drop = mark_span_free(h, ss, s, n, false);
    pthread_mutex_unlock(&h->lock);
  }
  if (drop) hak__ss_release(drop, true);
}

#ifdef HAK_SECURE
static uint64_t rng_next(hak__tcache_t *tc) {
  uint64_t x = tc->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  tc->rng = x;
  return x;
}
#endif

uint32_t hak__slab_carve(hak__tcache_t *tc, hak__slab_t *s) {
  hak__superslab_t *ss = hak__ss_of_slab(s);
  uint32_t carved = s->carved;
  uint32_t n = HAK_CARVE_BYTES / s->block_size;
  if (n == 0) n = 1;
  if (n > s->capacity - carved) n = s->capacity - carved;
  HAK_ASSERT(n > 0 && s->free == NULL);
  hak__block_t *head = s->free;
#ifdef HAK_SECURE
  /* A random order with no array (a thread's stack may be 16 KiB): x -> a*x + c mod m, m the
  ** power of two >= n, a = 1 mod 4 and c odd, visits every residue once (Hull-Dobell); the
  ** walk starts at a random x and skips the residues >= n. */
  uint32_t m = n > 1 ? (uint32_t)1 << (32 - __builtin_clz(n - 1)) : 1;
  uint64_t r = rng_next(tc);
  uint32_t a = ((uint32_t)r & (m - 1) & ~3u) | 1, c = ((uint32_t)(r >> 24) | 1) & (m - 1);
  uint32_t x = (uint32_t)(r >> 48) & (m - 1);
  for (uint32_t i = 0; i < m; i++) {
    x = (a * x + c) & (m - 1);
    if (x >= n) continue;
    hak__block_t *b = hak__slab_block(ss, s, carved + x).blk;
    hak__blk_link(s, b, head);
    head = b;
  }
#else
  (void)tc;
  for (uint32_t i = n; i-- > 0;) { /* lowest address first out */
    hak__block_t *b = hak__slab_block(ss, s, carved + i).blk;
    hak__blk_link(s, b, head);
    head = b;
  }
#endif
  s->free = head;
  s->carved = carved + n;
  atomic_store_explicit(&s->bound, hak__slab_bound(s, carved + n), memory_order_release);
  return n;
}

void hak__slab_decommit_free(hak_heap_t *h, bool force) {
  enum { BATCH = 32 };
  for (;;) {
    hak__slab_t *todo[BATCH];
    int n = 0;
    pthread_mutex_lock(&h->lock);
    if (!force && h->dirty_slabs <= dirty_cap(h)) {
      pthread_mutex_unlock(&h->lock);
      return;
    }
    for (hak__superslab_t *ss = h->ss_list; ss && n < BATCH; ss = ss->next) {
      for (int i = 1; i < HAK_SLABS_PER_SS && n < BATCH; i++) {
        hak__slab_t *s = &ss->slabs[i];
        if (s->live || !s->dirty || s->decommitting) continue;
        ss->free_mask &= ~((uint64_t)1 << i); /* out of reach while madvise runs */
        ss->assigned++;
        s->dirty = 0;
        s->decommitting = 1;
        h->dirty_slabs--;
        todo[n++] = s;
      }
    }
    pthread_mutex_unlock(&h->lock);
    if (n == 0) return;
    for (int k = 0; k < n; k++) {
      hak__superslab_t *ss = hak__ss_of_slab(todo[k]);
      hak__os_decommit((void *)hak__slab_start(ss, todo[k]), HAK_SLAB_SIZE);
    }
    hak__superslab_t *drop[BATCH];
    int nd = 0;
    pthread_mutex_lock(&h->lock);
    for (int k = 0; k < n; k++) {
      todo[k]->decommitting = 0;
      hak__superslab_t *d = mark_free(h, hak__ss_of_slab(todo[k]), todo[k], false);
      if (d) drop[nd++] = d;
    }
    pthread_mutex_unlock(&h->lock);
    for (int k = 0; k < nd; k++) hak__ss_release(drop[k], true);
    if (n < BATCH) return;
  }
}
