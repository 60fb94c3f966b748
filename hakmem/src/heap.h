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


#endif
