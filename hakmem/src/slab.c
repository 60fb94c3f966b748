/* slab.c: slab assignment, carving, block return and release, all under the heap lock. */
#include "slab.h"

#include <errno.h>

#include "block.h"
#include "error.h"
#include "os.h"
#include "ptr_bridge.h"
#include "size_class.h"
#include "superslab.h"

/* Unassigned slabs whose pages stay committed, per heap, before release decommits them. */
#define HAK_DIRTY_SLABS_MAX 64

static void partial_push(hak_heap_t *h, hak__slab_t *s) {
  s->prev = NULL;
  s->next = h->partial[s->cls];
  if (s->next) s->next->prev = s;
  h->partial[s->cls] = s;
  s->in_partial = 1;
}

static void partial_remove(hak_heap_t *h, hak__slab_t *s) {
  if (s->prev) s->prev->next = s->next;
  else h->partial[s->cls] = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = NULL;
  s->in_partial = 0;
}

static hak__slab_t *assign(hak_heap_t *h, unsigned cls) {
  if (h->limit && h->held + HAK_SLAB_SIZE > h->limit) {
    errno = ENOMEM;
    return NULL;
  }
  hak__superslab_t *ss = h->ss_list;
  while (ss && ss->free_mask == 0) ss = ss->next;
  if (!ss) {
    ss = hak__ss_acquire(h);
    if (!ss) return NULL;
    ss->next = h->ss_list;
    if (ss->next) ss->next->prev = ss;
    ss->prev = NULL;
    h->ss_list = ss;
    h->ss_count++;
  }
  int i = __builtin_ctzll(ss->free_mask);
  ss->free_mask &= ~((uint64_t)1 << i);
  ss->assigned++;
  hak__slab_t *s = &ss->slabs[i];
  if (s->dirty) {
    s->dirty = 0;
    h->dirty_slabs--;
  }
  uint32_t bs = hak__class_size[cls];
  s->cls = (uint8_t)cls;
  s->block_size = bs;
  s->capacity = (uint32_t)(HAK_SLAB_SIZE / bs);
  s->recip = (uint32_t)((((uint64_t)1 << 32) + bs - 1) / bs);
  s->used = 0;
  s->free = NULL;
  atomic_store_explicit(&s->bump, 0, memory_order_relaxed);
  h->held += HAK_SLAB_SIZE;
  if (h->held > h->peak_held) h->peak_held = h->held;
  HAK_TRACK_CLOSE((void *)hak__slab_start(ss, s), HAK_SLAB_SIZE);
  partial_push(h, s);
  return s;
}

void hak__slab_release_superslab(hak_heap_t *h, hak__superslab_t *ss) {
  if (ss->prev) ss->prev->next = ss->next;
  else h->ss_list = ss->next;
  if (ss->next) ss->next->prev = ss->prev;
  h->ss_count--;
  for (int i = 1; i < HAK_SLABS_PER_SS; i++)
    if (ss->slabs[i].dirty) h->dirty_slabs--;
  hak__ss_release(ss);
}

static void release_slab(hak_heap_t *h, hak__superslab_t *ss, hak__slab_t *s) {
  if (s->in_partial) partial_remove(h, s);
  s->cls = HAK_SLAB_UNUSED;
  s->free = NULL;
  atomic_store_explicit(&s->bump, 0, memory_order_relaxed);
  int i = (int)(s - ss->slabs);
  ss->free_mask |= (uint64_t)1 << i;
  ss->assigned--;
  h->held -= HAK_SLAB_SIZE;
  if (h->dirty_slabs >= HAK_DIRTY_SLABS_MAX) {
    hak__os_decommit((void *)hak__slab_start(ss, s), HAK_SLAB_SIZE);
  } else {
    s->dirty = 1;
    h->dirty_slabs++;
  }
  if (ss->assigned == 0 && h->ss_count > 1) hak__slab_release_superslab(h, ss);
}

#ifdef HAK_SECURE
static uint32_t rng_below(hak_heap_t *h, uint32_t n) {
  uint64_t x = h->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  h->rng = x;
  return (uint32_t)(((x >> 32) * n) >> 32);
}
#endif

/* Carve up to n fresh blocks of s onto *head; secure builds link them in random order. */
static uint32_t carve(hak_heap_t *h, hak__superslab_t *ss, hak__slab_t *s, uint32_t n,
                      hak__block_t **head) {
  uint32_t bump = atomic_load_explicit(&s->bump, memory_order_relaxed);
  if (n > s->capacity - bump) n = s->capacity - bump;
#ifdef HAK_SECURE
  uint32_t order[HAK_SLAB_SIZE / 16];
  for (uint32_t i = 0; i < n; i++) order[i] = bump + i;
  for (uint32_t i = n; i > 1; i--) {
    uint32_t j = rng_below(h, i), t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
  for (uint32_t i = 0; i < n; i++) {
    hak__block_t *b = hak__slab_block(ss, s, order[i]).blk;
    hak__blk_link(h, b, *head, hak__free_key);
    *head = b;
  }
#else
  for (uint32_t i = 0; i < n; i++) {
    hak__block_t *b = hak__slab_block(ss, s, bump + i).blk;
    hak__blk_link(h, b, *head, hak__free_key);
    *head = b;
  }
#endif
  atomic_store_explicit(&s->bump, bump + n, memory_order_relaxed);
  return n;
}

uint32_t hak__slab_take(hak_heap_t *h, unsigned cls, uint32_t want, hak__block_t **out) {
  uint32_t got = 0;
  hak__block_t *head = *out;
  while (got < want) {
    hak__slab_t *s = h->partial[cls];
    if (!s) {
      if (got) break;
      s = assign(h, cls);
      if (!s) break;
    }
    hak__superslab_t *ss = hak__ss_of_slab(s);
    uint32_t before = got;
    while (got < want && s->free) {
      hak__block_t *b = s->free;
      if (HAK_UNLIKELY(hak__blk_key(b) != hak__slab_key)) {
        /* Handed out again while on this list: a double free. The rest of the list is not
        ** trustworthy; drop it (those blocks stay counted as used). */
        hak__report_later(HAK_ERR_DOUBLE_FREE, "hak_free", b,
                          "double free of a small block (detected when the block was reused)");
        s->free = NULL;
        break;
      }
      s->free = hak__blk_next(h, b);
      hak__blk_link(h, b, head, hak__free_key);
      head = b;
      got++;
    }
    if (got < want) got += carve(h, ss, s, want - got, &head);
    s->used += got - before;
    if (!s->free && atomic_load_explicit(&s->bump, memory_order_relaxed) == s->capacity)
      partial_remove(h, s);
  }
  *out = head;
  return got;
}

void hak__slab_put(hak_heap_t *h, hak__base_t b) {
  hak__superslab_t *ss = hak__ss_of_base(b);
  hak__slab_t *s = hak__slab_of_base(b);
  HAK_ASSERT(s->cls != HAK_SLAB_UNUSED && ss->heap == h);
  uintptr_t key = hak__blk_key(b.blk);
  if (HAK_UNLIKELY(key != hak__free_key)) {
    hak__report_later(HAK_ERR_DOUBLE_FREE, "hak_free", b.blk,
                      key == hak__slab_key
                          ? "double free of a small block (already back in its slab)"
                          : "double free of a small block (detected when the block was reused)");
    return;
  }
  hak__blk_link(h, b.blk, s->free, hak__slab_key);
  s->free = b.blk;
  if (--s->used == 0) {
    release_slab(h, ss, s);
    return;
  }
  if (!s->in_partial) partial_push(h, s);
}

void hak__slab_decommit_free(hak_heap_t *h, bool force) {
  if (!force && h->dirty_slabs <= HAK_DIRTY_SLABS_MAX) return;
  for (hak__superslab_t *ss = h->ss_list; ss; ss = ss->next) {
    for (int i = 1; i < HAK_SLABS_PER_SS; i++) {
      hak__slab_t *s = &ss->slabs[i];
      if (s->cls != HAK_SLAB_UNUSED || !s->dirty) continue;
      hak__os_decommit((void *)hak__slab_start(ss, s), HAK_SLAB_SIZE);
      s->dirty = 0;
      h->dirty_slabs--;
    }
  }
}
