/*
** remote_batch.h: the remote-batch box. A thread's remote frees do not go to their owner one CAS
** at a time: the thread keeps one batch in TLS, a chain of blocks freed into slabs of one owner
** cache, and links the whole chain onto that owner's queue with one CAS (a "post") when it holds
** HAK_RBATCH_MAX blocks, when the thread frees to another owner, on its allocation slow path, in
** hak_thread_flush / hak_thread_post_remote / hak_heap_drain / hak_heap_collect /
** hak_heap_get_stats, and at thread exit. A free onto the current batch is two plain stores and
** two owner-only counter updates, no atomic read-modify-write.
**
** What it promises:
**  - a batched block is free for every check: its tag is set when it joins the batch, so a
**    second free of it is reported at that free;
**  - a batched block keeps its slab non-empty (allocs - frees counts it as out), so the owner
**    cache it is bound for lives until it is posted (caches die only owning no slab) or its heap
**    is destroyed or reset, which discard the batches bound for that heap (under the batch lock);
**  - counts are exact at hak_free return: every batch is on a global list (hak__tc_lock) and
**    stats add the batches bound for the heap; a post moves blocks from the batch's n to the
**    owner's remote_pushed under the batch lock, so a block is counted in one of them.
** What it must never do: take a lock, or call the notify hook, while holding a batch lock; let a
** thread batch after its exit handler ran (its TLS may be reused by a thread created later).
*/
#ifndef HAK_REMOTE_BATCH_H
#define HAK_REMOTE_BATCH_H

#include "block.h"
#include "types.h"

/* Blocks per batch. 64 makes the post (a lock exchange, one CAS on the owner's line, two atomic
** adds, the unlock) cost about one instruction per free, while an owner waits for at most 63
** frees of a live thread that has gone quiet, i.e. at most 63 slab blocks (2 MiB at 32 KiB). */
#define HAK_RBATCH_MAX 64

/*
** A thread's batch, in its TLS. Who touches what:
**  - the thread itself, no lock: first, last, and the writes of n and bytes (relaxed: stats read
**    them) while owner is the cache it frees to;
**  - under `lock` (an exchange spin lock; the thread's own posts take it, as do stats, destroy
**    and reset of another thread): owner and heap when they change, and a post or discard of the
**    chain;
**  - hak__tc_lock: next/prev (the global list), the thread's registration, walk_held.
** Invariant: n blocks of `bytes` in all, chained first..last through the block box, each freed
** into a slab owned by `owner` (a cache of `heap`), none of them counted in owner->remote_pushed.
*/
typedef struct hak__rbatch_s hak__rbatch_t;
struct hak__rbatch_s {
  _Atomic(hak__tcache_t *) owner; /* the cache the batch is bound for; NULL: none */
  hak__block_t *first, *last;
  _Atomic uint64_t n, bytes;
  hak_heap_t *heap;               /* owner->heap, compared by destroy/reset/stats (lock) */
  _Atomic int lock;
  uint8_t registered;             /* on the global list (this thread's exit handler is armed) */
  uint8_t retired;                /* the exit handler ran: frees push one by one from now on */
  uint8_t walk_held;              /* locked by a stats walk (hak__tc_lock) */
  hak__rbatch_t *next, *prev;     /* global list (hak__tc_lock) */
};
_Static_assert(offsetof(hak__rbatch_t, heap) <= HAK_CACHELINE - 8, "free path fields in a line");

extern HAK_HIDDEN HAK_TLS hak__rbatch_t hak__rbatch_tls;

/* The remote free of b (a block of s, its user area already taken back) when this thread's
** batch is bound for another owner than s's or for none. */
void hak__rbatch_add_slow(hak__slab_t *s, hak__block_t *b);
/* Post r's chain (r is this thread's batch). */
void hak__rbatch_post(hak__rbatch_t *r);

/* Add b, a block of s, to r, bound for s's owner. */
HAK_INLINE void hak__rbatch_add(hak__rbatch_t *r, const hak__slab_t *s, hak__block_t *b) {
  uint32_t size = s->block_size;
  hak__block_t *first = r->first;
  hak__blk_link_remote(s, b, first);
  if (first == NULL) r->last = b;
  r->first = b;
  uint64_t n = HAK_COUNTER_GET(r->n) + 1;
  atomic_store_explicit(&r->n, n, memory_order_relaxed);
  HAK_COUNTER_ADD(r->bytes, size);
  if (HAK_UNLIKELY(n >= HAK_RBATCH_MAX)) hak__rbatch_post(r);
}

/* A remote free of b, a block of s: onto this thread's batch. */
HAK_INLINE void hak__rbatch_free(hak__slab_t *s, hak__block_t *b) {
  hak__rbatch_t *r = &hak__rbatch_tls;
  if (HAK_LIKELY(atomic_load_explicit(&r->owner, memory_order_relaxed) == s->owner))
    hak__rbatch_add(r, s, b);
  else
    hak__rbatch_add_slow(s, b);
}

/* Post this thread's batch if it holds anything (one TLS load when it does not). */
HAK_INLINE void hak__rbatch_post_mine(void) {
  if (HAK_UNLIKELY(HAK_COUNTER_GET(hak__rbatch_tls.n) != 0)) hak__rbatch_post(&hak__rbatch_tls);
}

/* This thread's exit handler: post, leave the list, batch no more. */
void hak__rbatch_retire(void);

/* tc, a cache that owns no slab, is about to be freed while its heap lives (thread exit, drain,
** collect): unbind every batch still bound for it (they are empty: a batched block keeps its
** slab owned). Without this a batch kept a dangling owner, and when a cache of another heap
** was made in the same memory, frees into it joined the batch as the old heap's: a destroy of
** the new heap missed them and a later post linked blocks of a dead heap into a live queue.
** Takes hak__tc_lock. */
void hak__rbatch_forget(hak__tcache_t *tc);
/* hak__tc_lock held. Drop every batch bound for h: destroy (count false: its blocks die with
** the heap) or reset (count true: they are counted pushed, and reset counts them drained). */
void hak__rbatch_discard(hak_heap_t *h, bool count);
/* hak__tc_lock held. Lock every batch bound for h and add their n and bytes to *n, *bytes; the
** batches stay locked (no post moves their blocks) until hak__rbatch_unlock_heap(). */
void hak__rbatch_lock_heap(hak_heap_t *h, uint64_t *n, uint64_t *bytes);
void hak__rbatch_unlock_heap(void);
/* In a forked child: only the calling thread's batch is left on the list. */
void hak__rbatch_fork_child(void);

#endif
