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
#define HAK_LUA_NOINLINE __attribute__((noinline))

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
  size_t limit;   /* cap on s.bytes, Lua's own count; 0 = none */
  uint64_t exact; /* bit k: 16 (k + 1) is a class size (hak_good_size), for the tag byte's rule */
  hak_heap_t *heap;
} acct_t;

static uint64_t exact_bits(void);

static inline acct_t *acct_peek(const hak_heap_t *heap) { return hak_heap_user(heap); }

/* The heap's record, created on its first Lua allocation; NULL when out of memory. */
static inline acct_t *acct_get(hak_heap_t *heap) {
  acct_t *a = acct_peek(heap);
  if (likely(a != NULL)) return a;
  a = hak_heap_calloc(heap, 1, sizeof *a);
  if (a == NULL) return NULL;
  a->exact = exact_bits();
  a->heap = heap;
  hak_heap_set_user(heap, a);
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

/* Takes a block out of the counts; true when it was the heap's last Lua block, whose caller
** then frees the record (acct_release). */
static inline int acct_sub(acct_t *a, unsigned tag, size_t size) {
  if (unlikely(a == NULL || a->s.type[tag].count == 0)) return 0;
  a->s.type[tag].bytes -= size;
  a->s.type[tag].count--;
  a->s.bytes -= size;
  return --a->s.count == 0;
}

static void acct_release(hak_heap_t *heap, acct_t *a) {
  hak_heap_set_user(heap, NULL);
  hak_free(a);
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

static void *state_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

hak_heap_t *hak_lua_heap(lua_State *L) {
  void *ud = NULL;
  lua_Alloc f = L != NULL ? lua_getallocf(L, &ud) : NULL;
  if (f == hak_lua_alloc) return ud;
  if (f == state_alloc) return ((acct_t *)ud)->heap;
  return NULL;
}

int hak_lua_set_limit(lua_State *L, size_t lua_bytes) {
  hak_heap_t *heap = hak_lua_heap(L);
  acct_t *a = heap != NULL ? acct_peek(heap) : NULL;
  if (a == NULL) {
    errno = EINVAL;
    return -1;
  }
  a->limit = lua_bytes;
  return 0;
}

size_t hak_lua_get_limit(lua_State *L) {
  hak_heap_t *heap = hak_lua_heap(L);
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
/* Sizes up to this are answered from the record's `exact` bits, with no call. */
#define EXACT_BITS_MAX ((size_t)64 * 16)

static uint64_t exact_bits(void) {
  uint64_t bits = 0;
  for (size_t k = 0; k < 64; k++)
    if (hak_good_size(16 * (k + 1)) == 16 * (k + 1)) bits |= (uint64_t)1 << k;
  return bits;
}

/* Whether n is a class size; a is the heap's record, or NULL (then hakmem is asked). */
static inline int exact_class(const acct_t *a, size_t n) {
  if (likely(a != NULL && n <= EXACT_BITS_MAX))
    return (n & 15) == 0 && n != 0 && (a->exact >> ((n >> 4) - 1) & 1);
  return hak_good_size(n) == n;
}

/* The size hakmem is asked for a block Lua knows by size n (exact: exact_class(n)). */
static inline size_t request_size(size_t n, unsigned tag, int exact) {
  return tag == 0 && exact ? n : n + 1;
}

/* The tag byte of a block Lua knows by size n; untyped blocks without one read as 0. */
static inline unsigned tag_byte(const unsigned char *p, size_t n, int exact) {
  if (likely(!exact)) return p[n];
  return hak_usable_size(p) > n ? p[n] : 0;
}

/* }===================================================================== */

/*
** {=====================================================================
** The allocator proper, given the heap and its record `a` (NULL only on a heap with no Lua
** block yet, or none left). Two lua_Alloc functions call it: hak_lua_alloc, whose ud is the
** heap (the record is found through the heap's user word), and the one hak_lua_newstate
** installs, whose ud is the record itself (no lookup on the allocation path).
** ======================================================================
*/

/* Any new block: a limit to check, a size above the record's bits, or a tag Lua does not use. */
static HAK_LUA_NOINLINE void *alloc_new_any(hak_heap_t *heap, acct_t *a, size_t tagarg,
                                            size_t nsize) {
  unsigned tag = tagarg < HAK_LUA_NTAGS ? (unsigned)tagarg : 0; /* others: "something else" */
  if (unlikely(!acct_room(a, nsize))) return NULL;
  size_t req = request_size(nsize, tag, exact_class(a, nsize));
  unsigned char *p = hak_heap_malloc(heap, req);
  if (unlikely(p == NULL)) return NULL;
  if (req != nsize || (nsize > EXACT_MAX && hak_usable_size(p) > nsize))
    p[nsize] = (unsigned char)tag;
  acct_add(a, tag, nsize);
  return p;
}

/* hakmem was out of memory: the counts taken ahead go back. */
static HAK_LUA_NOINLINE void *alloc_undo(acct_t *a, unsigned tag, size_t nsize) {
  (void)acct_sub(a, tag, nsize); /* the record stays, even if that was its only block */
  return NULL;
}

/* The common new block (no Lua-bytes limit, a size up to EXACT_BITS_MAX): counted before the
** call, so all that must survive it is what the tag byte needs. */
static HAK_LUA_NOINLINE void *alloc_new(hak_heap_t *heap, acct_t *a, size_t tagarg, size_t nsize) {
  if (unlikely(a->limit != 0 || nsize > EXACT_BITS_MAX || tagarg >= HAK_LUA_NTAGS))
    return alloc_new_any(heap, a, tagarg, nsize);
  unsigned tag = (unsigned)tagarg;
  acct_add(a, tag, nsize);
  int bare = tag == 0 && exact_class(a, nsize); /* a class size, untyped: no tag byte */
  unsigned char *p = hak_heap_malloc(heap, nsize + !bare);
  if (unlikely(p == NULL)) return alloc_undo(a, tag, nsize);
  if (!bare) p[nsize] = (unsigned char)tag;
  return p;
}

static HAK_LUA_NOINLINE void *alloc_resize(hak_heap_t *heap, acct_t *a, unsigned char *p, size_t osize,
                          size_t nsize) {
  if (nsize == osize) return p;
  if (nsize > osize && a != NULL && !acct_room(a, nsize - osize)) return NULL;
  unsigned tag = tag_byte(p, osize, exact_class(a, osize)) & TAG_MASK;
  size_t req = request_size(nsize, tag, exact_class(a, nsize));
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

/* The heap's last Lua block (the end of lua_close): the record goes with it. */
static HAK_LUA_NOINLINE void *free_last(hak_heap_t *heap, acct_t *a, unsigned char *p) {
  acct_release(heap, a);
  hak_free(p);
  return NULL;
}

/* Frees a block Lua knows by size osize; exact: osize is a class size (exact_class). */
static inline void *free_sized(hak_heap_t *heap, acct_t *a, unsigned char *p, size_t osize,
                               int exact) {
  unsigned t = tag_byte(p, osize, exact);
  if (unlikely(acct_sub(a, t & TAG_MASK, osize))) return free_last(heap, a, p);
  if (unlikely(t & TAG_UNSIZED))
    hak_free(p);
  else
    hak_free_sized(p, request_size(osize, t, exact));
  return NULL;
}

/* A class-size block: its tag byte, if any, is found by asking hakmem for its length. */
static HAK_LUA_NOINLINE void *free_exact(hak_heap_t *heap, acct_t *a, unsigned char *p,
                                         size_t osize) {
  return free_sized(heap, a, p, osize, 1);
}

/* A block above EXACT_BITS_MAX, or on a heap with no record: hakmem says if its size is exact. */
static HAK_LUA_NOINLINE void *free_other(hak_heap_t *heap, acct_t *a, unsigned char *p,
                                         size_t osize) {
  return free_sized(heap, a, p, osize, exact_class(a, osize));
}

/* The common case calls nothing before the free itself, so it keeps nothing in registers. */
static HAK_LUA_NOINLINE void *free_block(hak_heap_t *heap, acct_t *a, unsigned char *p,
                                         size_t osize) {
  if (p == NULL) return NULL;
  if (unlikely(a == NULL || osize > EXACT_BITS_MAX)) return free_other(heap, a, p, osize);
  if (exact_class(a, osize)) return free_exact(heap, a, p, osize);
  return free_sized(heap, a, p, osize, 0);
}

/* The lua_Alloc contract; a is NULL only when p is NULL or nsize is 0 (see above). Each case
** is a function of its own, reached by a tail call: the dispatch saves no register. */
static inline void *lua_alloc(hak_heap_t *heap, acct_t *a, unsigned char *p, size_t osize,
                              size_t nsize) {
  if (nsize == 0) return free_block(heap, a, p, osize);
  if (unlikely(nsize == SIZE_MAX)) /* no room for a tag byte; Lua never asks this much */
    return p != NULL && nsize <= osize ? p : NULL;
  if (p == NULL) return alloc_new(heap, a, osize, nsize);
  return alloc_resize(heap, a, p, osize, nsize);
}

void *hak_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  hak_heap_t *heap = ud;
  acct_t *a = acct_peek(heap);
  if (unlikely(a == NULL) && ptr == NULL && nsize != 0 && (a = acct_get(heap)) == NULL)
    return NULL;
  return lua_alloc(heap, a, ptr, osize, nsize);
}

/* hak_lua_newstate's: ud is the heap's record, which lives as long as the state (its last free,
** the main thread's block, is the free that leaves the heap with no Lua block). */
static void *state_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  acct_t *a = ud;
  return lua_alloc(a->heap, a, ptr, osize, nsize);
}

lua_State *hak__lua_newstate_raw(hak_heap_t *heap) {
  acct_t *a = acct_get(heap);
  if (a == NULL) return NULL;
  lua_State *L = lua_newstate(state_alloc, a);
  if (L == NULL && acct_peek(heap) == a && a->s.count == 0)
    acct_release(heap, a); /* no Lua block made it: the record goes too */
  return L;
}

/* }===================================================================== */
