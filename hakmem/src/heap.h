/*
** heap.h: the heap box's internal side: process initialisation and the default heap.
*/
#ifndef HAK_HEAP_H
#define HAK_HEAP_H

#include "types.h"

extern HAK_HIDDEN hak_heap_t *hak__default; /* NULL until first use */
hak_heap_t *hak__default_init(void);

HAK_INLINE hak_heap_t *hak__default_heap(void) {
  hak_heap_t *h = __atomic_load_n(&hak__default, __ATOMIC_ACQUIRE);
  return HAK_LIKELY(h != NULL) ? h : hak__default_init();
}

/* h->lock held: can h hold bytes more within its limit? */
HAK_INLINE bool hak__heap_fits(const hak_heap_t *h, size_t bytes) {
  return !h->limit || (h->held <= h->limit && bytes <= h->limit - h->held);
}

/* h->lock held: h holds bytes more (slabs or mappings); the peak follows. */
HAK_INLINE void hak__heap_hold(hak_heap_t *h, size_t bytes) {
  h->held += bytes;
  if (h->held > h->peak_held) h->peak_held = h->held;
}


#endif
