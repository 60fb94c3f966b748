/*
** remote_queue.h: the remote-free box. A heap's lock-free MPSC stack of blocks freed by
** threads that do not use the heap. Push: any thread, one CAS (release). Take: whoever drains,
** one exchange of the whole list (acquire), so concurrent drainers get disjoint lists and
** there is no ABA. The push is inline; draining lives with its consumers (tcache.c, heap.c).
*/
#ifndef HAK_REMOTE_QUEUE_H
#define HAK_REMOTE_QUEUE_H

#include "block.h"
#include "ptr_bridge.h"
#include "types.h"

void hak__remote_notify_slow(hak_heap_t *h);

HAK_INLINE void hak__remote_push(hak_heap_t *h, hak__base_t b) {
  hak__block_t *blk = b.blk;
  hak__block_t *old = atomic_load_explicit(&h->remote_head, memory_order_relaxed);
  do {
    hak__blk_link(h, blk, old, hak__free_key);
  } while (!atomic_compare_exchange_weak_explicit(&h->remote_head, &old, blk,
                                                  memory_order_release, memory_order_relaxed));
  if (HAK_UNLIKELY(old == NULL) &&
      atomic_load_explicit(&h->notify_fn, memory_order_acquire) != NULL)
    hak__remote_notify_slow(h);
}

HAK_INLINE bool hak__remote_pending(hak_heap_t *h) {
  return atomic_load_explicit(&h->remote_head, memory_order_relaxed) != NULL;
}

HAK_INLINE hak__block_t *hak__remote_take_all(hak_heap_t *h) {
  return atomic_exchange_explicit(&h->remote_head, NULL, memory_order_acquire);
}

#endif
