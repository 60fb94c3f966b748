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

/* ---- tagged blocks (hakmem.h) ---- */

/* The tag of a tagged block known by `size` bytes, `usable` long: at p[size] when the block is
** longer than that, else 0 (a block of exactly its size). */
HAK_INLINE int tag_get(const void *p, size_t size, size_t usable) {
  return usable > size ? ((const unsigned char *)p)[size] : 0;
}

/* A free's tagged arguments, passed as scalars (a struct's address would put it on the stack
** of every free): the size the block is known by (SIZE_MAX: not a tagged free) and the caller's
** counts (NULL: none) with their number of tags. */
#define TAGGED_ARGS size_t tsize, hak_tag_count_t *counts, size_t ntags
#define TAGGED tsize, counts, ntags
#define UNTAGGED SIZE_MAX, NULL, 0

/* At a free, once the block is known live: its tag (0 for an untagged free), and its size out
** of the caller's count for that tag (tags past ntags are not counted). */
HAK_INLINE int tag_take(const void *p, size_t usable, TAGGED_ARGS) {
  int t = tag_get(p, tsize, usable);
  if (counts != NULL && (size_t)t < ntags) {
    counts[t].bytes -= tsize;
    counts[t].count--;
  }
  return t;
}

/* Give a block of `usable` bytes, known by `size`, its tag where tag_get reads it. */
HAK_INLINE void tag_put(void *p, size_t size, size_t usable, unsigned tag) {
  if (usable > size) {
    if (HAK_TRACKING) HAK_TRACK_SLACK(p, size + 1, usable);
    ((unsigned char *)p)[size] = (unsigned char)tag;
  }
}

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

/* Returns -1, what a free that freed nothing returns (a tail call for free_impl). */
static HAK_NOINLINE int report_double_free(const char *op, const void *p) {
  hak__report(HAK_ERR_DOUBLE_FREE, op, p, "double free of a small block");
  return -1;
}

/* A block of a shared_guests heap's guest cache: freed into it under the guest lock, whose
** holder acts as the cache's owner, on any thread; no remote queue, no drain. */
static HAK_NOINLINE int free_guest(hak__tcache_t *o, hak__slab_t *s, hak__base_t b,
                                   const char *op, TAGGED_ARGS) {
  hak_heap_t *h = o->heap;
  int tag = -1;
  pthread_mutex_lock(&h->guest_lock);
  bool twice = hak__blk_is_free(s, b);
  if (!twice) {
    tag = tag_take(b.blk, s->block_size, TAGGED);
    hak__blk_take_back(h, b.blk, s->block_size);
    hak__tcache_give_back(o, s, b);
  }
  pthread_mutex_unlock(&h->guest_lock);
  if (twice) report_double_free(op, b.blk);
  hak__report_pending();
  return tag;
}

/* A free of a valid small block by a thread that does not own its slab: onto this thread's
** batch for the owner, which reaches the owner's queue when it is posted (remote_batch.h). */
static HAK_NOINLINE int free_remote(void *p, const char *op, TAGGED_ARGS) {
  hak__base_t b;
  hak__slab_t *s = hak__resolved_small(hak__uptr_from(p), &b);
  if (HAK_UNLIKELY(s->owner->guest)) return free_guest(s->owner, s, b, op, TAGGED);
  if (HAK_UNLIKELY(hak__blk_is_free(s, b))) return report_double_free(op, b.blk);
  int tag = tag_take(b.blk, s->block_size, TAGGED);
  hak__blk_take_back(s->owner->heap, b.blk, s->block_size);
  hak__rbatch_free(s, b.blk);
  return tag;
}

/* A local free that took its slab's count to 0 (counted, not pushed); returns the block's tag
** (a tail call for free_impl). */
static HAK_NOINLINE int free_local_slow(void *p, int tag) {
  hak__base_t b;
  hak__slab_t *s = hak__resolved_small(hak__uptr_from(p), &b);
  hak__tcache_free_slow(s->owner, s, b);
  return tag;
}

/* Not a valid small block: NULL, a large block, or an error to report. */
static HAK_NOINLINE int free_other(void *p, const char *op, TAGGED_ARGS) {
  if (p == NULL) return -1;
  hak__loc_t loc;
  hak__resolve(hak__uptr_from(p), &loc);
  if (loc.kind != HAK_LOC_LARGE) {
    hak__report(loc.err, op, p, loc.why);
    return -1;
  }
  int tag = loc.large->state == HAK_LARGE_LIVE ? tag_take(p, loc.large->usable, TAGGED) : -1;
  hak__large_free(&loc, op);
  return tag;
}

/*
** The fast path: resolve (superslab map, one-multiply boundary test, carved limit; NULL
** fails the map test), ownership in one load, the block's state tag, count, push. Returns the
** tag of a tagged block (tag_take), 0 for others; -1 when nothing was freed.
*/
HAK_INLINE int free_impl(void *p, const char *op, TAGGED_ARGS) {
  hak__uptr_t u = hak__uptr_from(p);
  hak__base_t b;
  hak__slab_t *s = hak__resolve_small_fast(u, &b);
  if (HAK_UNLIKELY(s == NULL)) return free_other(p, op, TAGGED);
  if (HAK_UNLIKELY(atomic_load_explicit(&s->owner_tid, memory_order_relaxed) !=
                   HAK_THREAD_ID()))
    return free_remote(p, op, TAGGED);
  /* Every double free is caught here: the tag shares the line this free writes next. A double
  ** free that went unseen would corrupt more than the block: the block may sit in a remote
  ** queue, whose chain the push below would rewrite. */
  uintptr_t key = hak__blk_tag(s, b.blk);
  if (HAK_UNLIKELY(hak__blk_is_free_tag(b, key))) return report_double_free(op, p);
  int tag = tag_take(p, s->block_size, TAGGED);
  hak__blk_take_back(s->owner->heap, b.blk, s->block_size);
  if (HAK_UNLIKELY(HAK_OWNED_DEC(s->left) == 0)) return free_local_slow(p, tag);
  hak__blk_link_tag(s, b.blk, s->free, key);
  s->free = b.blk;
  return tag;
}

void hak_free(void *p) { (void)free_impl(p, "hak_free", UNTAGGED); }

/* Debug builds: a size the caller gives back that is larger than its block. */
static inline bool size_too_big(void *p, size_t size, const char *op) {
#ifdef HAK_DEBUG
  size_t us = hak_usable_size(p);
  if (us && size > us) {
    hak__report(HAK_ERR_CORRUPTION, op, p, "size larger than the block");
    return true;
  }
#else
  (void)p;
  (void)size;
  (void)op;
#endif
  return false;
}

void hak_free_sized(void *p, size_t size) {
  if (size_too_big(p, size, "hak_free_sized")) return;
  (void)free_impl(p, "hak_free_sized", UNTAGGED);
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

/* p, resolved into loc, when it is a live block; else reported, errno EINVAL, false. */
static bool realloc_resolve(void *p, hak__loc_t *loc, const char *op) {
  resolve_mapped(p, loc);
  if (HAK_LIKELY(loc->kind == HAK_LOC_SMALL && !hak__blk_is_free(loc->slab, loc->base)))
    return true;
  if (loc->kind == HAK_LOC_LARGE && loc->large->state == HAK_LARGE_LIVE) return true;
  if (loc->kind == HAK_LOC_BAD) hak__report(loc->err, op, p, loc->why);
  else if (loc->kind == HAK_LOC_LARGE)
    hak__report(hak__large_dead_err(loc->large->state), op, p,
                hak__large_dead_reason(loc->large->state));
  else hak__report(HAK_ERR_DOUBLE_FREE, op, p, "realloc of a freed block");
  errno = EINVAL;
  return false;
}

void *hak_heap_realloc(hak_heap_t *h, void *p, size_t size) {
  if (p == NULL) return hak_heap_malloc(h, size);
  if (size == 0) {
    hak_free(p);
    return NULL;
  }
  hak__loc_t loc;
  if (!realloc_resolve(p, &loc, "hak_heap_realloc")) return NULL;
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

/* ---- tagged blocks: allocate, resize, free ---- */

/* A new tagged block of size bytes into the caller's counts. */
HAK_INLINE void tag_count(hak_tag_count_t *counts, unsigned tag, size_t size) {
  if (counts != NULL) {
    counts[tag].bytes += size;
    counts[tag].count++;
  }
}

static HAK_NOINLINE void *malloc_tagged_slow(hak_heap_t *h, size_t size, unsigned tag,
                                             hak_tag_count_t *counts, size_t ntags) {
  if (HAK_UNLIKELY(counts != NULL && tag >= ntags)) {
    errno = EINVAL;
    return NULL;
  }
  size_t req = size + (tag != 0);
  if (HAK_UNLIKELY(req < size)) {
    errno = ENOMEM;
    return NULL;
  }
  void *p = heap_malloc(h, req);
  if (p != NULL) {
    hak__loc_t loc;
    resolve_mapped(p, &loc);
    tag_put(p, size, hak__loc_usable(&loc), tag);
    tag_count(counts, tag, size);
  }
  return p;
}

/* A tag other than 0 needs the byte after the block's size: the class of size + 1. Tag 0 takes
** the class of size and gets the byte only when that class has room (a class-size block has
** none, and reads as 0). */
void *hak_heap_malloc_tagged(hak_heap_t *h, size_t size, unsigned char tag,
                             hak_tag_count_t *counts, size_t ntags) {
  size_t req = size + (tag != 0);
  if (HAK_LIKELY(h != NULL && size < HAK_DIRECT_MAX && (counts == NULL || tag < ntags))) {
    hak__tcache_t *tc = hak__tcache_peek(h);
    if (HAK_LIKELY(tc != NULL)) {
      hak__slab_t *s = tc->direct[(req + 15) >> 4];
      hak__block_t *b = pop_from(h, s);
      if (HAK_LIKELY(b != NULL)) {
        if (HAK_TRACKING) HAK_TRACK_SLACK(b, req, s->block_size);
        tag_put(b, size, s->block_size, tag);
        tag_count(counts, tag, size);
        return hak__base_to_user((hak__base_t){ b });
      }
    }
  }
  return malloc_tagged_slow(h, size, tag, counts, ntags);
}

int hak_free_tagged(void *p, size_t size, hak_tag_count_t *counts, size_t ntags) {
  if (size_too_big(p, size, "hak_free_tagged")) return -1;
  return free_impl(p, "hak_free_tagged", size, counts, ntags);
}

/* A block of `usable` bytes, tag `tag`, resized in place from osize to nsize. */
HAK_INLINE void *resized_in_place(void *p, size_t osize, size_t nsize, size_t usable,
                                  unsigned tag, hak_tag_count_t *counts, size_t ntags) {
  tag_put(p, nsize, usable, tag);
  if (counts != NULL && tag < ntags) counts[tag].bytes += nsize - osize; /* modular: shrinks too */
  return p;
}

/* The general case of hak_heap_realloc_tagged: NULL, size 0, medium and large blocks, a shrink
** that could not move, and what the error handler gets. Medium and large blocks go through
** hak_heap_realloc with room for the tag byte. */
static HAK_NOINLINE void *realloc_tagged_slow(hak_heap_t *h, void *p, size_t osize, size_t nsize,
                                              hak_tag_count_t *counts, size_t ntags) {
  if (p == NULL) return hak_heap_malloc_tagged(h, nsize, 0, counts, ntags);
  if (nsize == 0) {
    (void)hak_free_tagged(p, osize, counts, ntags);
    return NULL;
  }
  hak__loc_t loc;
  if (!realloc_resolve(p, &loc, "hak_heap_realloc_tagged")) return NULL;
  size_t usable = hak__loc_usable(&loc);
  unsigned tag = (unsigned)tag_get(p, osize, usable);
  size_t req = nsize + (tag != 0);
  if (HAK_UNLIKELY(req < nsize)) {
    errno = ENOMEM;
    return NULL;
  }
  if (loc.kind == HAK_LOC_SMALL && usable <= HAK_SMALL_MAX) {
    void *q = hak_heap_malloc_tagged(h, nsize, (unsigned char)tag, counts, ntags);
    if (q != NULL) {
      size_t n = osize < nsize ? osize : nsize;
      memcpy(q, p, n < usable ? n : usable);
      (void)hak_free_tagged(p, osize, counts, ntags);
      return q;
    }
  } else {
    void *q = hak_heap_realloc(h, p, req);
    if (q != NULL) {
      resolve_mapped(q, &loc);
      return resized_in_place(q, osize, nsize, hak__loc_usable(&loc), tag, counts, ntags);
    }
  }
  if (nsize > osize) return NULL; /* p untouched, errno ENOMEM */
  /* a shrink that could not move: nsize < osize <= usable */
  return resized_in_place(p, osize, nsize, usable, tag, counts, ntags);
}

/* The fast case: a live small block, resolved as free does, resized in place or moved. */
void *hak_heap_realloc_tagged(hak_heap_t *h, void *p, size_t osize, size_t nsize,
                              hak_tag_count_t *counts, size_t ntags) {
  hak__base_t b;
  hak__slab_t *s = hak__resolve_small_fast(hak__uptr_from(p), &b);
  if (HAK_LIKELY(s != NULL && nsize - 1 < HAK_SMALL_MAX && s->block_size <= HAK_SMALL_MAX &&
                 !hak__blk_is_free(s, b))) {
    size_t usable = s->block_size;
    unsigned tag = (unsigned)tag_get(p, osize, usable);
    size_t req = nsize + (tag != 0);
    /* In place while the request still maps to this class or a smaller one within half. */
    if (req <= usable && (req > usable / 2 || usable <= 64)) {
      if (HAK_TRACKING) HAK_TRACK_SLACK(p, req, usable);
      return resized_in_place(p, osize, nsize, usable, tag, counts, ntags);
    }
    void *q = hak_heap_malloc_tagged(h, nsize, (unsigned char)tag, counts, ntags);
    if (HAK_LIKELY(q != NULL)) {
      size_t n = osize < nsize ? osize : nsize;
      memcpy(q, p, n < usable ? n : usable);
      (void)free_impl(p, "hak_heap_realloc_tagged", osize, counts, ntags);
      return q;
    }
  }
  return realloc_tagged_slow(h, p, osize, nsize, counts, ntags);
}

/* ---- default heap ---- */

void *hak_malloc(size_t size) { return heap_malloc(hak__default_heap(), size); }
void *hak_calloc(size_t n, size_t size) { return hak_heap_calloc(hak__default_heap(), n, size); }
void *hak_realloc(void *p, size_t size) { return hak_heap_realloc(hak__default_heap(), p, size); }
void *hak_aligned_alloc(size_t align, size_t size) {
  return hak_heap_aligned_alloc(hak__default_heap(), align, size);
}
