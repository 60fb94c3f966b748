/*
** block.h: the free-block box. Owns the 16 header bytes of a free block: the list link (word 0)
** and the state tag (word 1). Every read or write of them goes through here, which is where
** secure builds encode them and where tool builds open and close those bytes (track.h).
**
** State tag: word 1 says "free" (on its slab's free list, in a remote queue or in a remote
** batch) when it equals the block's free tag; anything else means handed out (0 when handed
** out; then user data). Every free reads the tag of the block it is about to link (the line is
** written next anyway), so a double free is reported at the free; malloc checks the tag of the
** block it pops.
**
** Default build: the link is the next block's address; the free tag is one random word per
** process (hak__free_key). Secure build (HAK_SECURE): each slab assignment has two odd keys
** (hak__slab_t.key, from a keyed hash of the heap's secret, the slab's address and a counter):
**     word 0 = next ^ pad(b),   pad(b) = mum(b ^ key[0], key[1])
**     word 1 = tag(b),          tag(b) = mum(b ^ key[0] ^ C, key[1])
** with mum(x, y) the xor of the two halves of the 128-bit product x * y and C a fixed odd
** constant (one key pair, one multiplier: fewer registers on the fast paths). Both are functions of
** the block's own address: a word copied from another block, or one read from a freed block and
** written back into a live one elsewhere, does not decode there. Knowing a block's address and
** its next block's gives its pad, which is no key: the pad of another block needs both keys,
** and the multiply's high half, folded into every bit of the result, stops the bit-by-bit
** solving that recovers the key of a plain xor (two links) or of a low-half multiply. Nothing
** here is a cryptographic claim; what does not depend on the keys is the check of every decoded
** link (ptr_bridge.h: hak__link_in_slab), which confines a forged link to the starts of carved
** blocks of the slab it was read from.
*/
#ifndef HAK_BLOCK_H
#define HAK_BLOCK_H

#include <stdbool.h>

#include "ptr.h"
#include "track.h"
#include "types.h"

extern HAK_HIDDEN uintptr_t hak__free_key;

/* SipHash-2-4 of two words under a 128-bit key: the heap secrets and the slab keys. */
uint64_t hak__keyed_hash(const uint64_t key[2], uint64_t m0, uint64_t m1);

#ifdef HAK_SECURE
/* Slab assignment (slab.c, heap->lock held): fresh keys for s from the heap's secret. */
void hak__blk_new_keys(hak_heap_t *h, hak__slab_t *s);

__extension__ typedef unsigned __int128 hak__u128;
HAK_INLINE uint64_t hak__mum(uint64_t x, uint64_t y) {
#if defined(__x86_64__)
  uint64_t lo, hi;
  __asm__("mulq %3" : "=a"(lo), "=d"(hi) : "%a"(x), "rm"(y) : "cc");
  return lo ^ hi;
#else
  hak__u128 p = (hak__u128)x * y;
  return (uint64_t)p ^ (uint64_t)(p >> 64);
#endif
}
HAK_INLINE uintptr_t hak__blk_pad(const hak__slab_t *s, const hak__block_t *b) {
  return hak__mum((uintptr_t)b ^ s->key[0], s->key[1]);
}
HAK_INLINE uintptr_t hak__blk_tag(const hak__slab_t *s, const hak__block_t *b) {
  return hak__mum((uintptr_t)b ^ s->key[0] ^ 0x9e3779b97f4a7c15ull, s->key[1]);
}
#else
HAK_INLINE uintptr_t hak__blk_pad(const hak__slab_t *s, const hak__block_t *b) {
  (void)s;
  (void)b;
  return 0;
}
HAK_INLINE uintptr_t hak__blk_tag(const hak__slab_t *s, const hak__block_t *b) {
  (void)s;
  (void)b;
  return hak__free_key;
}
#endif

/* The link of b, a free block of s, decoded and not checked: whoever follows it checks it first
** (hak__link_in_slab, hak__link_slab). */
HAK_INLINE hak__block_t *hak__blk_next(const hak__slab_t *s, hak__block_t *b) {
  HAK_TRACK_OPEN(b, sizeof *b);
  uintptr_t raw = (uintptr_t)b->next;
  HAK_TRACK_CLOSE(b, sizeof *b);
  return (hak__block_t *)(raw ^ hak__blk_pad(s, b));
}

/* Does b, a block of s on a free list or in a remote chain, still carry its free tag? A block
** the user may touch (ASan knows) is live whatever its words say: a forged link names it. */
HAK_INLINE bool hak__blk_tagged(const hak__slab_t *s, hak__block_t *b) {
  if (HAK_TRACK_IS_OPEN(b)) return false;
  HAK_TRACK_OPEN(b, sizeof *b);
  uintptr_t k = b->key;
  HAK_TRACK_CLOSE(b, sizeof *b);
  return k == hak__blk_tag(s, b);
}

/* Make b, a block of s whose free tag is `tag` (hak__blk_tag), a free block linked to next. */
HAK_INLINE void hak__blk_link_tag(const hak__slab_t *s, hak__block_t *b, hak__block_t *next,
                                  uintptr_t tag) {
  HAK_TRACK_OPEN(b, sizeof *b);
  b->next = (hak__block_t *)((uintptr_t)next ^ hak__blk_pad(s, b));
  b->key = tag;
  HAK_TRACK_CLOSE(b, sizeof *b);
}
HAK_INLINE void hak__blk_link(const hak__slab_t *s, hak__block_t *b, hak__block_t *next) {
  hak__blk_link_tag(s, b, next, hak__blk_tag(s, b));
}

/*
** Remote chains (batches and queues) mark their links: HAK_LINK_REMOTE in the low bits a
** 16-byte aligned address leaves clear. A free block on a slab's list carries its tag too, so
** without the mark a link forged to such a block would make the drain give it back a second
** time (a loop in the list, and a free counted twice).
*/
#define HAK_LINK_REMOTE ((uintptr_t)8)
HAK_INLINE void hak__blk_link_remote(const hak__slab_t *s, hak__block_t *b, hak__block_t *next) {
  hak__blk_link(s, b, (hak__block_t *)((uintptr_t)next | HAK_LINK_REMOTE));
}
/* The link of b, a block of s in a remote chain, or false when it does not carry the mark. */
HAK_INLINE bool hak__blk_next_remote(const hak__slab_t *s, hak__block_t *b, hak__block_t **next) {
  uintptr_t l = (uintptr_t)hak__blk_next(s, b);
  *next = (hak__block_t *)(l & ~HAK_LINK_REMOTE);
  return (l & (HAK_MIN_ALIGN - 1)) == HAK_LINK_REMOTE;
}

/* Hand b out: clear its tag; the user may now touch its usable bytes. */
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

/* Is b, a block the user names whose free tag is `tag`, free (cheap state check; a tool build
** treats a closed block as free)? */
HAK_INLINE bool hak__blk_is_free_tag(hak__base_t b, uintptr_t tag) {
  if (HAK_TRACK_IS_CLOSED(b.blk)) return true;
  if (HAK_TRACK_KEY_HIDDEN(b.blk)) return false;
  HAK_TRACK_QUIET_BEGIN();
  uintptr_t k = b.blk->key;
  HAK_TRACK_QUIET_END();
  return k == tag;
}
HAK_INLINE bool hak__blk_is_free(const hak__slab_t *s, hak__base_t b) {
  return hak__blk_is_free_tag(b, hak__blk_tag(s, b.blk));
}

#endif
