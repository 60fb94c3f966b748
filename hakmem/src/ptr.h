/*
** ptr.h: the typed-pointer box. A block's base (what free lists hold) and the pointer the user
** sees are distinct struct types; neither converts implicitly to the other or from void *.
** Only the pointer bridge (ptr_bridge.h) and the allocation entry points build them.
*/
#ifndef HAK_PTR_H
#define HAK_PTR_H

#include <stdint.h>

/* A free block as the allocator sees it: word 0 links it into a free list; word 1 holds the
** process free-key while the block is free (cleared when handed out), which detects double
** frees with one compare. Blocks are at least 16 bytes. */
typedef struct hak__block_s {
  struct hak__block_s *next;
  uintptr_t key;
} hak__block_t;

/* The base of a small block or of a large block's user area. */
typedef struct { hak__block_t *blk; } hak__base_t;

/* A pointer as the user passed it or receives it. */
typedef struct { uintptr_t addr; } hak__uptr_t;

static inline hak__uptr_t hak__uptr_from(const void *p) {
  return (hak__uptr_t){ (uintptr_t)p };
}
static inline int hak__base_is_null(hak__base_t b) { return b.blk == 0; }

#endif
