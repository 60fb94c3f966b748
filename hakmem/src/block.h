/*
** block.h: the free-block box. Owns the 16 header bytes of a free block: the list link and the
** state key. Every read or write of them goes through here, which is where secure builds
** encode links (XOR with the heap's secret and the link's own address, so a use-after-free
** write cannot steer the allocator to an address of its choosing) and where tool builds open
** and close those bytes (track.h).
**
** State key (random per process, set at init):
**   hak__free_key  free: on its slab's free list or in a remote queue;
**   anything else  handed out (0 when handed out; then user data).
** Every free reads the key of the block it is about to link (the line is written next anyway),
** so a double free is reported at the free; malloc checks the key of the block it pops.
*/
#ifndef HAK_BLOCK_H
#define HAK_BLOCK_H

#include <stdbool.h>

#include "ptr.h"
#include "track.h"
#include "types.h"

extern HAK_HIDDEN uintptr_t hak__free_key;

#ifdef HAK_SECURE
/* Decoded link that does not point into one of h's superslabs: reported, list cut. */
hak__block_t *hak__blk_bad_link(const hak_heap_t *h, hak__block_t *b, uintptr_t raw);
bool hak__blk_link_ok(const hak_heap_t *h, uintptr_t next);
#endif

HAK_INLINE hak__block_t *hak__blk_next(const hak_heap_t *h, hak__block_t *b) {
  HAK_TRACK_OPEN(b, sizeof *b);
  uintptr_t raw = (uintptr_t)b->next;
  HAK_TRACK_CLOSE(b, sizeof *b);
#ifdef HAK_SECURE
  raw ^= h->secret ^ (uintptr_t)&b->next;
  if (HAK_UNLIKELY(!hak__blk_link_ok(h, raw))) return hak__blk_bad_link(h, b, raw);
#else
  (void)h;
#endif
  return (hak__block_t *)raw;
}

HAK_INLINE uintptr_t hak__blk_key(hak__block_t *b) {
  HAK_TRACK_OPEN(b, sizeof *b);
  uintptr_t k = b->key;
  HAK_TRACK_CLOSE(b, sizeof *b);
  return k;
}

/* Make b a free block with the given key, linked to next. */
HAK_INLINE void hak__blk_link(const hak_heap_t *h, hak__block_t *b, hak__block_t *next,
                              uintptr_t key) {
  HAK_TRACK_OPEN(b, sizeof *b);
#ifdef HAK_SECURE
  b->next = (hak__block_t *)((uintptr_t)next ^ h->secret ^ (uintptr_t)&b->next);
#else
  (void)h;
  b->next = next;
#endif
  b->key = key;
  HAK_TRACK_CLOSE(b, sizeof *b);
}

/* Hand b out: clear its key; the user may now touch its usable bytes. */
HAK_INLINE void hak__blk_hand_out(hak_heap_t *h, hak__block_t *b, size_t usable) {
  HAK_TRACK_ALLOC(h, b, usable);
  (void)h;
  (void)usable;
  b->key = 0;
}

/* A block the user gave back: no longer accessible to the user. */
HAK_INLINE void hak__blk_take_back(hak_heap_t *h, hak__block_t *b, size_t usable) {
  HAK_TRACK_FREE(h, b, usable);
  (void)h;
  (void)b;
  (void)usable;
}

/* Is b free (cheap state check; a tool build treats a closed block as free)? */
HAK_INLINE bool hak__blk_is_free(hak__base_t b) {
  if (HAK_TRACK_IS_CLOSED(b.blk)) return true;
  if (HAK_TRACK_KEY_HIDDEN(b.blk)) return false;
  HAK_TRACK_QUIET_BEGIN();
  uintptr_t k = b.blk->key;
  HAK_TRACK_QUIET_END();
  return k == hak__free_key;
}

#endif
