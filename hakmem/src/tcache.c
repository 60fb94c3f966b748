/* tcache.c: thread caches: TLS table, attach/adopt, refill, local-free slow cases, remote
** drain, release of empty slabs, abandonment at thread exit. */
#include "tcache.h"

#include <errno.h>
#include <string.h>

#include "error.h"
#include "meta_pool.h"
#include "os.h"
#include "remote_batch.h"
#include "remote_queue.h"
#include "size_class.h"
#include "slab.h"

#define TLS_TAB_BYTES \
  (((HAK_TLS_MAX_SLOTS + 1) * sizeof(hak__tcache_t *) + 4095) & ~(size_t)4095)
static hak__tcache_t *tls_zero[HAK_TLS_MAX_SLOTS + 1]; /* never written */
HAK_TLS hak__tcache_t **hak__tls_tab = tls_zero;
static HAK_TLS hak__tcache_t *tls_list; /* caches this thread owns (hak__tc_lock) */

hak__slab_t hak__slab_none; /* free == NULL forever: malloc of an empty class goes slow */

static pthread_mutex_t hak__tc_lock = HAK_MUTEX_INIT;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;

void hak__tc_lock_acquire(void) { pthread_mutex_lock(&hak__tc_lock); }
void hak__tc_lock_release(void) { pthread_mutex_unlock(&hak__tc_lock); }
void hak__tc_reinit_child(void) { hak__mutex_init(&hak__tc_lock); }

_Static_assert(sizeof(hak__tcache_t) <= HAK_META_SIZE, "tcache fits a meta object");

/* ---- finding a cache ---- */

hak__tcache_t *hak__tcache_find_slow(hak_heap_t *h) {
  if (h->slot != HAK_NO_SLOT) return NULL; /* a slotted heap: its entry is the only place */
  hak__tcache_t *found = NULL;
  hak__tc_lock_acquire(); /* destroy unlinks other heaps' caches from this list */
  for (hak__tcache_t *tc = tls_list; tc && !found; tc = tc->thr_next)
    if (tc->heap == h) found = tc;
  hak__tc_lock_release();
  return found;
}

/* The TLS entry for slot, mapping the thread's table on first use; NULL for HAK_NO_SLOT or
** when no memory is left. */
static hak__tcache_t **tls_entry(uint32_t slot) {
  if (slot >= HAK_TLS_MAX_SLOTS) return NULL;
  if (hak__tls_tab == tls_zero) {
    hak__tcache_t **t = hak__os_map_aligned(TLS_TAB_BYTES, 4096);
    if (!t) return NULL;
    hak__tls_tab = t;
  }
  return &hak__tls_tab[slot];
}

static void tls_free_tab(void) {
  hak__tcache_t **t = hak__tls_tab;
  hak__tls_tab = tls_zero;
  if (t != tls_zero) hak__os_unmap(t, TLS_TAB_BYTES);
}

/* ---- slab lists (owner only) ---- */

/* Make s the current slab of class c, in cur[] and in the direct table, whose entries i with
** 16i in (size of class c-1, size of class c] are class c's. */
static void set_cur(hak__tcache_t *tc, unsigned c, hak__slab_t *s) {
  tc->cur[c] = s;
  if (hak__class_size[c] > HAK_DIRECT_MAX) return;
  unsigned lo = c ? hak__class_size[c - 1] / 16 + 1 : 0, hi = hak__class_size[c] / 16;
  for (unsigned i = lo; i <= hi; i++) tc->direct[i] = s;
}

#define EACH_SLAB(tc, c, s) \
  for (unsigned c = 0; c < HAK_CLASSES; c++) \
    for (hak__slab_t *s = (tc)->cur[c]; s && s != &hak__slab_none; s = s->next)

static void set_owner_tid(hak__tcache_t *tc, uintptr_t tid) {
  EACH_SLAB(tc, c, s) atomic_store_explicit(&s->owner_tid, tid, memory_order_relaxed);
  for (hak__slab_t *s = tc->full; s; s = s->next)
    atomic_store_explicit(&s->owner_tid, tid, memory_order_relaxed);
}

static bool owns_slabs(const hak__tcache_t *tc) {
  if (tc->full) return true;
  for (unsigned c = 0; c < HAK_CLASSES; c++)
    if (tc->cur[c] != &hak__slab_none) return true;
  return false;
}

static bool slab_empty(const hak__slab_t *s) {
  return HAK_OWNED_GET(s->allocs) == hak__slab_frees(s);
}

/* Unlink s from its class list. A new head becomes current: it no longer releases when empty. */
static void class_unlink(hak__tcache_t *tc, hak__slab_t *s) {
  if (tc->last[s->cls] == s) tc->last[s->cls] = s->prev;
  if (s->prev) {
    s->prev->next = s->next;
  } else {
    set_cur(tc, s->cls, s->next ? s->next : &hak__slab_none);
    if (s->next) hak__slab_arm_current(s->next);
  }
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = NULL;
}

/* Put s at the tail of its class list, before the class's empty spares if it has any (or make
** it the current slab): a slab that just got its first block back waits behind the others,
** which have had longer to collect frees, so a refill does not move to a slab with one free
** block. A listed slab is armed to come back to the slow path with its last block; one that is
** empty already is left for the caller to retire. */
static void class_insert(hak__tcache_t *tc, hak__slab_t *s) {
  unsigned c = s->cls;
  s->state = HAK_SLAB_AVAIL;
  s->next = NULL;
  if (tc->cur[c] == &hak__slab_none) {
    s->prev = NULL;
    hak__slab_arm_current(s);
    set_cur(tc, c, s);
    tc->last[c] = s;
    return;
  }
  uint64_t a = HAK_OWNED_GET(s->allocs);
  if (a != hak__slab_frees(s)) hak__slab_arm(s, a);
  hak__slab_t *t = tc->last[c];
  if (a != hak__slab_frees(s)) /* the class's empty spares (retire) stay last */
    while (t->prev != NULL && slab_empty(t)) t = t->prev;
  s->prev = t;
  s->next = t->next;
  if (t->next) t->next->prev = s;
  else tc->last[c] = s;
  t->next = s;
}

static void full_push(hak__tcache_t *tc, hak__slab_t *s) {
  s->state = HAK_SLAB_FULL;
  hak__slab_arm(s, hak__slab_frees(s) + 1); /* its first block back relists it */
  s->prev = NULL;
  s->next = tc->full;
  if (tc->full) tc->full->prev = s;
  tc->full = s;
}

static void full_unlink(hak__tcache_t *tc, hak__slab_t *s) {
  if (s->prev) s->prev->next = s->next;
  else tc->full = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = NULL;
}


/* ---- attach, adopt ---- */

static void thread_exit(void *arg);
static void create_key(void) { pthread_key_create(&exit_key, thread_exit); }

void hak__tcache_exit_arm(void) {
  pthread_once(&key_once, create_key);
  pthread_setspecific(exit_key, (void *)1);
}

/* A new cache of h with no slab, linked into h->tcaches; NULL if the meta pool is out. */
static hak__tcache_t *cache_new(hak_heap_t *h, uintptr_t thread) {
  hak__tcache_t *tc = hak__meta_alloc();
  if (!tc) return NULL;
  for (unsigned c = 0; c < HAK_CLASSES; c++) tc->cur[c] = &hak__slab_none;
  for (int i = 0; i < HAK_DIRECT_N; i++) tc->direct[i] = &hak__slab_none;
  tc->heap = h;
  tc->thread = thread;
  tc->forked = false;
  tc->guest = false;
  tc->rng = hak__keyed_hash(h->secret, (uintptr_t)tc, 0) | 1;
  pthread_mutex_lock(&h->lock);
  tc->heap_prev = NULL;
  tc->heap_next = h->tcaches;
  if (h->tcaches) h->tcaches->heap_prev = tc;
  h->tcaches = tc;
  pthread_mutex_unlock(&h->lock);
  return tc;
}

hak__tcache_t *hak__tcache_guest(hak_heap_t *h) {
  if (!h->guest) {
    hak__tcache_t *tc = cache_new(h, 0);
    if (!tc) {
      errno = ENOMEM;
      return NULL;
    }
    tc->guest = true;
    h->guest = tc;
  }
  return h->guest;
}

hak__tcache_t *hak__tcache_attach(hak_heap_t *h) {
  hak__tcache_t *tc = hak__tcache_find(h);
  if (tc) return tc;
  hak__tcache_exit_arm();
  hak__tcache_t **ent = tls_entry(h->slot);
  if (!ent && h->slot != HAK_NO_SLOT) {
    errno = ENOMEM;
    return NULL;
  }
  uintptr_t me = HAK_THREAD_ID();
  hak__tc_lock_acquire();
  pthread_mutex_lock(&h->lock);
  tc = atomic_load_explicit(&h->idle, memory_order_relaxed);
  if (tc) {
    atomic_store_explicit(&h->idle, tc->idle_next, memory_order_relaxed);
    tc->idle_next = NULL;
    tc->thread = me;
  }
  pthread_mutex_unlock(&h->lock);
  if (tc) {
    set_owner_tid(tc, me); /* adopted: its slabs and pending frees are ours now */
  } else {
    tc = cache_new(h, me);
    if (!tc) {
      hak__tc_lock_release();
      errno = ENOMEM;
      return NULL;
    }
  }
  tc->thr_prev = NULL;
  tc->thr_next = tls_list;
  if (tls_list) tls_list->thr_prev = tc;
  tls_list = tc;
  tc->thr_head = &tls_list;
  tc->tls_ent = ent;
  if (ent) *ent = tc;
  hak__tc_lock_release();
  return tc;
}

/* ---- frees coming back ---- */

/* Before an empty slab goes back to the heap: its free list must hold each carved block once.
** Every free checks the block's tag, so only a race of two frees of one block (or a write into
** a freed block) can break that; then it is reported here and the slab stays (its list
** dropped) rather than being reused under a block that may still be live. */
static bool slab_list_ok(hak__tcache_t *tc, hak__slab_t *s) {
  uint32_t carved = s->carved, n = 0;
  hak__block_t *b = s->free;
  /* Every link is checked before it is read: the head against the superslab map, each link
  ** after it as a block of s (hak__link_in_slab: the same slab, a carved block start). */
  if (b == NULL || hak__link_slab(b) == s) {
    while (b && n <= carved) {
      hak__block_t *next = hak__blk_next(s, b);
      bool ok = hak__link_in_slab(s, b, next); /* NULL is fine */
      n++;
      b = next;
      if (!ok) break;
    }
  }
  if (n == carved && !b) return true;
  /* A cache abandoned by fork may hold a list its thread was changing (a carve, a push) when the
  ** parent forked: not an error of the program; the slab is kept all the same. Otherwise the
  ** list was written by something else than its owner (double frees that do not race are
  ** reported at the free): corruption, reported at the list's head. */
  if (!tc->forked && b && n <= carved)
    hak__report_later(HAK_ERR_CORRUPTION, "hak_free", b,
                      "corrupted free list: a freed block's link was overwritten (use after "
                      "free?) with this address, which is no free block of its slab");
  else if (!tc->forked)
    hak__report_later(HAK_ERR_CORRUPTION, "hak_free", s->free,
                      n > carved ? "corrupted free list: it holds more blocks than its slab "
                                   "carved (a link overwritten, or two frees of a block racing); "
                                   "found when the slab emptied"
                                 : "corrupted free list: it ends before every freed block of its "
                                   "slab (a link overwritten); found when the slab emptied");
  s->free = NULL;
  s->broken = 1;
  return false;
}

static void release(hak__tcache_t *tc, hak__slab_t *s) {
  if (s->broken || !slab_list_ok(tc, s)) { /* its counts are off: keep it, leaked */
    hak__slab_arm_current(s);
    return;
  }
  class_unlink(tc, s);
  hak__slab_release(tc->heap, s);
}

/* Empty slabs a small class keeps besides its current one (retire). */
#define HAK_SPARE_SLABS 4

/* s, a small class's listed slab other than the current one, became empty. The class keeps up
** to HAK_SPARE_SLABS such spares, at the tail of its list, where a refill reaches them after
** the slabs with blocks in use: a class whose slabs empty and fill in turn (objects freed
** together by a collector, then made again) reuses them with their free lists whole, instead of
** releasing them (the release walk checks the whole list) and carving fresh slabs. Past that,
** an empty slab goes back to the heap; so do spares at collect, flush, thread exit and the
** heap's limit (hak__tcache_release_empty). Medium spans are released at once: a spare would
** hold up to a megabyte. */
static void retire(hak__tcache_t *tc, hak__slab_t *s) {
  unsigned spares = 0;
  for (hak__slab_t *t = tc->last[s->cls]; t != s && t->prev != NULL && slab_empty(t); t = t->prev)
    spares++;
  if (s->cls >= HAK_SMALL_CLASSES || spares >= HAK_SPARE_SLABS) {
    release(tc, s);
  } else if (tc->last[s->cls] != s) {
    class_unlink(tc, s); /* not the head: the current slab stays */
    class_insert(tc, s); /* empty: last */
  }
}

/* b, a block of s (owned by tc), came back and took s->left to 0 (counted, not pushed yet):
** push it, relist a full slab, re-arm the current one, retire s when it is empty and not the
** current slab. */
static void settle(hak__tcache_t *tc, hak__slab_t *s, hak__base_t b) {
  HAK_ASSERT(s->owner == tc && HAK_OWNED_GET(s->left) == 0);
  HAK_ASSERT(hak__slab_frees(s) <= HAK_OWNED_GET(s->allocs));
  hak__slab_push(s, b);
  if (s->state == HAK_SLAB_FULL) {
    full_unlink(tc, s);
    class_insert(tc, s);
  } else if (tc->cur[s->cls] == s) {
    hak__slab_arm_current(s);
  }
  if (tc->cur[s->cls] != s && slab_empty(s)) retire(tc, s);
}

void hak__tcache_give_back(hak__tcache_t *tc, hak__slab_t *s, hak__base_t b) {
  if (HAK_UNLIKELY(HAK_OWNED_DEC(s->left) == 0)) settle(tc, s, b);
  else hak__slab_push(s, b);
}


bool hak__tcache_grow(hak__tcache_t *tc, hak__slab_t *s, unsigned cls) {
  HAK_ASSERT(s->owner == tc && s->capacity == 1 && s->free == NULL);
  if (s->state == HAK_SLAB_AVAIL) { /* its block is out: park it as a refill would */
    class_unlink(tc, s);
    full_push(tc, s);
  }
  return hak__slab_grow(tc->heap, s, cls); /* on the full list, it relists in its new class */
}

void hak__tcache_free_slow(hak__tcache_t *tc, hak__slab_t *s, hak__base_t b) {
  settle(tc, s, b);
  hak__report_pending();
}

/* A remote chain whose link at `where` names no free block of tc's slabs: reported, and the
** rest of the chain dropped (its blocks stay out, leaked: counts cannot be trusted past it). */
static HAK_NOINLINE void bad_remote_link(const void *where) {
  hak__report(HAK_ERR_CORRUPTION, "hak_heap_drain", where,
              "corrupted remote-free list: the link in this freed block was overwritten "
              "(use after free?); the rest of the list is dropped");
}

size_t hak__tcache_drain(hak__tcache_t *tc) {
  hak__block_t *list = hak__remote_take_all(tc);
  const void *where = &tc->remote; /* where the link now followed was read */
  size_t n = 0;
  uint64_t bytes = 0;
  while (list) {
    /* Checked before anything is read or written there: a block of a slab of this cache,
    ** still marked free, whose link says it is in a remote chain (every block there is; a free
    ** block on a slab's list is not). */
    hak__slab_t *s = hak__link_slab(list);
    hak__block_t *next;
    if (HAK_UNLIKELY(s == NULL || s->owner != tc || !hak__blk_tagged(s, list))) {
      bad_remote_link(where);
      break;
    }
    if (HAK_UNLIKELY(!hak__blk_next_remote(s, list, &next))) {
      hak__report(HAK_ERR_CORRUPTION, "hak_heap_drain", list,
                  "corrupted remote-free list: this free block's link is not a remote-list "
                  "link (its link, or the one that led to it, was overwritten: use after "
                  "free?); the block and the rest of the list are dropped");
      break;
    }
    hak__base_t b = { list };
    where = list;
    list = next;
    bytes += s->block_size;
    hak__tcache_give_back(tc, s, b);
    n++;
  }
  if (n) {
    HAK_COUNTER_ADD(tc->remote_drained, n);
    HAK_COUNTER_ADD(tc->remote_drained_bytes, bytes);
  }
  return n;
}

void hak__tcache_release_empty(hak__tcache_t *tc) {
  for (unsigned c = 0; c < HAK_CLASSES; c++) {
    hak__slab_t *s = tc->cur[c];
    while (s && s != &hak__slab_none) {
      hak__slab_t *next = s->next;
      if (slab_empty(s)) release(tc, s);
      s = next;
    }
  }
}

/* ---- refill ---- */

hak__base_t hak__tcache_refill(hak__tcache_t *tc, unsigned cls) {
  hak_heap_t *h = tc->heap;
  bool retried = false;
  hak__rbatch_post_mine();
  for (;;) {
    if (hak__remote_pending(tc)) hak__tcache_drain(tc);
    hak__slab_t *s = tc->cur[cls];
    if (s == &hak__slab_none) {
      s = hak__slab_assign(h, tc, cls);
      if (!s) {
        /* At the limit: empty slabs this cache still holds may make room. */
        if (retried) return (hak__base_t){ NULL };
        retried = true;
        hak__tcache_release_empty(tc);
        continue;
      }
      class_insert(tc, s);
    }
    if (!s->free) {
      if (s->carved == s->capacity && !hak__slab_widen(h, tc, s)) {
        class_unlink(tc, s); /* nothing left to hand out: park it until a block comes back */
        full_push(tc, s);
        continue;
      }
      hak__slab_carve(tc, s);
    }
    hak__block_t *b = s->free, *next = NULL;
    const char *why = NULL;
    if (HAK_UNLIKELY(hak__link_slab(b) != s))
      why = "corrupted free list: a freed block's link was overwritten (use after free?) with "
            "this address, which is no free block of its slab";
    else if (HAK_UNLIKELY(!hak__blk_tagged(s, b)))
      /* Every double free that does not race with another free of the block is reported at
      ** the free, before anything is linked; so a listed block whose header does not say free
      ** was written by something else (or two frees of it raced: a data race). */
      why = "corrupted free block: its header was overwritten (an overflow from the block "
            "before it, a use after free, or two frees of it racing); found when it was to be "
            "reused";
    else if (HAK_UNLIKELY(!hak__link_in_slab(s, b, next = hak__blk_next(s, b))))
      why = "corrupted free list: the link in this freed block was overwritten (use after "
            "free?); it names no free block of its slab";
    if (HAK_UNLIKELY(why != NULL)) {
      /* Nothing is read or written where the link points, the block is not handed out, and the
      ** rest of the list is dropped (its blocks stay out, leaked: the slab is kept). */
      s->free = NULL;
      s->broken = 1;
      hak__report(HAK_ERR_CORRUPTION, "hak_malloc", b, why);
      continue;
    }
    s->free = next;
    HAK_OWNED_INC(s->allocs);
    hak__blk_hand_out(h, b, hak__class_size[cls]);
    hak__report_pending();
    return (hak__base_t){ b };
  }
}

/* ---- heap side ---- */

/* tc leaves its thread: off the thread's list, out of its TLS table. */
static void thr_unlink(hak__tcache_t *tc) {
  if (tc->tls_ent) *tc->tls_ent = NULL;
  tc->tls_ent = NULL;
  if (!tc->thr_head) return;
  if (tc->thr_prev) tc->thr_prev->thr_next = tc->thr_next;
  else *tc->thr_head = tc->thr_next;
  if (tc->thr_next) tc->thr_next->thr_prev = tc->thr_prev;
  tc->thr_next = tc->thr_prev = NULL;
  tc->thr_head = NULL;
}

/* h->lock held: tc leaves h for good (it owns no slab, so nobody can push onto it). */
static void heap_unlink(hak_heap_t *h, hak__tcache_t *tc) {
  h->remote_pushed += atomic_load_explicit(&tc->remote_pushed, memory_order_relaxed);
  h->remote_drained += HAK_COUNTER_GET(tc->remote_drained);
  h->remote_pushed_bytes += atomic_load_explicit(&tc->remote_pushed_bytes, memory_order_relaxed);
  h->remote_drained_bytes += HAK_COUNTER_GET(tc->remote_drained_bytes);
  if (tc->heap_prev) tc->heap_prev->heap_next = tc->heap_next;
  else h->tcaches = tc->heap_next;
  if (tc->heap_next) tc->heap_next->heap_prev = tc->heap_prev;
}

void hak__tcache_free_all(hak_heap_t *h) {
  hak__tcache_t *tc = h->tcaches;
  h->tcaches = NULL;
  h->guest = NULL;
  atomic_store_explicit(&h->idle, NULL, memory_order_relaxed);
  while (tc) {
    hak__tcache_t *next = tc->heap_next;
    thr_unlink(tc);
    hak__meta_free(tc);
    tc = next;
  }
}

void hak__tcache_reset_all(hak_heap_t *h) {
  for (hak__tcache_t *tc = h->tcaches; tc; tc = tc->heap_next) {
    for (unsigned c = 0; c < HAK_CLASSES; c++) {
      set_cur(tc, c, &hak__slab_none);
      tc->last[c] = NULL;
    }
    tc->full = NULL;
    tc->warm = 0; /* a reset heap starts cold, as a new one does */
    (void)hak__remote_take_all(tc); /* their blocks die with the slabs, counted freed */
    atomic_store_explicit(&tc->remote_drained,
                          atomic_load_explicit(&tc->remote_pushed, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(&tc->remote_drained_bytes,
                          atomic_load_explicit(&tc->remote_pushed_bytes, memory_order_relaxed),
                          memory_order_relaxed);
  }
}

/* tc is held exclusively (owner at exit, or taken off h->idle): drain it, release its empty
** slabs; then free it if it owns nothing, else leave it on h->idle. */
static size_t settle_idle(hak_heap_t *h, hak__tcache_t *tc) {
  size_t n = hak__tcache_drain(tc);
  hak__tcache_release_empty(tc);
  pthread_mutex_lock(&h->lock);
  if (!owns_slabs(tc) && !hak__remote_pending(tc)) {
    heap_unlink(h, tc);
    pthread_mutex_unlock(&h->lock);
    hak__rbatch_forget(tc);
    hak__meta_free(tc);
    return n;
  }
  tc->idle_next = atomic_load_explicit(&h->idle, memory_order_relaxed);
  atomic_store_explicit(&h->idle, tc, memory_order_relaxed);
  pthread_mutex_unlock(&h->lock);
  return n;
}

size_t hak__tcache_collect_idle(hak_heap_t *h) {
  pthread_mutex_lock(&h->lock);
  hak__tcache_t *list = atomic_load_explicit(&h->idle, memory_order_relaxed);
  atomic_store_explicit(&h->idle, NULL, memory_order_relaxed);
  pthread_mutex_unlock(&h->lock);
  size_t n = 0;
  while (list) {
    hak__tcache_t *next = list->idle_next;
    list->idle_next = NULL;
    n += settle_idle(h, list);
    list = next;
  }
  return n;
}

void hak__tcache_fork_child(hak_heap_t *h) {
  uintptr_t me = HAK_THREAD_ID();
  for (hak__tcache_t *tc = h->tcaches; tc; tc = tc->heap_next) {
    if (tc->thread == 0 || tc->thread == me) continue;
    set_owner_tid(tc, 0);
    tc->thread = 0;
    tc->thr_head = NULL; /* its thread is gone with the parent's other threads */
    tc->forked = true;
    tc->tls_ent = NULL;  /* and so is its table (inherited, never used) */
    tc->thr_next = tc->thr_prev = NULL;
    tc->idle_next = atomic_load_explicit(&h->idle, memory_order_relaxed);
    atomic_store_explicit(&h->idle, tc, memory_order_relaxed);
  }
}

/* ---- thread exit, flush ---- */

/* hak__tc_lock held: mark the heap of every cache on this thread's list as settling, so no
** destroy or reset can free or clear those caches (or unlink them from the list) until each is
** settled; the work itself then runs with no global lock, madvise and munmap included. */
static void settle_begin(void) {
  for (hak__tcache_t *tc = tls_list; tc; tc = tc->thr_next)
    atomic_fetch_add_explicit(&tc->heap->settling, 1, memory_order_relaxed);
}

/* tc's heap no longer needs tc to stay: after this, tc may be freed by a destroy. */
static void settle_end(hak_heap_t *h) {
  atomic_fetch_sub_explicit(&h->settling, 1, memory_order_release);
}

static void thread_exit(void *arg) {
  (void)arg;
  hak__rbatch_retire(); /* first: its blocks may be bound for this thread's own caches */
  hak__tc_lock_acquire();
  for (hak__tcache_t *tc = tls_list; tc; tc = tc->thr_next) {
    hak_heap_t *h = tc->heap;
    set_owner_tid(tc, 0); /* from now on every free into its slabs is remote */
    pthread_mutex_lock(&h->lock);
    tc->thread = 0;
    pthread_mutex_unlock(&h->lock);
  }
  settle_begin();
  hak__tc_lock_release();
  while (tls_list) {
    hak__tcache_t *tc = tls_list;
    hak_heap_t *h = tc->heap;
    thr_unlink(tc);
    settle_idle(h, tc); /* may free tc */
    settle_end(h);
  }
  tls_free_tab();
  hak__report_pending();
}

void hak_thread_post_remote(void) { hak__rbatch_post_mine(); }

void hak_thread_flush(void) {
  hak__rbatch_post_mine();
  hak__tc_lock_acquire();
  settle_begin();
  hak__tc_lock_release();
  for (hak__tcache_t *tc = tls_list, *next; tc; tc = next) {
    next = tc->thr_next; /* read before settle_end: a destroy may unlink tc after it */
    hak__tcache_drain(tc);
    hak__tcache_release_empty(tc);
    settle_end(tc->heap);
  }
  hak__report_pending();
}
