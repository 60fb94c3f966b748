/* ptr_bridge.c: classification of pointers the inline resolver did not accept. */
#include "ptr_bridge.h"

#include "hakmem.h"
#include "large.h"

/* A pointer that is not a block to free: why, as the error code and message to report. */
static void bad(hak__loc_t *loc, int err, const char *why) {
  loc->kind = HAK_LOC_BAD;
  loc->err = err;
  loc->why = why;
}

/* A pointer into superslab ss (its registry entry) that the inline test rejected. Memory
** hakmem mapped is never "foreign": a pointer here that is not a live block was freed already
** (its slab may have been released since), or is wild into our pages. */
static void classify_in_superslab(hak__superslab_t *ss, hak__uptr_t u, hak__loc_t *loc) {
  if (ss->heap == NULL) {
    if (ss->released_live)
      bad(loc, HAK_ERR_DOUBLE_FREE,
          "double free of a small block (its superslab was released since)");
    else
      bad(loc, HAK_ERR_HEAP_DESTROYED, "block of a destroyed heap");
    return;
  }
  uintptr_t off = u.addr - (uintptr_t)ss;
  hak__slab_t *slab = &ss->slabs[off >> HAK_SLAB_SHIFT];
  if ((off >> HAK_SLAB_SHIFT) == 0)
    bad(loc, HAK_ERR_INTERIOR_POINTER, "pointer into hakmem metadata");
  else if (slab->live && slab->cls == HAK_SLAB_CONT)
    bad(loc, HAK_ERR_INTERIOR_POINTER, "interior pointer into a medium block");
  else if (!slab->live)
    bad(loc, HAK_ERR_DOUBLE_FREE,
        "double free of a small block (its slab was released since, or the heap was reset)");
  else if ((uint32_t)(off & (HAK_SLAB_SIZE - 1)) % slab->block_size != 0)
    bad(loc, HAK_ERR_INTERIOR_POINTER, "interior or misaligned pointer into a small block");
  else
    bad(loc, HAK_ERR_DOUBLE_FREE,
        "pointer to a block that is not live (never handed out since its slab was "
        "reassigned: a stale pointer freed again?)");
}

/* A large block's user pointer (its mapping's start), or the error for a pointer elsewhere in
** its mapping. A record that is not whole, or does not cover the address its registry entry
** was found at, is corruption: nothing of it is used. */
static void classify_large(hak__large_t *l, hak__uptr_t u, hak__loc_t *loc) {
  if (!hak__large_sound(l)) {
    bad(loc, HAK_ERR_CORRUPTION, "corrupt large block record");
    return;
  }
  uintptr_t base = hak__large_base(l);
  if (u.addr != base) {
    if (u.addr > base && u.addr - base < l->usable)
      bad(loc, HAK_ERR_INTERIOR_POINTER, "interior pointer into a large block");
    else
      bad(loc, HAK_ERR_CORRUPTION, "registry entry does not match its large block record");
    return;
  }
  loc->kind = HAK_LOC_LARGE;
  loc->large = l;
  loc->ss = NULL;
  loc->slab = NULL;
  loc->base = (hak__base_t){ (hak__block_t *)u.addr };
}

void hak__resolve_slow(hak__uptr_t u, uintptr_t entry, hak__loc_t *loc) {
  void *target = (void *)(entry & ~HAK_REG_TAG_MASK);
  switch (entry & HAK_REG_TAG_MASK) {
    case HAK_REG_NONE:
      bad(loc, HAK_ERR_INVALID_POINTER, "pointer not allocated by hakmem");
      break;
    case HAK_REG_DEAD_SS:
      bad(loc, HAK_ERR_HEAP_DESTROYED,
          "pointer into memory hakmem released (its heap was destroyed)");
      break;
    case HAK_REG_FREED_SS:
      bad(loc, HAK_ERR_DOUBLE_FREE,
          "double free of a small block (its memory was given back to the OS since)");
      break;
    case HAK_REG_DEAD_LARGE:
      bad(loc, HAK_ERR_DOUBLE_FREE,
          "pointer into a large block that was already freed and unmapped");
      break;
    case HAK_REG_LARGE:
      classify_large(target, u, loc);
      break;
    case HAK_REG_SS:
      classify_in_superslab(target, u, loc);
      break;
    default:
      bad(loc, HAK_ERR_CORRUPTION, "corrupt registry entry");
  }
}
