/* size_class.c: the class table of the size-class box. */
#include "size_class.h"

#define G(sh) (5u << (sh)), (6u << (sh)), (7u << (sh)), (8u << (sh))
#define M(k) ((k) << 16), ((k + 1) << 16), ((k + 2) << 16), ((k + 3) << 16)
const uint32_t hak__class_size[HAK_CLASSES] = {
  16, 32, 48, 64, 80, 96, 112, 128,
  G(5), G(6), G(7), G(8), G(9), G(10), G(11), G(12),
  M(1u), M(5u), 16u << 16 /* medium: spans of 1..8 slabs, then 16 */
};
#undef G
#undef M

_Static_assert(HAK_SMALL_CLASSES == 40 && HAK_CLASSES == 49, "class table size");

/* hak__size_to_class for sizes <= 1024, indexed by (size + 7) / 8 (generated from it). */
const uint8_t hak__small_class[129] = {
  0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11, 12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13, 14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 18, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19
};

int hak__class_for_aligned(size_t size, size_t align) {
  if (size > HAK_MEDIUM_MAX || align > HAK_SLAB_SIZE) return -1;
  for (unsigned c = hak__size_to_class(size); c < HAK_CLASSES; c++)
    if (hak__class_size[c] % align == 0) return (int)c;
  return -1;
}
