/* registry.c: leaf creation and range updates of the address registry box. */
#include "registry.h"

#include <errno.h>

#include "os.h"

_Atomic(_Atomic uintptr_t *) hak__reg_top[HAK_REG_TOP];
uint8_t hak__ss_map[HAK_SSMAP_SIZE];

void hak__ss_map_set(uintptr_t ss, bool on) {
  __atomic_store_n(&hak__ss_map[ss >> HAK_SS_SHIFT], (uint8_t)on, __ATOMIC_RELEASE);
}

static _Atomic uintptr_t *leaf_for(uintptr_t a) {
  size_t t = a >> HAK_REG_LEAF_SHIFT;
  if (t >= HAK_REG_TOP) return NULL;
  _Atomic uintptr_t *leaf = atomic_load_explicit(&hak__reg_top[t], memory_order_acquire);
  if (leaf) return leaf;
  _Atomic uintptr_t *fresh = hak__os_map_aligned(HAK_REG_LEAF * sizeof(uintptr_t), 4096);
  if (!fresh) return NULL;
  _Atomic uintptr_t *expect = NULL;
  if (atomic_compare_exchange_strong_explicit(&hak__reg_top[t], &expect, fresh,
                                              memory_order_acq_rel, memory_order_acquire))
    return fresh;
  hak__os_unmap(fresh, HAK_REG_LEAF * sizeof(uintptr_t));
  return expect;
}

int hak__reg_set(uintptr_t base, size_t size, uintptr_t value) {
  for (uintptr_t a = base; a < base + size; a += (uintptr_t)1 << HAK_REG_GRAN_SHIFT) {
    _Atomic uintptr_t *leaf = leaf_for(a);
    if (!leaf) { errno = ENOMEM; return -1; }
    atomic_store_explicit(&leaf[(a >> HAK_REG_GRAN_SHIFT) & (HAK_REG_LEAF - 1)], value,
                          memory_order_release);
  }
  return 0;
}
