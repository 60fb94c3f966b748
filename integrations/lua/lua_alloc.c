/*
** lua_alloc.c: hak_lua_alloc, the lua_Alloc over a hakmem heap, and its per-type accounting.
**
** Promises: the lua_Alloc contract of the 5.4 manual (a shrink never fails); per-heap counts and
** bytes of live Lua blocks by allocation tag, exact, and an optional limit on those bytes. Never:
** takes a lock or touches writable memory shared with other heaps on the allocation path (see
** the accounting box).
**
** A block's tag is known only when it is allocated, so it travels with the block: a tag byte
** at p[size] just after the bytes Lua asked for, where size is the size Lua knows the block by.
** Lua passes that size with every resize and free, so finding the tag costs no lookup in the
** common case, and it works the same on whatever thread frees the block. Untyped blocks whose
** size is exactly a size class go without the byte (see "Where the tag byte goes").
*/
#include <errno.h>
#include <stdint.h>
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
** `ud` is the heap itself, so the record hangs off the heap's user word (hak_heap_user), and is
** itself a block of the heap: hak_heap_reset clears the word and frees the record with everything
** else, hak_heap_destroy takes both, and a heap later made at the same address starts with no
** record. Nothing else is shared: no registry, no lock, no global counter.
** The record is created by the heap's first Lua allocation and freed by the free that leaves the
** heap with no Lua block (the end of lua_close). Its fields are plain: they follow the
** lua_State's rule of one thread at a time (handing a state over is synchronised by the caller,
** which orders these writes too).
** ======================================================================
*/

typedef struct acct_s {
  hak_lua_type_stats_t s;
  size_t limit; /* cap on s.bytes, Lua's own count; 0 = none */
} acct_t;

static inline acct_t *acct_peek(const hak_heap_t *heap) { return hak_heap_user(heap); }

/* The heap's record, created on its first Lua allocation; NULL when out of memory. */
static inline acct_t *acct_get(hak_heap_t *heap) {
  acct_t *a = acct_peek(heap);
  if (likely(a != NULL)) return a;
  a = hak_heap_calloc(heap, 1, sizeof *a);
  if (a != NULL) hak_heap_set_user(heap, a);
  return a;
}

/* Whether Lua's bytes may grow by `more` under the record's limit. */
static inline int acct_room(const acct_t *a, size_t more) {
  return a->limit == 0 || (a->s.bytes <= a->limit && more <= a->limit - a->s.bytes);
}

static inline void acct_add(acct_t *a, unsigned tag, size_t size) {
  a->s.type[tag].bytes += size;
  a->s.type[tag].count++;
  a->s.bytes += size;
  a->s.count++;
}

static inline void acct_sub(hak_heap_t *heap, unsigned tag, size_t size) {
  acct_t *a = acct_peek(heap);
  if (unlikely(a == NULL || a->s.type[tag].count == 0)) return;
  a->s.type[tag].bytes -= size;
  a->s.type[tag].count--;
  a->s.bytes -= size;
  if (--a->s.count == 0) {
    hak_heap_set_user(heap, NULL);
    hak_free(a);
  }
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
  const acct_t *a = acct_peek(heap);
  if (a != NULL)
    *out = a->s;
  else
    memset(out, 0, sizeof *out);
  return 0;
}

static hak_heap_t *heap_of_state(lua_State *L) {
  void *ud = NULL;
  return L != NULL && lua_getallocf(L, &ud) == hak_lua_alloc ? ud : NULL;
}

int hak_lua_set_limit(lua_State *L, size_t lua_bytes) {
  hak_heap_t *heap = heap_of_state(L);
  acct_t *a = heap != NULL ? acct_peek(heap) : NULL;
  if (a == NULL) {
    errno = EINVAL;
    return -1;
  }
  a->limit = lua_bytes;
  return 0;
}

size_t hak_lua_get_limit(lua_State *L) {
  hak_heap_t *heap = heap_of_state(L);
  const acct_t *a = heap != NULL ? acct_peek(heap) : NULL;
  return a != NULL ? a->limit : 0;
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
**  - n exactly, with no tag byte, for an untyped block (tag 0) whose n is a class size
**    (hak_good_size(n) == n).
** Reading a tag back: when n is not a class size, p[n]; when it is, the block has a tag only if
** it is longer than n (hak_usable_size), else it is an untyped block. So an untyped block of
** exactly n bytes that hakmem made longer gets a 0 at p[n]: one kept in place by a shrink, and
** a large one (above EXACT_MAX) on a reused, bigger mapping.
** ======================================================================
*/

/* hakmem.h: up to 1 MiB a fresh block of n bytes is exactly hak_good_size(n) long. */
#define EXACT_MAX ((size_t)1 << 20)

static inline int exact_class(size_t n) { return hak_good_size(n) == n; }

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
  acct_t *a = acct_get(heap);
  if (unlikely(a == NULL || !acct_room(a, nsize))) return NULL;
  size_t req = request_size(nsize, tag);
  unsigned char *p = hak_heap_malloc(heap, req);
  if (unlikely(p == NULL)) return NULL;
  if (req != nsize || (nsize > EXACT_MAX && hak_usable_size(p) > nsize))
    p[nsize] = (unsigned char)tag;
  acct_add(a, tag, nsize);
  return p;
}

static void *alloc_resize(hak_heap_t *heap, unsigned char *p, size_t osize, size_t nsize) {
  if (nsize == osize) return p;
  acct_t *a = acct_peek(heap);
  if (nsize > osize && a != NULL && !acct_room(a, nsize - osize)) return NULL;
  unsigned tag = tag_byte(p, osize) & TAG_MASK;
  size_t req = request_size(nsize, tag);
  unsigned char *q = hak_heap_realloc(heap, p, req);
  if (unlikely(q == NULL)) {
    if (nsize > osize) return NULL;
    /* A shrink that could not move: keep the block, which hakmem still sizes as before
    ** (longer than nsize < osize, so the tag byte at p[nsize] is inside it and is found). */
    q = p;
    q[nsize] = (unsigned char)(tag | TAG_UNSIZED);
  } else if (req != nsize || ((q == p || nsize > EXACT_MAX) && hak_usable_size(q) > nsize)) {
    q[nsize] = (unsigned char)tag; /* also when untyped but kept in a longer block */
  }
  acct_resize(a, tag, osize, nsize);
  return q;
}

void *hak_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  hak_heap_t *heap = ud;
  unsigned char *p = ptr;
  if (nsize == 0) {
    if (p != NULL) {
      unsigned t = tag_byte(p, osize);
      acct_sub(heap, t & TAG_MASK, osize);
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
