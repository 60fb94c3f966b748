/*
** lua_alloc.c: hak_lua_alloc, the lua_Alloc over a hakmem heap, and its per-type accounting.
**
** Promises: the lua_Alloc contract of the 5.4 manual (a shrink never fails); per-heap counts and
** bytes of live Lua blocks by allocation tag. Never: takes a lock or touches shared writable
** memory on the allocation path once a thread has seen the heap (see the accounting box).
**
** A block's tag is known only when it is allocated, so it travels with the block: a tag byte
** at p[size] just after the bytes Lua asked for, where size is the size Lua knows the block by.
** Lua passes that size with every resize and free, so finding the tag costs no lookup in the
** common case, and it works the same on whatever thread frees the block. Untyped blocks whose
** size is exactly a size class go without the byte (see "Where the tag byte goes").
*/
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hakmem_lua.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/*
** Tag byte: the tag in the low bits; UNSIZED marks a block whose hakmem size is no longer
** (Lua's size + 1) because a shrink could not move it, so it must be freed unsized.
*/
#define TAG_MASK 0x7f
#define TAG_UNSIZED 0x80

_Static_assert(HAK_LUA_NTAGS <= TAG_MASK, "tags fit the tag byte");

/*
** {=====================================================================
** Accounting: one record per heap that has live blocks from hak_lua_alloc.
**
** The record cannot hang off `ud` (that is the heap itself), so a registry maps heap -> record.
** Records are found through a small per-thread cache; the registry (mutex) is only visited on a
** cache miss: a thread's first allocation for a heap, or after any record was retired.
** A record's counters are plain fields: they follow the lua_State's rule of one thread at a time
** (handing a state over is synchronised by the caller, which orders these writes too).
** A record is created by the first allocation and retired by the free that leaves the heap with
** no Lua block (the end of lua_close); retiring bumps `epoch`, which voids every thread's cache,
** so a heap later created at the same address never finds a dead record.
** ======================================================================
*/

typedef struct acct_s {
  hak_heap_t *heap;       /* key; constant while registered */
  struct acct_s *next;    /* registry chain; under reg_lock */
  hak_lua_type_stats_t s; /* counters; the state's thread */
} acct_t;

#define REG_BUCKETS 64
#define CACHE_SLOTS 8

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static acct_t *reg[REG_BUCKETS];
static _Atomic unsigned long epoch;

typedef struct {
  const hak_heap_t *heap;
  acct_t *acct;
  unsigned long epoch;
} cache_slot_t;

/* initial-exec unless built for dlopen (HAK_TLS_DYNAMIC, as the core: hakmem/src/internal.h) */
#if defined(HAK_TLS_DYNAMIC) && HAK_TLS_DYNAMIC
static __thread cache_slot_t cache[CACHE_SLOTS];
#else
static __thread cache_slot_t cache[CACHE_SLOTS] __attribute__((tls_model("initial-exec")));
#endif

static unsigned heap_hash(const hak_heap_t *heap, unsigned n) {
  uintptr_t h = (uintptr_t)heap;
  return (unsigned)((h >> 6) ^ (h >> 12)) & (n - 1);
}

static acct_t **reg_slot(const hak_heap_t *heap) {
  acct_t **pp = &reg[heap_hash(heap, REG_BUCKETS)];
  while (*pp != NULL && (*pp)->heap != heap) pp = &(*pp)->next;
  return pp;
}

/* Registry lookup; creates the record when `create`. NULL when absent or out of memory (the
** allocation then goes unaccounted rather than failing). */
static acct_t *acct_lookup_slow(hak_heap_t *heap, int create) {
  pthread_mutex_lock(&reg_lock);
  acct_t **pp = reg_slot(heap);
  acct_t *a = *pp;
  if (a == NULL && create && (a = calloc(1, sizeof *a)) != NULL) {
    a->heap = heap;
    *pp = a;
  }
  unsigned long e = atomic_load_explicit(&epoch, memory_order_relaxed);
  pthread_mutex_unlock(&reg_lock);
  if (a != NULL) cache[heap_hash(heap, CACHE_SLOTS)] = (cache_slot_t){heap, a, e};
  return a;
}

static inline acct_t *acct_of(hak_heap_t *heap) {
  cache_slot_t *c = &cache[heap_hash(heap, CACHE_SLOTS)];
  if (likely(c->heap == heap &&
             c->epoch == atomic_load_explicit(&epoch, memory_order_acquire)))
    return c->acct;
  return acct_lookup_slow(heap, 1);
}

static void acct_retire(acct_t *a) {
  pthread_mutex_lock(&reg_lock);
  acct_t **pp = reg_slot(a->heap);
  if (*pp == a) *pp = a->next;
  atomic_fetch_add_explicit(&epoch, 1, memory_order_release);
  pthread_mutex_unlock(&reg_lock);
  free(a);
}

static inline void acct_add(acct_t *a, unsigned tag, size_t size) {
  if (unlikely(a == NULL)) return;
  a->s.type[tag].bytes += size;
  a->s.type[tag].count++;
  a->s.bytes += size;
  a->s.count++;
}

static inline void acct_sub(acct_t *a, unsigned tag, size_t size) {
  if (unlikely(a == NULL || a->s.type[tag].count == 0)) return; /* born unaccounted */
  a->s.type[tag].bytes -= size;
  a->s.type[tag].count--;
  a->s.bytes -= size;
  if (--a->s.count == 0) acct_retire(a);
}

static inline void acct_resize(acct_t *a, unsigned tag, size_t osize, size_t nsize) {
  if (unlikely(a == NULL || a->s.type[tag].count == 0)) return;
  a->s.type[tag].bytes += nsize - osize; /* modular arithmetic: fine for shrinks */
  a->s.bytes += nsize - osize;
}

int hak_lua_get_type_stats(hak_heap_t *heap, hak_lua_type_stats_t *out) {
  if (heap == NULL || out == NULL) {
    errno = EINVAL;
    return -1;
  }
  acct_t *a = acct_lookup_slow(heap, 0);
  if (a != NULL)
    *out = a->s;
  else
    memset(out, 0, sizeof *out);
  return 0;
}

/* }===================================================================== */

/*
** {=====================================================================
** Where the tag byte goes
**
** Lua sizes most of its vectors in powers of two (arrays of 16-byte values, hash parts of
** 24-byte nodes), which land exactly on hakmem's size classes; one more byte would push each into
** the next class (+25% to +100%). So a block Lua knows by size n is asked for as:
**  - n + 1, tag at p[n], when n is not a class size (the byte fits in the class's slack), and
**    always for typed objects;
**  - n exactly, with no tag byte, for an untyped block (tag 0) whose n is a class size.
** Reading a tag back: when n is not a class size, p[n]; when it is, the block has a tag only if
** it is longer than n (hak_usable_size), else it is an untyped block.
** exact_class mirrors the core's class table (hakmem/src/size_class.c); alloc_test checks the
** two agree. If they ever disagree the cost is memory (a bumped class) or attribution, never
** safety: the tag is only read inside the block.
** ======================================================================
*/

static inline int exact_class(size_t n) {
  if (n <= 128) return (n & 15) == 0;     /* 16, 32, ..., 128 */
  if (n > 32768) return 0;                /* large blocks: page-granular, slack is the rule */
  unsigned sh = 61u - (unsigned)__builtin_clzll(n); /* classes m << sh, m in 4..7 */
  return (n & (((size_t)1 << sh) - 1)) == 0;
}

/* The size hakmem is asked for a block Lua knows by size n. */
static inline size_t request_size(size_t n, unsigned tag) {
  return tag == 0 && exact_class(n) ? n : n + 1;
}

/* The tag byte of a block Lua knows by size n; untyped blocks without one read as 0. */
static inline unsigned tag_byte(const unsigned char *p, size_t n) {
  if (likely(!exact_class(n))) return p[n];
  return hak_usable_size(p) > n ? p[n] : 0;
}

/* }===================================================================== */

static void *alloc_new(hak_heap_t *heap, size_t tagarg, size_t nsize) {
  unsigned tag = tagarg < HAK_LUA_NTAGS ? (unsigned)tagarg : 0; /* others: "something else" */
  size_t req = request_size(nsize, tag);
  unsigned char *p = hak_heap_malloc(heap, req);
  if (unlikely(p == NULL)) return NULL;
  if (req != nsize) p[nsize] = (unsigned char)tag;
  acct_add(acct_of(heap), tag, nsize);
  return p;
}

static void *alloc_resize(hak_heap_t *heap, unsigned char *p, size_t osize, size_t nsize) {
  if (nsize == osize) return p;
  unsigned tag = tag_byte(p, osize) & TAG_MASK;
  size_t req = request_size(nsize, tag);
  unsigned char *q = hak_heap_realloc(heap, p, req);
  if (unlikely(q == NULL)) {
    if (nsize > osize) return NULL;
    /* A shrink that could not move: keep the block, which hakmem still sizes as before
    ** (longer than nsize < osize, so the tag byte at p[nsize] is inside it and is found). */
    q = p;
    q[nsize] = (unsigned char)(tag | TAG_UNSIZED);
  } else if (req != nsize || (q == p && hak_usable_size(q) > nsize)) {
    q[nsize] = (unsigned char)tag; /* also when untyped but kept in a longer block */
  }
  acct_resize(acct_of(heap), tag, osize, nsize);
  return q;
}

void *hak_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  hak_heap_t *heap = ud;
  unsigned char *p = ptr;
  if (nsize == 0) {
    if (p != NULL) {
      unsigned t = tag_byte(p, osize);
      acct_sub(acct_of(heap), t & TAG_MASK, osize);
      if (unlikely(t & TAG_UNSIZED))
        hak_free(p);
      else
        hak_free_sized(p, request_size(osize, t));
    }
    return NULL;
  }
  if (unlikely(nsize == SIZE_MAX)) /* no room for a tag byte; Lua never asks this much */
    return p != NULL && nsize <= osize ? p : NULL;
  if (p == NULL) return alloc_new(heap, osize, nsize);
  return alloc_resize(heap, p, osize, nsize);
}
