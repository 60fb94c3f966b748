/*
** os.h: the OS box. The only code that calls mmap, munmap, madvise and mprotect. All functions
** preserve nothing but errno semantics: failures return NULL/-1 with errno = ENOMEM.
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

#endif
