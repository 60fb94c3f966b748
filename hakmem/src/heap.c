/* heap.c: the heap box: create, destroy, reset, collect, limits, stats, the default heap and
** process-wide set-up (free key, fork handlers). */
#include "heap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "block.h"
#include "error.h"
#include "large.h"
#include "meta_pool.h"
#include "remote_queue.h"
#include "size_class.h"
#include "slab.h"
#include "superslab.h"
#include "tcache.h"

hak_heap_t *hak__default;
uintptr_t hak__free_key = 0x9e3779b97f4a7c15ull;
uintptr_t hak__slab_key = 0x9e3779b97f4a7c17ull;

static _Alignas(HAK_CACHELINE) hak_heap_t default_heap_storage;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t next_id = 1;
/* Under the tc lock: slot allocation and the list of live heaps. */
static uint64_t slot_used[HAK_TLS_SLOTS / 64];
static hak_heap_t *live_heaps;

static void fork_prepare(void) {
  hak__tc_lock_acquire();
  hak__large_lock_all();
  for (hak_heap_t *h = live_heaps; h; h = h->live_next) pthread_mutex_lock(&h->lock);
  hak__ss_lock_all();
  hak__meta_lock_all();
}

static void fork_parent(void) {
  hak__meta_unlock_all();
  hak__ss_unlock_all();
  for (hak_heap_t *h = live_heaps; h; h = h->live_next) pthread_mutex_unlock(&h->lock);
  hak__large_unlock_all();
  hak__tc_lock_release();
}

static void fork_child(void) {
  hak__meta_reinit_child();
  hak__ss_reinit_child();
  for (hak_heap_t *h = live_heaps; h; h = h->live_next) hak__mutex_init(&h->lock);
  hak__large_reinit_child();
  hak__tc_reinit_child();
}

static void global_init(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uintptr_t k = (uintptr_t)&ts ^ ((uintptr_t)ts.tv_nsec << 17) ^ (uintptr_t)getpid() ^
                ((uintptr_t)&global_init << 7);
  k *= 0x9e3779b97f4a7c15ull;
  hak__free_key = k | 1;
  hak__slab_key = hak__free_key ^ 2;
  pthread_atfork(fork_prepare, fork_parent, fork_child);
#ifdef HAK_VALGRIND
  /* memcheck skips its leak search when its own malloc list is empty, which would hide leaked
  ** hakmem blocks (mempool chunks) in programs that never call malloc: keep one block live. */
  static void *volatile leak_search_anchor;
  leak_search_anchor = malloc(1);
#endif
}

static void heap_init(hak_heap_t *h, const hak_heap_config_t *cfg) {
  const char *name = cfg && cfg->name ? cfg->name : "heap";
  size_t n = strlen(name);
  if (n >= sizeof h->name) n = sizeof h->name - 1;
  memcpy(h->name, name, n);
  h->name[n] = 0;
  h->limit = cfg ? cfg->limit_bytes : 0;
  h->id = atomic_fetch_add(&next_id, 1);
  h->secret = (hak__free_key ^ (h->id * 0xbf58476d1ce4e5b9ull) ^ (uintptr_t)h) * 0x94d049bb133111ebull;
  h->rng = h->secret | 1;
  HAK_TRACK_HEAP_NEW(h);
  hak__mutex_init(&h->lock);
  hak__tc_lock_acquire();
  h->slot = HAK_NO_SLOT;
  for (unsigned w = 0; w < HAK_TLS_SLOTS / 64 && h->slot == HAK_NO_SLOT; w++) {
    if (~slot_used[w]) {
      unsigned b = (unsigned)__builtin_ctzll(~slot_used[w]);
      slot_used[w] |= (uint64_t)1 << b;
      h->slot = w * 64 + b;
    }
  }
  h->live_prev = NULL;
  h->live_next = live_heaps;
  if (live_heaps) live_heaps->live_prev = h;
  live_heaps = h;
  hak__tc_lock_release();
}

static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void default_init_once(void) {
  hak_heap_config_t cfg = { .name = "default" };
  heap_init(&default_heap_storage, &cfg);
  default_heap_storage.is_default = 1;
  __atomic_store_n(&hak__default, &default_heap_storage, __ATOMIC_RELEASE);
}

hak_heap_t *hak__default_init(void) {
  pthread_once(&init_once, global_init);
  pthread_once(&default_once, default_init_once);
  return __atomic_load_n(&hak__default, __ATOMIC_ACQUIRE);
}

hak_heap_t *hak_default_heap(void) { return hak__default_heap(); }

hak_heap_t *hak_heap_create(const hak_heap_config_t *cfg) {
  pthread_once(&init_once, global_init);
  _Static_assert(sizeof(hak_heap_t) <= HAK_META_SIZE, "heap fits a meta object");
  hak_heap_t *h = hak__meta_alloc();
  if (!h) {
    errno = ENOMEM;
    return NULL;
  }
  heap_init(h, cfg);
  return h;
}

/* Drop every superslab but `keep` of h (all when keep is NULL). h->lock held or h private. */
static void release_superslabs(hak_heap_t *h, hak__superslab_t *keep) {
  hak__superslab_t *ss = h->ss_list;
  while (ss) {
    hak__superslab_t *next = ss->next;
    if (ss != keep) hak__ss_release(ss);
    ss = next;
  }
  h->ss_list = keep;
  h->ss_count = keep ? 1 : 0;
  if (keep) keep->next = keep->prev = NULL;
}

static bool refuse_default(hak_heap_t *h, const char *op) {
  if (!h->is_default) return false;
  hak__report(HAK_ERR_MISUSE, op, h, "the default heap cannot be destroyed or reset");
  return true;
}

void hak_heap_destroy(hak_heap_t *h) {
  if (!h || refuse_default(h, "hak_heap_destroy")) return;
  hak__tc_lock_acquire();
  hak__tcache_detach_all(h, false);
  if (h->slot != HAK_NO_SLOT) slot_used[h->slot / 64] &= ~((uint64_t)1 << (h->slot % 64));
  if (h->live_prev) h->live_prev->live_next = h->live_next;
  else live_heaps = h->live_next;
  if (h->live_next) h->live_next->live_prev = h->live_prev;
  hak__tc_lock_release();
  atomic_store_explicit(&h->notify_fn, NULL, memory_order_release);
  hak__large_release_heap(h, HAK_LARGE_DESTROYED);
  release_superslabs(h, NULL);
  HAK_TRACK_HEAP_GONE(h);
  pthread_mutex_destroy(&h->lock);
  hak__meta_free(h);
}

void hak_heap_reset(hak_heap_t *h) {
  if (!h || refuse_default(h, "hak_heap_reset")) return;
  hak__tc_lock_acquire();
  hak__tcache_detach_all(h, true);
  hak__tc_lock_release();
  (void)hak__remote_take_all(h); /* their blocks die with the slabs */
  hak__large_release_heap(h, HAK_LARGE_RESET);
  HAK_TRACK_HEAP_GONE(h);
  HAK_TRACK_HEAP_NEW(h);
  pthread_mutex_lock(&h->lock);
  hak__superslab_t *keep = h->ss_list;
  release_superslabs(h, keep);
  h->dirty_slabs = 0;
  if (keep) {
    hak__ss_clear_slabs(keep);
    for (int i = 1; i < HAK_SLABS_PER_SS; i++) h->dirty_slabs += keep->slabs[i].dirty;
  }
  memset(h->partial, 0, sizeof h->partial);
  h->held = 0;
  for (unsigned c = 0; c < HAK_CLASSES; c++) h->cls_frees[c] = h->cls_allocs[c];
  hak__slab_decommit_free(h, false);
  pthread_mutex_unlock(&h->lock);
}

size_t hak__heap_drain_to_slabs(hak_heap_t *h) {
  hak__block_t *list = hak__remote_take_all(h);
  if (!list) return 0;
  size_t n = 0;
  pthread_mutex_lock(&h->lock);
  while (list) {
    hak__base_t b = { list };
    list = hak__blk_next(h, list);
    h->cls_frees[hak__slab_of_base(b)->cls]++;
    hak__slab_put(h, b);
    n++;
  }
  h->remote_frees += n;
  hak__heap_unlock(h);
  return n;
}

size_t hak_heap_drain(hak_heap_t *h) {
  if (!h || !hak__remote_pending(h)) return 0;
  hak__tcache_t *tc = hak__tcache_find(h);
  return tc ? hak__tcache_drain_remote(tc, h) : hak__heap_drain_to_slabs(h);
}

void hak_heap_collect(hak_heap_t *h, bool force) {
  if (!h) return;
  hak__tcache_t *tc = hak__tcache_find(h);
  if (tc) {
    hak__tcache_drain_remote(tc, h);
    hak__tcache_flush_all(tc, h);
  } else {
    hak__heap_drain_to_slabs(h);
  }
  pthread_mutex_lock(&h->lock);
  /* Superslabs left with no assigned slab go back, except one kept for reuse. */
  hak__superslab_t *ss = h->ss_list, *kept = NULL;
  while (ss) {
    hak__superslab_t *next = ss->next;
    if (ss->assigned == 0) {
      if (!kept && !force) {
        kept = ss;
      } else {
        hak__slab_release_superslab(h, ss);
      }
    }
    ss = next;
  }
  hak__slab_decommit_free(h, force);
  pthread_mutex_unlock(&h->lock);
  if (force) {
    hak__ss_trim_cache();
    hak__large_trim_cache();
  }
}

int hak_heap_set_limit(hak_heap_t *h, size_t limit) {
  if (!h) {
    errno = EINVAL;
    return -1;
  }
  pthread_mutex_lock(&h->lock);
  h->limit = limit;
  pthread_mutex_unlock(&h->lock);
  return 0;
}

size_t hak_heap_get_limit(const hak_heap_t *h) {
  if (!h) return 0;
  hak_heap_t *m = (hak_heap_t *)h;
  pthread_mutex_lock(&m->lock);
  size_t l = m->limit;
  pthread_mutex_unlock(&m->lock);
  return l;
}

const char *hak_heap_name(const hak_heap_t *h) { return h ? h->name : NULL; }

void hak_heap_set_remote_notify(hak_heap_t *h, hak_remote_notify_fn *fn, void *arg) {
  if (!h) return;
  atomic_store_explicit(&h->notify_arg, arg, memory_order_relaxed);
  atomic_store_explicit(&h->notify_fn, fn, memory_order_release);
}

void hak__remote_notify_slow(hak_heap_t *h) {
  hak_remote_notify_fn *fn = atomic_load_explicit(&h->notify_fn, memory_order_acquire);
  if (fn) fn(h, atomic_load_explicit(&h->notify_arg, memory_order_relaxed));
}

void hak_heap_get_stats(hak_heap_t *h, hak_heap_stats_t *out) {
  if (!out) return;
  memset(out, 0, sizeof *out);
  if (!h) return;
  uint64_t allocs[HAK_CLASSES], frees[HAK_CLASSES];
  pthread_mutex_lock(&h->lock);
  memcpy(allocs, h->cls_allocs, sizeof allocs);
  memcpy(frees, h->cls_frees, sizeof frees);
  uint64_t remote = h->remote_frees;
  for (hak__tcache_t *tc = h->tcaches; tc; tc = tc->heap_next) {
    for (unsigned c = 0; c < HAK_CLASSES; c++) {
      allocs[c] += HAK_COUNTER_GET(tc->bins[c].allocs);
      frees[c] += HAK_COUNTER_GET(tc->bins[c].frees);
    }
    remote += HAK_COUNTER_GET(tc->remote_frees);
  }
  out->held_bytes = h->held;
  out->peak_held_bytes = h->peak_held;
  out->limit_bytes = h->limit;
  out->superslab_count = h->ss_count;
  out->large_count = h->large_count;
  out->remote_free_count = remote;
  out->alloc_count = h->large_allocs;
  out->free_count = h->large_frees;
  out->live_bytes = h->large_live_bytes;
  out->live_blocks = h->large_count;
  pthread_mutex_unlock(&h->lock);
  for (unsigned c = 0; c < HAK_CLASSES; c++) {
    out->alloc_count += allocs[c];
    out->free_count += frees[c];
    /* A snapshot can see a free before its alloc from another thread's cache. */
    uint64_t live = allocs[c] >= frees[c] ? allocs[c] - frees[c] : 0;
    out->live_blocks += live;
    out->live_bytes += live * hak__class_size[c];
  }
}
