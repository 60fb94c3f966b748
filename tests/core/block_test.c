/*
** block_test: the free-block box's arithmetic, white-box and exhaustive: the keyed hash against
** SipHash-2-4's reference vector; the check of a link read from a free block
** (hak__link_in_slab) at every offset of a slab for every class; and carving, which must link
** every fresh block exactly once (secure builds: in a random order, without an array), for every
** class and every number of blocks already carved. Builds slab metadata by hand in a
** superslab-aligned buffer.
*/
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "ptr_bridge.h"
#include "size_class.h"
#include "slab.h"

static hak__superslab_t *fake_superslab(void) {
  hak__superslab_t *ss = aligned_alloc(HAK_SS_SIZE, HAK_SS_SIZE);
  cr_assert(ss != NULL);
  memset(ss, 0, sizeof *ss);
  return ss;
}

static void fake_slab(hak__slab_t *s, unsigned c, uint32_t carved) {
  s->block_size = hak__class_size[c];
  s->div = hak__slab_div(s->block_size);
  s->capacity = (uint32_t)((hak__class_span(c) * HAK_SLAB_SIZE) / s->block_size);
  s->carved = carved;
  s->cls = (uint8_t)c;
  s->free = NULL;
  atomic_store(&s->bound, hak__slab_bound(s, carved));
#ifdef HAK_SECURE
  s->key[0] = 0x243f6a8885a308d3ull;
  s->key[1] = 0x13198a2e03707345ull;
#endif
}

/* SipHash-2-4 with key 00 01 .. 0f of the message 00 01 .. 0f (the paper's test vector table,
** entry 16): db 9b c2 57 7f cc 2a 3f, little-endian. */
Test(block, keyed_hash_is_siphash_2_4) {
  const uint64_t key[2] = { 0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull };
  cr_assert_eq(hak__keyed_hash(key, 0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull),
               0x3f2acc7f57c29bdbull);
}

/* A link is accepted exactly when it is NULL or the start of a carved block of the slab, for
** every offset of the slab, from any block of it; addresses in the slabs around it never. */
Test(block, a_link_is_accepted_exactly_at_carved_block_starts_of_its_slab) {
  hak__superslab_t *ss = fake_superslab();
  hak__slab_t *s = &ss->slabs[2];
  uintptr_t start = (uintptr_t)ss + 2 * HAK_SLAB_SIZE;
  for (unsigned c = 0; c < HAK_SMALL_CLASSES; c++) {
    fake_slab(s, c, 0);
    uint32_t bs = s->block_size, cap = s->capacity;
    uint32_t carved = cap / 2 + 1;
    atomic_store(&s->bound, hak__slab_bound(s, carved));
    const hak__block_t *from = (const hak__block_t *)(start + (uintptr_t)(carved - 1) * bs);
    cr_assert(hak__link_in_slab(s, from, NULL));
    uint32_t accepted = 0;
    for (uintptr_t o = 0; o < HAK_SLAB_SIZE; o++) {
      bool ok = hak__link_in_slab(s, from, (const hak__block_t *)(start + o));
      bool want = o % bs == 0 && o / bs < carved;
      cr_assert_eq(ok, want, "class %u (%u B): offset %lu", c, bs, (unsigned long)o);
      accepted += ok;
    }
    cr_assert_eq(accepted, carved);
    for (uintptr_t o = 0; o < HAK_SLAB_SIZE; o += 16) {
      cr_assert(!hak__link_in_slab(s, from, (const hak__block_t *)(start - HAK_SLAB_SIZE + o)));
      cr_assert(!hak__link_in_slab(s, from, (const hak__block_t *)(start + HAK_SLAB_SIZE + o)));
    }
  }
  free(ss);
}

/* A medium block is its span's only block: nothing but NULL is a valid link from it. */
Test(block, a_medium_block_accepts_no_link_but_null) {
  hak__superslab_t *ss = fake_superslab();
  hak__slab_t *s = &ss->slabs[1];
  uintptr_t start = (uintptr_t)ss + HAK_SLAB_SIZE;
  for (unsigned c = HAK_SMALL_CLASSES; c < HAK_CLASSES; c++) {
    fake_slab(s, c, 1);
    const hak__block_t *from = (const hak__block_t *)start;
    cr_assert(hak__link_in_slab(s, from, NULL));
    for (uintptr_t o = 0; o < hak__class_span(c) * HAK_SLAB_SIZE; o += 16)
      cr_assert(!hak__link_in_slab(s, from, (const hak__block_t *)(start + o)) || o == 0,
                "class %u: offset %lu", c, (unsigned long)o);
  }
  free(ss);
}

/* Every carve links each fresh block once, and nothing else, for every class and every count
** already carved; every link passes the check the pop makes. */
Test(block, carving_links_every_fresh_block_exactly_once) {
  hak__superslab_t *ss = fake_superslab();
  hak__slab_t *s = &ss->slabs[1];
  hak__tcache_t tc;
  memset(&tc, 0, sizeof tc);
  tc.rng = 0x9e3779b97f4a7c15ull;
  static uint8_t seen[HAK_SLAB_SIZE / 16];
  for (unsigned c = 0; c < HAK_SMALL_CLASSES; c++) {
    fake_slab(s, c, 0);
    uint32_t cap = s->capacity, bs = s->block_size;
    uintptr_t start = (uintptr_t)ss + HAK_SLAB_SIZE;
    while (s->carved < cap) {
      uint32_t before = s->carved;
      uint32_t n = hak__slab_carve(&tc, s);
      cr_assert(n > 0 && s->carved == before + n);
      memset(seen, 0, sizeof seen);
      uint32_t count = 0;
      for (hak__block_t *b = s->free; b; count++) {
        uintptr_t o = (uintptr_t)b - start;
        cr_assert(o % bs == 0 && o / bs >= before && o / bs < before + n,
                  "class %u: block at offset %lu is not fresh", c, (unsigned long)o);
        cr_assert(!seen[o / bs], "class %u: block %lu linked twice", c, (unsigned long)(o / bs));
        seen[o / bs] = 1;
        cr_assert(hak__blk_tagged(s, b));
        hak__block_t *next = hak__blk_next(s, b);
        cr_assert(hak__link_in_slab(s, b, next));
        b = next;
      }
      cr_assert_eq(count, n, "class %u: %u of %u blocks linked", c, count, n);
      s->free = NULL;
    }
  }
  free(ss);
}
