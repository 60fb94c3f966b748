/*
** tcache.h: the thread-cache box. Per thread, per heap, per size class free lists of block
** bases. The owner thread alone pops and pushes, with no atomics and no locks. A small TLS
** table indexed by the heap's slot finds the cache in one load; heaps without a slot use the
** thread's list. Caches refill from and flush to the heap's slabs in batches under the heap
** lock, drain the heap's remote queue, and return everything when the thread exits.
*/
#ifndef HAK_TCACHE_H
#define HAK_TCACHE_H

#include "block.h"
#include "ptr_bridge.h"
#include "types.h"

extern HAK_TLS hak__tcache_t *hak__tls_slots[HAK_TLS_SLOTS + 1];

/* This thread's attached cache for h, or NULL. Inline fast case. */
hak__tcache_t *hak__tcache_find_slow(hak_heap_t *h);
HAK_INLINE hak__tcache_t *hak__tcache_find(hak_heap_t *h) {
  hak__tcache_t *tc = hak__tls_slots[h->slot];
  if (HAK_LIKELY(tc != NULL && atomic_load_explicit(&tc->heap, memory_order_relaxed) == h))
    return tc;
  return h->slot == HAK_NO_SLOT ? hak__tcache_find_slow(h) : NULL;
}

/* Find or create-and-attach this thread's cache for h; NULL + ENOMEM. */
hak__tcache_t *hak__tcache_attach(hak_heap_t *h);

/* Refill bin cls (draining remote frees first) and pop one block; NULL + ENOMEM. */
hak__base_t hak__tcache_refill(hak__tcache_t *tc, hak_heap_t *h, unsigned cls);
/* Bin cls passed its limit: give half back to the slabs. */
void hak__tcache_overflow(hak__tcache_t *tc, hak_heap_t *h, unsigned cls);
/* Give every cached block of tc back to h's slabs (heap lock taken inside). */
void hak__tcache_flush_all(hak__tcache_t *tc, hak_heap_t *h);
/* Move h's remote queue into tc's bins. Returns the number of blocks drained. */
size_t hak__tcache_drain_remote(hak__tcache_t *tc, hak_heap_t *h);

/* Heap side, with hak__tc_lock held (heap.c): */
void hak__tc_lock_acquire(void);
void hak__tc_lock_release(void);
/* Detach every cache of h. fold: add their counters to the heap (reset) or not (destroy). */
void hak__tcache_detach_all(hak_heap_t *h, bool fold);
void hak__tc_reinit_child(void);

HAK_INLINE void hak__bin_push(const hak_heap_t *h, hak__bin_t *bin, hak__base_t b) {
  hak__blk_link(h, b.blk, bin->head, hak__free_key);
  bin->head = b.blk;
  bin->count++;
}

#endif
