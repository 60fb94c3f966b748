/*
** internal.h: shared macros and constants of the hakmem boxes. No state, no functions with
** side effects. Every geometry constant the design depends on is here, with its static checks.
*/
#ifndef HAK_INTERNAL_H
#define HAK_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define HAK_LIKELY(x) __builtin_expect(!!(x), 1)
#define HAK_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HAK_NOINLINE __attribute__((noinline))
#define HAK_INLINE static inline __attribute__((always_inline))
/* Thread-local data. initial-exec (one %fs-relative access) for the static library, the
** override and programs linked with the shared library; HAK_TLS_DYNAMIC=1 builds a shared
** library that dlopen can load after other libraries took the static TLS space (local-dynamic:
** a __tls_get_addr call per function that touches TLS; docs/BUILD.md has its cost). */
#if defined(HAK_TLS_DYNAMIC) && HAK_TLS_DYNAMIC
#define HAK_TLS __thread __attribute__((tls_model("local-dynamic")))
#else
#define HAK_TLS __thread __attribute__((tls_model("initial-exec")))
#endif
/* Internal data reached from the fast paths: PC-relative, not through the GOT. */
#define HAK_HIDDEN __attribute__((visibility("hidden")))
#define HAK_CACHELINE 64

/* Geometry: a superslab is 4 MiB, naturally aligned, cut into 64 slabs of 64 KiB. Slab 0 holds
** the superslab header and all slab metadata, so user blocks never share a page with metadata. */
#define HAK_SLAB_SHIFT 16
#define HAK_SLAB_SIZE ((size_t)1 << HAK_SLAB_SHIFT)
#define HAK_SS_SHIFT 22
#define HAK_SS_SIZE ((size_t)1 << HAK_SS_SHIFT)
#define HAK_SS_MASK (HAK_SS_SIZE - 1)
#define HAK_SLABS_PER_SS ((int)(HAK_SS_SIZE / HAK_SLAB_SIZE))

/* Size classes: 16..128 in steps of 16, then 4 classes per doubling up to 32 KiB (small: many
** blocks per 64 KiB slab); then medium, a block being a span of contiguous slabs of a
** superslab: 64 KiB to 512 KiB in steps of 64 KiB, and one class of 1 MiB for 512 KiB-1 MiB
** (as mimalloc's bins: a block there grows by realloc without moving). Larger blocks are
** mappings of their own (large.h). */
#define HAK_SMALL_CLASSES 40
#define HAK_MEDIUM_CLASSES 9
#define HAK_CLASSES (HAK_SMALL_CLASSES + HAK_MEDIUM_CLASSES)
#define HAK_SMALL_MAX ((size_t)32768)
#define HAK_MEDIUM_MAX ((size_t)16 << HAK_SLAB_SHIFT)
#define HAK_MIN_ALIGN 16
/* Sizes up to HAK_DIRECT_MAX find their slab in a cache's direct table, one entry per 16 bytes
** (every class up to it is a multiple of 16). */
#define HAK_DIRECT_MAX ((size_t)1024)
#define HAK_DIRECT_N ((int)(HAK_DIRECT_MAX / 16 + 1))

/* Thread-cache slots: every live heap has a slot number (recycled when it is destroyed). A
** thread finds its cache for the heap in its TLS table, one flat array of HAK_TLS_MAX_SLOTS + 1
** entries mapped at the thread's first attach (its untouched pages cost nothing); before that
** the thread's table pointer points at a shared all-zero table. Heaps beyond HAK_TLS_MAX_SLOTS
** live at once have no slot: their offset is that of the last entry, which is never written,
** and their caches are found on the thread's list. */
#define HAK_TLS_MAX_SLOTS ((uint32_t)32896)
#define HAK_NO_SLOT HAK_TLS_MAX_SLOTS

/* The calling thread's identity for slab ownership: its thread pointer (one %fs load on
** x86-64), unique among live threads. */
#define HAK_THREAD_ID() ((uintptr_t)__builtin_thread_pointer())

/* Relaxed counters: written only by their owner thread, read by any thread for stats.
** On x86 these compile to a plain load/add/store, no lock prefix. */
#define HAK_COUNTER_ADD(c, n) \
  atomic_store_explicit(&(c), atomic_load_explicit(&(c), memory_order_relaxed) + (n), \
                        memory_order_relaxed)
#define HAK_COUNTER_GET(c) atomic_load_explicit(&(c), memory_order_relaxed)

/* Owner-written slab counters on the fast paths: a plain memory increment (one instruction).
** Readers (stats, under the heap lock) load them with HAK_OWNED_GET; a torn read is
** impossible for an aligned word on the targets we build for. TSan builds use relaxed atomics
** so the race checker sees what is intended. */
#ifdef HAK_TSAN
#define HAK_OWNED_INC(c) __atomic_store_n(&(c), __atomic_load_n(&(c), __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED)
#define HAK_OWNED_SET(c, v) __atomic_store_n(&(c), (v), __ATOMIC_RELAXED)
#define HAK_OWNED_DEC(c) hak__owned_dec(&(c))
static inline uint64_t hak__owned_dec(uint64_t *c) {
  uint64_t v = __atomic_load_n(c, __ATOMIC_RELAXED) - 1;
  __atomic_store_n(c, v, __ATOMIC_RELAXED);
  return v;
}
#else
#define HAK_OWNED_INC(c) ((void)((c)++))
#define HAK_OWNED_SET(c, v) ((void)((c) = (v)))
#define HAK_OWNED_DEC(c) (--(c)) /* the new value */
#endif
#define HAK_OWNED_GET(c) __atomic_load_n(&(c), __ATOMIC_RELAXED)

/* Locks held for a few hundred cycles: spin briefly before sleeping (glibc's adaptive
** mutex), since a futex wait/wake pair costs more than the critical section. */
#define HAK_MUTEX_INIT PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
#define hak__mutex_init(m)                                          \
  do {                                                              \
    pthread_mutexattr_t a_;                                         \
    pthread_mutexattr_init(&a_);                                    \
    pthread_mutexattr_settype(&a_, PTHREAD_MUTEX_ADAPTIVE_NP);      \
    pthread_mutex_init((m), &a_);                                   \
    pthread_mutexattr_destroy(&a_);                                 \
  } while (0)

#ifdef HAK_DEBUG
#include <assert.h>
#define HAK_ASSERT(x) assert(x)
#else
#define HAK_ASSERT(x) ((void)0)
#endif

#endif
