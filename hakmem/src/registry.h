/*
** registry.h: the address registry box. Answers "what hakmem region covers this address?" for
** any address without touching memory that may be unmapped. Two levels over the 47-bit user
** address space at 64 KiB granularity: a static top array of lazily created leaves.
** Entries are tagged words: a superslab header, a large block's record (out of band, in the meta
** pool), or a tombstone left when hakmem gave a range back (so late frees into it get a precise
** message). Writers (map/unmap of regions) are serialised by their callers (whoever owns the
** region: a large mapping's ranges are written by the thread that holds it off every list, or
** under its heap's lock); readers are lock-free.
*/
#ifndef HAK_REGISTRY_H
#define HAK_REGISTRY_H

#include <stdbool.h>

#include "internal.h"

#define HAK_REG_GRAN_SHIFT 16
#define HAK_REG_LEAF_SHIFT 30
#define HAK_REG_TOP ((size_t)1 << (47 - HAK_REG_LEAF_SHIFT))
#define HAK_REG_LEAF ((size_t)1 << (HAK_REG_LEAF_SHIFT - HAK_REG_GRAN_SHIFT))

enum {
  HAK_REG_NONE = 0,
  HAK_REG_SS = 1,        /* value: superslab header | 1 */
  HAK_REG_LARGE = 2,     /* value: large block record | 2 */
  HAK_REG_DEAD_SS = 3,   /* a superslab was here and was unmapped */
  HAK_REG_DEAD_LARGE = 4, /* a large block was here and was unmapped */
  HAK_REG_FREED_SS = 5    /* a superslab was here, unmapped while its heap lived */
};
#define HAK_REG_TAG_MASK ((uintptr_t)7)

extern HAK_HIDDEN _Atomic(_Atomic uintptr_t *) hak__reg_top[HAK_REG_TOP];

HAK_INLINE uintptr_t hak__reg_lookup(uintptr_t a) {
  size_t t = a >> HAK_REG_LEAF_SHIFT;
  if (HAK_UNLIKELY(t >= HAK_REG_TOP)) return 0;
  _Atomic uintptr_t *leaf = atomic_load_explicit(&hak__reg_top[t], memory_order_acquire);
  if (HAK_UNLIKELY(leaf == NULL)) return 0;
  return atomic_load_explicit(&leaf[(a >> HAK_REG_GRAN_SHIFT) & (HAK_REG_LEAF - 1)],
                              memory_order_acquire);
}

/*
** The superslab map: one byte per 4 MiB of the 47-bit address space (32 MiB of BSS, touched
** only where superslabs live: a page of it covers 16 GiB), non-zero while a superslab is mapped
** there. The free fast path asks it instead of the two-level table: one load, no pointer
** chase, no bit extraction. Same writers as the table.
*/
#define HAK_SSMAP_SIZE ((size_t)1 << (47 - HAK_SS_SHIFT))
extern HAK_HIDDEN uint8_t hak__ss_map[HAK_SSMAP_SIZE];

/* Written with atomic stores (release). The fast path reads a byte with a plain load, which
** compiles to one compare with memory (an atomic load costs a separate load and test); a byte
** cannot tear, and a reader racing with a (un)mapping gets the old or new value, as with an
** atomic load. TSan builds use the atomic load so the checker sees the intent. */
HAK_INLINE bool hak__ss_mapped(uintptr_t a) {
  uintptr_t i = a >> HAK_SS_SHIFT;
  if (HAK_UNLIKELY(i >= HAK_SSMAP_SIZE)) return false;
#ifdef HAK_TSAN
  return __atomic_load_n(&hak__ss_map[i], __ATOMIC_RELAXED) != 0;
#else
  return hak__ss_map[i] != 0;
#endif
}
void hak__ss_map_set(uintptr_t ss, bool on);

/* Set every granule of [base, base+size) (64 KiB aligned) to value. 0 on success, -1 ENOMEM. */
int hak__reg_set(uintptr_t base, size_t size, uintptr_t value);

#endif
