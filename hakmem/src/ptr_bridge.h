/*
** ptr_bridge.h: the pointer bridge box. The only code that turns addresses into (superslab,
** slab index, slab metadata, size class) and back, and the only place where a user pointer
** becomes a block base or the reverse. Lookups go through the superslab map (free fast path)
** or the address registry, so a wild pointer is classified without touching memory hakmem does
** not own.
*/
#ifndef HAK_PTR_BRIDGE_H
#define HAK_PTR_BRIDGE_H

#include "ptr.h"
#include "registry.h"
#include "types.h"

/* Result of resolving a user pointer. */
typedef enum {
  HAK_LOC_SMALL = 0,   /* a carved block of an assigned slab (may still be free: see key) */
  HAK_LOC_LARGE,       /* the user pointer of a large block (any state) */
  HAK_LOC_BAD          /* anything else; err/why say what */
} hak__loc_kind_t;

typedef struct {
  hak__loc_kind_t kind;
  int err;                /* HAK_ERR_* when kind == HAK_LOC_BAD */
  const char *why;
  hak__superslab_t *ss;
  hak__slab_t *slab;
  hak__large_t *large;
  hak__base_t base;
} hak__loc_t;

/* ---- small blocks ---- */

HAK_INLINE hak__superslab_t *hak__ss_of_base(hak__base_t b) {
  return (hak__superslab_t *)((uintptr_t)b.blk & ~(uintptr_t)HAK_SS_MASK);
}
HAK_INLINE hak__slab_t *hak__slab_of_base(hak__base_t b) {
  hak__superslab_t *ss = hak__ss_of_base(b);
  return &ss->slabs[((uintptr_t)b.blk & HAK_SS_MASK) >> HAK_SLAB_SHIFT];
}
HAK_INLINE hak__superslab_t *hak__ss_of_slab(const hak__slab_t *s) {
  return (hak__superslab_t *)((uintptr_t)s & ~(uintptr_t)HAK_SS_MASK);
}
HAK_INLINE uintptr_t hak__slab_start(hak__superslab_t *ss, const hak__slab_t *slab) {
  return (uintptr_t)ss + ((uintptr_t)(slab - ss->slabs) << HAK_SLAB_SHIFT);
}
/* The k-th block of a slab. */
HAK_INLINE hak__base_t hak__slab_block(hak__superslab_t *ss, const hak__slab_t *slab, uint32_t k) {
  return (hak__base_t){ (hak__block_t *)(hak__slab_start(ss, slab) + (uintptr_t)k * slab->block_size) };
}
HAK_INLINE void *hak__base_to_user(hak__base_t b) { return b.blk; }

/*
** Resolve a user pointer. The fast case (a small block of an assigned slab, at a block
** boundary, carved) is inline; everything else is classified out of line.
*/
void hak__resolve_slow(hak__uptr_t u, uintptr_t entry, hak__loc_t *loc);

/*
** The block-boundary test, one multiply and one compare. With div = floor(2^64 / bs) + 1 and
** eps = bs * div mod 2^64 (1 <= eps <= bs), an offset o < 2^32 gives
**     o * div mod 2^64 == k * eps            when o == k * bs,
**     o * div mod 2^64 >= div                otherwise
** (Lemire, Kaser and Kurz, "Faster remainder by direct computation"; for a power-of-two bs the
** + 1 makes eps == bs instead of 0). So with bound = carved * eps, which stays below div since
** carved * eps <= HAK_SLAB_SIZE, `o * div mod 2^64 < bound` holds exactly for the starts of the
** carved blocks. tests/core/boundary_test checks every offset of every class.
*/
HAK_INLINE uint64_t hak__slab_div(uint32_t block_size) {
  return UINT64_MAX / block_size + 1 + ((block_size & (block_size - 1)) == 0);
}
HAK_INLINE uint64_t hak__slab_bound(const hak__slab_t *s, uint32_t carved) {
  return (uint64_t)carved * ((uint64_t)s->block_size * s->div);
}

/* The owner raises `bound` (release store) while other threads validate frees against it. It is
** read as the superslab map is (registry.h): a plain load outside TSan builds, which folds into
** the compare; an aligned 8-byte load cannot tear, and a reader racing with a carve gets the
** old or the new bound, either right for a block it was handed (its carve came before). */
HAK_INLINE uint64_t hak__slab_bound_peek(const hak__slab_t *s) {
#ifdef HAK_TSAN
  return atomic_load_explicit(&s->bound, memory_order_relaxed);
#else
  return *(const uint64_t *)&s->bound;
#endif
}

/* A carved block of an assigned slab of superslab ss: its slab, with its base; NULL for
** anything else. Unassigned slabs and the metadata slab have div == bound == 0, so nothing
** passes. */
HAK_INLINE hak__slab_t *hak__slab_check(hak__superslab_t *ss, hak__uptr_t u, hak__base_t *base) {
  hak__slab_t *slab = &ss->slabs[(u.addr & HAK_SS_MASK) >> HAK_SLAB_SHIFT];
  uint64_t in = (uint32_t)(u.addr & (HAK_SLAB_SIZE - 1));
  if (HAK_UNLIKELY(in * slab->div >= hak__slab_bound_peek(slab))) return NULL;
  *base = (hak__base_t){ (hak__block_t *)u.addr };
  return slab;
}

/* The fast case from a registry entry (then use hak__resolve for the reason of a NULL). */
HAK_INLINE hak__slab_t *hak__resolve_small(hak__uptr_t u, uintptr_t entry, hak__base_t *base) {
  if (HAK_UNLIKELY((entry & HAK_REG_TAG_MASK) != HAK_REG_SS)) return NULL;
  return hak__slab_check((hak__superslab_t *)(entry & ~HAK_REG_TAG_MASK), u, base);
}

/* The free fast path's version: the superslab map instead of the registry. */
HAK_INLINE hak__slab_t *hak__resolve_small_fast(hak__uptr_t u, hak__base_t *base) {
  if (HAK_UNLIKELY(!hak__ss_mapped(u.addr))) return NULL;
  return hak__slab_check((hak__superslab_t *)(u.addr & ~(uintptr_t)HAK_SS_MASK), u, base);
}

/* A link read from a free block or a remote queue, memory a use-after-free write can reach:
** the slab of the block it names when that is a carved block start of an assigned slab (the
** checks a freed pointer passes), else NULL. Nothing is read at the link's address. */
HAK_INLINE hak__slab_t *hak__link_slab(const hak__block_t *link) {
  hak__base_t b;
  return hak__resolve_small_fast((hak__uptr_t){ (uintptr_t)link }, &b);
}

/* A link read from `from`, a free block of s: true when it is NULL or the start of a carved
** block of s (a free list holds only its slab's blocks). `from` is in s, so a link in the same
** 64 KiB-aligned slab is in s (a medium block is its span's only block, at offset 0 of its first
** slab); the boundary test does the rest. Nothing is read at the link's address. */
HAK_INLINE bool hak__link_in_slab(const hak__slab_t *s, const hak__block_t *from,
                                  const hak__block_t *link) {
  uintptr_t l = (uintptr_t)link;
  if (l == 0) return true;
  if (((l ^ (uintptr_t)from) >> HAK_SLAB_SHIFT) != 0) return false;
  return (uint64_t)(uint32_t)(l & (HAK_SLAB_SIZE - 1)) * s->div < hak__slab_bound_peek(s);
}

/* A pointer the fast path already resolved (its slow cases take the pointer alone, so the fast
** path keeps nothing live for them): its slab, with its base. */
HAK_INLINE hak__slab_t *hak__resolved_small(hak__uptr_t u, hak__base_t *base) {
  *base = (hak__base_t){ (hak__block_t *)u.addr };
  return hak__slab_of_base(*base);
}

HAK_INLINE void hak__resolve(hak__uptr_t u, hak__loc_t *loc) {
  uintptr_t entry = hak__reg_lookup(u.addr);
  hak__slab_t *slab = hak__resolve_small(u, entry, &loc->base);
  if (HAK_LIKELY(slab != NULL)) {
    loc->kind = HAK_LOC_SMALL;
    loc->ss = hak__ss_of_slab(slab);
    loc->slab = slab;
    return;
  }
  hak__resolve_slow(u, entry, loc);
}

/* Usable size and user pointer of a resolved block. */
HAK_INLINE size_t hak__loc_usable(const hak__loc_t *loc) {
  return loc->kind == HAK_LOC_SMALL ? loc->slab->block_size : loc->large->usable;
}

#endif
