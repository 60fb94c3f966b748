/* large.c: large blocks: mapping, registry entries, heap lists and the mapping cache. */
#include "large.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "error.h"
#include "os.h"
#include "registry.h"
#include "track.h"

#define HAK_LARGE_CACHE_COUNT 64
#define HAK_LARGE_CACHE_BYTES ((size_t)64 << 20) /* all cached mappings together */
#define HAK_LARGE_CACHE_MAP_MAX ((size_t)8 << 20)  /* bigger mappings are unmapped at free */
#define GRAN ((size_t)1 << HAK_REG_GRAN_SHIFT)

static pthread_mutex_t hak__large_lock = HAK_MUTEX_INIT;
static hak__large_t *cache;
static int cache_n;
static size_t cache_bytes;

void hak__large_lock_all(void) { pthread_mutex_lock(&hak__large_lock); }
void hak__large_unlock_all(void) { pthread_mutex_unlock(&hak__large_lock); }
void hak__large_reinit_child(void) { hak__mutex_init(&hak__large_lock); }

static size_t user_offset(size_t align) {
  return align <= HAK_LARGE_HDR ? HAK_LARGE_HDR : align;
}

/* With hak__large_lock held: a cached mapping that fits, or NULL. */
static hak__large_t *cache_take(size_t map_size, size_t map_align, size_t room) {
  hak__large_t *best = NULL;
  for (hak__large_t *l = cache; l; l = l->next) {
    if (l->map_size < map_size || l->map_size > 2 * map_size + GRAN) continue;
    if (l->map_size > room) continue;
    if ((uintptr_t)l % map_align) continue;
    if (!best || l->map_size < best->map_size) best = l;
  }
  if (!best) return NULL;
  if (best->prev) best->prev->next = best->next;
  else cache = best->next;
  if (best->next) best->next->prev = best->prev;
  cache_n--;
  cache_bytes -= best->map_size;
  return best;
}

/* heap->lock held. */
static int reserve(hak_heap_t *h, size_t bytes) {
  if (h->limit && (h->held > h->limit || bytes > h->limit - h->held)) return -1;
  h->held += bytes;
  if (h->held > h->peak_held) h->peak_held = h->held;
  return 0;
}

void *hak__large_alloc(hak_heap_t *h, size_t size, size_t align, bool zero) {
  size_t off = user_offset(align);
  if (size == 0) size = 1; /* a unique block with at least one usable byte */
  size_t map_align = align > GRAN ? align : GRAN;
  if (size > PTRDIFF_MAX - off - GRAN) {
    errno = ENOMEM;
    return NULL;
  }
  size_t map_size = (off + size + GRAN - 1) & ~(GRAN - 1);
  /* Reserve against the limit and pick a cached mapping in one step, so a bigger cached
  ** mapping is only taken when the limit has room for all of it. */
  pthread_mutex_lock(&hak__large_lock);
  pthread_mutex_lock(&h->lock);
  size_t room = !h->limit ? SIZE_MAX : (h->held >= h->limit ? 0 : h->limit - h->held);
  hak__large_t *l = map_size <= room ? cache_take(map_size, map_align, room) : NULL;
  int r = map_size <= room ? reserve(h, l ? l->map_size : map_size) : -1;
  pthread_mutex_unlock(&h->lock);
  pthread_mutex_unlock(&hak__large_lock);
  if (r != 0) {
    errno = ENOMEM;
    return NULL;
  }
  bool fresh = false;
  if (l) {
    map_size = l->map_size;
  } else {
    l = hak__os_map_aligned(map_size, map_align);
    if (l) {
      l->magic = HAK_LARGE_MAGIC;
      l->map_size = map_size;
      if (hak__reg_set((uintptr_t)l, map_size, (uintptr_t)l | HAK_REG_LARGE) != 0) {
        hak__reg_set((uintptr_t)l, map_size, HAK_REG_NONE);
        hak__os_unmap(l, map_size);
        l = NULL;
      }
    }
    if (!l) {
      pthread_mutex_lock(&h->lock);
      h->held -= map_size;
      pthread_mutex_unlock(&h->lock);
      errno = ENOMEM;
      return NULL;
    }
    fresh = true;
  }
  l->user = (uintptr_t)l + off;
  l->usable = map_size - off;
  HAK_TRACK_ALLOC(h, (void *)l->user, l->usable);
  HAK_TRACK_SLACK((void *)l->user, size, l->usable);
  if (zero && !fresh) memset((void *)l->user, 0, size);
  pthread_mutex_lock(&hak__large_lock);
  pthread_mutex_lock(&h->lock);
  l->heap = h;
  l->state = HAK_LARGE_LIVE;
  l->prev = NULL;
  l->next = h->large_list;
  if (l->next) l->next->prev = l;
  h->large_list = l;
  h->large_allocs++;
  h->large_count++;
  h->large_live_bytes += l->usable;
  pthread_mutex_unlock(&h->lock);
  pthread_mutex_unlock(&hak__large_lock);
  return (void *)l->user;
}

static void unmap_mapping(hak__large_t *l) {
  HAK_TRACK_UNMAP(l, l->map_size);
  hak__os_unmap(l, l->map_size);
}

/* The registry entry an unmapped large block leaves: later frees say why it is gone. */
static uintptr_t tombstone(int state) {
  return state == HAK_LARGE_DESTROYED ? HAK_REG_DEAD_SS : HAK_REG_DEAD_LARGE;
}

/* hak__large_lock held; l unlinked from its heap. Returns a mapping to unmap, or NULL. */
static hak__large_t *retire(hak__large_t *l, int state) {
  l->state = state;
  l->heap = NULL;
  if (cache_n < HAK_LARGE_CACHE_COUNT && l->map_size <= HAK_LARGE_CACHE_MAP_MAX &&
      cache_bytes + l->map_size <= HAK_LARGE_CACHE_BYTES) {
    l->prev = NULL;
    l->next = cache;
    if (cache) cache->prev = l;
    cache = l;
    cache_n++;
    cache_bytes += l->map_size;
    return NULL;
  }
  hak__reg_set((uintptr_t)l, l->map_size, tombstone(state));
  return l;
}

static void unlink_from_heap(hak_heap_t *h, hak__large_t *l) {
  if (l->prev) l->prev->next = l->next;
  else h->large_list = l->next;
  if (l->next) l->next->prev = l->prev;
  h->held -= l->map_size;
  h->large_frees++;
  h->large_count--;
  h->large_live_bytes -= l->usable;
}

int hak__large_dead_err(int state) {
  return state == HAK_LARGE_DESTROYED ? HAK_ERR_HEAP_DESTROYED : HAK_ERR_DOUBLE_FREE;
}

const char *hak__large_dead_reason(int state) {
  switch (state) {
    case HAK_LARGE_RESET: return "large block was already freed by hak_heap_reset";
    case HAK_LARGE_DESTROYED: return "large block of a destroyed heap";
    default: return "double free of a large block";
  }
}

void hak__large_free(const hak__loc_t *loc, const char *op) {
  hak__large_t *l = loc->large;
  const void *p = (const void *)loc->base.blk;
  pthread_mutex_lock(&hak__large_lock);
  /* The entry may have changed since the lock-free lookup: check again. */
  uintptr_t e = hak__reg_lookup((uintptr_t)p);
  if (e != ((uintptr_t)l | HAK_REG_LARGE) || l->state != HAK_LARGE_LIVE) {
    int state = (e == ((uintptr_t)l | HAK_REG_LARGE)) ? l->state : HAK_LARGE_FREED;
    pthread_mutex_unlock(&hak__large_lock);
    hak__report(hak__large_dead_err(state), op, p, hak__large_dead_reason(state));
    return;
  }
  hak_heap_t *h = l->heap;
  HAK_TRACK_FREE(h, (void *)l->user, l->usable);
  pthread_mutex_lock(&h->lock);
  unlink_from_heap(h, l);
  pthread_mutex_unlock(&h->lock);
  hak__large_t *dead = retire(l, HAK_LARGE_FREED);
  pthread_mutex_unlock(&hak__large_lock);
  if (dead) unmap_mapping(dead);
}

void hak__large_release_heap(hak_heap_t *h, int state) {
  hak__large_t *unmap = NULL;
  pthread_mutex_lock(&hak__large_lock);
  pthread_mutex_lock(&h->lock);
  while (h->large_list) {
    hak__large_t *l = h->large_list;
    HAK_TRACK_FREE(h, (void *)l->user, l->usable);
    unlink_from_heap(h, l);
    hak__large_t *dead = retire(l, state);
    if (dead) {
      dead->next = unmap;
      unmap = dead;
    }
  }
  pthread_mutex_unlock(&h->lock);
  pthread_mutex_unlock(&hak__large_lock);
  while (unmap) {
    hak__large_t *next = unmap->next;
    unmap_mapping(unmap);
    unmap = next;
  }
}

void hak__large_trim_cache(void) {
  pthread_mutex_lock(&hak__large_lock);
  hak__large_t *list = cache;
  cache = NULL;
  cache_n = 0;
  cache_bytes = 0;
  for (hak__large_t *l = list; l; l = l->next)
    hak__reg_set((uintptr_t)l, l->map_size, tombstone(l->state));
  pthread_mutex_unlock(&hak__large_lock);
  while (list) {
    hak__large_t *next = list->next;
    unmap_mapping(list);
    list = next;
  }
}

int hak__large_resize(const hak__loc_t *loc, size_t size) {
  hak__large_t *l = loc->large;
  size_t off = l->user - (uintptr_t)l;
  if (size <= l->usable) return 1;
  if (size > PTRDIFF_MAX - off - GRAN) return 0;
  size_t new_map = (off + size + GRAN - 1) & ~(GRAN - 1);
  hak_heap_t *h = l->heap;
  size_t grow = new_map - l->map_size;
  pthread_mutex_lock(&h->lock);
  int r = reserve(h, grow);
  pthread_mutex_unlock(&h->lock);
  if (r != 0) return 0;
  /* Grow in place only: the mapping must not move, since the header is its identity. */
  if (mremap(l, l->map_size, new_map, 0) == MAP_FAILED) {
    pthread_mutex_lock(&h->lock);
    h->held -= grow;
    pthread_mutex_unlock(&h->lock);
    return 0;
  }
  pthread_mutex_lock(&hak__large_lock);
  hak__reg_set((uintptr_t)l + l->map_size, grow, (uintptr_t)l | HAK_REG_LARGE);
  pthread_mutex_lock(&h->lock);
  h->large_live_bytes += grow;
  pthread_mutex_unlock(&h->lock);
  l->map_size = new_map;
  l->usable = new_map - off;
  HAK_TRACK_RESIZE(h, (void *)l->user, l->usable);
  pthread_mutex_unlock(&hak__large_lock);
  return 1;
}
