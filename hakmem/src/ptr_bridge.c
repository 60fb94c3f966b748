/* ptr_bridge.c: classification of pointers the inline resolver did not accept. */
#include "ptr_bridge.h"

#include "hakmem.h"

static void bad(hak__loc_t *loc, int err, const char *why) {
  loc->kind = HAK_LOC_BAD;
  loc->err = err;
  loc->why = why;
}

void hak__resolve_slow(hak__uptr_t u, uintptr_t entry, hak__loc_t *loc) {
  uintptr_t tag = entry & HAK_REG_TAG_MASK;
  switch (tag) {
    case HAK_REG_NONE:
      return bad(loc, HAK_ERR_INVALID_POINTER, "pointer not allocated by hakmem");
    case HAK_REG_DEAD_SS:
      return bad(loc, HAK_ERR_HEAP_DESTROYED,
                 "pointer into memory hakmem released (its heap was destroyed)");
    case HAK_REG_FREED_SS:
      return bad(loc, HAK_ERR_DOUBLE_FREE,
                 "double free of a small block (its memory was given back to the OS since)");
    case HAK_REG_DEAD_LARGE:
      return bad(loc, HAK_ERR_DOUBLE_FREE,
                 "pointer into a large block that was already freed and unmapped");
    case HAK_REG_LARGE: {
      hak__large_t *l = (hak__large_t *)(entry & ~HAK_REG_TAG_MASK);
      if (u.addr != l->user)
        return bad(loc, HAK_ERR_INTERIOR_POINTER,
                   u.addr < l->user ? "pointer into a large block's header"
                                    : "interior pointer into a large block");
      loc->kind = HAK_LOC_LARGE;
      loc->large = l;
      loc->ss = NULL;
      loc->slab = NULL;
      loc->base = (hak__base_t){ (hak__block_t *)u.addr };
      return;
    }
    case HAK_REG_SS: {
      hak__superslab_t *ss = (hak__superslab_t *)(entry & ~HAK_REG_TAG_MASK);
      /* Memory hakmem mapped: never "foreign". A pointer here that is not a live block was
      ** freed already (its slab may have been released since), or is wild into our pages. */
      if (ss->heap == NULL)
        return ss->released_live
                   ? bad(loc, HAK_ERR_DOUBLE_FREE,
                         "double free of a small block (its superslab was released since)")
                   : bad(loc, HAK_ERR_HEAP_DESTROYED, "block of a destroyed heap");
      uintptr_t off = u.addr - (uintptr_t)ss;
      if ((off >> HAK_SLAB_SHIFT) == 0)
        return bad(loc, HAK_ERR_INTERIOR_POINTER, "pointer into hakmem metadata");
      hak__slab_t *slab = &ss->slabs[off >> HAK_SLAB_SHIFT];
      if (slab->cls == HAK_SLAB_UNUSED)
        return bad(loc, HAK_ERR_DOUBLE_FREE,
                   "double free of a small block (its slab was released since, or the heap "
                   "was reset)");
      uint32_t in = (uint32_t)(off & (HAK_SLAB_SIZE - 1));
      if (in % slab->block_size != 0)
        return bad(loc, HAK_ERR_INTERIOR_POINTER,
                   "interior or misaligned pointer into a small block");
      return bad(loc, HAK_ERR_DOUBLE_FREE,
                 "pointer to a block that is not live (never handed out since its slab was "
                 "reassigned: a stale pointer freed again?)");
    }
    default:
      return bad(loc, HAK_ERR_CORRUPTION, "corrupt registry entry");
  }
}
