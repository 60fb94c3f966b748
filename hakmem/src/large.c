/*
** large.c: large blocks and each heap's cache of freed mappings.
**
** A large block is a mapping of its size rounded up to 64 KiB granules, aligned to a granule or
** to its alignment (mapped with the alignment's slack, both ends trimmed: the alignment costs
** address space, not held bytes). Its record is a meta-pool object; every granule's registry
** entry points at it. Free checks, under the heap's lock: the registry entry still names the
** record, the seal, the state, the registry entries at the block's last granule and just past it
** (the size), and both list neighbours pointing back; any mismatch is reported, never followed.
**
** The cache (per heap, under heap->lock): a freed mapping stays committed, still counted in
** held_bytes, for purge_delay_ms (HAK_LARGE_PURGE_MS by default) and while the heap's cached
** mappings total at most the cap (cache_cap: half the live large bytes, at least
** HAK_LARGE_CACHE_BYTES); past it the oldest go, the last in part. Bins by granule count, four
** per doubling, with a bitmap of the non-empty ones: a request takes the head of its own bin if
** it is big enough, else the head of the first non-empty bin above (constant time), split: the
** rest stays cached. Nothing big enough: the biggest smaller mapping grows and other cached
** mappings' pages move into the growth (mremap, no fault). Mappings past the delay are purged
** (munmap, registry tombstone, record freed) at the heap's next large allocation or free, in
** hak_heap_collect (all of them when forced), when a request would pass the limit, and at
** destroy.
**
** No system call under heap->lock (but the meta pool's chunk, once per 256 KiB of records): work
** is taken off the lists under it and done after.
*/
#include "large.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "heap.h"
#include "meta_pool.h"
#include "os.h"
#include "registry.h"
#include "track.h"

#define GRAN ((size_t)1 << HAK_REG_GRAN_SHIFT)

uintptr_t hak__large_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void key_init(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t k = ((uint64_t)ts.tv_nsec << 20) ^ (uintptr_t)&ts ^ ((uint64_t)getpid() << 40) ^
               (uintptr_t)&key_init;
  k *= 0x9e3779b97f4a7c15ull;
  k ^= k >> 29;
  k *= 0xbf58476d1ce4e5b9ull;
  hak__large_key = (uintptr_t)(k | (1ull << 63));
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int32_t purge_delay(const hak_heap_t *h) {
  return h->purge_delay_ms ? h->purge_delay_ms : HAK_LARGE_PURGE_MS;
}

static uintptr_t entry_of(const hak__large_t *l) { return (uintptr_t)l | HAK_REG_LARGE; }

static void seal(hak__large_t *l) { l->seal = hak__large_seal_of(l); }

/* ** {====================================================== kernel mappings inside a mapping */

/* Moving pages (mremap) leaves a mapping made of several kernel mappings: the process has at
** most vm.max_map_count (65530) of them, so each large mapping spans at most
** HAK_LARGE_MAX_CUTS + 1, tracked exactly (a split or trim keeps each part's own cuts). Without
** the bound, 40 live blocks of 1-25 MiB replaced 20,000 times spanned 3,200 kernel mappings. */
#define CUTS_UNKNOWN (HAK_LARGE_MAX_CUTS + 1)
_Static_assert(sizeof(hak__large_t) <= HAK_META_REC_SIZE, "a large record fits its meta object");

/* Cuts of all records together, at most HAK_LARGE_CUTS_TOTAL (relaxed: a bound, not a count
** anything else depends on): the process's kernel mappings stay well below vm.max_map_count
** whatever the number of large blocks. */
static _Atomic size_t cuts_total;

static uint32_t cuts_room(void) {
  size_t t = atomic_load_explicit(&cuts_total, memory_order_relaxed);
  return t >= HAK_LARGE_CUTS_TOTAL ? 0 : (uint32_t)(HAK_LARGE_CUTS_TOTAL - t);
}

/* The cuts donors may bring to a growth of a mapping with n cuts: two are kept for where the
** growth starts and where the fresh rest starts, and none beyond the process's room. */
static uint32_t donor_budget(uint32_t n, uint32_t room) {
  if (room < 2) return 0;
  uint32_t b = HAK_LARGE_MAX_CUTS - 2 - n;
  return b < room - 2 ? b : room - 2;
}

static size_t cuts_count(const hak__large_cuts_t *c) { return c->n; }

static void cuts_set(hak__large_t *l, const hak__large_cuts_t *c) {
  atomic_fetch_add_explicit(&cuts_total, cuts_count(c), memory_order_relaxed);
  atomic_fetch_sub_explicit(&cuts_total, cuts_count(&l->cuts), memory_order_relaxed);
  l->cuts = *c;
}

static void cuts_release(hak__large_t *l) {
  atomic_fetch_sub_explicit(&cuts_total, cuts_count(&l->cuts), memory_order_relaxed);
  l->cuts.n = 0;
}

static void cuts_add(hak__large_cuts_t *c, uint32_t at) {
  if (c->n > HAK_LARGE_MAX_CUTS || at == 0 || (c->n && c->at[c->n - 1] >= at)) return;
  if (c->n == HAK_LARGE_MAX_CUTS) c->n = CUTS_UNKNOWN;
  else c->at[c->n++] = at;
}

/* src's cuts inside (from, to) granules, moved to start at base, added to dst. */
static void cuts_copy(hak__large_cuts_t *dst, const hak__large_cuts_t *src, uint32_t from,
                      uint32_t to, uint32_t base) {
  if (src->n > HAK_LARGE_MAX_CUTS) {
    dst->n = CUTS_UNKNOWN;
    return;
  }
  for (uint32_t i = 0; i < src->n; i++)
    if (src->at[i] > from && src->at[i] < to) cuts_add(dst, src->at[i] - from + base);
}

/* l's cuts once it ends at `size` bytes. */
static void cuts_trim(hak__large_t *l, size_t size) {
  hak__large_cuts_t k = {0};
  cuts_copy(&k, &l->cuts, 0, (uint32_t)(size / GRAN), 0);
  cuts_set(l, &k);
}

/* ** }====================================================== */

/* ** {====================================================== lists (heap->lock held) */

/* The one unlink: only when both neighbours point back at l (or l is the head/tail). */
static bool unlink_checked(hak__large_t **head, hak__large_t **tail, hak__large_t *l, int k) {
  hak__large_t *n = l->link[k].next, *p = l->link[k].prev;
  if (p ? p->link[k].next != l : *head != l) return false;
  if (n ? n->link[k].prev != l : (tail && *tail != l)) return false;
  if (p) p->link[k].next = n;
  else *head = n;
  if (n) n->link[k].prev = p;
  else if (tail) *tail = p;
  return true;
}

static void push_front(hak__large_t **head, hak__large_t *l, int k) {
  l->link[k].prev = NULL;
  l->link[k].next = *head;
  if (*head) (*head)->link[k].prev = l;
  *head = l;
}

static bool cache_remove(hak_heap_t *h, hak__large_t *l) {
  if (!unlink_checked(&h->large_bin[l->bin], NULL, l, HAK_LL_MAIN) ||
      !unlink_checked(&h->large_oldest, &h->large_newest, l, HAK_LL_AGE))
    return false;
  if (!h->large_bin[l->bin]) h->large_bin_mask &= ~(1ull << l->bin);
  h->large_cached_bytes -= l->usable;
  return true;
}

/* Work to do once heap->lock is released: mappings to unmap (their records freed), a tail to
** unmap, an error to report. */
typedef struct {
  hak__large_t *unmap;
  uintptr_t tail;
  size_t tail_size;
  int err;
  const char *why;
  const void *ptr;
} after_t;

static void corrupt(after_t *a, const void *p, const char *why) {
  if (a->err) return;
  a->err = HAK_ERR_CORRUPTION;
  a->why = why;
  a->ptr = p;
}

/* Take l (off every list) out of the heap: unmapped after the lock. */
static void drop(hak_heap_t *h, hak__large_t *l, after_t *a) {
  h->held -= l->usable;
  l->link[HAK_LL_MAIN].next = a->unmap;
  a->unmap = l;
}

/* *r joins the heap's spare records if it keeps fewer than HAK_LARGE_SPARES (*r NULL then).
** heap->lock held. */
static void spare_put(hak_heap_t *h, hak__large_t **r) {
  if (*r && h->large_spares < HAK_LARGE_SPARES) {
    (*r)->link[HAK_LL_MAIN].next = h->large_spare;
    h->large_spare = *r;
    h->large_spares++;
    *r = NULL;
  }
}

/* Each record of a list (link[MAIN].next) kept as a spare while there is room; the rest. */
static hak__large_t *spares_put(hak_heap_t *h, hak__large_t *l) {
  while (l && h->large_spares < HAK_LARGE_SPARES) {
    hak__large_t *n = l->link[HAK_LL_MAIN].next;
    spare_put(h, &l);
    l = n;
  }
  return l;
}

static void recs_free(hak__large_t *l) {
  for (hak__large_t *n; l; l = n) {
    n = l->link[HAK_LL_MAIN].next;
    hak__meta_rec_free(l);
  }
}

/* A record for a split's rest: a spare, else the meta pool's (its lock is a leaf). */
static hak__large_t *spare_take(hak_heap_t *h) {
  hak__large_t *r = h->large_spare;
  if (!r) return hak__meta_rec_alloc();
  h->large_spare = r->link[HAK_LL_MAIN].next;
  h->large_spares--;
  return r;
}

/* Each of a list of records off every list (chained through link[MAIN].next): dropped. */
static void drop_all(hak_heap_t *h, hak__large_t *l, after_t *a) {
  for (hak__large_t *n; l; l = n) {
    n = l->link[HAK_LL_MAIN].next;
    drop(h, l, a);
  }
}

static bool evict_oldest(hak_heap_t *h, after_t *a) {
  hak__large_t *l = h->large_oldest;
  if (!l) return false;
  if (!cache_remove(h, l)) {
    /* Not followed: the cache is forgotten (its mappings leak, still counted as held). */
    corrupt(a, (void *)hak__large_base(l), "corrupt large mapping cache");
    memset(h->large_bin, 0, sizeof h->large_bin);
    h->large_bin_mask = 0;
    h->large_oldest = h->large_newest = NULL;
    return false;
  }
  drop(h, l, a);
  return true;
}

static void expire(hak_heap_t *h, after_t *a) {
  if (!h->large_oldest) return;
  uint64_t now = now_ms(), delay = (uint64_t)purge_delay(h);
  while (h->large_oldest && now - h->large_oldest->freed_ms >= delay && evict_oldest(h, a)) {
  }
}

/* What the cache may hold: HAK_LARGE_CACHE_BYTES, or half the heap's live large bytes if more. */
static size_t cache_cap(const hak_heap_t *h) {
  size_t half = h->large_live_bytes / 2 & ~(GRAN - 1);
  return half > HAK_LARGE_CACHE_BYTES ? half : HAK_LARGE_CACHE_BYTES;
}

static void bin_put(hak_heap_t *h, hak__large_t *l) {
  l->bin = hak__large_bin(l->usable / GRAN);
  push_front(&h->large_bin[l->bin], l, HAK_LL_MAIN);
  h->large_bin_mask |= 1ull << l->bin;
}

/* Cut `bytes` (rounded up to granules, less than its size) off the tail of cached l: tombstoned
** now, unmapped after the lock (a->tail). False (nothing done) if l's bin links are corrupt. */
static bool trim_cached(hak_heap_t *h, hak__large_t *l, size_t bytes, after_t *a) {
  size_t cut = (bytes + GRAN - 1) & ~(GRAN - 1);
  if (!hak__large_sound(l) || !unlink_checked(&h->large_bin[l->bin], NULL, l, HAK_LL_MAIN))
    return false;
  if (!h->large_bin[l->bin]) h->large_bin_mask &= ~(1ull << l->bin);
  l->usable -= cut;
  cuts_trim(l, l->usable);
  seal(l);
  bin_put(h, l);
  a->tail = hak__large_base(l) + l->usable;
  a->tail_size = cut;
  hak__reg_set(a->tail, cut, HAK_REG_DEAD_LARGE);
  h->held -= cut;
  h->large_cached_bytes -= cut;
  return true;
}

/* l, freed (off the live list), into the cache; or dropped when the heap does not cache or l
** is bigger than the cap. */
static void cache_put(hak_heap_t *h, hak__large_t *l, after_t *a) {
  if (purge_delay(h) < 0 || l->usable > HAK_LARGE_CACHE_BYTES) {
    drop(h, l, a);
    return;
  }
  /* Over the cap: the oldest mappings go, the last one only in part (its tail): what a cap
  ** evicts is the excess, not whole mappings (malloc-large: 4.4 GB evicted in 2000 frees of
  ** 5-25 MiB under a 64 MiB cap when whole mappings went). */
  size_t cap = cache_cap(h);
  while (h->large_cached_bytes + l->usable > cap) {
    hak__large_t *o = h->large_oldest;
    size_t excess = h->large_cached_bytes + l->usable - cap;
    if (!o || o->usable - GRAN < excess || a->tail_size || !trim_cached(h, o, excess, a)) {
      if (!evict_oldest(h, a)) break;
    }
  }
  l->freed_ms = now_ms();
  bin_put(h, l);
  l->link[HAK_LL_AGE].next = NULL;
  l->link[HAK_LL_AGE].prev = h->large_newest;
  if (h->large_newest) h->large_newest->link[HAK_LL_AGE].next = l;
  else h->large_oldest = l;
  h->large_newest = l;
  h->large_cached_bytes += l->usable;
}

/* l, found in the cache, taken off it once its record checks out; NULL (reported) if not. */
static hak__large_t *cache_claim(hak_heap_t *h, hak__large_t *l, after_t *a) {
  if (!hak__large_sound(l) || !cache_remove(h, l)) {
    corrupt(a, (void *)hak__large_base(l), "corrupt large mapping cache");
    return NULL;
  }
  return l;
}

/* A cached mapping of exactly size bytes whose start is aligned to align, or NULL: the head of
** the smallest one big enough (constant time: its own bin's head, else the first non-empty bin
** above). The rest of a bigger one stays cached under a record of its own, with the mapping's
** age: a split costs no system call and no committed page. The rest's record is one the heap
** kept (spare_take); only when it has none does the meta pool's lock nest inside heap->lock (the
** fork handlers' order). */
static hak__large_t *cache_take(hak_heap_t *h, size_t size, size_t align, after_t *a) {
  size_t g = size / GRAN;
  if (g > HAK_LARGE_CACHE_GRANS || !h->large_bin_mask) return NULL;
  unsigned b = hak__large_bin(g);
  hak__large_t *l = h->large_bin[b];
  if (!l || l->usable < size) {
    uint64_t above = h->large_bin_mask & ~((2ull << b) - 1);
    if (!above) return NULL;
    l = h->large_bin[__builtin_ctzll(above)];
  }
  if (hak__large_base(l) & (align - 1)) return NULL;
  /* A rest too small to serve a large request alone (or to be moved) stays with the block. */
  hak__large_t *r = l->usable - size >= HAK_LARGE_MOVE_MIN && hak__large_sound(l)
                        ? spare_take(h)
                        : NULL;
  if (r) {
    /* r takes l's place on the age list (unlinked with l's checks below). */
    hak__large_t *n = l->link[HAK_LL_AGE].next;
    r->heap = h;
    r->state = l->state;
    r->freed_ms = l->freed_ms;
    r->base_enc = (hak__large_base(l) + size) ^ hak__large_key;
    r->usable = l->usable - size;
    hak__large_cuts_t rc = {0};
    cuts_copy(&rc, &l->cuts, (uint32_t)(size / GRAN), (uint32_t)(l->usable / GRAN), 0);
    r->cuts.n = 0;
    cuts_set(r, &rc);
    r->link[HAK_LL_AGE].prev = l;
    r->link[HAK_LL_AGE].next = n;
    if (!cache_claim(h, l, a)) {
      spare_put(h, &r);
      if (r) hak__meta_rec_free(r);
      return NULL;
    }
    if (n) n->link[HAK_LL_AGE].prev = r;
    else h->large_newest = r;
    r->link[HAK_LL_AGE].prev = l->link[HAK_LL_AGE].prev;
    if (r->link[HAK_LL_AGE].prev) r->link[HAK_LL_AGE].prev->link[HAK_LL_AGE].next = r;
    else h->large_oldest = r;
    seal(r);
    hak__reg_set(hak__large_base(r), r->usable, entry_of(r));
    bin_put(h, r);
    h->large_cached_bytes += r->usable;
    cuts_trim(l, size);
    l->usable = size;
    seal(l);
    return l;
  }
  return cache_claim(h, l, a);
}

/* Room under the limit for bytes more, evicting cached mappings (oldest first) if need be. */
static bool make_room(hak_heap_t *h, size_t bytes, after_t *a) {
  for (;;) {
    if (hak__heap_fits(h, bytes)) return true;
    if (!evict_oldest(h, a)) return false;
  }
}

static void go_live(hak_heap_t *h, hak__large_t *l) {
  l->state = HAK_LARGE_LIVE;
  push_front(&h->large_list, l, HAK_LL_MAIN);
  h->large_allocs++;
  h->large_count++;
  h->large_live_bytes += l->usable;
}

/* Unlock-side work: tombstones, unmaps, record frees, the report. */
static void finish(after_t *a, uintptr_t tomb, const char *op) {
  while (a->unmap) {
    hak__large_t *l = a->unmap;
    a->unmap = l->link[HAK_LL_MAIN].next;
    uintptr_t base = hak__large_base(l);
    hak__reg_set(base, l->usable, tomb);
    HAK_TRACK_UNMAP((void *)base, l->usable);
    hak__os_unmap((void *)base, l->usable);
    cuts_release(l);
    hak__meta_rec_free(l);
  }
  if (a->tail_size) {
    HAK_TRACK_UNMAP((void *)a->tail, a->tail_size);
    hak__os_unmap((void *)a->tail, a->tail_size);
  }
  if (a->err) hak__report(a->err, op, a->ptr, a->why);
}

/* ** }====================================================== */

/* ** {====================================================== allocation */

static uintptr_t grow_assembled(hak_heap_t *h, hak__large_t *l, uintptr_t p, size_t old,
                                size_t need, hak__large_t *donors, size_t *moved,
                                hak__large_t **rest);

/* The biggest cached mapping of a bin below size's (so smaller than size), taken off the cache;
** NULL if none, or if it is smaller than HAK_LARGE_MOVE_MIN: moving pages costs a system call
** and, with other threads running, a TLB shootdown; below 1 MiB, faulting them in costs less
** (mstress, 1-4 MiB blocks on two threads: 1078 mremaps per run and twice the system time when
** pieces of any size moved). */
static hak__large_t *cache_take_below(hak_heap_t *h, size_t size, uint32_t max_cuts,
                                      after_t *a) {
  size_t g = size / GRAN;
  unsigned b = hak__large_bin(g > HAK_LARGE_CACHE_GRANS ? HAK_LARGE_CACHE_GRANS : g);
  uint64_t below = h->large_bin_mask & ((1ull << b) - 1);
  if (!below) return NULL;
  hak__large_t *l = h->large_bin[63 - __builtin_clzll(below)];
  if (l->usable < HAK_LARGE_MOVE_MIN || l->cuts.n > max_cuts) return NULL;
  return cache_claim(h, l, a);
}

/* Donors for a growth of rem bytes: cached mappings that fit in it whole, biggest first, at most
** HAK_LARGE_DONORS of them, each costing its cuts and one more from *budget; taken off the cache
** (chained through link[MAIN].next). Their pages move into the grown block (mremap) instead of
** fresh ones faulting in. */
static hak__large_t *cache_take_donors(hak_heap_t *h, size_t rem, uint32_t *budget, after_t *a) {
  hak__large_t *list = NULL;
  for (int i = 0; i < HAK_LARGE_DONORS && rem >= HAK_LARGE_MOVE_MIN && *budget; i++) {
    /* The head of rem's own bin if it fits, else the biggest of a bin below (which fits). */
    unsigned b = hak__large_bin(rem / GRAN > HAK_LARGE_CACHE_GRANS ? HAK_LARGE_CACHE_GRANS
                                                                     : rem / GRAN);
    hak__large_t *d = h->large_bin[b];
    d = d && d->usable <= rem && d->usable >= HAK_LARGE_MOVE_MIN && d->cuts.n < *budget
            ? cache_claim(h, d, a)
            : cache_take_below(h, rem, *budget - 1, a);
    if (!d) break;
    rem -= d->usable;
    *budget -= d->cuts.n + 1;
    d->link[HAK_LL_MAIN].next = list;
    list = d;
  }
  return list;
}

/* A fresh mapping with its record, registered; NULL + ENOMEM. */
static hak__large_t *map_fresh(hak_heap_t *h, size_t size, size_t align) {
  pthread_once(&key_once, key_init);
  hak__large_t *l = hak__meta_rec_alloc();
  if (!l) return NULL;
  void *m = hak__os_map_aligned(size, align);
  if (!m) {
    hak__meta_rec_free(l);
    return NULL;
  }
  l->heap = h;
  l->base_enc = (uintptr_t)m ^ hak__large_key;
  l->usable = size;
  l->cuts = (hak__large_cuts_t){0};
  seal(l);
  if (hak__reg_set((uintptr_t)m, size, entry_of(l)) != 0) {
    hak__reg_set((uintptr_t)m, size, HAK_REG_NONE);
    hak__os_unmap(m, size);
    hak__meta_rec_free(l);
    errno = ENOMEM;
    return NULL;
  }
  return l;
}

void *hak__large_alloc(hak_heap_t *h, size_t size, size_t align, bool zero) {
  if (size == 0) size = 1; /* a unique block with at least one usable byte */
  size_t map_align = align > GRAN ? align : GRAN;
  if (size > PTRDIFF_MAX - GRAN || map_align > PTRDIFF_MAX / 2) {
    errno = ENOMEM;
    return NULL;
  }
  size_t need = (size + GRAN - 1) & ~(GRAN - 1);
  after_t a = {0};
  pthread_mutex_lock(&h->lock);
  expire(h, &a);
  hak__large_t *l = cache_take(h, need, map_align, &a);
  bool ok = true;
  if (l) {
    go_live(h, l);
  } else if ((ok = make_room(h, need, &a))) {
    hak__heap_hold(h, need);
  }
  /* Nothing cached is big enough: grow the biggest smaller one (mremap, in place or moving its
  ** pages) and move other cached mappings' pages into the growth, so committed pages are reused
  ** and only the rest faults in. Its bytes are held already: the fresh reservation above covers
  ** the growth and more. Past the process's budget of cuts, only a mapping that is one kernel
  ** mapping grows (and stays one), alone. */
  uint32_t room = cuts_room();
  hak__large_t *g = ok && !l && map_align == GRAN
                        ? cache_take_below(h, need, room >= 2 ? HAK_LARGE_MAX_CUTS - 2 : 0, &a)
                        : NULL;
  uint32_t budget = g ? donor_budget(g->cuts.n, room) : 0;
  hak__large_t *donors = g ? cache_take_donors(h, need - g->usable, &budget, &a) : NULL;
  pthread_mutex_unlock(&h->lock);
  finish(&a, HAK_REG_DEAD_LARGE, "hak_malloc");
  if (!ok) {
    errno = ENOMEM;
    return NULL;
  }
  if (g) {
    size_t old = g->usable, moved;
    hak__large_t *rest;
    after_t a2 = {0};
    uintptr_t q = grow_assembled(h, g, hak__large_base(g), old, need, donors, &moved, &rest);
    if (q) {
      h->held -= old + moved; /* held twice: as cached, and in the reservation for need */
      go_live(h, g);
      l = g;
    } else {
      drop(h, g, &a2); /* unchanged, but out of the cache: unmapped, and the donors too */
      drop_all(h, donors, &a2);
    }
    pthread_mutex_unlock(&h->lock);
    recs_free(rest);
    finish(&a2, HAK_REG_DEAD_LARGE, "hak_malloc");
    if (l) {
      void *p = (void *)q;
      HAK_TRACK_ALLOC(h, p, need); /* a freed mapping: its tool state is a free block's */
      HAK_TRACK_SLACK(p, size, need);
      if (zero) memset(p, 0, size);
      return p;
    }
  }
  bool fresh = l == NULL;
  if (fresh) {
    l = map_fresh(h, need, map_align);
    pthread_mutex_lock(&h->lock);
    if (l) go_live(h, l);
    else h->held -= need;
    pthread_mutex_unlock(&h->lock);
    if (!l) {
      errno = ENOMEM;
      return NULL;
    }
  }
  void *p = (void *)hak__large_base(l);
  HAK_TRACK_ALLOC(h, p, need);
  HAK_TRACK_SLACK(p, size, need);
  if (zero && !fresh) memset(p, 0, size);
  return p;
}

/* ** }====================================================== */

/* ** {====================================================== free */

int hak__large_dead_err(int state) {
  (void)state;
  return HAK_ERR_DOUBLE_FREE;
}

const char *hak__large_dead_reason(int state) {
  return state == HAK_LARGE_RESET ? "large block was already freed by hak_heap_reset"
                                  : "double free of a large block";
}

/* heap->lock held: l is the live block at p, whole, with the size the registry says.
** Otherwise a->err says why. */
static bool check_live(hak__large_t *l, uintptr_t p, after_t *a) {
  uintptr_t e = entry_of(l);
  a->ptr = (const void *)p;
  if (hak__reg_lookup(p) != e) {
    a->err = HAK_ERR_DOUBLE_FREE; /* freed (and unmapped) by another thread meanwhile */
    a->why = "large block freed meanwhile by another thread";
  } else if (!hak__large_sound(l)) {
    corrupt(a, (void *)p, "corrupt large block record");
  } else if (l->state != HAK_LARGE_LIVE) {
    a->err = hak__large_dead_err(l->state);
    a->why = hak__large_dead_reason(l->state);
  } else if (hak__large_base(l) != p) {
    corrupt(a, (void *)p, "registry entry does not match its large block record");
  } else if (hak__reg_lookup(p + l->usable - 1) != e || hak__reg_lookup(p + l->usable) == e) {
    corrupt(a, (void *)p, "large block record size disagrees with the registry");
  }
  return a->err == 0;
}

void hak__large_free(const hak__loc_t *loc, const char *op) {
  hak__large_t *l = loc->large;
  uintptr_t p = (uintptr_t)loc->base.blk;
  hak_heap_t *h = l->heap; /* the resolver checked the seal, which covers it */
  after_t a = {0};
  pthread_mutex_lock(&h->lock);
  if (check_live(l, p, &a)) {
    if (!unlink_checked(&h->large_list, NULL, l, HAK_LL_MAIN)) {
      corrupt(&a, (void *)p, "corrupt large block list");
    } else {
      HAK_TRACK_FREE(h, (void *)p, l->usable);
      h->large_frees++;
      h->large_count--;
      h->large_live_bytes -= l->usable;
      l->state = HAK_LARGE_FREED;
      expire(h, &a);
      cache_put(h, l, &a);
    }
  }
  pthread_mutex_unlock(&h->lock);
  finish(&a, HAK_REG_DEAD_LARGE, op);
}

void hak__large_release_heap(hak_heap_t *h, bool destroy) {
  after_t a = {0};
  pthread_mutex_lock(&h->lock);
  while (h->large_list) {
    hak__large_t *l = h->large_list;
    if (!unlink_checked(&h->large_list, NULL, l, HAK_LL_MAIN)) {
      corrupt(&a, (void *)hak__large_base(l), "corrupt large block list");
      h->large_list = NULL; /* the rest leaks */
      break;
    }
    HAK_TRACK_FREE(h, (void *)hak__large_base(l), l->usable);
    h->large_frees++;
    h->large_count--;
    h->large_live_bytes -= l->usable;
    l->state = HAK_LARGE_RESET;
    if (destroy) drop(h, l, &a);
    else cache_put(h, l, &a);
  }
  hak__large_t *spare = NULL;
  if (destroy) {
    while (evict_oldest(h, &a)) {
    }
    spare = h->large_spare;
    h->large_spare = NULL;
    h->large_spares = 0;
  }
  pthread_mutex_unlock(&h->lock);
  recs_free(spare);
  /* A later free into a destroyed heap's mapping says so (the superslab tombstone's message). */
  finish(&a, destroy ? HAK_REG_DEAD_SS : HAK_REG_DEAD_LARGE,
         destroy ? "hak_heap_destroy" : "hak_heap_reset");
}

void hak__large_collect(hak_heap_t *h, bool force) {
  after_t a = {0};
  pthread_mutex_lock(&h->lock);
  if (force)
    while (evict_oldest(h, &a)) {
    }
  else
    expire(h, &a);
  pthread_mutex_unlock(&h->lock);
  finish(&a, HAK_REG_DEAD_LARGE, "hak_heap_collect");
}

bool hak__large_make_room(hak_heap_t *h, size_t bytes) {
  after_t a = {0};
  pthread_mutex_lock(&h->lock);
  bool ok = h->large_cached_bytes && make_room(h, bytes, &a);
  pthread_mutex_unlock(&h->lock);
  finish(&a, HAK_REG_DEAD_LARGE, "hak_malloc");
  return ok;
}

int hak_heap_set_purge_delay(hak_heap_t *h, int32_t ms) {
  if (!h) {
    errno = EINVAL;
    return -1;
  }
  pthread_mutex_lock(&h->lock);
  h->purge_delay_ms = ms;
  pthread_mutex_unlock(&h->lock);
  if (ms < 0) hak__large_collect(h, true);
  return 0;
}

/* ** }====================================================== */

/* ** {====================================================== realloc */

/* Grow l's mapping at p from old to size bytes: in place, or by moving its pages onto a fresh
** aligned mapping. A mapping that is one kernel mapping stays one (mremap grows it, in place or
** moving); else the fresh part is a kernel mapping of its own (a cut at old, added to *cuts).
** The new address, or 0 with nothing changed. */
static uintptr_t grow_mapping(hak__large_t *l, uintptr_t p, size_t old, size_t size,
                              hak__large_cuts_t *cuts) {
  bool whole = cuts->n == 0;
  /* For one kernel mapping mremap grows it when the range after it is free, which is all the
  ** extension could find: no second system call. */
  if (whole ? hak__os_grow((void *)p, old, size) == 0
            : hak__os_extend((void *)(p + old), size - old) == 0) {
    if (hak__reg_set(p + old, size - old, entry_of(l)) == 0) {
      if (!whole) cuts_add(cuts, (uint32_t)(old / GRAN));
      return p;
    }
    hak__reg_set(p + old, size - old, HAK_REG_NONE);
    hak__os_unmap((void *)(p + old), size - old);
    return 0;
  }
  void *t = hak__os_map_aligned(size, GRAN);
  if (!t) return 0;
  if (hak__reg_set((uintptr_t)t, size, entry_of(l)) != 0) {
    hak__reg_set((uintptr_t)t, size, HAK_REG_NONE);
    hak__os_unmap(t, size);
    return 0;
  }
  /* The old range's tombstone goes first: once its pages have moved, another thread may map
  ** that range and register it, which a later write here would overwrite. */
  hak__reg_set(p, old, HAK_REG_DEAD_LARGE);
  HAK_TRACK_UNMAP((void *)p, old);
  if (whole ? hak__os_move_grow((void *)p, old, size, t) != 0
            : hak__os_move((void *)p, old, t, GRAN) != 0) {
    hak__reg_set(p, old, entry_of(l));
    hak__reg_set((uintptr_t)t, size, HAK_REG_NONE);
    hak__os_unmap(t, size);
    return 0;
  }
  if (!whole) cuts_add(cuts, (uint32_t)(old / GRAN));
  return (uintptr_t)t;
}

/* Move each donor's pages (a list from cache_take_donors) onto the fresh range of the block at
** q from off on, one after the other, add their cuts to *cuts, and free their records: no fault
** when the block's new pages are first written. Returns the bytes moved; a donor that cannot
** move is unmapped instead (the range keeps its fresh pages). The caller's reservation already
** covers the range; donors were held as cached. */
static size_t move_donors(uintptr_t q, size_t off, size_t end, hak__large_t *d,
                          hak__large_cuts_t *cuts, hak__large_t **keep) {
  size_t start = off;
  while (d) {
    hak__large_t *n = d->link[HAK_LL_MAIN].next;
    uintptr_t src = hak__large_base(d);
    size_t len = d->usable;
    hak__reg_set(src, len, HAK_REG_DEAD_LARGE); /* first: see grow_mapping */
    HAK_TRACK_UNMAP((void *)src, len);
    cuts_add(cuts, (uint32_t)(off / GRAN));
    if (hak__os_move((void *)src, len, (void *)(q + off), GRAN) == 0)
      cuts_copy(cuts, &d->cuts, 0, (uint32_t)(len / GRAN), (uint32_t)(off / GRAN));
    else
      hak__os_unmap((void *)src, len);
    cuts_release(d);
    d->link[HAK_LL_MAIN].next = *keep; /* spare records for the heap's splits */
    *keep = d;
    off += len;
    d = n;
  }
  if (off > start && off < end) cuts_add(cuts, (uint32_t)(off / GRAN));
  return off - start;
}

/* Grow l's mapping at p from old to need bytes and move the donors' pages into the growth,
** outside the lock; then take heap->lock (held on return): l gets the new range and its cuts, and
** the donors' records become the heap's spares (those left over in *rest, for recs_free once the
** lock is released). Returns the new address, or 0 with l unchanged and the donors not moved;
** *moved is the donors' bytes now in the block. */
static uintptr_t grow_assembled(hak_heap_t *h, hak__large_t *l, uintptr_t p, size_t old,
                                size_t need, hak__large_t *donors, size_t *moved,
                                hak__large_t **rest) {
  hak__large_cuts_t cuts = l->cuts;
  uintptr_t q = grow_mapping(l, p, old, need, &cuts);
  hak__large_t *keep = NULL;
  *moved = q ? move_donors(q, old, need, donors, &cuts, &keep) : 0;
  pthread_mutex_lock(&h->lock);
  *rest = spares_put(h, keep);
  if (q) {
    l->base_enc = q ^ hak__large_key;
    l->usable = need;
    cuts_set(l, &cuts);
    seal(l);
  }
  return q;
}

void *hak__large_resize(const hak__loc_t *loc, size_t size) {
  hak__large_t *l = loc->large;
  uintptr_t p = (uintptr_t)loc->base.blk;
  hak_heap_t *h = l->heap;
  if (size > PTRDIFF_MAX - GRAN) return NULL;
  size_t need = (size + GRAN - 1) & ~(GRAN - 1);
  if (need == 0) need = GRAN;
  after_t a = {0};
  pthread_mutex_lock(&h->lock);
  if (!check_live(l, p, &a)) {
    pthread_mutex_unlock(&h->lock);
    return NULL; /* the caller's fallback frees p, which reports */
  }
  size_t old = l->usable;
  if (need <= old) {
    if (need < old) {
      a.tail = p + need;
      a.tail_size = old - need;
      hak__reg_set(a.tail, a.tail_size, HAK_REG_DEAD_LARGE);
      h->held -= a.tail_size;
      h->large_live_bytes -= a.tail_size;
      cuts_trim(l, need);
      l->usable = need;
      seal(l);
    }
    pthread_mutex_unlock(&h->lock);
    finish(&a, HAK_REG_DEAD_LARGE, "hak_heap_realloc");
    HAK_TRACK_RESIZE(h, (void *)p, need);
    HAK_TRACK_SLACK((void *)p, size, need);
    return (void *)p;
  }
  size_t grow = need - old;
  uint32_t room = cuts_room();
  if (l->cuts.n > HAK_LARGE_MAX_CUTS - 2 || (l->cuts.n && room < 2)) {
    /* No room for the cuts a growth may add: the caller copies into a new block. */
    pthread_mutex_unlock(&h->lock);
    return NULL;
  }
  bool ok = make_room(h, grow, &a);
  if (ok) hak__heap_hold(h, grow);
  /* Cached mappings' pages fill the growth, as for a fresh block. */
  uint32_t budget = donor_budget(l->cuts.n, room);
  hak__large_t *donors = ok ? cache_take_donors(h, grow, &budget, &a) : NULL;
  pthread_mutex_unlock(&h->lock);
  finish(&a, HAK_REG_DEAD_LARGE, "hak_heap_realloc");
  if (!ok) return NULL;
  size_t moved;
  hak__large_t *rest;
  after_t a2 = {0};
  uintptr_t q = grow_assembled(h, l, p, old, need, donors, &moved, &rest);
  if (q) {
    h->large_live_bytes += grow;
    h->held -= moved; /* held twice: as cached, and in the reservation for grow */
  } else {
    h->held -= grow;
    drop_all(h, donors, &a2);
  }
  pthread_mutex_unlock(&h->lock);
  recs_free(rest);
  finish(&a2, HAK_REG_DEAD_LARGE, "hak_heap_realloc");
  if (!q) return NULL;
  HAK_TRACK_MOVE(h, (void *)p, (void *)q, need);
  HAK_TRACK_SLACK((void *)q, size, need);
  return (void *)q;
}

/* ** }====================================================== */
