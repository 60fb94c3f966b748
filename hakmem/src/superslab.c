/* superslab.c: mapping, registration and the process-wide cache of empty superslabs. */
#include "superslab.h"

#include <errno.h>
#include <string.h>

#include "os.h"
#include "ptr_bridge.h"
#include "registry.h"
#include "track.h"

static pthread_mutex_t hak__ss_lock = HAK_MUTEX_INIT;
static hak__superslab_t *ss_cache;
static int ss_cache_n;

static void clear_slab(hak__slab_t *s) {
  s->free = NULL;
  HAK_OWNED_SET(s->allocs, 0);
  HAK_OWNED_SET(s->armed, 0);
  HAK_OWNED_SET(s->left, 0);
  atomic_store_explicit(&s->owner_tid, 0, memory_order_relaxed);
  s->owner = NULL;
  s->block_size = s->capacity = s->carved = 0;
  s->div = 0;
  atomic_store_explicit(&s->bound, 0, memory_order_relaxed);
  s->cls = HAK_SLAB_UNUSED;
  s->live = 0;
  s->span = 1;
  s->state = HAK_SLAB_AVAIL;
  s->decommitting = 0;
  s->broken = 0;
  s->next = s->prev = NULL;
}

/* A fresh mapping's records are all zero, which is what an unassigned slab's record is (live 0,
** div and bound 0): only the header is written, so the pages of records no slab has used yet
** stay untouched (a small heap touches the header's page alone). */
static void init_header(hak__superslab_t *ss) {
  ss->magic = HAK_SS_MAGIC;
  ss->free_mask = ~(uint64_t)1;
  ss->assigned = 0;
}

void hak__ss_clear_slabs(hak__superslab_t *ss) {
  /* Slabs released earlier are clean already; only assigned ones carry state. */
  for (int i = 1; i < HAK_SLABS_PER_SS; i++) {
    hak__slab_t *s = &ss->slabs[i];
    if (!s->live) continue;
    HAK_TRACK_CLOSE((void *)hak__slab_start(ss, s), HAK_SLAB_SIZE);
    clear_slab(s);
    s->dirty = 1;
  }
  ss->free_mask = ~(uint64_t)1;
  ss->assigned = 0;
}

hak__superslab_t *hak__ss_acquire(hak_heap_t *heap) {
  hak__superslab_t *ss = NULL;
  pthread_mutex_lock(&hak__ss_lock);
  if (ss_cache) {
    ss = ss_cache;
    ss_cache = ss->next;
    ss_cache_n--;
  }
  pthread_mutex_unlock(&hak__ss_lock);
  if (!ss) {
    ss = hak__os_map_aligned(HAK_SS_SIZE, HAK_SS_SIZE);
    if (!ss) return NULL;
    hak__os_guard(ss, HAK_SS_GUARD);
    init_header(ss);
    if (hak__reg_set((uintptr_t)ss, HAK_SS_SIZE, (uintptr_t)ss | HAK_REG_SS) != 0) {
      hak__reg_set((uintptr_t)ss, HAK_SS_SIZE, HAK_REG_NONE);
      hak__os_unmap(ss, HAK_SS_SIZE);
      errno = ENOMEM;
      return NULL;
    }
    hak__ss_map_set((uintptr_t)ss, true);
  } else {
    /* the new owner counts anew: a cached superslab's slabs may be dirty (written only where
    ** set, so records never used stay untouched) */
    for (int i = 1; i < HAK_SLABS_PER_SS; i++)
      if (ss->slabs[i].dirty) ss->slabs[i].dirty = 0;
  }
  ss->next = ss->prev = NULL;
  ss->released_live = 0;
  ss->heap = heap;
  return ss;
}

void hak__ss_release(hak__superslab_t *ss, bool heap_lives) {
  hak__ss_clear_slabs(ss);
  ss->released_live = heap_lives;
  ss->heap = NULL;
  pthread_mutex_lock(&hak__ss_lock);
  if (ss_cache_n < HAK_SS_CACHE_MAX) {
    ss->prev = NULL;
    ss->next = ss_cache;
    ss_cache = ss;
    ss_cache_n++;
    ss = NULL;
  } else {
    hak__ss_map_set((uintptr_t)ss, false);
    hak__reg_set((uintptr_t)ss, HAK_SS_SIZE, heap_lives ? HAK_REG_FREED_SS : HAK_REG_DEAD_SS);
  }
  pthread_mutex_unlock(&hak__ss_lock);
  if (ss) {
    HAK_TRACK_UNMAP(ss, HAK_SS_SIZE);
    hak__os_unmap(ss, HAK_SS_SIZE);
  }
}

void hak__ss_trim_cache(void) {
  pthread_mutex_lock(&hak__ss_lock);
  hak__superslab_t *list = ss_cache;
  ss_cache = NULL;
  ss_cache_n = 0;
  for (hak__superslab_t *s = list; s; s = s->next) {
    hak__ss_map_set((uintptr_t)s, false);
    hak__reg_set((uintptr_t)s, HAK_SS_SIZE, s->released_live ? HAK_REG_FREED_SS : HAK_REG_DEAD_SS);
  }
  pthread_mutex_unlock(&hak__ss_lock);
  while (list) {
    hak__superslab_t *next = list->next;
    HAK_TRACK_UNMAP(list, HAK_SS_SIZE);
    hak__os_unmap(list, HAK_SS_SIZE);
    list = next;
  }
}

void hak__ss_lock_all(void) { pthread_mutex_lock(&hak__ss_lock); }
void hak__ss_unlock_all(void) { pthread_mutex_unlock(&hak__ss_lock); }
void hak__ss_reinit_child(void) { hak__mutex_init(&hak__ss_lock); }
