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
#include "remote_queue.h"
#include "size_class.h"
#include "slab.h"
#include "tcache.h"

/* ---- malloc ---- */

/* A large block; at the heap's limit, first give back what this thread caches for the heap
** (it may free whole slabs) and try once more. */
static HAK_NOINLINE void *large_alloc(hak_heap_t *h, size_t size, size_t align, bool zero) {
  if (HAK_UNLIKELY(h == NULL)) {
    errno = EINVAL;
    return NULL;
  }
  void *p = hak__large_alloc(h, size, align, zero);
  if (p || !hak_heap_get_limit(h)) return p;
  hak__tcache_t *tc = hak__tcache_find(h);
  if (!tc) return NULL;
  hak__tcache_flush_all(tc, h);
  return hak__large_alloc(h, size, align, zero);
}

static HAK_NOINLINE void *malloc_small_slow(hak_heap_t *h, unsigned cls) {
  if (HAK_UNLIKELY(h == NULL)) {
    errno = EINVAL;
    return NULL;
  }
  hak__tcache_t *tc = hak__tcache_attach(h);
  /* The refill also handles a bin whose head failed the fast path's state check. */
  if (tc) return hak__base_to_user(hak__tcache_refill(tc, h, cls));
  /* No cache could be made: take one block straight from the slabs. */
  hak__block_t *b = NULL;
  pthread_mutex_lock(&h->lock);
  if (hak__slab_take(h, cls, 1, &b) == 1) h->cls_allocs[cls]++;
  hak__heap_unlock(h);
  if (!b) {
    errno = ENOMEM;
    return NULL;
  }
  hak__blk_hand_out(h, b, hak__class_size[cls]);
  return hak__base_to_user((hak__base_t){ b });
}

HAK_INLINE void *malloc_small(hak_heap_t *h, unsigned cls) {
  hak__tcache_t *tc = h ? hak__tcache_find(h) : NULL;
  if (HAK_LIKELY(tc != NULL)) {
    hak__bin_t *bin = &tc->bins[cls];
    hak__block_t *b = bin->head;
    if (HAK_LIKELY(b != NULL && hak__blk_key(b) == hak__free_key)) {
      hak__block_t *next = hak__blk_next(h, b);
      bin->head = next;
      __builtin_prefetch(next, 1); /* the next malloc of this class will want it */
      bin->count--;
      hak__blk_hand_out(h, b, hak__class_size[cls]);
      HAK_COUNTER_ADD(bin->allocs, 1);
#ifdef HAK_SECURE
      hak__report_pending();
#endif
      return hak__base_to_user((hak__base_t){ b });
    }
  }
  return malloc_small_slow(h, cls);
}

HAK_INLINE void *heap_malloc(hak_heap_t *h, size_t size) {
  if (HAK_LIKELY(size <= HAK_SMALL_MAX)) {
    unsigned cls = hak__size_to_class(size);
    void *p = malloc_small(h, cls);
    if (HAK_TRACKING && p) HAK_TRACK_SLACK(p, size, hak__class_size[cls]);
    return p;
  }
  return large_alloc(h, size, HAK_MIN_ALIGN, false);
}

void *hak_heap_malloc(hak_heap_t *h, size_t size) { return heap_malloc(h, size); }

void *hak_heap_calloc(hak_heap_t *h, size_t count, size_t size) {
  size_t n;
  if (HAK_UNLIKELY(__builtin_mul_overflow(count, size, &n))) {
    errno = ENOMEM;
    return NULL;
  }
  if (n > HAK_SMALL_MAX) return large_alloc(h, n, HAK_MIN_ALIGN, true);
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
  if (align <= HAK_SMALL_MAX) {
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

/* Push a small block the user freed onto this thread's cache for its heap. */
HAK_INLINE void free_local(hak_heap_t *h, hak__tcache_t *tc, hak__slab_t *slab, hak__base_t b,
                           const char *op) {
  unsigned cls = slab->cls;
  hak__bin_t *bin = &tc->bins[cls];
  if (HAK_UNLIKELY(bin->head == b.blk)) {
    hak__report(HAK_ERR_DOUBLE_FREE, op, b.blk, "double free of a small block");
    return;
  }
  hak__blk_take_back(h, b.blk, slab->block_size);
  hak__bin_push(h, bin, b);
  HAK_COUNTER_ADD(bin->frees, 1);
  if (HAK_UNLIKELY(bin->count > bin->limit)) hak__tcache_overflow(tc, h, cls);
}

/* A small block whose heap this thread has no slotted cache for: the heap's slotless cache,
** or the remote queue. */
static HAK_NOINLINE void free_small_slow(hak__slab_t *slab, hak__base_t b, const char *op) {
  hak_heap_t *h = hak__ss_of_slab(slab)->heap;
  hak__tcache_t *tc = h->slot == HAK_NO_SLOT ? hak__tcache_find_slow(h) : NULL;
  if (tc) {
    free_local(h, tc, slab, b, op);
    return;
  }
  /* The remote path touches the block for the CAS anyway: check its state here. */
  if (HAK_UNLIKELY(hak__blk_is_free(b))) {
    hak__report(HAK_ERR_DOUBLE_FREE, op, b.blk, "double free of a small block");
    return;
  }
  hak__blk_take_back(h, b.blk, slab->block_size);
  hak__remote_push(h, b);
}

/* Not a valid small block: a large block, or an error to report. */
static HAK_NOINLINE void free_other(void *p, const char *op) {
  hak__loc_t loc;
  hak__resolve(hak__uptr_from(p), &loc);
  if (loc.kind == HAK_LOC_LARGE) hak__large_free(&loc, op);
  else hak__report(loc.err, op, p, loc.why);
}

HAK_INLINE void free_impl(void *p, const char *op) {
  hak__uptr_t u = hak__uptr_from(p);
  hak__base_t b;
  hak__slab_t *slab = hak__resolve_small(u, hak__reg_lookup(u.addr), &b);
  if (HAK_UNLIKELY(slab == NULL)) {
    free_other(p, op);
    return;
  }
#ifdef HAK_SECURE
  if (HAK_UNLIKELY(hak__blk_is_free(b))) {
    hak__report(HAK_ERR_DOUBLE_FREE, op, p, "double free of a small block");
    return;
  }
#endif
  hak_heap_t *h = hak__ss_of_slab(slab)->heap;
  hak__tcache_t *tc = hak__tls_slots[h->slot];
  if (HAK_LIKELY(tc != NULL && atomic_load_explicit(&tc->heap, memory_order_relaxed) == h)) {
    free_local(h, tc, slab, b, op);
    return;
  }
  free_small_slow(slab, b, op);
}

void hak_free(void *p) {
  if (HAK_UNLIKELY(p == NULL)) return;
  free_impl(p, "hak_free");
}

void hak_free_sized(void *p, size_t size) {
  if (HAK_UNLIKELY(p == NULL)) return;
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

/* A live block's location, or NULL kind BAD. */
static bool resolve_live(const void *p, hak__loc_t *loc) {
  if (!p) return false;
  hak__resolve(hak__uptr_from(p), loc);
  if (loc->kind == HAK_LOC_SMALL) return !hak__blk_is_free(loc->base) && loc->ss->heap;
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

/* ---- realloc ---- */

void *hak_heap_realloc(hak_heap_t *h, void *p, size_t size) {
  if (p == NULL) return hak_heap_malloc(h, size);
  if (size == 0) {
    hak_free(p);
    return NULL;
  }
  hak__loc_t loc;
  hak__resolve(hak__uptr_from(p), &loc);
  if (loc.kind == HAK_LOC_BAD ||
      (loc.kind == HAK_LOC_SMALL && hak__blk_is_free(loc.base)) ||
      (loc.kind == HAK_LOC_LARGE && loc.large->state != HAK_LARGE_LIVE)) {
    if (loc.kind == HAK_LOC_BAD) hak__report(loc.err, "hak_heap_realloc", p, loc.why);
    else hak__report(HAK_ERR_DOUBLE_FREE, "hak_heap_realloc", p, "realloc of a freed block");
    errno = EINVAL;
    return NULL;
  }
  size_t usable = hak__loc_usable(&loc);
  bool in_place;
  if (loc.kind == HAK_LOC_SMALL) {
    /* In place while the request still maps to this class or a smaller one within half. */
    in_place = size <= usable && (size > usable / 2 || usable <= 64);
  } else {
    in_place = (size <= usable && size >= usable / 2) ||
               (size > usable && loc.large->heap == h && hak__large_resize(&loc, size));
    usable = hak__loc_usable(&loc);
  }
  if (in_place) {
    if (HAK_TRACKING) HAK_TRACK_SLACK(p, size, usable);
    return p;
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
