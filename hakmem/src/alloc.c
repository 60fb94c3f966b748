/* alloc.c: the public allocation entry points: the fast paths (inline from the boxes) and
** their out-of-line slow cases. */
#include <errno.h>
#include <string.h>

#include "block.h"
#include "error.h"
#include "hakmem.h"
#include "heap.h"
#include "large.h"
#include "ptr_bridge.h"
#include "remote_batch.h"
#include "size_class.h"
#include "slab.h"
#include "tcache.h"

/* ---- malloc ---- */

/* A large block; at the heap's limit, first give back the empty slabs this thread holds for
** the heap and try once more. */
static HAK_NOINLINE void *large_alloc(hak_heap_t *h, size_t size, size_t align, bool zero) {
  if (HAK_UNLIKELY(h == NULL)) {
    errno = EINVAL;
    return NULL;
  }
  void *p = hak__large_alloc(h, size, align, zero);
  if (p || !hak_heap_get_limit(h)) return p;
  hak__tcache_t *tc = hak__tcache_find(h);
  if (!tc) return NULL;
  hak__tcache_drain(tc);
  hak__tcache_release_empty(tc);
  return hak__large_alloc(h, size, align, zero);
}

static void *guest_malloc(hak_heap_t *h, unsigned cls);

static HAK_NOINLINE void *malloc_small_slow(hak_heap_t *h, hak__tcache_t *tc, unsigned cls) {
  if (HAK_UNLIKELY(h == NULL)) {
    errno = EINVAL;
    return NULL;
  }
  if (!tc && h->home && h->home != HAK_THREAD_ID()) return guest_malloc(h, cls);
  if (!tc && !(tc = hak__tcache_attach(h))) return NULL;
  hak__base_t b = hak__tcache_refill(tc, cls);
  if (hak__base_is_null(b)) {
    errno = ENOMEM;
    return NULL;
  }
  return hak__base_to_user(b);
}

/* The fast path's pop: a block from slab s (a cache's current slab of its class), or NULL when
** it has none ready (empty list, or a header that needs the slow path's checks and report). */
HAK_INLINE hak__block_t *pop_from(hak_heap_t *h, hak__slab_t *s) {
  hak__block_t *b = s->free;
  if (HAK_UNLIKELY(b == NULL)) return NULL;
  /* Tool builds open and close the tag's bytes to read it: only at a block of s (the refill
  ** reports any other link). The default build reads the tag at once: a link overwritten
  ** with an address of no block fails the tag test (or faults, if nothing is mapped there).
  ** The secure build checks every link before it becomes the head, so b is a block of s. */
  if (HAK_TRACKING && hak__link_slab(b) != s) return NULL;
  if (HAK_UNLIKELY(!hak__blk_tagged(s, b))) return NULL;
  hak__block_t *next = hak__blk_next(s, b);
#ifdef HAK_SECURE
  if (HAK_UNLIKELY(!hak__link_in_slab(s, b, next))) return NULL;
#endif
  s->free = next;
  HAK_OWNED_INC(s->allocs);
  hak__blk_hand_out(h, b, s->block_size);
  return b;
}

/* A thread other than the home of a shared_guests heap: the guest cache, under its lock. */
static HAK_NOINLINE void *guest_malloc(hak_heap_t *h, unsigned cls) {
  pthread_mutex_lock(&h->guest_lock);
  hak__tcache_t *tc = hak__tcache_guest(h);
  hak__base_t b = { tc ? pop_from(h, tc->cur[cls]) : NULL };
  if (tc && hak__base_is_null(b)) b = hak__tcache_refill(tc, cls);
  pthread_mutex_unlock(&h->guest_lock);
  if (hak__base_is_null(b)) {
    errno = ENOMEM;
    return NULL;
  }
  return hak__base_to_user(b);
}

HAK_INLINE void *malloc_small(hak_heap_t *h, unsigned cls) {
  hak__tcache_t *tc = HAK_LIKELY(h != NULL) ? hak__tcache_find(h) : NULL;
  hak__block_t *b = HAK_LIKELY(tc != NULL) ? pop_from(h, tc->cur[cls]) : NULL;
  if (HAK_LIKELY(b != NULL)) return hak__base_to_user((hak__base_t){ b });
  return malloc_small_slow(h, tc, cls);
}

static HAK_NOINLINE void *heap_malloc_slow(hak_heap_t *h, size_t size) {
  if (size > HAK_MEDIUM_MAX) return large_alloc(h, size, HAK_MIN_ALIGN, false);
  unsigned cls = hak__size_to_class(size);
  /* Medium sizes start here (the fast path leaves them out): their pop is tried first. Small
  ** ones come after the fast path missed, so straight to the refill. */
  void *p = size > HAK_SMALL_MAX ? malloc_small(h, cls)
                                 : malloc_small_slow(h, h ? hak__tcache_find(h) : NULL, cls);
  if (HAK_TRACKING && p) HAK_TRACK_SLACK(p, size, hak__class_size[cls]);
  return p;
}

/* The fast path of malloc: every miss tail-calls the slow path with the caller's arguments,
** so nothing has to survive in a callee-saved register (no stack frame). Sizes up to 1 KiB
** find their slab in the cache's direct table, with no class lookup. */
HAK_INLINE void *heap_malloc(hak_heap_t *h, size_t size) {
  if (HAK_LIKELY(h != NULL)) {
    hak__tcache_t *tc;
    hak__slab_t *s;
    if (HAK_LIKELY(size <= HAK_DIRECT_MAX)) {
      if (HAK_UNLIKELY((tc = hak__tcache_peek(h)) == NULL)) return heap_malloc_slow(h, size);
      s = tc->direct[(size + 15) >> 4];
    } else if (size <= HAK_SMALL_MAX) {
      if (HAK_UNLIKELY((tc = hak__tcache_peek(h)) == NULL)) return heap_malloc_slow(h, size);
      s = tc->cur[hak__size_to_small_class(size)];
    } else {
      return heap_malloc_slow(h, size);
    }
    hak__block_t *b = pop_from(h, s);
    if (HAK_LIKELY(b != NULL)) {
      if (HAK_TRACKING) HAK_TRACK_SLACK(b, size, s->block_size);
      return hak__base_to_user((hak__base_t){ b });
    }
  }
  return heap_malloc_slow(h, size);
}

void *hak_heap_malloc(hak_heap_t *h, size_t size) { return heap_malloc(h, size); }

void *hak_heap_calloc(hak_heap_t *h, size_t count, size_t size) {
  size_t n;
  if (HAK_UNLIKELY(__builtin_mul_overflow(count, size, &n))) {
    errno = ENOMEM;
    return NULL;
  }
  if (n > HAK_MEDIUM_MAX) return large_alloc(h, n, HAK_MIN_ALIGN, true);
  unsigned cls = hak__size_to_class(n);
  void *p = malloc_small(h, cls);
  if (HAK_TRACKING && p) HAK_TRACK_SLACK(p, n, hak__class_size[cls]);
  if (p) memset(p, 0, n);
  return p;
}

void *hak_heap_aligned_alloc(hak_heap_t *h, size_t align, size_t size) {
  if (align == 0 || (align & (align - 1))) {
    errno = EINVAL;
    return NULL;
  }
  if (HAK_UNLIKELY(h == NULL)) {
    errno = EINVAL;
    return NULL;
  }
  if (align <= HAK_MIN_ALIGN) return hak_heap_malloc(h, size);
  if (align <= HAK_SLAB_SIZE) {
    int cls = hak__class_for_aligned(size, align);
    if (cls >= 0) {
      void *p = malloc_small(h, (unsigned)cls);
      if (HAK_TRACKING && p) HAK_TRACK_SLACK(p, size, hak__class_size[cls]);
      return p;
    }
  }
  return large_alloc(h, size, align, false);
}

/* ---- free ---- */

static HAK_NOINLINE void report_double_free(const char *op, const void *p) {
  hak__report(HAK_ERR_DOUBLE_FREE, op, p, "double free of a small block");
}

/* A block of a shared_guests heap's guest cache: freed into it under the guest lock, whose
** holder acts as the cache's owner, on any thread; no remote queue, no drain. */
static HAK_NOINLINE void free_guest(hak__tcache_t *o, hak__slab_t *s, hak__base_t b,
                                    const char *op) {
  hak_heap_t *h = o->heap;
  pthread_mutex_lock(&h->guest_lock);
  bool twice = hak__blk_is_free(s, b);
  if (!twice) {
    hak__blk_take_back(h, b.blk, s->block_size);
    hak__tcache_give_back(o, s, b);
  }
  pthread_mutex_unlock(&h->guest_lock);
  if (twice) report_double_free(op, b.blk);
  hak__report_pending();
}

/* A free of a valid small block by a thread that does not own its slab: onto this thread's
** batch for the owner, which reaches the owner's queue when it is posted (remote_batch.h). */
static HAK_NOINLINE void free_remote(void *p, const char *op) {
  hak__base_t b;
  hak__slab_t *s = hak__resolved_small(hak__uptr_from(p), &b);
  if (HAK_UNLIKELY(s->owner->guest)) {
    free_guest(s->owner, s, b, op);
    return;
  }
  if (HAK_UNLIKELY(hak__blk_is_free(s, b))) {
    report_double_free(op, b.blk);
    return;
  }
  hak__blk_take_back(s->owner->heap, b.blk, s->block_size);
  hak__rbatch_free(s, b.blk);
}

/* A local free that took its slab's count to 0 (counted, not pushed). */
static HAK_NOINLINE void free_local_slow(void *p) {
  hak__base_t b;
  hak__slab_t *s = hak__resolved_small(hak__uptr_from(p), &b);
  hak__tcache_free_slow(s->owner, s, b);
}

/* Not a valid small block: NULL, a large block, or an error to report. */
static HAK_NOINLINE void free_other(void *p, const char *op) {
  if (p == NULL) return;
  hak__loc_t loc;
  hak__resolve(hak__uptr_from(p), &loc);
  if (loc.kind == HAK_LOC_LARGE) hak__large_free(&loc, op);
  else hak__report(loc.err, op, p, loc.why);
}

/*
** The fast path: resolve (superslab map, one-multiply boundary test, carved limit; NULL
** fails the map test), ownership in one load, the block's state tag, count, push.
*/
HAK_INLINE void free_impl(void *p, const char *op) {
  hak__uptr_t u = hak__uptr_from(p);
  hak__base_t b;
  hak__slab_t *s = hak__resolve_small_fast(u, &b);
  if (HAK_UNLIKELY(s == NULL)) {
    free_other(p, op);
    return;
  }
  if (HAK_UNLIKELY(atomic_load_explicit(&s->owner_tid, memory_order_relaxed) !=
                   HAK_THREAD_ID())) {
    free_remote(p, op);
    return;
  }
  /* Every double free is caught here: the tag shares the line this free writes next. A double
  ** free that went unseen would corrupt more than the block: the block may sit in a remote
  ** queue, whose chain the push below would rewrite. */
  uintptr_t tag = hak__blk_tag(s, b.blk);
  if (HAK_UNLIKELY(hak__blk_is_free_tag(b, tag))) {
    report_double_free(op, p);
    return;
  }
  hak__blk_take_back(s->owner->heap, b.blk, s->block_size);
  if (HAK_UNLIKELY(HAK_OWNED_DEC(s->left) == 0)) {
    free_local_slow(p);
    return;
  }
  hak__blk_link_tag(s, b.blk, s->free, tag);
  s->free = b.blk;
}

void hak_free(void *p) { free_impl(p, "hak_free"); }

void hak_free_sized(void *p, size_t size) {
#ifdef HAK_DEBUG
  size_t us = hak_usable_size(p);
  if (us && size > us) {
    hak__report(HAK_ERR_CORRUPTION, "hak_free_sized", p, "size larger than the block");
    return;
  }
#else
  (void)size;
#endif
  free_impl(p, "hak_free_sized");
}

/* ---- queries ---- */

/* Resolve p as free does: a small block through the superslab map (one byte load), and only
** what that misses through the registry. */
HAK_INLINE void resolve_mapped(const void *p, hak__loc_t *loc) {
  hak__slab_t *s = hak__resolve_small_fast(hak__uptr_from(p), &loc->base);
  if (HAK_LIKELY(s != NULL)) {
    loc->kind = HAK_LOC_SMALL;
    loc->ss = hak__ss_of_slab(s);
    loc->slab = s;
    return;
  }
  hak__resolve(hak__uptr_from(p), loc);
}

/* A live block's location, or NULL kind BAD. */
static bool resolve_live(const void *p, hak__loc_t *loc) {
  if (!p) return false;
  resolve_mapped(p, loc);
  if (loc->kind == HAK_LOC_SMALL) return !hak__blk_is_free(loc->slab, loc->base) && loc->ss->heap;
  if (loc->kind == HAK_LOC_LARGE) return loc->large->state == HAK_LARGE_LIVE;
  return false;
}

size_t hak_usable_size(const void *p) {
  hak__loc_t loc;
  if (!resolve_live(p, &loc)) return 0;
  size_t n = hak__loc_usable(&loc);
  HAK_TRACK_GRANT(p, n); /* the caller may now use all of it, slack included */
  return n;
}

hak_heap_t *hak_heap_of(const void *p) {
  hak__loc_t loc;
  if (!resolve_live(p, &loc)) return NULL;
  return loc.kind == HAK_LOC_SMALL ? loc.ss->heap : loc.large->heap;
}

bool hak_owns(const void *p) {
  uintptr_t tag = hak__reg_lookup((uintptr_t)p) & HAK_REG_TAG_MASK;
  return tag == HAK_REG_SS || tag == HAK_REG_LARGE;
}

size_t hak_good_size(size_t n) {
  if (n <= HAK_MEDIUM_MAX) return hak__class_size[hak__size_to_class(n)];
  return hak__large_good_size(n);
}

/* ---- realloc ---- */

void *hak_heap_realloc(hak_heap_t *h, void *p, size_t size) {
  if (p == NULL) return hak_heap_malloc(h, size);
  if (size == 0) {
    hak_free(p);
    return NULL;
  }
  hak__loc_t loc;
  resolve_mapped(p, &loc);
  if (loc.kind == HAK_LOC_BAD ||
      (loc.kind == HAK_LOC_SMALL && hak__blk_is_free(loc.slab, loc.base)) ||
      (loc.kind == HAK_LOC_LARGE && loc.large->state != HAK_LARGE_LIVE)) {
    if (loc.kind == HAK_LOC_BAD) hak__report(loc.err, "hak_heap_realloc", p, loc.why);
    else if (loc.kind == HAK_LOC_LARGE)
      hak__report(hak__large_dead_err(loc.large->state), "hak_heap_realloc", p,
                  hak__large_dead_reason(loc.large->state));
    else hak__report(HAK_ERR_DOUBLE_FREE, "hak_heap_realloc", p, "realloc of a freed block");
    errno = EINVAL;
    return NULL;
  }
  size_t usable = hak__loc_usable(&loc);
  if (loc.kind == HAK_LOC_LARGE) {
    /* A shrink never moves; growth stays in the block's heap (mremap) when that is `h`. */
    void *q = size <= usable || loc.large->heap == h ? hak__large_resize(&loc, size) : NULL;
    if (q) return q;
  } else {
    /* In place while the request still maps to this class or a smaller one within half; a
    ** medium block never moves to shrink. */
    bool in_place = size <= usable && (size > usable / 2 || usable <= 64 || usable > HAK_SMALL_MAX);
    /* A medium block of this thread grows over the free slabs after it. */
    if (!in_place && size > usable && usable > HAK_SMALL_MAX && size <= HAK_MEDIUM_MAX &&
        loc.ss->heap == h &&
        atomic_load_explicit(&loc.slab->owner_tid, memory_order_relaxed) == HAK_THREAD_ID() &&
        hak__tcache_grow(loc.slab->owner, loc.slab, hak__size_to_class(size))) {
      in_place = true;
      usable = loc.slab->block_size;
      HAK_TRACK_RESIZE(h, p, usable);
    }
    if (in_place) {
      if (HAK_TRACKING) HAK_TRACK_SLACK(p, size, usable);
      return p;
    }
  }
  usable = HAK_TRACK_ACCESSIBLE(p, usable);
  void *q = hak_heap_malloc(h, size);
  if (!q) return NULL;
  memcpy(q, p, size < usable ? size : usable);
  hak_free(p);
  return q;
}

/* ---- default heap ---- */

void *hak_malloc(size_t size) { return heap_malloc(hak__default_heap(), size); }
void *hak_calloc(size_t n, size_t size) { return hak_heap_calloc(hak__default_heap(), n, size); }
void *hak_realloc(void *p, size_t size) { return hak_heap_realloc(hak__default_heap(), p, size); }
void *hak_aligned_alloc(size_t align, size_t size) {
  return hak_heap_aligned_alloc(hak__default_heap(), align, size);
}
