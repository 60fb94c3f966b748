/*
** meta_pool.h: the metadata pool box. Fixed-size (HAK_META_SIZE), cache-line aligned objects
** for heap and thread-cache structs, carved from OS pages and never returned to user
** allocations. One global lock; used only on slow paths (heap create/destroy, thread attach/exit).
*/
#ifndef HAK_META_POOL_H
#define HAK_META_POOL_H

#include <stddef.h>

#define HAK_META_SIZE 2048

void *hak__meta_alloc(void); /* zeroed; NULL + ENOMEM */
void hak__meta_free(void *p);
void hak__meta_lock_all(void);
void hak__meta_unlock_all(void);
void hak__meta_reinit_child(void);

#endif
