/*
** slab.h: the slab box. Hands blocks of a size class from a heap's slabs to a thread cache and
** takes them back; assigns free slabs (respecting the heap's limit) and releases empty ones.
** Every function requires heap->lock held by the caller.
*/
#ifndef HAK_SLAB_H
#define HAK_SLAB_H

#include "error.h"
#include "types.h"

/* Up to `want` free blocks of class cls, linked through next, each with the free key set.
** Returns the count (0 with errno = ENOMEM when no slab can be assigned). */
uint32_t hak__slab_take(hak_heap_t *h, unsigned cls, uint32_t want, hak__block_t **out);
/* Give one block (free key already set) back to its slab. */
void hak__slab_put(hak_heap_t *h, hak__base_t b);
/* Errors found while the heap lock was held are reported once it is released. */
HAK_INLINE void hak__heap_unlock(hak_heap_t *h) {
  pthread_mutex_unlock(&h->lock);
  hak__report_pending();
}
/* Unlink an empty superslab from h and give it back (cache or unmap). */
void hak__slab_release_superslab(hak_heap_t *h, hak__superslab_t *ss);
/* Decommit the pages of unassigned slabs (all of them when force, else above the dirty cap). */
void hak__slab_decommit_free(hak_heap_t *h, bool force);

#endif
