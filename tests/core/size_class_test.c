/*
** size_class_test: every small request size gets a block of exactly its class's size, through
** the malloc fast path's direct table (sizes up to 1 KiB) and the class computation above it,
** on a fresh cache and on one whose slabs have changed hands (white-box: the class table).
*/
#include <criterion/criterion.h>

#include "hakmem.h"
#include "size_class.h"

static void every_size_once(hak_heap_t *h) {
  for (size_t n = 0; n <= HAK_SMALL_MAX; n++) {
    void *p = hak_heap_malloc(h, n);
    cr_assert_not_null(p, "malloc(%zu)", n);
    size_t want = hak__class_size[hak__size_to_class(n)];
    cr_assert_eq(hak_usable_size(p), want, "malloc(%zu): usable %zu, class size %zu", n,
                 hak_usable_size(p), want);
    cr_assert_geq(want, n == 0 ? 1 : n);
    hak_free(p);
  }
}

Test(size_class, every_small_size_gets_its_class) {
  hak_heap_t *h = hak_heap_create(NULL);
  every_size_once(h);
  hak_heap_collect(h, true); /* empty slabs go back; the direct table must follow */
  every_size_once(h);
  hak_heap_destroy(h);
}

Test(size_class, class_sizes_grow_and_direct_classes_are_multiples_of_16) {
  for (unsigned c = 1; c < HAK_CLASSES; c++) cr_assert_gt(hak__class_size[c], hak__class_size[c - 1]);
  for (unsigned c = 0; c < HAK_CLASSES && hak__class_size[c] <= HAK_DIRECT_MAX; c++)
    cr_assert_eq(hak__class_size[c] % 16, 0);
}
