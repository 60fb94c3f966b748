/* remote_batch.c: the out-of-line side of the remote batches: binding a batch to an owner,
** posting, registration and retirement, and what destroy, reset, stats and fork do to batches
** of other threads. */
#include "remote_batch.h"

#include <sched.h>

#include "remote_queue.h"
#include "tcache.h"

HAK_TLS _Alignas(HAK_CACHELINE) hak__rbatch_t hak__rbatch_tls;
static hak__rbatch_t *batches; /* every registered batch (hak__tc_lock) */

/* Uncontended but for a stats, destroy or reset walk, which hold it for a few instructions. */
static void batch_lock(hak__rbatch_t *r) {
  while (atomic_exchange_explicit(&r->lock, 1, memory_order_acquire))
    while (atomic_load_explicit(&r->lock, memory_order_relaxed)) sched_yield();
}

static void batch_unlock(hak__rbatch_t *r) {
  atomic_store_explicit(&r->lock, 0, memory_order_release);
}

static void batch_clear(hak__rbatch_t *r) {
  r->first = r->last = NULL;
  atomic_store_explicit(&r->n, 0, memory_order_relaxed);
  atomic_store_explicit(&r->bytes, 0, memory_order_relaxed);
}

/* r locked: link its chain onto its owner's queue and empty it. Returns the heap whose notify
** hook the caller must call once unlocked (notify_busy raised, so a destroy of that heap waits
** for the call: the post may come from a free of another heap's block, with nothing the user
** could order against the destroy), or NULL. */
static hak_heap_t *post_locked(hak__rbatch_t *r) {
  uint64_t n = atomic_load_explicit(&r->n, memory_order_relaxed);
  if (n == 0) return NULL;
  hak__tcache_t *owner = atomic_load_explicit(&r->owner, memory_order_relaxed);
  hak_heap_t *h = r->heap, *notify = NULL;
  bool guest = owner->guest; /* read before the link: after it the owner may be gone */
  if (hak__remote_link(owner, r->first, r->last, n,
                       atomic_load_explicit(&r->bytes, memory_order_relaxed)) &&
      !guest && hak__remote_has_notify(h)) {
    atomic_fetch_add_explicit(&h->notify_busy, 1, memory_order_relaxed);
    notify = h;
  }
  batch_clear(r);
  return notify;
}

static void notify(hak_heap_t *h) {
  if (!h) return;
  hak__remote_notify_slow(h);
  atomic_fetch_sub_explicit(&h->notify_busy, 1, memory_order_release);
}

void hak__rbatch_post(hak__rbatch_t *r) {
  if (atomic_load_explicit(&r->n, memory_order_relaxed) == 0) return;
  batch_lock(r);
  hak_heap_t *h = post_locked(r);
  batch_unlock(r);
  notify(h);
}

void hak__rbatch_add_slow(hak__slab_t *s, hak__block_t *b) {
  hak__rbatch_t *r = &hak__rbatch_tls;
  hak__tcache_t *owner = s->owner;
  if (HAK_UNLIKELY(r->retired)) {
    hak__remote_push(owner, b, b, 1, s->block_size);
    return;
  }
  if (HAK_UNLIKELY(!r->registered)) {
    hak__tcache_exit_arm(); /* a thread that only frees remotely must post at exit too */
    hak__tc_lock_acquire();
    r->prev = NULL;
    r->next = batches;
    if (batches) batches->prev = r;
    batches = r;
    r->registered = 1;
    hak__tc_lock_release();
  }
  /* One locked step from the old owner to the new: a free made by the notify hook below lands
  ** in the new batch. */
  batch_lock(r);
  hak_heap_t *h = post_locked(r);
  atomic_store_explicit(&r->owner, owner, memory_order_relaxed);
  r->heap = owner->heap;
  hak__rbatch_add(r, s, b); /* n == 1: no post */
  batch_unlock(r);
  notify(h);
}

void hak__rbatch_retire(void) {
  hak__rbatch_t *r = &hak__rbatch_tls;
  if (!r->registered) {
    r->retired = 1;
    return;
  }
  batch_lock(r);
  hak_heap_t *h = post_locked(r);
  atomic_store_explicit(&r->owner, NULL, memory_order_relaxed);
  r->heap = NULL;
  r->retired = 1;
  batch_unlock(r);
  notify(h);
  hak__tc_lock_acquire();
  if (r->prev) r->prev->next = r->next;
  else batches = r->next;
  if (r->next) r->next->prev = r->prev;
  r->next = r->prev = NULL;
  r->registered = 0;
  hak__tc_lock_release();
}

void hak__rbatch_forget(hak__tcache_t *tc) {
  hak__tc_lock_acquire();
  for (hak__rbatch_t *r = batches; r; r = r->next) {
    batch_lock(r);
    if (atomic_load_explicit(&r->owner, memory_order_relaxed) == tc) {
      HAK_ASSERT(atomic_load_explicit(&r->n, memory_order_relaxed) == 0);
      atomic_store_explicit(&r->owner, NULL, memory_order_relaxed);
      r->heap = NULL;
    }
    batch_unlock(r);
  }
  hak__tc_lock_release();
}

void hak__rbatch_discard(hak_heap_t *h, bool count) {
  for (hak__rbatch_t *r = batches; r; r = r->next) {
    batch_lock(r);
    if (r->heap == h) {
      hak__tcache_t *owner = atomic_load_explicit(&r->owner, memory_order_relaxed);
      if (count) {
        atomic_fetch_add_explicit(&owner->remote_pushed,
                                  atomic_load_explicit(&r->n, memory_order_relaxed),
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&owner->remote_pushed_bytes,
                                  atomic_load_explicit(&r->bytes, memory_order_relaxed),
                                  memory_order_relaxed);
      }
      batch_clear(r);
      atomic_store_explicit(&r->owner, NULL, memory_order_relaxed);
      r->heap = NULL;
    }
    batch_unlock(r);
  }
}

void hak__rbatch_lock_heap(hak_heap_t *h, uint64_t *n, uint64_t *bytes) {
  for (hak__rbatch_t *r = batches; r; r = r->next) {
    batch_lock(r);
    if (r->heap != h) {
      batch_unlock(r);
      continue;
    }
    r->walk_held = 1;
    *n += atomic_load_explicit(&r->n, memory_order_relaxed);
    *bytes += atomic_load_explicit(&r->bytes, memory_order_relaxed);
  }
}

void hak__rbatch_unlock_heap(void) {
  for (hak__rbatch_t *r = batches; r; r = r->next) {
    if (!r->walk_held) continue;
    r->walk_held = 0;
    batch_unlock(r);
  }
}

void hak__rbatch_fork_child(void) {
  hak__rbatch_t *r = &hak__rbatch_tls;
  atomic_store_explicit(&r->lock, 0, memory_order_relaxed);
  r->next = r->prev = NULL;
  batches = r->registered ? r : NULL;
}
