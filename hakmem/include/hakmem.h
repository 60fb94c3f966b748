/*
** hakmem.h: the one public header of hakmem, an embeddable multi-heap allocator.
**
** An application creates independent heaps. Any thread may allocate from any heap; each thread
** has a private cache per heap it uses, which owns the slabs it allocates from, so the common
** malloc/free takes no lock and no atomic read-modify-write. A block freed by any thread other
** than the one that allocated it travels back to the owner through the owner's lock-free remote
** queue, in batches (see hak_free). Destroying a heap releases all of its memory at once.
**
** Errors: allocation failure returns NULL with errno set (ENOMEM, or EINVAL for a bad
** alignment); no function aborts on out-of-memory. Invalid frees go to the error handler
** (hak_set_error_handler); the default one prints "hakmem: <message>" and aborts.
*/
#ifndef HAKMEM_H
#define HAKMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with -fvisibility=hidden: only what this header declares is exported. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* The version of this header; hak_version() gives the library's, to compare at run time. The
** shared library's soname carries the major version. */
#define HAKMEM_VERSION_MAJOR 0
#define HAKMEM_VERSION_MINOR 1
#define HAKMEM_VERSION_PATCH 0
#define HAKMEM_VERSION \
  (HAKMEM_VERSION_MAJOR * 10000 + HAKMEM_VERSION_MINOR * 100 + HAKMEM_VERSION_PATCH)

/* HAKMEM_VERSION of the library linked (0.1.0 is 100). */
int hak_version(void);

/* Opaque heap. */
typedef struct hak_heap_s hak_heap_t;

/* Heap configuration; a zero-initialised struct (or NULL) means defaults. */
typedef struct hak_heap_config_s {
  const char *name;   /* copied (first 31 bytes); shown in error messages; NULL = "heap" */
  size_t limit_bytes; /* cap on held_bytes; 0 = no limit */
  /* How long a freed large block's mapping stays committed for reuse by the heap's later large
  ** requests (see hak_heap_set_purge_delay); 0 = default (1000 ms), < 0 = unmapped at free. */
  int32_t purge_delay_ms;
  /* false (default): every thread that allocates from the heap gets its own cache (slabs of
  ** its own per size class). true: only the creating thread (the heap's home) does; every other
  ** thread allocates from one guest cache shared under a lock, so a heap used now and then by
  ** many threads (a connection heap and a threadpool) holds one set of slabs for all of them,
  ** not one per thread. A free of a guest block, on any thread, goes straight back into the
  ** guest cache under that lock (not a remote free: no queue, no drain, no remote notify).
  ** After the home thread exits every thread is a guest. For heaps whose other threads
  ** allocate rarely. */
  bool shared_guests;
} hak_heap_config_t;

/*
** Per-heap statistics. Reading them walks the heap's slab metadata and caches under the heap
** lock, and the threads' pending remote batches (see hak_free) under a global lock that threads
** also take to start using a heap (no stop-the-world); counters read while other threads
** allocate or free are a snapshot, not an atomic cut. A remote free counts (free_count,
** remote_free_count, live_*) as soon as hak_free returns, before its batch is posted or its
** owner drains it. Once every block is freed, live_bytes and live_blocks are exactly zero,
** whichever threads freed them. Also posts the calling thread's pending remote frees.
*/
typedef struct hak_heap_stats_s {
  size_t live_bytes;        /* usable sizes of blocks allocated and not yet freed */
  size_t live_blocks;       /* number of such blocks */
  size_t held_bytes;        /* slabs assigned to the heap (64 KiB each; a size class's first
                               slab in a thread's cache counts the page it may use until it
                               grows) plus large mappings, live or cached */
  size_t peak_held_bytes;   /* highest held_bytes since creation */
  size_t limit_bytes;       /* current limit, 0 = none */
  uint64_t alloc_count;     /* successful allocations (realloc that moves counts one) */
  uint64_t free_count;      /* frees, local and remote */
  uint64_t remote_free_count; /* frees by a thread other than the block's owner (a shared_guests
                                 heap's guest blocks are freed under the guest lock: never) */
  size_t superslab_count;   /* superslabs owned */
  size_t large_count;       /* live large blocks (above 1 MiB, or aligned above 64 KiB) */
} hak_heap_stats_t;

/* Error kinds passed to the error handler as `err`. */
enum {
  HAK_ERR_INVALID_POINTER = 1, /* never handed out by hakmem (stack, foreign, wild) */
  HAK_ERR_INTERIOR_POINTER,    /* points inside or misaligned into a block */
  HAK_ERR_DOUBLE_FREE,         /* block is already free */
  HAK_ERR_HEAP_DESTROYED,      /* block of a heap that was destroyed */
  HAK_ERR_MISUSE,              /* API misuse (e.g. destroying the default heap) */
  HAK_ERR_CORRUPTION           /* internal check failed (debug/secure builds) */
};

/*
** Error handler: called with one of HAK_ERR_*, a one-line message that names the pointer and
** the reason, and the arg given at registration. If it returns, the failing call returns
** without touching the block and the heap stays usable. NULL restores the default handler,
** which writes "hakmem: <msg>\n" to stderr and calls abort().
*/
typedef void hak_error_fn(int err, const char *msg, void *arg);
void hak_set_error_handler(hak_error_fn *fn, void *arg);

/* ---- heaps ---- */

/* New heap. cfg NULL or zeroed = defaults. Returns NULL with errno (ENOMEM) on failure. */
hak_heap_t *hak_heap_create(const hak_heap_config_t *cfg);

/*
** Release every block and all memory of the heap, in time proportional to its superslabs and
** large blocks. Other threads must not use the heap during or after the call (caller's bug);
** their caches for it are detached. Later frees of its blocks are reported as errors where the
** memory has not been reused. NULL is a no-op; the default heap cannot be destroyed.
*/
void hak_heap_destroy(hak_heap_t *heap);

/*
** Free every block of the heap at once; the heap stays usable and keeps some memory for reuse
** (the per-request arena pattern). Also sets the heap's user word (hak_heap_set_user) to NULL.
** Same thread rules as hak_heap_destroy.
*/
void hak_heap_reset(hak_heap_t *heap);

/*
** Post the calling thread's pending remote frees (see hak_free), then drain its remote queue for
** the heap: blocks other threads freed into slabs this thread owns, and posted, become reusable
** by its next allocations. Also drains the queues of caches abandoned by exited threads. Returns
** the number of blocks drained. Lock-free when nothing is abandoned; event loops call it on
** their own thread after a remote-notify.
*/
size_t hak_heap_drain(hak_heap_t *heap);

/* Post this thread's pending remote frees; drain this thread's and abandoned caches' remote
** queues, give empty slabs back to the heap,
** release free memory to the OS (all it can when force). Slabs other live threads own stay
** theirs. */
void hak_heap_collect(hak_heap_t *heap, bool force);

void hak_heap_get_stats(hak_heap_t *heap, hak_heap_stats_t *out);

/* Limit on held_bytes (0 = none). Setting a limit below the current holding is allowed: later
** growth fails until enough is freed. Returns 0, or -1 with errno EINVAL for a NULL heap. */
int hak_heap_set_limit(hak_heap_t *heap, size_t limit_bytes);
size_t hak_heap_get_limit(const hak_heap_t *heap);

/*
** Large blocks (above the size classes) are mappings of their own. A freed one stays committed,
** counted in held_bytes, and serves the heap's next large request of its size or smaller (the
** rest of it is unmapped), until it is purged (unmapped): once it has been free for `ms`
** milliseconds (0 = default, 1000; < 0 = at free), at the heap's next large allocation or free
** or hak_heap_collect; at once by hak_heap_collect(heap, true), when a request would pass the
** limit, and when a heap's cached mappings pass 64 MiB (oldest first). Setting a delay < 0 also
** purges what is cached. Returns 0, or -1 with errno EINVAL for a NULL heap.
*/
int hak_heap_set_purge_delay(hak_heap_t *heap, int32_t ms);

/* The heap's name as given at creation ("heap" by default). */
const char *hak_heap_name(const hak_heap_t *heap);

/*
** One word of the caller's per heap, for bindings that keep state beside a heap they are handed
** (hakmem_lua keeps its accounting there). NULL in a new heap; hak_heap_reset sets it to NULL;
** it dies with the heap, so a later heap at the same address starts with NULL. hakmem never
** dereferences it: point it at a block of the heap itself and reset and destroy free both.
** Any thread; the set is a release store and the read an acquire load. NULL heap: no-op / NULL.
*/
void hak_heap_set_user(hak_heap_t *heap, void *user);
void *hak_heap_user(const hak_heap_t *heap);

/*
** Remote-free notification: fn(heap, arg) is called by the freeing thread when a post of its
** remote frees (see hak_free) makes an owner's remote queue for this heap go from empty to
** non-empty (so notifications coalesce: one per owner until it drains). It runs on an arbitrary
** thread, possibly inside a hakmem call of that thread on another heap (a post happens there),
** and must not free into this heap nor allocate as a guest of a shared_guests heap (it may run
** with a guest lock held). Posts to a shared_guests heap's guest cache do not call it. NULL fn
** removes it; a call already
** started on another thread may still be running when this returns. Used by event loops to
** drain on their own thread (see hakmem_uv.h).
*/
typedef void hak_remote_notify_fn(hak_heap_t *heap, void *arg);
void hak_heap_set_remote_notify(hak_heap_t *heap, hak_remote_notify_fn *fn, void *arg);

/* ---- allocation ---- */

/* Size 0 gives a unique freeable block. Every block is 16-byte aligned. NULL + ENOMEM on
** failure (including sizes near SIZE_MAX and the heap's limit). */
void *hak_heap_malloc(hak_heap_t *heap, size_t size);
/* Zeroed; count*size overflow gives NULL + ENOMEM. */
void *hak_heap_calloc(hak_heap_t *heap, size_t count, size_t size);
/*
** p NULL = malloc. size 0 frees p and returns NULL (as glibc). Keeps contents; stays in place
** when the block's size class allows. A large block never moves to shrink (its tail is unmapped)
** and grows in place or by moving its pages (no copy) while it stays in its own heap; p may
** belong to another heap, and whenever the block has to be copied it moves into `heap`. On
** failure returns NULL, errno ENOMEM, p untouched.
*/
void *hak_heap_realloc(hak_heap_t *heap, void *p, size_t size);
/* alignment: any power of two (tested up to 1 GiB; a large alignment costs address space, not
** held bytes: about size rounded up to 64 KiB). Not a power of two: NULL + EINVAL. */
void *hak_heap_aligned_alloc(hak_heap_t *heap, size_t alignment, size_t size);

/*
** Free from any thread, any heap. NULL is a no-op. Invalid pointers go to the error handler.
** A free by a thread that does not own the block's slab (a remote free) joins the thread's batch
** for that owner; the owner can reuse the block (drain it; the remote notify fires) once the
** batch is posted: when it holds 64 blocks, when the thread frees to another owner, on the
** thread's allocation slow path, in hak_thread_flush, hak_thread_post_remote, hak_heap_drain,
** hak_heap_collect and hak_heap_get_stats called by that thread, and at thread exit. Stats count
** the free when hak_free returns regardless, and a second free of a batched block is reported
** as a double free.
*/
void hak_free(void *p);
/* Same, with the size the caller asked for (checked in debug builds). */
void hak_free_sized(void *p, size_t size);

/* Usable size, >= the size asked for; 0 for NULL or anything not a live hakmem block. */
size_t hak_usable_size(const void *p);

/* The heap owning a live block; NULL for anything else (stack, glibc memory, NULL, freed). */
hak_heap_t *hak_heap_of(const void *p);

/*
** Whether p points into memory hakmem holds: a superslab or a large block's mapping, live or
** freed. False for memory hakmem never handed out (stack, libc malloc, NULL) or has given back
** to the OS. Never reads *p; lock-free, any thread. For shims that see pointers of two
** allocators: `hak_owns(p) ? hak_free(p) : free(p)` (hakmem_uv's replaced allocator), which
** still sends hakmem's own bad frees (double, interior) to the error handler.
*/
bool hak_owns(const void *p);

/*
** The usable size a block requested with n bytes gets (as mimalloc's mi_good_size, jemalloc's
** nallocx): the size class for n <= 1 MiB, where hak_usable_size(hak_heap_malloc(h, n)) is
** exactly this; above, the size of a fresh mapping (n rounded up to 64 KiB), and a block cut
** from a cached mapping may be up to 1 MiB - 64 KiB bigger (a smaller rest stays with it). Never less
** than n; hak_good_size(hak_good_size(n)) == hak_good_size(n). 0 when n can never be allocated.
*/
size_t hak_good_size(size_t n);

/*
** Tagged blocks, for a caller that passes a block's size back at every resize and free (a
** lua_Alloc does): each block carries a tag byte (0-255), found with no lookup beyond the one the
** free itself makes, and the calls can keep the caller's per-tag counts. The rule: a tagged block
** known by `size` bytes holds its tag at p[size] when its usable size is above `size`, and has
** tag 0 otherwise. So a tag other than 0 costs the byte after `size` (the class of size + 1), and
** tag 0 costs nothing (the class of size; a block of exactly a class size has no byte). Use only
** the tagged calls on a tagged block, with the size it is known by (its last allocation or
** resize); hak_usable_size and hak_heap_of work on it.
** Counts: `counts` (NULL: none) has `ntags` entries; every call adds and takes out the bytes
** (the sizes the caller knows) and blocks of its tag, so they are exact at every return. They
** are plain memory: pass them only to calls that never run at once (a Lua state's rule); a
** block whose tag is not below ntags (a wrong size) is not counted.
** - hak_heap_malloc_tagged: as hak_heap_malloc (NULL + ENOMEM); NULL + EINVAL when counts is
**   given and tag >= ntags.
** - hak_heap_realloc_tagged: as hak_heap_realloc from osize to nsize, keeping the tag. A shrink
**   (nsize < osize) never fails: a block that cannot move stays in place. p NULL: a block with
**   tag 0; nsize 0: frees p, NULL.
** - hak_free_tagged: frees p from any thread and returns its tag; -1 for NULL and for what the
**   error handler was given (an invalid pointer, a double free), with nothing freed.
*/
typedef struct hak_tag_count_s {
  size_t bytes; /* sum of the sizes the caller knows its live blocks of this tag by */
  size_t count; /* live blocks of this tag */
} hak_tag_count_t;
void *hak_heap_malloc_tagged(hak_heap_t *heap, size_t size, unsigned char tag,
                             hak_tag_count_t *counts, size_t ntags);
void *hak_heap_realloc_tagged(hak_heap_t *heap, void *p, size_t osize, size_t nsize,
                              hak_tag_count_t *counts, size_t ntags);
int hak_free_tagged(void *p, size_t size, hak_tag_count_t *counts, size_t ntags);

/* ---- the process default heap ---- */

hak_heap_t *hak_default_heap(void);
void *hak_malloc(size_t size);
void *hak_calloc(size_t count, size_t size);
void *hak_realloc(void *p, size_t size);
void *hak_aligned_alloc(size_t alignment, size_t size);

/* Post this thread's pending remote frees; drain its remote queues and give its empty slabs
** back, for every heap it uses. At thread exit the same happens, and the thread's caches (with
** the slabs still holding live blocks) are abandoned to their heaps, to be adopted by the next
** thread that uses the heap. */
void hak_thread_flush(void);

/* Post this thread's pending remote frees to their owners (see hak_free); cheap when there are
** none. For a thread that frees blocks of other threads and then waits: a threadpool worker
** after a job, so the owner's drain sees those frees now. */
void hak_thread_post_remote(void);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* HAKMEM_H */
