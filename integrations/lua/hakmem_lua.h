/*
** hakmem_lua.h: Lua 5.4 on a hakmem heap.
**
** One heap per lua_State: hak_lua_newstate(heap) is luaL_newstate with every allocation of the
** state served by `heap`, so the heap's limit (hak_heap_set_limit) is a hard memory limit for
** the state that Lua turns into ordinary "not enough memory" errors. The allocator keeps
** per-type accounting from Lua's allocation tags (strings, tables, functions, userdata,
** threads, ...), readable from C (hak_lua_get_type_stats) and from Lua (the `hakmem` module).
**
** Thread rules: those of lua_State. A state, and so its heap's Lua accounting, is used by one
** thread at a time; it may move between threads (and be closed on another thread) when the
** hand-over is synchronised (a join, a mutex, a queue). Blocks freed on a thread other than the
** one that allocated them travel back through hakmem's remote queue. States on different heaps
** share nothing on their allocation paths. See docs/LUA.md.
*/
#ifndef HAKMEM_LUA_H
#define HAKMEM_LUA_H

#include <stddef.h>

#include <hakmem.h>
#include <lua.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with -fvisibility=hidden: only what this header declares is exported. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/*
** A lua_Alloc whose ud is a hak_heap_t * (lua_newstate(hak_lua_alloc, heap)). Follows the 5.4
** manual: nsize == 0 frees ptr (NULL is fine) and returns NULL; ptr == NULL allocates nsize bytes
** and takes osize as Lua's type tag; otherwise osize is the block's size and the block is
** resized. Growth returns NULL when the heap is out of memory or at its limit; a shrink
** (0 < nsize <= osize) never fails: when the block cannot move it is returned as it is.
** A block may carry one hidden byte (its type tag) after the nsize bytes Lua asked for, kept in
** the size class's slack; Lua's power-of-two vectors take no extra byte.
*/
void *hak_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/*
** Drop-in for luaL_newstate on `heap`: a state whose every allocation is served by `heap` as
** hak_lua_alloc serves it (the installed lua_Alloc is the binding's twin of hak_lua_alloc whose
** ud is the heap's accounting record, so no lookup runs per allocation: use hak_lua_heap, not
** lua_getallocf, to find the heap), with the same panic function (prints "PANIC: unprotected error in call to Lua API (msg)" to
** stderr; Lua then aborts) and warning function (off at start; "@on" / "@off" switch it; a
** warning is written to stderr as "Lua warning: msg\n"). Opens no libraries. Returns NULL when
** heap is NULL (errno EINVAL) or out of memory.
*/
lua_State *hak_lua_newstate(hak_heap_t *heap);

/* The heap L allocates from: L made by hak_lua_newstate(_cfg), or by
** lua_newstate(hak_lua_alloc, heap); NULL for any other state (or L NULL). */
hak_heap_t *hak_lua_heap(lua_State *L);

/* Options of hak_lua_newstate_cfg; zero-initialised means hak_lua_newstate's behaviour. */
typedef struct hak_lua_config_s {
  size_t lua_limit; /* cap on Lua's own bytes (hak_lua_set_limit), set before the libraries */
  bool open_libs;   /* luaL_openlibs, in protected mode */
  bool preload;     /* hak_lua_preload (needs open_libs) */
} hak_lua_config_t;

/*
** hak_lua_newstate, then (cfg may be NULL) the Lua-bytes limit, then the standard libraries and
** the `hakmem` preload, opened in protected mode: when they do not fit in the heap's limit or in
** lua_limit, the state is closed and NULL returned with errno ENOMEM, where a plain
** luaL_openlibs would raise an unprotected error (a panic, then abort). The limits stay as they
** are. Returns NULL with EINVAL for a NULL heap.
*/
lua_State *hak_lua_newstate_cfg(hak_heap_t *heap, const hak_lua_config_t *cfg);

/*
** Limit on Lua's own bytes in L's heap: the sum of the sizes Lua asked for, as
** collectgarbage("count") reports them (hak_lua_type_stats_t.bytes, exact), beside the heap's
** limit on held bytes (hak_heap_set_limit: slabs and mappings, with their slack). An allocation
** that would take Lua's bytes above it fails as at the heap's limit: Lua collects and raises
** LUA_ERRMEM; shrinks and frees never fail. A limit below the current bytes is allowed (growth
** fails until enough is freed). 0 removes it. The limit lives with the heap's Lua accounting:
** until every Lua block of the heap is freed (lua_close), hak_heap_reset or hak_heap_destroy.
** Same thread rule as the state. Returns 0, or -1 with errno EINVAL when L does not allocate
** with hak_lua_alloc.
*/
int hak_lua_set_limit(lua_State *L, size_t lua_bytes);
/* The Lua-bytes limit of L's heap; 0 when none (or L is not on hak_lua_alloc). */
size_t hak_lua_get_limit(lua_State *L);

/*
** The `hakmem` Lua module, for a state whose allocator is hak_lua_alloc:
**   hakmem.stats()        table: the heap's hak_heap_stats_t fields by name (live_bytes,
**                         held_bytes, limit_bytes, ...) and `types`, the per-type accounting:
**                         types.string = {bytes = B, count = N}, likewise table, ["function"],
**                         userdata, thread, upvalue, proto, other.
**   hakmem.collect()      full Lua collection, then hak_heap_collect(heap, true);
**                         returns the heap's held_bytes afterwards.
**   hakmem.limit([bytes [, which]])
**                         which = "heap" (the default): the heap's limit on held bytes;
**                         which = "lua": the limit on Lua's own bytes (hak_lua_set_limit).
**                         Returns that limit (0 = none); with bytes (>= 0, not nil) sets it
**                         first and returns the previous one.
** On a state with another allocator, the functions raise an error.
*/
int luaopen_hakmem(lua_State *L);

/* Makes `require "hakmem"` work in L: package.preload.hakmem = luaopen_hakmem. Needs the
** package library (luaL_openlibs) to be open. */
void hak_lua_preload(lua_State *L);

/* Allocation tags beyond the public LUA_T* ones, as Lua 5.4 passes them (lobject.h). */
#define HAK_LUA_TUPVAL LUA_NUMTYPES       /* upvalues */
#define HAK_LUA_TPROTO (LUA_NUMTYPES + 1) /* function prototypes (compiled code) */
#define HAK_LUA_NTAGS (LUA_NUMTYPES + 2)

/*
** Per-type accounting of the Lua blocks live in a heap, indexed by tag: LUA_TSTRING,
** LUA_TTABLE, LUA_TFUNCTION (closures), LUA_TUSERDATA, LUA_TTHREAD (lua_State and coroutines),
** HAK_LUA_TUPVAL, HAK_LUA_TPROTO; index 0 (LUA_TNIL) holds every other block: table array and
** hash parts, stacks, bytecode, the string table. bytes are sizes as Lua asked for them.
*/
typedef struct hak_lua_usage_s {
  size_t bytes;
  size_t count;
} hak_lua_usage_t;

typedef struct hak_lua_type_stats_s {
  hak_lua_usage_t type[HAK_LUA_NTAGS];
  size_t bytes; /* sum over all tags: Lua's own count of its memory */
  size_t count;
} hak_lua_type_stats_t;

/*
** Fills *out with the per-type accounting of heap's Lua blocks (all zero when no block from
** hak_lua_alloc is live in it). Call it from the thread that runs the state, or while no
** thread runs it. Returns 0, or -1 with errno EINVAL for NULL arguments.
** The accounting is a block of the heap (about 200 bytes, counted in its stats) found through
** the heap's user word (hak_heap_user), which the binding owns on any heap given to
** hak_lua_alloc. It is made by the heap's first Lua allocation and freed by the free that leaves
** no Lua block; hak_heap_reset and hak_heap_destroy take it with the heap's other blocks, so
** counts never outlive the states they describe.
*/
int hak_lua_get_type_stats(hak_heap_t *heap, hak_lua_type_stats_t *out);

/* Name of a tag for reports: "string", "table", "function", ..., "other". */
const char *hak_lua_tag_name(int tag);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* HAKMEM_LUA_H */
