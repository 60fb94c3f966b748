/*
** superslab.h: the superslab box. Maps, registers, caches and unmaps superslabs. A superslab
** taken by a heap belongs to it until the heap gives it back; the process keeps a few empty
** ones (HAK_SS_CACHE_MAX) so heap create/destroy cycles do not call mmap/munmap.
*/
#ifndef HAK_SUPERSLAB_H
#define HAK_SUPERSLAB_H

#include "types.h"

#define HAK_SS_CACHE_MAX 4

/* An empty superslab owned by heap, or NULL with errno = ENOMEM. */
hak__superslab_t *hak__ss_acquire(hak_heap_t *heap);
/* Give back a superslab whose blocks are all dead: all slabs become unassigned; cached or
** unmapped (never with a heap lock held). heap_lives: its heap goes on (a later free of one of
** its blocks is a double free), or it is being destroyed or reset (HAK_ERR_HEAP_DESTROYED). */
void hak__ss_release(hak__superslab_t *ss, bool heap_lives);
/* Unmap every cached superslab. */
void hak__ss_trim_cache(void);
/* Mark every slab unassigned (used by heap reset, which keeps the superslab). */
void hak__ss_clear_slabs(hak__superslab_t *ss);

void hak__ss_lock_all(void);   /* fork support */
void hak__ss_unlock_all(void);
void hak__ss_reinit_child(void);

#endif
