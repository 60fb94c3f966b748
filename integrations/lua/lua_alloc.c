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
  hak_tag_count_t type[HAK_LUA_NTAGS]; /* kept by hakmem's tagged calls (hakmem.h) */
  size_t limit;                        /* cap on Lua's own bytes; 0 = none */
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

/* Lua's bytes and blocks: the sums over the tags (only limits and queries need them). */
static size_t acct_bytes(const acct_t *a) {
  size_t n = 0;
  for (int t = 0; t < HAK_LUA_NTAGS; t++) n += a->type[t].bytes;
  return n;
}
static size_t acct_count(const acct_t *a) {
  size_t n = 0;
  for (int t = 0; t < HAK_LUA_NTAGS; t++) n += a->type[t].count;
  return n;
}

/* Whether Lua's bytes may grow by `more` under the record's limit. */
static int acct_room(const acct_t *a, size_t more) {
  size_t bytes = acct_bytes(a);
  return a->limit == 0 || (bytes <= a->limit && more <= a->limit - bytes);
}

static void acct_release(hak_heap_t *heap, acct_t *a) {
  hak_heap_set_user(heap, NULL);
  hak_free(a);
}

int hak_lua_get_type_stats(hak_heap_t *heap, hak_lua_type_stats_t *out) {
  if (heap == NULL || out == NULL) {
    errno = EINVAL;
    return -1;
  }
  memset(out, 0, sizeof *out);
  const acct_t *a = acct_peek(heap);
  if (a == NULL) return 0;
  for (int t = 0; t < HAK_LUA_NTAGS; t++) {
    out->type[t].bytes = a->type[t].bytes;
    out->type[t].count = a->type[t].count;
  }
  out->bytes = acct_bytes(a);
  out->count = acct_count(a);
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
** The allocator proper, given the heap and its record `a`. Two lua_Alloc functions call it:
** hak_lua_alloc, whose ud is the heap (the record is found through the heap's user word), and
** the one hak_lua_newstate installs, whose ud is the record itself (no lookup on the allocation
** path).
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
  return hak_heap_malloc_tagged(heap, nsize, (unsigned char)tag, a->type, HAK_LUA_NTAGS);
}

/* The common new block (no Lua-bytes limit): hakmem counts it. */
static HAK_LUA_NOINLINE void *alloc_new(hak_heap_t *heap, acct_t *a, size_t tagarg, size_t nsize) {
  if (unlikely(a->limit != 0 || tagarg >= HAK_LUA_NTAGS))
    return alloc_new_any(heap, a, tagarg, nsize);
  return hak_heap_malloc_tagged(heap, nsize, (unsigned char)tagarg, a->type, HAK_LUA_NTAGS);
}

/* A shrink never fails (hakmem keeps a block that cannot move). */
static HAK_LUA_NOINLINE void *alloc_resize(hak_heap_t *heap, acct_t *a, void *p, size_t osize,
                                           size_t nsize) {
  if (unlikely(a->limit != 0) && nsize > osize && !acct_room(a, nsize - osize)) return NULL;
  return hak_heap_realloc_tagged(heap, p, osize, nsize, a->type, HAK_LUA_NTAGS);
}

/* A tag's count reached 0: if every count did, that was the heap's last Lua block (the end of
** lua_close), and the record goes with it. */
static HAK_LUA_NOINLINE void *free_last(acct_t *a) {
  if (acct_count(a) == 0) acct_release(a->heap, a);
  return NULL;
}

static HAK_LUA_NOINLINE void *free_block(acct_t *a, void *p, size_t osize) {
  if (p == NULL) return NULL;
  if (a == NULL) { /* hak_lua_alloc on a heap with no Lua block */
    (void)hak_free_tagged(p, osize, NULL, 0);
    return NULL;
  }
  int tag = hak_free_tagged(p, osize, a->type, HAK_LUA_NTAGS);
  /* -1: NULL, or hakmem reported it; a tag never written here (a wrong osize): not counted */
  if (unlikely((unsigned)tag < HAK_LUA_NTAGS && a->type[tag].count == 0)) return free_last(a);
  return NULL;
}

/* The lua_Alloc contract, given the heap's record. Each case is a function of its own, reached
** by a tail call: the dispatch saves no register, and new blocks and resizes tail-call hakmem,
** which keeps the counts. */
static inline void *lua_alloc(hak_heap_t *heap, acct_t *a, void *p, size_t osize, size_t nsize) {
  if (nsize == 0) return free_block(a, p, osize);
  if (p == NULL) return alloc_new(heap, a, osize, nsize);
  return alloc_resize(heap, a, p, osize, nsize);
}

void *hak_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  hak_heap_t *heap = ud;
  acct_t *a = acct_peek(heap);
  if (unlikely(a == NULL)) {
    /* No Lua block in the heap: a block Lua passes back is not one of ours to count. */
    if (ptr != NULL)
      return nsize == 0 ? free_block(NULL, ptr, osize)
                        : hak_heap_realloc_tagged(heap, ptr, osize, nsize, NULL, 0);
    if (nsize == 0 || (a = acct_get(heap)) == NULL) return NULL;
  }
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
  if (L == NULL && acct_peek(heap) == a && acct_count(a) == 0)
    acct_release(heap, a); /* no Lua block made it: the record goes too */
  return L;
}

/* }===================================================================== */
