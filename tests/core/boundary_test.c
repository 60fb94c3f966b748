/*
** boundary_test: the pointer bridge's one-multiply block-boundary test (hak__slab_check),
** checked exhaustively: for every size class and every offset of a slab, a pointer is accepted
** exactly when it is a block start below the carved bound. White-box: it builds slab metadata
** by hand in a superslab-aligned buffer.
*/
#include <criterion/criterion.h>
#include <stdlib.h>

#include "ptr_bridge.h"
#include "size_class.h"

static hak__superslab_t *fake_superslab(void) {
  hak__superslab_t *ss = aligned_alloc(HAK_SS_SIZE, HAK_SS_SIZE);
  cr_assert(ss != NULL);
  memset(ss, 0, sizeof *ss);
  return ss;
}

Test(boundary, every_offset_of_every_class_fully_carved) {
  hak__superslab_t *ss = fake_superslab();
  hak__slab_t *s = &ss->slabs[1];
  uintptr_t start = (uintptr_t)ss + HAK_SLAB_SIZE;
  for (unsigned c = 0; c < HAK_CLASSES; c++) {
    uint32_t bs = hak__class_size[c];
    uint32_t cap = (uint32_t)(HAK_SLAB_SIZE / bs);
    s->block_size = bs;
    s->div = hak__slab_div(bs);
    atomic_store(&s->bound, hak__slab_bound(s, cap));
    uint32_t accepted = 0;
    for (uint32_t o = 0; o < HAK_SLAB_SIZE; o++) {
      hak__base_t b;
      bool want = o % bs == 0 && o / bs < cap;
      bool got = hak__slab_check(ss, hak__uptr_from((void *)(start + o)), &b) == s;
      if (got != want) cr_assert_fail("class %u (%u bytes), offset %u: %d, want %d", c, bs, o, got, want);
      accepted += got;
    }
    cr_assert_eq(accepted, cap, "class %u: %u blocks accepted, %u carved", c, accepted, cap);
  }
  free(ss);
}

/* Every class, every carved count a carve can leave (0 .. capacity): exactly the first
** `carved` block starts pass, and no other offset. */
Test(boundary, bound_rejects_uncarved_blocks) {
  hak__superslab_t *ss = fake_superslab();
  hak__slab_t *s = &ss->slabs[5];
  uintptr_t start = (uintptr_t)ss + 5 * HAK_SLAB_SIZE;
  for (unsigned c = 0; c < HAK_CLASSES; c++) {
    uint32_t bs = hak__class_size[c];
    uint32_t cap = (uint32_t)(HAK_SLAB_SIZE / bs);
    s->block_size = bs;
    s->div = hak__slab_div(bs);
    for (uint32_t carved = 0; carved <= cap; carved += carved < 70 ? 1 : 37) {
      atomic_store(&s->bound, hak__slab_bound(s, carved));
      uint32_t accepted = 0;
      for (uint32_t o = 0; o < HAK_SLAB_SIZE; o += 8) {
        hak__base_t b;
        bool want = o % bs == 0 && o / bs < carved;
        bool got = hak__slab_check(ss, hak__uptr_from((void *)(start + o)), &b) == s;
        if (got != want)
          cr_assert_fail("class %u (%u bytes), %u carved, offset %u: %d, want %d", c, bs, carved, o,
                         got, want);
        accepted += got;
      }
      cr_assert_eq(accepted, carved, "class %u, %u carved: %u accepted", c, carved, accepted);
    }
  }
  free(ss);
}

Test(boundary, unassigned_and_metadata_slabs_reject_everything) {
  hak__superslab_t *ss = fake_superslab(); /* div == bound == 0 everywhere */
  for (int i = 0; i < 2; i++) {
    uintptr_t start = (uintptr_t)ss + (uintptr_t)i * HAK_SLAB_SIZE;
    for (uint32_t o = 0; o < HAK_SLAB_SIZE; o += 16) {
      hak__base_t b;
      cr_assert_eq(hak__slab_check(ss, hak__uptr_from((void *)(start + o)), &b), NULL,
                   "slab %d offset %u accepted", i, o);
    }
  }
  free(ss);
}
