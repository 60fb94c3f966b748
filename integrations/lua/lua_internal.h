/*
** lua_internal.h: what the binding's files share and the public header does not say.
*/
#ifndef HAKMEM_LUA_INTERNAL_H
#define HAKMEM_LUA_INTERNAL_H

#include "hakmem_lua.h"

/* lua_newstate on heap with the binding's record-keyed lua_Alloc (lua_alloc.c): NULL when out of
** memory. */
lua_State *hak__lua_newstate_raw(hak_heap_t *heap);

#endif
