/*
** slab.h: the slab box. Moves slabs between a heap and its thread caches: assigns a free slab
** of a size class (a medium class: a span of contiguous slabs, its first slab's record the
** span's) to a cache (respecting the heap's limit), takes an empty one back, carves
** fresh blocks for the owner, and gives pages back to the OS. The heap lock is held only while
** slabs or superslabs change hands; mmap, madvise and munmap always run with no lock held.
*/
#ifndef HAK_SLAB_H
#define HAK_SLAB_H

#include "error.h"
#include "types.h"

/* A slab (span) of class cls owned by tc, nothing carved yet; NULL + ENOMEM (limit or out of
** memory). */
hak__slab_t *hak__slab_assign(hak_heap_t *h, hak__tcache_t *tc, unsigned cls);
/* Owner: grow the span of a live medium block to class cls (larger) over the free slabs that
** follow it in its superslab, within h's limit; false (nothing changed) when they are not all
** free. */
bool hak__slab_grow(hak_heap_t *h, hak__slab_t *s, unsigned cls);
/* Give an empty slab back to h (the owner has unlinked it). */
void hak__slab_release(hak_heap_t *h, hak__slab_t *s);
/* Owner (tc): s has carved all its capacity; double the pages of a slab that started small (a
** cold class's first: one page), up to the whole slab (then the class is warm), within h's
** limit. False when it is whole already or the limit says no. */
bool hak__slab_widen(hak_heap_t *h, hak__tcache_t *tc, hak__slab_t *s);
/* h->lock held: the bytes s holds (counted in the heap's held bytes). */
size_t hak__slab_held(const hak__slab_t *s);
/* Owner: carve up to a page's worth of fresh blocks onto s->free; returns how many. */
uint32_t hak__slab_carve(hak__tcache_t *tc, hak__slab_t *s);
/* Decommit the pages of unassigned slabs (all of them when force, else above the dirty cap). */
void hak__slab_decommit_free(hak_heap_t *h, bool force);
/* h->lock held: unlink ss (no assigned slab) from h; the caller calls hak__ss_release after
** unlocking. */
void hak__slab_unlink_superslab(hak_heap_t *h, hak__superslab_t *ss);
/* h->lock held: fold s's counters into h as if all its blocks were freed (reset). */
void hak__slab_fold_all_freed(hak_heap_t *h, const hak__slab_t *s);

/* Frees counted so far: the owner's exact count, or a snapshot read by another thread. */
HAK_INLINE uint64_t hak__slab_frees(const hak__slab_t *s) {
  return HAK_OWNED_GET(s->armed) - HAK_OWNED_GET(s->left);
}

/* Owner: run the slow path when the count of frees reaches `at` (> the current count). */
HAK_INLINE void hak__slab_arm(hak__slab_t *s, uint64_t at) {
  uint64_t f = hak__slab_frees(s);
  HAK_ASSERT(at > f);
  HAK_OWNED_SET(s->armed, at);
  HAK_OWNED_SET(s->left, at - f);
}

/* Owner: s is (or becomes) its class's current slab, never released when it empties. */
HAK_INLINE void hak__slab_arm_current(hak__slab_t *s) {
  hak__slab_arm(s, hak__slab_frees(s) + HAK_ARM_FAR);
}

/* Errors found while the heap lock was held are reported once it is released. */
HAK_INLINE void hak__heap_unlock(hak_heap_t *h) {
  pthread_mutex_unlock(&h->lock);
  hak__report_pending();
}

#endif
