/*
** remote_queue.h: the remote-free box. Each thread cache has a lock-free MPSC stack of blocks
** that other threads freed into the slabs it owns. Push: any thread, one CAS (release) on the
** owner's own cache line, so frees to different owners never contend. Take: the owner (or the
** thread holding an idle cache) exchanges the whole list out (acquire), so there is no ABA.
** A chain arrives in one CAS: freeing threads batch their remote frees per owner
** (remote_batch.h) and link a whole batch at once. The push is inline; the drain lives in
** tcache.c.
*/
#ifndef HAK_REMOTE_QUEUE_H
#define HAK_REMOTE_QUEUE_H

#include "block.h"
#include "ptr_bridge.h"
#include "types.h"

void hak__remote_notify_slow(hak_heap_t *h);

/* Count, then link the chain first..last (n blocks of `bytes` in all, linked, tags set) onto
** tc's queue. Nothing of tc is touched after the CAS: once the chain is visible its owner may
** drain it, exit and free tc (the counts come first so the owner's acquire sees them). True when
** the queue was empty: the caller then owes the heap's notify hook a call (hak__remote_notify),
** which remote_batch.c makes only after dropping its batch lock. */
HAK_INLINE bool hak__remote_link(hak__tcache_t *tc, hak__block_t *first, hak__block_t *last,
                                 uint64_t n, uint64_t bytes) {
  const hak__slab_t *ls = hak__slab_of_base((hak__base_t){ last });
  atomic_fetch_add_explicit(&tc->remote_pushed, n, memory_order_relaxed);
  atomic_fetch_add_explicit(&tc->remote_pushed_bytes, bytes, memory_order_relaxed);
  hak__block_t *old = atomic_load_explicit(&tc->remote, memory_order_relaxed);
  do {
    hak__blk_link_remote(ls, last, old);
  } while (!atomic_compare_exchange_weak_explicit(&tc->remote, &old, first,
                                                  memory_order_release, memory_order_relaxed));
  return old == NULL;
}

HAK_INLINE bool hak__remote_has_notify(hak_heap_t *h) {
  return atomic_load_explicit(&h->notify_fn, memory_order_acquire) != NULL;
}

/* Link and notify in one go (a thread that no longer batches: see remote_batch.h). */
HAK_INLINE void hak__remote_push(hak__tcache_t *tc, hak__block_t *first, hak__block_t *last,
                                 uint64_t n, uint64_t bytes) {
  hak_heap_t *h = tc->heap; /* read before the link: tc may be gone after it */
  if (HAK_UNLIKELY(hak__remote_link(tc, first, last, n, bytes)) && hak__remote_has_notify(h))
    hak__remote_notify_slow(h);
}

HAK_INLINE bool hak__remote_pending(hak__tcache_t *tc) {
  return atomic_load_explicit(&tc->remote, memory_order_relaxed) != NULL;
}

HAK_INLINE hak__block_t *hak__remote_take_all(hak__tcache_t *tc) {
  return atomic_exchange_explicit(&tc->remote, NULL, memory_order_acquire);
}

#endif
