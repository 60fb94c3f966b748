/*
** large.h: the large-block box. Blocks above HAK_MEDIUM_MAX (or with alignment no size class
** gives) get their own 64 KiB aligned mapping with a header at its start, registered in the
** address registry and listed on the owning heap. A few freed mappings are cached process-wide
** (HAK_LARGE_CACHE_*) so request-sized heaps do not mmap/munmap on every cycle.
*/
#ifndef HAK_LARGE_H
#define HAK_LARGE_H

#include "ptr_bridge.h"
#include "types.h"

/* The usable size of a fresh mapping for size bytes at the default alignment: hak__large_alloc's
** rounding (header, then whole registry granules); 0 when no mapping can be that big. A cached
** mapping it reuses may be up to twice as big. tests/core/good_size_test holds the two equal. */
HAK_INLINE size_t hak__large_good_size(size_t size) {
  const size_t gran = (size_t)1 << HAK_REG_GRAN_SHIFT;
  if (size == 0) size = 1;
  if (size > PTRDIFF_MAX - HAK_LARGE_HDR - gran) return 0;
  return ((HAK_LARGE_HDR + size + gran - 1) & ~(gran - 1)) - HAK_LARGE_HDR;
}

void *hak__large_alloc(hak_heap_t *h, size_t size, size_t align, bool zero);
/* Free a resolved large block (validated again under the large lock). */
void hak__large_free(const hak__loc_t *loc, const char *op);
/* Release all of h's large blocks (destroy or reset); state: HAK_LARGE_RESET/DESTROYED. */
void hak__large_release_heap(hak_heap_t *h, int state);
/* The error code and reason for using a large block in a state other than HAK_LARGE_LIVE. */
int hak__large_dead_err(int state);
const char *hak__large_dead_reason(int state);
void hak__large_trim_cache(void);
/* Try to resize in place (same mapping, or mremap when it has to grow); 1 on success. */
int hak__large_resize(const hak__loc_t *loc, size_t size);

void hak__large_lock_all(void);
void hak__large_unlock_all(void);
void hak__large_reinit_child(void);

#endif
