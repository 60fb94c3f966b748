/*
** lua_alloc.c: hak_lua_alloc, the lua_Alloc over a hakmem heap, and its per-type accounting.
**
** Promises: the lua_Alloc contract of the 5.4 manual (a shrink never fails); per-heap counts and
** bytes of live Lua blocks by allocation tag, exact, and an optional limit on those bytes. Never:
** takes a lock or touches writable memory shared with other heaps on the allocation path (see
** the accounting box).
**
** A block's tag is known only when it is allocated, so it travels with the block: blocks are
** hakmem's tagged blocks (hakmem.h), whose tag byte hakmem finds from the size Lua passes with
** every resize and free, on whatever thread frees the block. An untyped block whose size is
** exactly a size class goes without the byte.
*/
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "hakmem_lua.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define HAK_LUA_NOINLINE __attribute__((noinline))

_Static_assert(HAK_LUA_NTAGS <= 256, "tags fit hakmem's tag byte");

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
  hak_heap_t *heap;
} acct_t;

static inline acct_t *acct_peek(const hak_heap_t *heap) { return hak_heap_user(heap); }

/* The heap's record, created on its first Lua allocation; NULL when out of memory. */
static inline acct_t *acct_get(hak_heap_t *heap) {
  acct_t *a = acct_peek(heap);
  if (likely(a != NULL)) return a;
  a = hak_heap_calloc(heap, 1, sizeof *a);
  if (a == NULL) return NULL;
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
** The allocator proper, given the heap and its record `a` (NULL only on a heap with no Lua
** block yet, or none left). Two lua_Alloc functions call it: hak_lua_alloc, whose ud is the
** heap (the record is found through the heap's user word), and the one hak_lua_newstate
** installs, whose ud is the record itself (no lookup on the allocation path).
**
** Blocks are hakmem's tagged blocks (hakmem.h): the tag byte at p[size] when the block is longer
** than the size Lua knows it by, else tag 0. So an untyped vector of a class size (Lua's powers
** of two of 16-byte values) takes exactly its class, and hakmem finds the tag with the slab it
** resolves for the free anyway.
** ======================================================================
*/

/* Any new block: a limit to check, or a tag Lua does not use. */
static HAK_LUA_NOINLINE void *alloc_new_any(hak_heap_t *heap, acct_t *a, size_t tagarg,
                                            size_t nsize) {
  unsigned tag = tagarg < HAK_LUA_NTAGS ? (unsigned)tagarg : 0; /* others: "something else" */
  if (unlikely(!acct_room(a, nsize))) return NULL;
  void *p = hak_heap_malloc_tagged(heap, nsize, (unsigned char)tag);
  if (likely(p != NULL)) acct_add(a, tag, nsize);
  return p;
}

/* hakmem was out of memory: the counts taken ahead go back. */
static HAK_LUA_NOINLINE void *alloc_undo(acct_t *a, unsigned tag, size_t nsize) {
  (void)acct_sub(a, tag, nsize); /* the record stays, even if that was its only block */
  return NULL;
}

/* The common new block (no Lua-bytes limit): counted before the call, so only the failure needs
** anything after it. */
static HAK_LUA_NOINLINE void *alloc_new(hak_heap_t *heap, acct_t *a, size_t tagarg, size_t nsize) {
  if (unlikely(a->limit != 0 || tagarg >= HAK_LUA_NTAGS))
    return alloc_new_any(heap, a, tagarg, nsize);
  unsigned tag = (unsigned)tagarg;
  acct_add(a, tag, nsize);
  void *p = hak_heap_malloc_tagged(heap, nsize, (unsigned char)tag);
  if (unlikely(p == NULL)) return alloc_undo(a, tag, nsize);
  return p;
}

/* A shrink never fails (hakmem keeps a block that cannot move). */
static HAK_LUA_NOINLINE void *alloc_resize(hak_heap_t *heap, acct_t *a, void *p, size_t osize,
                                           size_t nsize) {
  if (nsize == osize) return p;
  if (nsize > osize && a != NULL && !acct_room(a, nsize - osize)) return NULL;
  unsigned char tag;
  void *q = hak_heap_realloc_tagged(heap, p, osize, nsize, &tag);
  if (likely(q != NULL) && likely(tag < HAK_LUA_NTAGS)) acct_resize(a, tag, osize, nsize);
  return q;
}

/* The heap's last Lua block is gone (the end of lua_close): the record goes with it. */
static HAK_LUA_NOINLINE void *free_last(hak_heap_t *heap, acct_t *a) {
  acct_release(heap, a);
  return NULL;
}

static HAK_LUA_NOINLINE void *free_block(hak_heap_t *heap, acct_t *a, void *p, size_t osize) {
  if (p == NULL) return NULL;
  int tag = hak_free_tagged(p, osize);
  /* -1: hakmem reported it; a tag never written here: a wrong osize, counted as nothing */
  if (unlikely((unsigned)tag >= HAK_LUA_NTAGS)) return NULL;
  if (unlikely(acct_sub(a, (unsigned)tag, osize))) return free_last(heap, a);
  return NULL;
}

/* The lua_Alloc contract; a is NULL only when p is NULL or nsize is 0 (see above). Each case
** is a function of its own, reached by a tail call: the dispatch saves no register. */
static inline void *lua_alloc(hak_heap_t *heap, acct_t *a, void *p, size_t osize, size_t nsize) {
  if (nsize == 0) return free_block(heap, a, p, osize);
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
