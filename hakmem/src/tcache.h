/*
** tcache.h: the thread-cache box. A thread's cache for a heap owns the slabs it allocates
** from; the owner pops and pushes their blocks with no lock and no atomic read-modify-write.
** Blocks other threads free into owned slabs arrive on the cache's MPSC queue, a batch at a
** time (remote_batch.h), and are drained by the owner on its slow path. A thread finds its cache for a heap in O(1) through its TLS
** table (tcache.c maps it). When the thread exits its caches are abandoned to their
** heaps, slabs and pending frees included, and adopted by the next thread that attaches.
*/
#ifndef HAK_TCACHE_H
#define HAK_TCACHE_H

#include "block.h"
#include "ptr_bridge.h"
#include "types.h"

/* The calling thread's table: HAK_TLS_MAX_SLOTS + 1 entries, or the shared zero table. Entry
** `slot` is this thread's cache for the heap in that slot, or NULL. An entry never outlives its
** cache: the cache clears it when it leaves the thread (destroy, thread exit: thr_unlink). */
extern HAK_HIDDEN HAK_TLS hak__tcache_t **hak__tls_tab;

/* The slab every empty class of a cache points at: nothing to hand out, never freed into. */
extern HAK_HIDDEN hak__slab_t hak__slab_none;

hak__tcache_t *hak__tcache_find_slow(hak_heap_t *h);

/* This thread's cache for h if its TLS entry has one (never calls out: fast paths use it and
** go slow on NULL), else NULL. Three loads: the table pointer, the heap's offset, the entry. */
HAK_INLINE hak__tcache_t *hak__tcache_peek(hak_heap_t *h) {
  return *(hak__tcache_t *const *)((const char *)hak__tls_tab + h->slot_off);
}

/* This thread's cache for h, or NULL (heaps without a slot: the thread's list). */
HAK_INLINE hak__tcache_t *hak__tcache_find(hak_heap_t *h) {
  hak__tcache_t *tc = hak__tcache_peek(h);
  if (HAK_LIKELY(tc != NULL) || HAK_LIKELY(h->slot != HAK_NO_SLOT)) return tc;
  return hak__tcache_find_slow(h);
}

/* Make sure this thread's exit handler runs (attach, and a thread's first remote batch). */
void hak__tcache_exit_arm(void);

/*
** The guest cache of a heap made with shared_guests: every thread but the heap's home allocates
** from it, under h->guest_lock (held by the caller; the holder is the cache's owner for pop,
** refill, drain and release). It belongs to no thread (thread and its slabs' owner_tid are 0),
** so every free into it is remote; posts to it call no notify hook (a guest drains at its
** refill, hak_heap_drain and hak_heap_collect drain it too). Made on first use; NULL + ENOMEM.
*/
hak__tcache_t *hak__tcache_guest(hak_heap_t *h);

/* Find, adopt an idle one, or create this thread's cache for h; NULL + ENOMEM. */
hak__tcache_t *hak__tcache_attach(hak_heap_t *h);

/* malloc found nothing in cur[cls]: drain, carve, move to the next slab or take a new one
** from the heap. Returns a block handed out, or NULL + ENOMEM. */
hak__base_t hak__tcache_refill(hak__tcache_t *tc, unsigned cls);
/* A local free the fast path did not finish: first block back into a full slab, or the slab
** became empty. b has not been pushed yet. */
void hak__tcache_free_slow(hak__tcache_t *tc, hak__slab_t *s, hak__base_t b);
/* Owner: grow the span of s, whose one (medium) block is live, to class cls in place
** (hak__slab_grow); false when the slabs after it are taken. */
bool hak__tcache_grow(hak__tcache_t *tc, hak__slab_t *s, unsigned cls);
/* A free of b, a block of s owned by tc, by a thread acting as tc's owner (tc's own thread, or
** the holder of a shared_guests heap's guest_lock for the guest cache): count, push, and the
** slow cases (relist, release). Reports wait for hak__report_pending. */
void hak__tcache_give_back(hak__tcache_t *tc, hak__slab_t *s, hak__base_t b);
/* Move tc's remote queue into its slabs. Returns the number of blocks drained. */
size_t hak__tcache_drain(hak__tcache_t *tc);
/* Give every empty slab of tc back to the heap (collect, flush, exit). */
void hak__tcache_release_empty(hak__tcache_t *tc);

/* Heap side (heap.c): */
void hak__tc_lock_acquire(void);
void hak__tc_lock_release(void);
void hak__tc_reinit_child(void);
/* hak__tc_lock held: unlink every cache of h from its thread and free it (destroy). */
void hak__tcache_free_all(hak_heap_t *h);
/* Forget every owned slab and pending remote free of h's caches (reset; h's slabs are
** cleared by the caller). */
void hak__tcache_reset_all(hak_heap_t *h);
/* Drain and release the empty slabs of h's idle caches; free idle caches left with no slab. */
size_t hak__tcache_collect_idle(hak_heap_t *h);
/* In a forked child: abandon every cache owned by a thread that no longer exists. */
void hak__tcache_fork_child(hak_heap_t *h);

/* Push a free block onto a slab's owner-local list. */
HAK_INLINE void hak__slab_push(hak__slab_t *s, hak__base_t b) {
  hak__blk_link(s, b.blk, s->free);
  s->free = b.blk;
}

#endif
