/*
** types.h: the data structures shared by the boxes, with their ownership rules.
** Locks, outermost first: the default heap's init lock (heap.c) -> hak__tc_lock (thread-cache
** attach/detach, global) -> a heap's guest_lock -> the remote batches' spin locks
** (remote_batch.h) -> heap->lock (also its large blocks and their cache) -> hak__ss_lock
** (superslab cache) and the meta-pool lock.
*/
#ifndef HAK_TYPES_H
#define HAK_TYPES_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "hakmem.h"
#include "internal.h"
#include "ptr.h"

typedef struct hak__slab_s hak__slab_t;
typedef struct hak__superslab_s hak__superslab_t;
typedef struct hak__tcache_s hak__tcache_t;
typedef struct hak__large_s hak__large_t;

#define HAK_SLAB_UNUSED 0xFF
#define HAK_SLAB_CONT 0xFE /* a slab inside a medium span, after its head */
enum { HAK_SLAB_AVAIL = 0, HAK_SLAB_FULL = 1 }; /* hak__slab_t.state while assigned */

/*
** Slab metadata, 128 bytes in slab 0 of its superslab; the first line holds everything the
** fast paths touch. A slab is either unassigned (live == 0, bound == div == 0: the heap's,
** under heap->lock; an all-zero record, as a fresh mapping has it, is one) or owned by exactly one thread cache (`owner`) until every block
** it handed out has come back. Who touches what:
**  - owner thread only, no atomics: free, left, armed, carved, next/prev, state, and the writes
**    of allocs (HAK_OWNED_*: stats read allocs, left and armed) and bound (atomic: freeing
**    threads read it);
**  - set under heap->lock at assignment, constant while assigned: owner, cls, block_size, div,
**    key (secure builds); capacity, which only the owner raises (under heap->lock: it is what
**    the slab holds, slab.c); owner_tid changes only when the owner cache is abandoned or
**    adopted;
**  - any thread reads owner_tid, div and bound to validate a free, and key (secure builds) to
**    read or write a free block's header.
** Secure builds put the keys in the first line, in place of owner and armed (second line):
** every fast path reads them, and neither of those.
** Counting without a free counter: a free decrements `left`, and the owner's slow path runs
** when it reaches 0 (one decrement and one branch on the fast path). `armed` is the number of
** frees at which `left` reaches 0, so
**     frees == armed - left,   allocs - frees == blocks handed out and not back in `free`
** (blocks in a remote queue or batch count as out). The slow path re-arms: a class's current
** slab at frees + HAK_ARM_FAR (never empty-released), a listed slab at allocs (it is released
** when its last block comes back), a full slab at frees + 1 (its first free relists it).
*/
struct hak__slab_s {
  hak__block_t *free;          /* owner: free blocks, popped by malloc, pushed by local free */
  uint64_t allocs;             /* blocks handed out since assignment (HAK_OWNED_*) */
  uint64_t left;               /* frees until the owner's slow path runs; > 0 while assigned */
  _Atomic uintptr_t owner_tid; /* thread pointer of the owning thread; 0 while abandoned */
  uint64_t div;                /* floor(2^64 / block_size) + 1 (ptr_bridge.h: the boundary test) */
  _Atomic uint64_t bound;      /* carved * (block_size * div mod 2^64): o is a carved block start
                                  iff o * div mod 2^64 < bound */
#ifdef HAK_SECURE
  /* secure builds: this assignment's keys for its free blocks' headers (block.h), derived from
  ** the heap's secret at assignment; constant while assigned; both odd */
  uint64_t key[2];
#else
  hak__tcache_t *owner;
  uint64_t armed;              /* frees == armed - left */
#endif
  /* second line: owner's lists */
  hak__slab_t *next, *prev;    /* owner's class list (head = current) or full list */
#ifdef HAK_SECURE
  hak__tcache_t *owner;
  uint64_t armed;
#endif
  uint32_t capacity;
  uint32_t block_size;
  uint32_t carved;             /* owner: blocks carved so far; [carved, capacity) never handed out */
  uint8_t cls;
  uint8_t state;               /* HAK_SLAB_AVAIL (on owner's class list) or HAK_SLAB_FULL */
  uint8_t dirty;               /* unassigned but pages still committed (heap lock) */
  uint8_t decommitting;        /* taken out of the free mask while madvise runs (heap lock) */
  uint8_t broken;              /* owner: a double free was found in it; never released */
  uint8_t span;                /* slabs in this slab's span: 1 small, 1-16 medium (head) */
  uint8_t live;                /* assigned (a span's head or tail): 0 in a fresh mapping, so a
                                  new superslab's records are never written until used */
  uint8_t pad8_[1];
#ifdef HAK_SECURE
  uint32_t pad_[3];
#else
  uint32_t pad_[7];
#endif
};
_Static_assert(sizeof(hak__slab_t) == 2 * HAK_CACHELINE, "slab metadata is two lines");
_Static_assert(offsetof(hak__slab_t, next) == HAK_CACHELINE, "fast-path fields fit line 0");
#define HAK_ARM_FAR ((uint64_t)1 << 62)

/*
** Superslab header: slab 0 of a naturally aligned HAK_SS_SIZE region, after its first page,
** which is a guard (no access): an overflow off the end of the superslab mapped just below
** faults there instead of reaching this header. `heap` is set when a heap takes the superslab
** from the cache and cleared when it gives it back; both happen with no live block in it.
** free_mask, assigned and the links are under heap->lock.
*/
#define HAK_SS_GUARD 4096
struct hak__superslab_s {
  unsigned char guard_[HAK_SS_GUARD];
  uint64_t magic;
  hak_heap_t *heap;
  hak__superslab_t *next, *prev; /* heap's list, or the global cache list */
  uint64_t free_mask;            /* bit i: slab i unassigned (bit 0, the metadata slab, never) */
  uint32_t assigned;
  uint32_t released_live;        /* given back while its heap lived (see hak__ss_release) */
  uint32_t pad_[4];
  _Alignas(HAK_CACHELINE) hak__slab_t slabs[HAK_SLABS_PER_SS];
};
#define HAK_SS_MAGIC 0x68616b5353ull
_Static_assert(sizeof(hak__superslab_t) <= HAK_SLAB_SIZE, "metadata fits slab 0");

/*
** A large block: its own mapping, 64 KiB aligned, the user pointer at its start. Its record is
** out of band (a meta-pool object, large.c), found through the registry entry of every granule
** of the mapping; nothing in the mapping itself is metadata. The record never holds the block's
** address in plain (base_enc = base ^ hak__large_key): memcheck's leak search sees no pointer to
** a block from hakmem's metadata. `seal` hashes the fields that never change while the block is
** live (self, heap, base_enc, usable): a record that disagrees with it is reported as
** corruption, never followed.
**  - heap: constant for the record's life (a record belongs to one heap, cached or live);
**  - everything else under heap->lock; free and the pointer bridge read base_enc, usable, seal
**    and state first without it (a live block's record changes only by its owner's realloc).
** A live record is on its heap's live list (link[HAK_LL_MAIN]); a cached one is on a bin of the
** heap's cache (link[HAK_LL_MAIN]) and on its age list (link[HAK_LL_AGE], oldest first).
*/
enum { HAK_LARGE_LIVE = 1, HAK_LARGE_FREED, HAK_LARGE_RESET };
/* Where kernel mappings begin inside a large mapping, in granules from its start, ascending:
** pages moved in by mremap never merge with their neighbours. n > HAK_LARGE_MAX_CUTS: unknown. */
#define HAK_LARGE_MAX_CUTS 64
typedef struct {
  uint32_t n;
  uint32_t at[HAK_LARGE_MAX_CUTS];
} hak__large_cuts_t;
enum { HAK_LL_MAIN = 0, HAK_LL_AGE = 1 };
typedef struct {
  hak__large_t *next, *prev;
} hak__large_link_t;
struct hak__large_s {
  hak_heap_t *heap;
  hak__large_link_t link[2];
  uintptr_t base_enc;  /* mapping start ^ hak__large_key */
  size_t usable;       /* the mapping's size, a multiple of 64 KiB: the user area is all of it */
  uint64_t seal;       /* hak__large_seal_of(this) */
  uint64_t freed_ms;   /* cached: when it was freed (CLOCK_MONOTONIC_COARSE, ms) */
  int state;           /* HAK_LARGE_*: LIVE, or how it was freed while cached */
  uint32_t bin;        /* cached: its bin */
  hak__large_cuts_t cuts; /* the kernel mappings it spans: at most HAK_LARGE_MAX_CUTS + 1 */
};
/* The cache bins: mappings of 1..HAK_LARGE_CACHE_GRANS granules, 4 bins per doubling
** (large.h: hak__large_bin). */
#define HAK_LARGE_CACHE_GRANS ((size_t)1024)
#define HAK_LARGE_BINS 36

/*
** A thread cache: one thread's share of one heap. It owns slabs; it lives as long as its heap
** (abandoned caches wait on heap->idle for a thread to adopt them), so a freeing thread that
** read a slab's owner can always push onto that owner's queue.
**  - owner thread only: direct, cur, full, remote_frees (relaxed: stats read it);
**  - heap->lock: thread (the owner's thread pointer, 0 when idle), heap_next/prev, idle_next;
**  - hak__tc_lock: thr_next/prev/head (the owning thread's list) and tls_ent, the owning
**    thread's TLS entry for this cache (cleared with it); the owning thread alone
**    while the heap of every cache on its list is `settling` (no destroy can unlink one);
**  - any thread: remote, the MPSC queue of blocks other threads freed into owned slabs
**    (push: CAS with release; the owner takes the whole list with an acquire exchange).
*/
struct hak__tcache_s {
  hak__slab_t *direct[HAK_DIRECT_N]; /* size (rounded up to 16) / 16 -> cur[its class] */
  hak__slab_t *cur[HAK_CLASSES]; /* head of each class's slab list, or &hak__slab_none */
  hak__slab_t *last[HAK_CLASSES]; /* tail of each class's slab list, or NULL */
  hak_heap_t *heap;
  uintptr_t thread;
  hak__slab_t *full;             /* owned slabs with nothing left to hand out */
  hak__tcache_t *heap_next, *heap_prev; /* heap->tcaches */
  hak__tcache_t *idle_next;             /* heap->idle */
  hak__tcache_t *thr_next, *thr_prev, **thr_head;
  hak__tcache_t **tls_ent;              /* its entry in the owning thread's TLS table, or NULL */
  _Atomic uint64_t remote_drained;      /* blocks the owner took from `remote` */
  _Atomic uint64_t remote_drained_bytes;
  uint64_t rng;                         /* secure builds: carving order */
  uint64_t warm; /* owner: bit c, the cache has had a slab of class c at full capacity (slab.c:
                    the first slab of a cold class holds a page and widens when it runs out) */
  bool forked; /* abandoned in a forked child: its thread may have stopped mid-update */
  bool guest;  /* the heap's guest cache (heap.h): no thread, used under heap->guest_lock */
  _Alignas(HAK_CACHELINE) _Atomic(hak__block_t *) remote;
  _Atomic uint64_t remote_pushed;       /* remote frees ever pushed (relaxed add by pushers) */
  _Atomic uint64_t remote_pushed_bytes; /* their block sizes */
};

/*
** A heap. The first block is constant after creation (but the notify hook and notify_busy,
** atomics any thread touches); `id` is unique for the process's life (it seeds `secret`).
** Everything after `lock` is under it.
*/
struct hak_heap_s {
  uintptr_t slot_off;          /* slot * sizeof(TLS entry): the fast path's offset in the table */
  uint64_t id;
  uint32_t slot;               /* TLS slot, or HAK_NO_SLOT (whose entry is always NULL) */
  uint32_t is_default;
  char name[32];
  hak_heap_t *live_next, *live_prev; /* every live heap, for fork handlers (tc lock) */
  uint64_t secret[2];                /* keys the slab keys and the carving order (secure) */
  _Atomic(hak_remote_notify_fn *) notify_fn;
  _Atomic(void *) notify_arg;
  _Atomic uint32_t notify_busy; /* batch posts calling notify_fn now: destroy waits for 0 */
  /* threads settling their caches of this heap with no global lock held (thread exit,
  ** hak_thread_flush: their madvise/munmap must not run under hak__tc_lock); raised under
  ** hak__tc_lock, so destroy and reset, which wait for 0 while holding it, see every one */
  _Atomic uint32_t settling;
  /* hak_heap_set_user's word: any thread reads (acquire) and writes (release); reset clears it */
  _Atomic(void *) user;
  /* hak_heap_config_t.shared_guests: the creating thread, the only one with a cache of its own
  ** (0: every thread gets one). Other threads allocate from `guest` under `guest_lock`; `guest`
  ** is made by the first of them (under guest_lock and the lock) and freed with the heap. */
  uintptr_t home;
  hak__tcache_t *guest;
  pthread_mutex_t guest_lock;

  _Alignas(HAK_CACHELINE) pthread_mutex_t lock;
  hak__superslab_t *ss_list;
  hak__large_t *large_list;    /* live large blocks */
  /* freed large mappings kept committed (large.c): bins by size, a bitmap of non-empty bins,
  ** the age list (oldest first), their bytes (counted in held) */
  hak__large_t *large_bin[HAK_LARGE_BINS];
  uint64_t large_bin_mask;
  hak__large_t *large_oldest, *large_newest;
  size_t large_cached_bytes;
  /* records for the rests of splits (chained through link[MAIN].next, at most
  ** HAK_LARGE_SPARES): moved donors' records, refilled beside system calls */
  hak__large_t *large_spare;
  uint32_t large_spares;
  int32_t purge_delay_ms;      /* as configured: 0 = default, < 0 = no cache */
  hak__tcache_t *tcaches;      /* every cache of the heap, owned or idle */
  /* abandoned caches, adopted by the next attaching thread; written under the lock with
  ** relaxed stores, peeked without it by hak_heap_drain (relaxed load) */
  _Atomic(hak__tcache_t *) idle;
  size_t ss_count;
  size_t held;
  size_t peak_held;
  size_t limit;
  size_t dirty_slabs;
  uint64_t key_gen;            /* slab assignments so far: each gets keys of its own (secure) */
  /* highest `held` in the current and the previous window of about a second: the dirty-slab
  ** cap follows the recent peak, not the momentary holding (slab.c) */
  size_t peak_cur, peak_prev;
  uint64_t peak_window; /* CLOCK_MONOTONIC_COARSE second the current window started */
  /* counters of released slabs, freed caches and large blocks */
  uint64_t cls_allocs[HAK_CLASSES], cls_frees[HAK_CLASSES];
  uint64_t remote_pushed, remote_drained; /* of caches freed since */
  uint64_t remote_pushed_bytes, remote_drained_bytes;
  uint64_t large_allocs, large_frees;
  size_t large_live_bytes, large_count;
};

#endif
