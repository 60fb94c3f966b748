/*
** meta_pool.h: the metadata pool box. Fixed-size, cache-line aligned objects carved from OS pages
** and never returned to user allocations (nor to the OS, so a stale pointer to one always reads
** hakmem memory): HAK_META_SIZE objects for heap and thread-cache structs, HAK_META_REC_SIZE
** records for large blocks. One global lock; used only on slow paths (heap create/destroy,
** thread attach/exit, a large block's fresh mapping or its unmapping: each beside a system call).
*/
#ifndef HAK_META_POOL_H
#define HAK_META_POOL_H

#include <stddef.h>

#define HAK_META_SIZE 1536 /* sizeof(hak_heap_t) and sizeof(hak__tcache_t), both 24 cache lines */
#define HAK_META_REC_SIZE 384

void *hak__meta_alloc(void); /* zeroed; NULL + ENOMEM */
void hak__meta_free(void *p);
void *hak__meta_rec_alloc(void); /* zeroed; NULL + ENOMEM */
void hak__meta_rec_free(void *p);
void hak__meta_lock_all(void);
void hak__meta_unlock_all(void);
void hak__meta_reinit_child(void);

#endif
