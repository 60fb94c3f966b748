/* block.c: secure builds' check of decoded free-list links. */
#include "block.h"

#ifdef HAK_SECURE
#include "error.h"
#include "registry.h"

bool hak__blk_link_ok(const hak_heap_t *h, uintptr_t next) {
  if (next == 0) return true;
  if (next & (HAK_MIN_ALIGN - 1)) return false;
  uintptr_t e = hak__reg_lookup(next);
  if ((e & HAK_REG_TAG_MASK) != HAK_REG_SS) return false;
  const hak__superslab_t *ss = (const hak__superslab_t *)(e & ~HAK_REG_TAG_MASK);
  return ss->heap == h;
}

hak__block_t *hak__blk_bad_link(const hak_heap_t *h, hak__block_t *b, uintptr_t raw) {
  (void)h;
  (void)raw;
  hak__report_later(HAK_ERR_CORRUPTION, "hak_malloc", b,
                    "free-list link of this free block was overwritten (use after free?)");
  return NULL;
}
#else
typedef int hak__block_c_is_empty_without_secure;
#endif
