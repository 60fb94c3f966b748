/*
** large.h: the large-block box. Blocks above HAK_MEDIUM_MAX (or with an alignment no size class
** gives) get their own mapping, 64 KiB aligned (or to their alignment), the user pointer at its
** start. Their records live out of band in the meta pool, found through the address registry:
** nothing free, realloc or the cache trusts sits in memory a user overflow can reach.
** Each heap keeps its own freed mappings committed for reuse, for purge_delay_ms and up to a cap
** (half its live large bytes, at least HAK_LARGE_CACHE_BYTES; large.c); no process-wide lock on
** any large path but a record's (meta pool).
*/
#ifndef HAK_LARGE_H
#define HAK_LARGE_H

#include "ptr_bridge.h"
#include "types.h"

#define HAK_LARGE_PURGE_MS 1000                   /* default purge_delay_ms */
#define HAK_LARGE_CACHE_BYTES ((size_t)64 << 20)  /* least cap of a heap's cache; biggest cached */
#define HAK_LARGE_DONORS 8                        /* cached mappings moved into one growth */
#define HAK_LARGE_MOVE_MIN ((size_t)1 << 20)      /* smallest cached mapping moved or grown */
#define HAK_LARGE_SPARES 8                         /* records a heap keeps for splits */
#define HAK_LARGE_CUTS_TOTAL 16384                 /* kernel mappings moves may add, per process */

/* The key of base_enc (bit 63 set: never a valid pointer), fixed before the first record. */
extern HAK_HIDDEN uintptr_t hak__large_key;

HAK_INLINE uintptr_t hak__large_base(const hak__large_t *l) { return l->base_enc ^ hak__large_key; }

HAK_INLINE uint64_t hak__large_seal_of(const hak__large_t *l) {
  uint64_t x = (uintptr_t)l ^ l->base_enc ^ ((uint64_t)l->usable * 0x9e3779b97f4a7c15ull) ^
               ((uintptr_t)l->heap * 0xbf58476d1ce4e5b9ull) ^ hak__large_key;
  x ^= x >> 31;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 29);
}

/* The record is whole: its seal matches and its state is one a record can have. */
HAK_INLINE bool hak__large_sound(const hak__large_t *l) {
  return l->seal == hak__large_seal_of(l) && l->state >= HAK_LARGE_LIVE &&
         l->state <= HAK_LARGE_RESET;
}

/* Cache bin of a mapping of g granules (1 <= g <= HAK_LARGE_CACHE_GRANS): 1, 2, 3, then four
** bins per doubling; bin b holds [hak__large_bin_lo(b), hak__large_bin_lo(b + 1)). */
HAK_INLINE unsigned hak__large_bin(size_t g) {
  if (g < 4) return (unsigned)g - 1;
  unsigned e = 63u - (unsigned)__builtin_clzll(g);
  return 4 * (e - 2) + (unsigned)((g >> (e - 2)) & 3) + 3;
}
HAK_INLINE size_t hak__large_bin_lo(unsigned b) {
  if (b < 3) return b + 1;
  unsigned e = (b - 3) / 4 + 2, m = (b - 3) % 4;
  return (size_t)(4 + m) << (e - 2);
}
_Static_assert(HAK_LARGE_BINS == 4 * (10 - 2) + 3 + 1, "bins cover 1..1024 granules");
_Static_assert(HAK_LARGE_CACHE_GRANS << HAK_REG_GRAN_SHIFT == HAK_LARGE_CACHE_BYTES,
               "the largest cached mapping is the cache's cap");


/* The usable size of a fresh mapping for size bytes at the default alignment: hak__large_alloc's
** rounding (whole registry granules, nothing in front); 0 when no mapping can be that big. A
** cached mapping it reuses may be up to twice as big (large.c). tests/core/
** good_size_test holds the two equal for fresh mappings. */
HAK_INLINE size_t hak__large_good_size(size_t size) {
  const size_t gran = (size_t)1 << HAK_REG_GRAN_SHIFT;
  if (size == 0) size = 1;
  if (size > PTRDIFF_MAX - gran) return 0;
  return (size + gran - 1) & ~(gran - 1);
}
void *hak__large_alloc(hak_heap_t *h, size_t size, size_t align, bool zero);
/* Free a resolved large block (validated again under its heap's lock). */
void hak__large_free(const hak__loc_t *loc, const char *op);
/*
** Resize a resolved live large block: a shrink keeps the block where it is and unmaps the tail
** it no longer needs; growth extends the mapping in place or moves its pages to a new mapping
** (mremap, no copy). Returns the block's address, or NULL (p untouched) when growth fails.
*/
void *hak__large_resize(const hak__loc_t *loc, size_t size);
/* Release all of h's large blocks: reset keeps them cached (within the cap), destroy unmaps
** them and every cached mapping. */
void hak__large_release_heap(hak_heap_t *h, bool destroy);
/* Purge h's cached mappings: those past the delay, or all when force. */
void hak__large_collect(hak_heap_t *h, bool force);
/* The error code and reason for using a large block in a state other than HAK_LARGE_LIVE. */
int hak__large_dead_err(int state);
const char *hak__large_dead_reason(int state);

/* At h's limit: unmap cached mappings (oldest first) until bytes more fit; true when they do
** and something was cached (slab.c calls it before it fails a slab for the limit). */
bool hak__large_make_room(hak_heap_t *h, size_t bytes);

#endif
