/*
** track.h: the tool-support box. Tells Valgrind (built with HAK_VALGRIND) or AddressSanitizer
** (HAK_ASAN) which bytes of hakmem memory a program may touch: user blocks are accessible
** while live, free blocks and unassigned slabs are not, and the allocator opens a free block's
** 16 header bytes only while it reads or writes them. A block that moves (a large block's pages
** moved by mremap) keeps its state (HAK_TRACK_MOVE). Every macro is empty in other builds.
** Valgrind sees each heap as a mempool, so destroy and reset free all of its blocks at once.
*/
#ifndef HAK_TRACK_H
#define HAK_TRACK_H

#include <stddef.h>

#if defined(HAK_VALGRIND)
#include <valgrind/memcheck.h>
#define HAK_TRACKING 1
#define HAK_TRACK_OPEN(p, n) VALGRIND_MAKE_MEM_DEFINED((p), (n))
#define HAK_TRACK_CLOSE(p, n) VALGRIND_MAKE_MEM_NOACCESS((p), (n))
#define HAK_TRACK_ALLOC(h, p, n) VALGRIND_MEMPOOL_ALLOC((h), (p), (n))
#define HAK_TRACK_FREE(h, p, n) VALGRIND_MEMPOOL_FREE((h), (p))
#define HAK_TRACK_RESIZE(h, p, n) VALGRIND_MEMPOOL_CHANGE((h), (p), (p), (n))
#define HAK_TRACK_MOVE(h, from, to, n) VALGRIND_MEMPOOL_CHANGE((h), (from), (to), (n))
#define HAK_TRACK_HEAP_NEW(h) VALGRIND_CREATE_MEMPOOL((h), 0, 0)
#define HAK_TRACK_HEAP_GONE(h) VALGRIND_DESTROY_MEMPOOL((h))
#define HAK_TRACK_UNMAP(p, n) ((void)0)
#define HAK_TRACK_QUIET_BEGIN() VALGRIND_DISABLE_ERROR_REPORTING
#define HAK_TRACK_QUIET_END() VALGRIND_ENABLE_ERROR_REPORTING
#define HAK_TRACK_IS_CLOSED(p) 0
#define HAK_TRACK_IS_OPEN(p) 0
#define HAK_TRACK_KEY_HIDDEN(b) 0
#define HAK_TRACK_SLACK(p, size, usable) ((void)0)
#define HAK_TRACK_ACCESSIBLE(p, usable) (usable)
#define HAK_TRACK_GRANT(p, n) ((void)0)
#elif defined(HAK_ASAN)
#include <sanitizer/asan_interface.h>
#define HAK_TRACKING 1
#define HAK_TRACK_OPEN(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define HAK_TRACK_CLOSE(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define HAK_TRACK_ALLOC(h, p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define HAK_TRACK_FREE(h, p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define HAK_TRACK_RESIZE(h, p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define HAK_TRACK_MOVE(h, from, to, n) ASAN_UNPOISON_MEMORY_REGION((to), (n))
#define HAK_TRACK_HEAP_NEW(h) ((void)0)
#define HAK_TRACK_HEAP_GONE(h) ((void)0)
#define HAK_TRACK_UNMAP(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define HAK_TRACK_QUIET_BEGIN() ((void)0)
#define HAK_TRACK_QUIET_END() ((void)0)
#define HAK_TRACK_IS_CLOSED(p) __asan_address_is_poisoned(p)
#define HAK_TRACK_IS_OPEN(p) (!__asan_address_is_poisoned(p))
/* A live block whose request ends before its key word. */
#define HAK_TRACK_KEY_HIDDEN(b) (__asan_region_is_poisoned(&(b)->key, sizeof (b)->key) != 0)
/* The bytes past the request are poisoned too, until hak_usable_size grants them. */
#define HAK_TRACK_SLACK(p, size, usable)                                           \
  do {                                                                             \
    size_t open_ = (size) ? (size) : 1; /* a live block keeps its first byte open */ \
    ASAN_UNPOISON_MEMORY_REGION((p), open_);                                       \
    ASAN_POISON_MEMORY_REGION((char *)(p) + open_, (usable) - open_);              \
  } while (0)
#define HAK_TRACK_ACCESSIBLE(p, usable) hak__asan_accessible((p), (usable))
#define HAK_TRACK_GRANT(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
static inline size_t hak__asan_accessible(const void *p, size_t usable) {
  const char *bad = (const char *)__asan_region_is_poisoned((void *)p, usable);
  return bad ? (size_t)(bad - (const char *)p) : usable;
}
#else
#define HAK_TRACKING 0
#define HAK_TRACK_OPEN(p, n) ((void)0)
#define HAK_TRACK_CLOSE(p, n) ((void)0)
#define HAK_TRACK_ALLOC(h, p, n) ((void)0)
#define HAK_TRACK_FREE(h, p, n) ((void)0)
#define HAK_TRACK_RESIZE(h, p, n) ((void)0)
#define HAK_TRACK_MOVE(h, from, to, n) ((void)0)
#define HAK_TRACK_HEAP_NEW(h) ((void)0)
#define HAK_TRACK_HEAP_GONE(h) ((void)0)
#define HAK_TRACK_UNMAP(p, n) ((void)0)
#define HAK_TRACK_QUIET_BEGIN() ((void)0)
#define HAK_TRACK_QUIET_END() ((void)0)
#define HAK_TRACK_IS_CLOSED(p) 0
#define HAK_TRACK_IS_OPEN(p) 0
#define HAK_TRACK_KEY_HIDDEN(b) 0
#define HAK_TRACK_SLACK(p, size, usable) ((void)0)
#define HAK_TRACK_ACCESSIBLE(p, usable) (usable)
#define HAK_TRACK_GRANT(p, n) ((void)0)
#endif

#endif
