/* tcache.c: thread-cache slow paths: attach, refill, flush, remote drain, thread exit. */
#include "tcache.h"

#include <errno.h>
#include <string.h>

#include "error.h"
#include "meta_pool.h"
#include "remote_queue.h"
#include "size_class.h"
#include "slab.h"

HAK_TLS hak__tcache_t *hak__tls_slots[HAK_TLS_SLOTS + 1]; /* last one: slotless heaps, always NULL */
static HAK_TLS hak__tcache_t *tls_owned; /* every cache this thread created */

static pthread_mutex_t hak__tc_lock = HAK_MUTEX_INIT;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;

void hak__tc_lock_acquire(void) { pthread_mutex_lock(&hak__tc_lock); }
void hak__tc_lock_release(void) { pthread_mutex_unlock(&hak__tc_lock); }
void hak__tc_reinit_child(void) { hak__mutex_init(&hak__tc_lock); }

static hak_heap_t *tc_heap(hak__tcache_t *tc) {
  return atomic_load_explicit(&tc->heap, memory_order_relaxed);
}

hak__tcache_t *hak__tcache_find_slow(hak_heap_t *h) {
  for (hak__tcache_t *tc = tls_owned; tc; tc = tc->thread_next)
    if (tc_heap(tc) == h) return tc;
  return NULL;
}

static void thread_exit(void *arg);
static void create_key(void) { pthread_key_create(&exit_key, thread_exit); }

hak__tcache_t *hak__tcache_attach(hak_heap_t *h) {
  hak__tcache_t *tc = hak__tcache_find(h);
  if (tc) return tc;
  pthread_once(&key_once, create_key);
  hak__tc_lock_acquire();
  if (h->slot < HAK_TLS_SLOTS && hak__tls_slots[h->slot] && !tc_heap(hak__tls_slots[h->slot]))
    tc = hak__tls_slots[h->slot];
  for (hak__tcache_t *t = tls_owned; !tc && t; t = t->thread_next)
    if (!tc_heap(t)) tc = t;
  if (!tc) {
    _Static_assert(sizeof(hak__tcache_t) <= HAK_META_SIZE, "tcache fits a meta object");
    tc = hak__meta_alloc();
    if (!tc) {
      hak__tc_lock_release();
      errno = ENOMEM;
      return NULL;
    }
    tc->thread_next = tls_owned;
    tls_owned = tc;
  }
  for (unsigned c = 0; c < HAK_CLASSES; c++) {
    tc->bins[c].head = NULL;
    tc->bins[c].count = 0;
    tc->bins[c].limit = hak__class_cache_limit(c);
    tc->bins[c].batch = hak__class_first_batch(c);
  }
  pthread_mutex_lock(&h->lock);
  tc->heap_prev = NULL;
  tc->heap_next = h->tcaches;
  if (h->tcaches) h->tcaches->heap_prev = tc;
  h->tcaches = tc;
  atomic_store_explicit(&tc->heap, h, memory_order_relaxed);
  pthread_mutex_unlock(&h->lock);
  hak__tc_lock_release();
  if (h->slot < HAK_TLS_SLOTS) hak__tls_slots[h->slot] = tc;
  pthread_setspecific(exit_key, (void *)1);
  return tc;
}

static void pop_to_slabs(hak_heap_t *h, hak__bin_t *bin, uint32_t n) {
  while (n--) {
    hak__block_t *b = bin->head;
    bin->head = hak__blk_next(h, b);
    bin->count--;
    hak__slab_put(h, (hak__base_t){ b });
  }
  if (bin->count == 0) bin->head = NULL; /* after a double free the links may lead further */
}

hak__base_t hak__tcache_refill(hak__tcache_t *tc, hak_heap_t *h, unsigned cls) {
  hak__bin_t *bin = &tc->bins[cls];
  if (hak__remote_pending(h)) hak__tcache_drain_remote(tc, h);
  if (!bin->head) {
    /* Small first refills keep short-lived heaps from touching whole slabs. */
    uint32_t want = bin->batch;
    if (bin->batch < bin->limit / 2) bin->batch *= 2;
    pthread_mutex_lock(&h->lock);
    bin->count += hak__slab_take(h, cls, want, &bin->head);
    hak__heap_unlock(h);
    if (!bin->head) {
      /* At the limit (or out of memory): what this thread caches may free whole slabs. */
      hak__tcache_flush_all(tc, h);
      pthread_mutex_lock(&h->lock);
      bin->count += hak__slab_take(h, cls, 1, &bin->head);
      hak__heap_unlock(h);
      if (!bin->head) {
        errno = ENOMEM;
        return (hak__base_t){ NULL };
      }
    }
  }
  hak__block_t *b = bin->head;
  if (HAK_UNLIKELY(hak__blk_key(b) != hak__free_key)) {
    /* Listed twice (a double free): drop the bin and report; the caller retries. */
    bin->head = NULL;
    bin->count = 0;
    hak__report(HAK_ERR_DOUBLE_FREE, "hak_free", b,
                "double free of a small block (detected when the block was reused)");
    return hak__tcache_refill(tc, h, cls);
  }
  bin->head = hak__blk_next(h, b);
  bin->count--;
  hak__blk_hand_out(h, b, hak__class_size[cls]);
  hak__report_pending();
  HAK_COUNTER_ADD(bin->allocs, 1);
  return (hak__base_t){ b };
}

void hak__tcache_overflow(hak__tcache_t *tc, hak_heap_t *h, unsigned cls) {
  hak__bin_t *bin = &tc->bins[cls];
  pthread_mutex_lock(&h->lock);
  pop_to_slabs(h, bin, bin->count - bin->limit / 2);
  hak__heap_unlock(h);
}

void hak__tcache_flush_all(hak__tcache_t *tc, hak_heap_t *h) {
  pthread_mutex_lock(&h->lock);
  for (unsigned c = 0; c < HAK_CLASSES; c++) pop_to_slabs(h, &tc->bins[c], tc->bins[c].count);
  hak__heap_unlock(h);
}

size_t hak__tcache_drain_remote(hak__tcache_t *tc, hak_heap_t *h) {
  hak__block_t *list = hak__remote_take_all(h);
  size_t n = 0;
  uint64_t over = 0;
  while (list) {
    hak__base_t b = { list };
    list = hak__blk_next(h, list);
    unsigned cls = hak__slab_of_base(b)->cls;
    hak__bin_t *bin = &tc->bins[cls];
    hak__bin_push(h, bin, b);
    HAK_COUNTER_ADD(bin->frees, 1);
    if (bin->count > bin->limit) over |= (uint64_t)1 << cls;
    n++;
  }
  HAK_COUNTER_ADD(tc->remote_frees, n);
  while (over) {
    unsigned c = (unsigned)__builtin_ctzll(over);
    over &= over - 1;
    hak__tcache_overflow(tc, h, c);
  }
  return n;
}

/* With hak__tc_lock and h->lock held. */
enum { DETACH_FLUSH, DETACH_FOLD, DETACH_DROP };
static void detach_locked(hak__tcache_t *tc, hak_heap_t *h, int mode) {
  for (unsigned c = 0; c < HAK_CLASSES; c++) {
    hak__bin_t *bin = &tc->bins[c];
    if (mode == DETACH_FLUSH) pop_to_slabs(h, bin, bin->count);
    if (mode != DETACH_DROP) {
      h->cls_allocs[c] += HAK_COUNTER_GET(bin->allocs);
      h->cls_frees[c] += HAK_COUNTER_GET(bin->frees);
    }
    bin->head = NULL;
    bin->count = 0;
    atomic_store_explicit(&bin->allocs, 0, memory_order_relaxed);
    atomic_store_explicit(&bin->frees, 0, memory_order_relaxed);
  }
  if (mode != DETACH_DROP) h->remote_frees += HAK_COUNTER_GET(tc->remote_frees);
  atomic_store_explicit(&tc->remote_frees, 0, memory_order_relaxed);
  if (tc->heap_prev) tc->heap_prev->heap_next = tc->heap_next;
  else h->tcaches = tc->heap_next;
  if (tc->heap_next) tc->heap_next->heap_prev = tc->heap_prev;
  tc->heap_next = tc->heap_prev = NULL;
  atomic_store_explicit(&tc->heap, NULL, memory_order_relaxed);
}

void hak__tcache_detach_all(hak_heap_t *h, bool fold) {
  pthread_mutex_lock(&h->lock);
  while (h->tcaches) detach_locked(h->tcaches, h, fold ? DETACH_FOLD : DETACH_DROP);
  pthread_mutex_unlock(&h->lock);
}

/* Give back the caches of the calling thread (thread exit, hak_thread_flush). */
static void release_thread_caches(bool free_memory) {
  hak__tc_lock_acquire();
  for (hak__tcache_t *tc = tls_owned; tc; tc = tc->thread_next) {
    hak_heap_t *h = tc_heap(tc);
    if (!h) continue;
    hak__tcache_drain_remote(tc, h); /* what other threads freed becomes reusable now */
    pthread_mutex_lock(&h->lock);
    detach_locked(tc, h, DETACH_FLUSH);
    pthread_mutex_unlock(&h->lock);
  }
  hak__tcache_t *list = free_memory ? tls_owned : NULL;
  if (free_memory) tls_owned = NULL;
  hak__tc_lock_release();
  hak__report_pending();
  while (list) {
    hak__tcache_t *next = list->thread_next;
    hak__meta_free(list);
    list = next;
  }
  if (free_memory) memset(hak__tls_slots, 0, sizeof hak__tls_slots);
}

static void thread_exit(void *arg) {
  (void)arg;
  release_thread_caches(true);
}

void hak_thread_flush(void) { release_thread_caches(false); }
