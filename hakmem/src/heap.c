/* heap.c: the heap box: create, destroy, reset, collect, limits, stats, the default heap and
** process-wide set-up (free key, fork handlers). */
#include "heap.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "block.h"
#include "error.h"
#include "large.h"
#include "meta_pool.h"
#include "remote_batch.h"
#include "remote_queue.h"
#include "size_class.h"
#include "slab.h"
#include "superslab.h"
#include "tcache.h"

hak_heap_t *hak__default;
uintptr_t hak__free_key = 0x9e3779b97f4a7c15ull;

static _Alignas(HAK_CACHELINE) hak_heap_t default_heap_storage;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t next_id = 1;
/* Under the tc lock: slot allocation and the list of live heaps. */
static uint64_t slot_used[(HAK_TLS_MAX_SLOTS + 63) / 64];
static unsigned slot_hint; /* no free slot below slot_hint * 64 */
static hak_heap_t *live_heaps;

/* The default heap is made under this lock, not pthread_once: fork_prepare takes it first, so a
** fork never copies a half-made default heap, and a child never waits on an initialisation of
** a thread it does not have (a pthread_once in progress at the fork hung the child under TSan,
** whose pthread_once does not know about fork). */
static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;

static void fork_prepare(void) {
  pthread_mutex_lock(&default_lock);
  hak__tc_lock_acquire();
  for (hak_heap_t *h = live_heaps; h; h = h->live_next) pthread_mutex_lock(&h->guest_lock);
  for (hak_heap_t *h = live_heaps; h; h = h->live_next) pthread_mutex_lock(&h->lock);
  hak__ss_lock_all();
  hak__meta_lock_all();
}

static void fork_parent(void) {
  hak__meta_unlock_all();
  hak__ss_unlock_all();
  for (hak_heap_t *h = live_heaps; h; h = h->live_next) pthread_mutex_unlock(&h->lock);
  for (hak_heap_t *h = live_heaps; h; h = h->live_next) pthread_mutex_unlock(&h->guest_lock);
  hak__tc_lock_release();
  pthread_mutex_unlock(&default_lock);
}

static void fork_child(void) {
  pthread_mutex_init(&default_lock, NULL);
  hak__meta_reinit_child();
  hak__ss_reinit_child();
  for (hak_heap_t *h = live_heaps; h; h = h->live_next) {
    hak__mutex_init(&h->lock);
    hak__mutex_init(&h->guest_lock);
    hak__tcache_fork_child(h); /* the parent's other threads do not exist here */
    atomic_store_explicit(&h->notify_busy, 0, memory_order_relaxed); /* nor their posts */
    atomic_store_explicit(&h->settling, 0, memory_order_relaxed);    /* nor their exits */
  }
  hak__rbatch_fork_child();
  hak__tc_reinit_child();
}

/* The process's secret: the kernel's random bytes; if getrandom fails (a seccomp filter, an old
** kernel), a mix of the clock, the pid and addresses ASLR randomised. */
static uint64_t process_secret[2];

static void global_init(void) {
  if (getrandom(process_secret, sizeof process_secret, GRND_NONBLOCK) != sizeof process_secret) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const uint64_t mix[2] = { 0x9e3779b97f4a7c15ull, (uint64_t)getpid() };
    process_secret[0] = hak__keyed_hash(mix, (uintptr_t)&ts, (uint64_t)ts.tv_nsec);
    process_secret[1] = hak__keyed_hash(mix, (uintptr_t)&global_init, (uint64_t)ts.tv_sec);
  }
  hak__free_key = hak__keyed_hash(process_secret, 0, 0) | 1;
  pthread_atfork(fork_prepare, fork_parent, fork_child);
#ifdef HAK_VALGRIND
  /* memcheck skips its leak search when its own malloc list is empty, which would hide leaked
  ** hakmem blocks (mempool chunks) in programs that never call malloc: keep one block live. */
  static void *volatile __attribute__((used)) leak_search_anchor;
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
  h->purge_delay_ms = cfg ? cfg->purge_delay_ms : 0;
  h->home = cfg && cfg->shared_guests ? HAK_THREAD_ID() : 0;
  h->guest = NULL;
  hak__mutex_init(&h->guest_lock);
  h->id = atomic_fetch_add(&next_id, 1);
  h->secret[0] = hak__keyed_hash(process_secret, h->id, 1);
  h->secret[1] = hak__keyed_hash(process_secret, h->id, 2);
  HAK_TRACK_HEAP_NEW(h);
  hak__mutex_init(&h->lock);
  hak__tc_lock_acquire();
  h->slot = HAK_NO_SLOT;
  for (unsigned w = slot_hint; w < HAK_TLS_MAX_SLOTS / 64 && h->slot == HAK_NO_SLOT; w++) {
    if (~slot_used[w]) {
      unsigned b = (unsigned)__builtin_ctzll(~slot_used[w]);
      slot_used[w] |= (uint64_t)1 << b;
      h->slot = w * 64 + b;
      slot_hint = w;
    }
  }
  h->slot_off = (uintptr_t)h->slot * sizeof(hak__tcache_t *);
  h->live_prev = NULL;
  h->live_next = live_heaps;
  if (live_heaps) live_heaps->live_prev = h;
  live_heaps = h;
  hak__tc_lock_release();
}

hak_heap_t *hak__default_init(void) {
  pthread_once(&init_once, global_init);
  pthread_mutex_lock(&default_lock);
  if (__atomic_load_n(&hak__default, __ATOMIC_RELAXED) == NULL) {
    hak_heap_config_t cfg = { .name = "default" };
    heap_init(&default_heap_storage, &cfg);
    default_heap_storage.is_default = 1;
    __atomic_store_n(&hak__default, &default_heap_storage, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&default_lock);
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

/* Give back a chain of superslabs (linked through next, unlinked from their heap), with no
** heap lock held. heap_lives: see hak__ss_release. */
static void release_chain(hak__superslab_t *ss, bool heap_lives) {
  while (ss) {
    hak__superslab_t *next = ss->next;
    hak__ss_release(ss, heap_lives);
    ss = next;
  }
}

static bool refuse_default(hak_heap_t *h, const char *op) {
  if (!h->is_default) return false;
  hak__report(HAK_ERR_MISUSE, op, h, "the default heap cannot be destroyed or reset");
  return true;
}

/* Wait until c is 0: a count of other threads' operations on a heap that must end before the
** heap changes (settling caches, running notify hooks). */
static void wait_zero(_Atomic uint32_t *c) {
  while (atomic_load_explicit(c, memory_order_acquire)) sched_yield();
}

void hak_heap_destroy(hak_heap_t *h) {
  if (!h || refuse_default(h, "hak_heap_destroy")) return;
  hak__tc_lock_acquire();
  wait_zero(&h->settling); /* exiting or flushing threads raise it only under hak__tc_lock */
  hak__rbatch_discard(h, false); /* before its caches go: batches point at them */
  hak__tcache_free_all(h);
  if (h->slot != HAK_NO_SLOT) {
    slot_used[h->slot / 64] &= ~((uint64_t)1 << (h->slot % 64));
    if (h->slot / 64 < slot_hint) slot_hint = h->slot / 64;
  }
  if (h->live_prev) h->live_prev->live_next = h->live_next;
  else live_heaps = h->live_next;
  if (h->live_next) h->live_next->live_prev = h->live_prev;
  hak__tc_lock_release();
  atomic_store_explicit(&h->notify_fn, NULL, memory_order_release);
  /* A post of another thread may still be calling h's hook (it posted before the discard). */
  wait_zero(&h->notify_busy);
  hak__large_release_heap(h, true);
  release_chain(h->ss_list, false); /* h is private to the caller now */
  h->ss_list = NULL;
  h->ss_count = 0;
  HAK_TRACK_HEAP_GONE(h);
  pthread_mutex_destroy(&h->lock);
  pthread_mutex_destroy(&h->guest_lock);
  hak__meta_free(h);
}

void hak_heap_reset(hak_heap_t *h) {
  if (!h || refuse_default(h, "hak_heap_reset")) return;
  atomic_store_explicit(&h->user, NULL, memory_order_release);
  hak__large_release_heap(h, false);
  HAK_TRACK_HEAP_GONE(h);
  HAK_TRACK_HEAP_NEW(h);
  hak__tc_lock_acquire();
  wait_zero(&h->settling); /* exiting or flushing threads raise it only under hak__tc_lock */
  hak__rbatch_discard(h, true); /* counted pushed; reset_all counts them drained */
  pthread_mutex_lock(&h->lock);
  hak__tcache_reset_all(h); /* caches stay attached, owning nothing */
  for (hak__superslab_t *ss = h->ss_list; ss; ss = ss->next)
    for (int i = 1; i < HAK_SLABS_PER_SS; i++)
      if (ss->slabs[i].live && ss->slabs[i].cls < HAK_CLASSES)
        hak__slab_fold_all_freed(h, &ss->slabs[i]);
  hak__superslab_t *keep = h->ss_list, *drop = keep ? keep->next : NULL;
  h->ss_list = keep;
  h->ss_count = keep ? 1 : 0;
  h->dirty_slabs = 0;
  if (keep) {
    keep->next = keep->prev = NULL;
    hak__ss_clear_slabs(keep);
    for (int i = 1; i < HAK_SLABS_PER_SS; i++) h->dirty_slabs += keep->slabs[i].dirty;
  }
  h->held = h->large_cached_bytes; /* the large blocks went to the cache (large.c) */
  pthread_mutex_unlock(&h->lock);
  hak__tc_lock_release();
  release_chain(drop, false);
  hak__slab_decommit_free(h, false);
}

/* Drain the guest cache (and give its empty slabs back) if the heap has one. */
static size_t guest_settle(hak_heap_t *h, bool release) {
  size_t n = 0;
  if (!h->home) return 0;
  pthread_mutex_lock(&h->guest_lock);
  if (h->guest) {
    n = hak__tcache_drain(h->guest);
    if (release) hak__tcache_release_empty(h->guest);
  }
  pthread_mutex_unlock(&h->guest_lock);
  return n;
}

size_t hak_heap_drain(hak_heap_t *h) {
  if (!h) return 0;
  hak__rbatch_post_mine();
  hak__tcache_t *tc = hak__tcache_find(h);
  size_t n = tc ? hak__tcache_drain(tc) : 0;
  if (atomic_load_explicit(&h->idle, memory_order_relaxed))
    n += hak__tcache_collect_idle(h); /* a peek without the lock: idle caches are rare */
  n += guest_settle(h, false);
  hak__report_pending();
  return n;
}

void hak_heap_collect(hak_heap_t *h, bool force) {
  if (!h) return;
  hak__rbatch_post_mine();
  hak__tcache_t *tc = hak__tcache_find(h);
  if (tc) {
    hak__tcache_drain(tc);
    hak__tcache_release_empty(tc);
  }
  hak__tcache_collect_idle(h);
  guest_settle(h, true);
  /* Superslabs left with no assigned slab go back, except one kept for reuse. */
  hak__superslab_t *drop = NULL;
  pthread_mutex_lock(&h->lock);
  hak__superslab_t *ss = h->ss_list;
  bool kept = false;
  while (ss) {
    hak__superslab_t *next = ss->next;
    if (ss->assigned == 0) {
      if (!kept && !force) {
        kept = true;
      } else {
        hak__slab_unlink_superslab(h, ss);
        ss->next = drop;
        drop = ss;
      }
    }
    ss = next;
  }
  pthread_mutex_unlock(&h->lock);
  release_chain(drop, true);
  hak__slab_decommit_free(h, force);
  hak__large_collect(h, force);
  hak__report_pending();
  if (force) hak__ss_trim_cache();
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

void hak_heap_set_user(hak_heap_t *h, void *user) {
  if (h) atomic_store_explicit(&h->user, user, memory_order_release);
}

void *hak_heap_user(const hak_heap_t *h) {
  return h ? atomic_load_explicit(&((hak_heap_t *)h)->user, memory_order_acquire) : NULL;
}

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
  hak__rbatch_post_mine();
  uint64_t allocs[HAK_CLASSES], frees[HAK_CLASSES];
  /* Batches of other threads bound for h: counted as pushed and not drained, and held still
  ** (no post) while the caches' counters are read, so each block counts once. */
  uint64_t batched = 0, batched_b = 0;
  hak__tc_lock_acquire();
  hak__rbatch_lock_heap(h, &batched, &batched_b);
  pthread_mutex_lock(&h->lock);
  memcpy(allocs, h->cls_allocs, sizeof allocs);
  memcpy(frees, h->cls_frees, sizeof frees);
  /* Counters of owned slabs are written by their owners without the lock: a snapshot. */
  for (hak__superslab_t *ss = h->ss_list; ss; ss = ss->next) {
    for (int i = 1; i < HAK_SLABS_PER_SS; i++) {
      const hak__slab_t *s = &ss->slabs[i];
      if (!s->live || s->cls >= HAK_CLASSES) continue; /* unassigned, or a medium span's tail */
      uint64_t f = hak__slab_frees(s);
      allocs[s->cls] += HAK_OWNED_GET(s->allocs);
      frees[s->cls] += f;
    }
  }
  /* Remote frees count when batched; those still batched or queued are not in their slab's
  ** frees yet. */
  uint64_t pushed = h->remote_pushed + batched, drained = h->remote_drained;
  uint64_t pushed_b = h->remote_pushed_bytes + batched_b, drained_b = h->remote_drained_bytes;
  for (hak__tcache_t *tc = h->tcaches; tc; tc = tc->heap_next) {
    /* drained first: a block is pushed before it is drained, so pushed >= drained */
    drained += HAK_COUNTER_GET(tc->remote_drained);
    drained_b += HAK_COUNTER_GET(tc->remote_drained_bytes);
    pushed += atomic_load_explicit(&tc->remote_pushed, memory_order_acquire);
    pushed_b += atomic_load_explicit(&tc->remote_pushed_bytes, memory_order_relaxed);
  }
  uint64_t pending = pushed >= drained ? pushed - drained : 0;
  uint64_t pending_bytes = pushed_b >= drained_b ? pushed_b - drained_b : 0;
  uint64_t remote = pushed;
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
  hak__rbatch_unlock_heap();
  hak__tc_lock_release();
  out->free_count += pending;
  for (unsigned c = 0; c < HAK_CLASSES; c++) {
    out->alloc_count += allocs[c];
    out->free_count += frees[c];
    uint64_t live = allocs[c] >= frees[c] ? allocs[c] - frees[c] : 0;
    out->live_blocks += live;
    out->live_bytes += live * hak__class_size[c];
  }
  out->live_blocks = out->live_blocks >= pending ? out->live_blocks - pending : 0;
  out->live_bytes = out->live_bytes >= pending_bytes ? out->live_bytes - pending_bytes : 0;
}
