/*
** types.h: the data structures shared by the boxes, with their ownership rules.
** Locks, outermost first: hak__tc_lock (thread-cache attach/detach, global) -> hak__large_lock
** (large-block registry and cache, global) -> heap->lock -> hak__ss_lock (superslab cache).
*/
#ifndef HAK_TYPES_H
#define HAK_TYPES_H

#include <pthread.h>
#include <stdbool.h>

#include "hakmem.h"
#include "internal.h"
#include "ptr.h"

typedef struct hak__slab_s hak__slab_t;
typedef struct hak__superslab_s hak__superslab_t;
typedef struct hak__tcache_s hak__tcache_t;
typedef struct hak__large_s hak__large_t;

#define HAK_SLAB_UNUSED 0xFF

/*
** Slab metadata, in slab 0 of its superslab. All fields are written under the owning heap's
** lock. Freeing threads read cls, block_size, recip and bump without the lock to validate a
** pointer: cls/block_size/recip change only while the slab has no live block, and bump only
** grows while it is assigned (hence atomic).
*/
struct hak__slab_s {
  hak__block_t *free;        /* blocks returned to the slab (heap lock) */
  hak__slab_t *next, *prev;  /* heap->partial[cls] list (heap lock) */
  uint32_t used;             /* blocks handed to thread caches or users */
  _Atomic uint32_t bump;     /* blocks carved so far; [bump, capacity) never handed out */
  uint32_t capacity;
  uint32_t block_size;
  uint32_t recip;            /* ceil(2^32 / block_size): offset -> index without a divide */
  uint8_t cls;               /* HAK_SLAB_UNUSED when not assigned */
  uint8_t in_partial;
  uint8_t dirty;             /* unassigned but pages still committed */
};

/*
** Superslab header: the first bytes of a naturally aligned HAK_SS_SIZE region. `heap` is set
** when a heap takes the superslab from the cache and cleared when it gives it back; both
** happen with no live block in it. Everything else is under the owning heap's lock.
*/
struct hak__superslab_s {
  uint64_t magic;
  hak_heap_t *heap;
  hak__superslab_t *next, *prev; /* heap's list, or the global cache list */
  uint64_t free_mask;            /* bit i: slab i unassigned (bit 0, the metadata slab, never) */
  uint32_t assigned;
  hak__slab_t slabs[HAK_SLABS_PER_SS];
};
#define HAK_SS_MAGIC 0x68616b5353ull
_Static_assert(sizeof(hak__superslab_t) <= HAK_SLAB_SIZE, "metadata fits slab 0");

/*
** A large block: its own mapping, 64 KiB aligned, header at the start, user area after it.
** All fields are under hak__large_lock; heap list links also need heap->lock.
*/
enum { HAK_LARGE_LIVE = 1, HAK_LARGE_FREED, HAK_LARGE_RESET, HAK_LARGE_DESTROYED };
struct hak__large_s {
  uint64_t magic;
  hak_heap_t *heap;
  hak__large_t *next, *prev; /* heap's list, or the global cache list */
  size_t map_size;
  uintptr_t user;
  size_t usable;
  int state;
};
#define HAK_LARGE_MAGIC 0x68616b4c47ull
#define HAK_LARGE_HDR 64

/* One size class of a thread cache. head/count belong to the owner thread only; allocs/frees
** are owner-written counters that stats read from any thread. */
typedef struct hak__bin_s {
  hak__block_t *head;
  uint32_t count;
  uint32_t limit;
  uint32_t batch; /* next refill size: starts small, doubles up to limit/2 */
  uint32_t pad_;
  _Atomic uint64_t allocs;
  _Atomic uint64_t frees;
} hak__bin_t;

/*
** A thread's cache for one heap. Owned by the thread that created it; the heap lists it while
** attached. `heap` is written under hak__tc_lock (attach, detach by thread exit or by the
** heap's destroy) and read by the owner on every operation.
*/
struct hak__tcache_s {
  _Atomic(hak_heap_t *) heap;
  hak__tcache_t *heap_next, *heap_prev; /* heap->tcaches (heap lock) */
  hak__tcache_t *thread_next;           /* owner thread's list (owner only) */
  _Atomic uint64_t remote_frees;
  hak__bin_t bins[HAK_CLASSES];
};

/*
** A heap. The first block is constant after creation. The remote queue has its own cache
** line: producers are any threads. Everything after `lock` is under it.
*/
struct hak_heap_s {
  uint32_t slot;               /* TLS slot, or HAK_NO_SLOT */
  uint32_t is_default;
  uint64_t id;
  char name[32];
  hak_heap_t *live_next, *live_prev; /* every live heap, for fork handlers (tc lock) */
  uintptr_t secret;                  /* secure builds: free-list link encoding */

  _Alignas(HAK_CACHELINE) _Atomic(hak__block_t *) remote_head;
  _Atomic(hak_remote_notify_fn *) notify_fn;
  _Atomic(void *) notify_arg;

  _Alignas(HAK_CACHELINE) pthread_mutex_t lock;
  hak__superslab_t *ss_list;
  hak__slab_t *partial[HAK_CLASSES];
  hak__large_t *large_list;
  hak__tcache_t *tcaches;
  size_t ss_count;
  size_t held;
  size_t peak_held;
  size_t limit;
  size_t dirty_slabs;
  uint64_t rng;                      /* secure builds: carving order */
  /* counters folded in from detached caches, lock-path drains and large blocks */
  uint64_t cls_allocs[HAK_CLASSES], cls_frees[HAK_CLASSES];
  uint64_t remote_frees;
  uint64_t large_allocs, large_frees;
  size_t large_live_bytes, large_count;
};

#endif
