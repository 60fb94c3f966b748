/*
** size_class.h: the size-class box. Maps a request size to a class and a class to its block
** size and thread-cache limits. Pure functions, no state.
*/
#ifndef HAK_SIZE_CLASS_H
#define HAK_SIZE_CLASS_H

#include "internal.h"

extern HAK_HIDDEN const uint32_t hak__class_size[HAK_CLASSES];
extern HAK_HIDDEN const uint8_t hak__small_class[129];

/* size must be <= HAK_SMALL_MAX. */
HAK_INLINE unsigned hak__size_to_small_class(size_t size) {
  if (HAK_LIKELY(size <= 1024)) return hak__small_class[(size + 7) >> 3];
  size_t s = size - 1;
  unsigned k = 63u - (unsigned)__builtin_clzll(s); /* 2^k <= s < 2^(k+1), k >= 7 */
  return 8u + (k - 7u) * 4u + (unsigned)(s >> (k - 2)) - 4u;
}

/* size must be <= HAK_MEDIUM_MAX. */
HAK_INLINE unsigned hak__size_to_class(size_t size) {
  if (HAK_LIKELY(size <= HAK_SMALL_MAX)) return hak__size_to_small_class(size);
  if (size > HAK_MEDIUM_MAX / 2) return HAK_CLASSES - 1;
  return HAK_SMALL_CLASSES + (unsigned)((size - 1) >> HAK_SLAB_SHIFT);
}

/* Slabs per span of class cls: 1 for small classes, the block's slabs for medium ones. */
HAK_INLINE unsigned hak__class_span(unsigned cls) {
  return cls < HAK_SMALL_CLASSES ? 1u : (unsigned)(hak__class_size[cls] >> HAK_SLAB_SHIFT);
}

/* Most blocks of a class a thread cache keeps before it flushes half of them back. */
HAK_INLINE uint32_t hak__class_cache_limit(unsigned cls) {
  uint32_t n = (uint32_t)((128u * 1024u) / hak__class_size[cls]);
  return n < 8 ? 8 : (n > 512 ? 512 : n);
}

/* First refill of a fresh cache bin: about 1 KiB of blocks, at least 2. */
HAK_INLINE uint32_t hak__class_first_batch(unsigned cls) {
  uint32_t n = 1024u / hak__class_size[cls];
  return n < 2 ? 2 : n;
}

/* Smallest class whose block size is >= size and a multiple of align (a power of two <= 64K);
** blocks of such a class are align-aligned because slabs are 64 KiB aligned. -1 if none. */
int hak__class_for_aligned(size_t size, size_t align);

#endif
