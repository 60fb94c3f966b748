/*
** os.h: the OS box. The only code that calls mmap, mremap, munmap, madvise and mprotect. All
** functions preserve nothing but errno semantics: failures return NULL/-1 with errno = ENOMEM.
*/
#ifndef HAK_OS_H
#define HAK_OS_H

#include <stddef.h>

/* size and align multiples of the page size; align a power of two. Memory is zeroed. */
void *hak__os_map_aligned(size_t size, size_t align);
void hak__os_unmap(void *p, size_t size);
/* Give the pages back but keep the range mapped (it reads as zero afterwards). */
void hak__os_decommit(void *p, size_t size);
/* No access to the range from now on (best effort: a failure leaves it as it was). */
void hak__os_guard(void *p, size_t size);
size_t hak__os_page_size(void);
/* Map size fresh bytes exactly at p, only if nothing is mapped there: 0, or -1. */
int hak__os_extend(void *p, size_t size);
/* Grow the one kernel mapping [p, p + old) to size bytes in place, or (move_grow) moving it onto
** the mapping at t (replaced): still one kernel mapping. 0, or -1 with nothing changed. */
int hak__os_grow(void *p, size_t old, size_t size);
int hak__os_move_grow(void *p, size_t old, size_t size, void *t);
/* Move the pages of [src, src + len) onto [dst, dst + len), which must be mapped (replaced; src
** is unmapped after). The source may span several mappings (earlier moves); it is split at
** multiples of `unit` (a power of two, a multiple of the page size) if the kernel moves only
** one at a time. 0, or -1 with what had moved moved back (errno unchanged). */
int hak__os_move(void *src, size_t len, void *dst, size_t unit);

#endif
