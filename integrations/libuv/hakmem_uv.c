/*
** hakmem_uv.c: the libuv binding box. Keeps a side table loop -> binding (never loop->data), a
** per-loop table handle -> connection heap, a per-loop pool of reset heaps, and the wake-up path
** from remote frees on any thread to a drain on the loop thread.
**
** It must never free into a heap from the remote-notify callback, never touch a handle's data
** field, and never keep uv_run alive by itself.
*/
#include "hakmem_uv.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct binding_s binding_t;

/*
** A heap the binding drains: the loop's heap (binding_t.root) or a connection heap. `b`, `heap`
** are set before the remote-notify callback is installed and never change afterwards; the
** callback reads them from any thread. `queued` and `next_pending` belong to the pending stack
** (see binding_t). The rest is loop-thread only.
*/
typedef struct conn_s {
  hak_heap_t *heap;
  binding_t *b;
  atomic_bool queued;        /* on b->pending; set by notifiers, cleared by the drain */
  struct conn_s *next_pending; /* written by the pusher before its release CAS */
  uv_handle_t *handle;       /* key in b's map while attached, else NULL */
  uv_close_cb close_cb;      /* the user's, while hak_uv_close is in progress */
  unsigned work;             /* hak_uv_queue_work requests not yet finished */
  bool detached;             /* handle closed or released; recycle when work reaches 0 */
  struct conn_s *next_idle;  /* pool link */
} conn_t;

/*
** One bound loop. Bindings are never freed, only reused, so a remote-notify callback that
** raced with unbind still touches valid memory; `active` plus `inflight` (a Dekker pair, both
** seq_cst) let unbind wait until no callback can still send on the async handle.
** `loop` and `heap` are written under g_lock and read by any thread (acquire). The pending stack
** is a Treiber stack: any thread pushes, only the loop thread takes the whole stack at once, so
** there is no ABA. Everything after `async` is loop-thread only (`closing` under g_lock).
*/
struct binding_s {
  _Atomic(uv_loop_t *) loop;  /* NULL when unbound */
  _Atomic(hak_heap_t *) heap;
  binding_t *next_all;        /* g_bindings, under g_lock; never unlinked */
  atomic_bool active;
  atomic_int inflight;
  _Atomic(conn_t *) pending;
  conn_t root;
  uv_async_t async;
  uv_prepare_t prepare;
  int closing;                /* internal handles not yet closed; reuse only at 0 */
  bool retired;               /* someone else closed an internal handle: never reused */
  conn_t **map;               /* open addressing on handle address, linear probing */
  size_t map_cap, map_len;
  conn_t *pool;
  size_t pool_len, pool_max;
  /* most heaps attached at once in the current and the previous second of loop time (uv_now):
  ** the pool keeps what the recent peak needs beyond the heaps attached now */
  size_t peak_cur, peak_prev;
  uint64_t peak_second;
  char *read_buf;             /* hak_uv_alloc_cb_shared's, in the loop's heap, or NULL */
  size_t attached;
  uint64_t wakeups, drains, created, reused, resets;
  uv_thread_t drain_thread;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static binding_t *g_bindings;
static _Thread_local binding_t *t_last; /* last binding this thread looked up */

enum { MAP_MIN = 64 };

/* ** {======================================================================
** loop -> binding
** ======================================================================= */

/* Lookups of one loop only happen on its thread, as do its bind and unbind, so a cached
** binding whose loop still matches is the current one. */
static binding_t *binding_of(const uv_loop_t *loop) {
  binding_t *b = t_last;
  if (b && atomic_load_explicit(&b->loop, memory_order_acquire) == loop) return b;
  if (!loop) return NULL;
  pthread_mutex_lock(&g_lock);
  for (b = g_bindings; b; b = b->next_all)
    if (atomic_load_explicit(&b->loop, memory_order_relaxed) == loop) break;
  pthread_mutex_unlock(&g_lock);
  if (b) t_last = b;
  return b;
}

hak_heap_t *hak_uv_loop_heap(const uv_loop_t *loop) {
  binding_t *b = binding_of(loop);
  return b ? atomic_load_explicit(&b->heap, memory_order_acquire) : NULL;
}

/* }====================================================================== */

/* ** {======================================================================
** handle -> connection heap (loop thread only)
** ======================================================================= */

static size_t map_slot(const binding_t *b, const uv_handle_t *h) {
  uint64_t x = (uint64_t)(uintptr_t)h * 0x9E3779B97F4A7C15ull;
  return (size_t)(x >> 32) & (b->map_cap - 1);
}

static conn_t *map_get(const binding_t *b, const uv_handle_t *h) {
  if (b->map_len == 0) return NULL;
  for (size_t i = map_slot(b, h);; i = (i + 1) & (b->map_cap - 1)) {
    conn_t *c = b->map[i];
    if (!c || c->handle == h) return c;
  }
}

static void map_insert(binding_t *b, conn_t *c) {
  size_t i = map_slot(b, c->handle);
  while (b->map[i]) i = (i + 1) & (b->map_cap - 1);
  b->map[i] = c;
  b->map_len++;
}

static int map_put(binding_t *b, conn_t *c) {
  if ((b->map_len + 1) * 2 > b->map_cap) {
    size_t old_cap = b->map_cap, cap = old_cap ? old_cap * 2 : MAP_MIN;
    conn_t **old = b->map, **map = calloc(cap, sizeof *map);
    if (!map) return UV_ENOMEM;
    b->map = map;
    b->map_cap = cap;
    b->map_len = 0;
    for (size_t i = 0; i < old_cap; i++)
      if (old[i]) map_insert(b, old[i]);
    free(old);
  }
  map_insert(b, c);
  return 0;
}

/* Backward-shift deletion keeps probe chains whole without tombstones. */
static void map_del(binding_t *b, conn_t *c) {
  size_t mask = b->map_cap - 1, i = map_slot(b, c->handle);
  while (b->map[i] != c) i = (i + 1) & mask;
  for (size_t j = (i + 1) & mask; b->map[j]; j = (j + 1) & mask) {
    size_t home = map_slot(b, b->map[j]->handle);
    if (((j - home) & mask) >= ((j - i) & mask)) {
      b->map[i] = b->map[j];
      i = j;
    }
  }
  b->map[i] = NULL;
  b->map_len--;
}

/* }====================================================================== */

/* ** {======================================================================
** remote frees: notify on any thread, drain on the loop thread
** ======================================================================= */

static void on_remote(hak_heap_t *heap, void *arg) {
  conn_t *c = arg;
  binding_t *b = c->b;
  (void)heap;
  atomic_fetch_add(&b->inflight, 1);
  if (atomic_load(&b->active)) {
    if (!atomic_exchange_explicit(&c->queued, true, memory_order_acq_rel)) {
      conn_t *top = atomic_load_explicit(&b->pending, memory_order_relaxed);
      do {
        c->next_pending = top;
      } while (!atomic_compare_exchange_weak_explicit(&b->pending, &top, c, memory_order_release,
                                                      memory_order_relaxed));
    }
    uv_async_send(&b->async);
  }
  atomic_fetch_sub(&b->inflight, 1);
}

static void drain(binding_t *b) {
  conn_t *c = atomic_exchange_explicit(&b->pending, NULL, memory_order_acquire);
  while (c) {
    conn_t *next = c->next_pending;
    /* Cleared before draining: a free landing during the drain queues the heap again. */
    atomic_store_explicit(&c->queued, false, memory_order_release);
    hak_heap_drain(c->heap);
    b->drains++;
    b->drain_thread = uv_thread_self();
    c = next;
  }
}

static void on_async(uv_async_t *a) {
  binding_t *b = a->data;
  b->wakeups++;
  drain(b);
}

/* Catches anything queued while an async wake-up was already in flight, before the loop blocks. */
static void on_prepare(uv_prepare_t *p) {
  binding_t *b = p->data;
  if (atomic_load_explicit(&b->pending, memory_order_relaxed)) drain(b);
}

/* }====================================================================== */

/* ** {======================================================================
** bind / unbind
** ======================================================================= */

static void on_internal_closed(uv_handle_t *h);

int hak_uv_loop_bind(uv_loop_t *loop, hak_heap_t *heap) {
  binding_t *b, *spare = NULL;
  int r;
  if (!loop || !heap) return UV_EINVAL;
  pthread_mutex_lock(&g_lock);
  for (b = g_bindings; b; b = b->next_all) {
    uv_loop_t *l = atomic_load_explicit(&b->loop, memory_order_relaxed);
    if (l == loop || (l && atomic_load_explicit(&b->heap, memory_order_relaxed) == heap)) {
      pthread_mutex_unlock(&g_lock);
      return UV_EBUSY;
    }
    if (!l && b->closing == 0 && !b->retired && !spare) spare = b;
  }
  b = spare;
  if (!b) {
    b = calloc(1, sizeof *b);
    if (!b) {
      pthread_mutex_unlock(&g_lock);
      return UV_ENOMEM;
    }
    b->next_all = g_bindings;
    g_bindings = b;
  }
  r = uv_async_init(loop, &b->async, on_async);
  if (r == 0) {
    r = uv_prepare_init(loop, &b->prepare);
    if (r != 0) {
      b->async.data = b;
      b->closing = 1; /* reuse waits for on_internal_closed */
      uv_close((uv_handle_t *)&b->async, on_internal_closed);
    }
  }
  if (r != 0) {
    pthread_mutex_unlock(&g_lock);
    return r;
  }
  b->async.data = b;
  b->prepare.data = b;
  uv_prepare_start(&b->prepare, on_prepare);
  uv_unref((uv_handle_t *)&b->async);
  uv_unref((uv_handle_t *)&b->prepare);
  b->root.heap = heap;
  b->root.b = b;
  atomic_store(&b->root.queued, false);
  atomic_store(&b->pending, NULL);
  b->map = NULL;
  b->map_cap = b->map_len = 0;
  b->pool = NULL;
  b->pool_len = 0;
  b->pool_max = SIZE_MAX;
  b->peak_cur = b->peak_prev = 0;
  b->peak_second = uv_now(loop) / 1000;
  b->read_buf = NULL;
  b->attached = 0;
  b->wakeups = b->drains = b->created = b->reused = b->resets = 0;
  b->drain_thread = uv_thread_self();
  atomic_store(&b->active, true);
  atomic_store_explicit(&b->heap, heap, memory_order_release);
  atomic_store_explicit(&b->loop, loop, memory_order_release);
  pthread_mutex_unlock(&g_lock);
  hak_heap_set_remote_notify(heap, on_remote, &b->root);
  /* Frees queued before the callback was installed woke nobody. */
  hak_heap_collect(heap, false);
  return 0;
}

int hak_uv_is_internal(const uv_handle_t *handle) {
  binding_t *b = handle ? binding_of(handle->loop) : NULL;
  return b && (handle == (const uv_handle_t *)&b->async ||
               handle == (const uv_handle_t *)&b->prepare);
}

static void on_internal_closed(uv_handle_t *h) {
  binding_t *b = h->data;
  pthread_mutex_lock(&g_lock);
  b->closing--;
  pthread_mutex_unlock(&g_lock);
}

static void conn_destroy(conn_t *c) {
  hak_heap_set_remote_notify(c->heap, NULL, NULL);
  hak_heap_destroy(c->heap);
  free(c);
}

int hak_uv_loop_unbind(uv_loop_t *loop) {
  binding_t *b = binding_of(loop);
  hak_heap_t *heap;
  if (!b) return UV_EINVAL;
  if (b->attached) return UV_EBUSY;
  heap = b->root.heap;
  atomic_store(&b->active, false);
  hak_heap_set_remote_notify(heap, NULL, NULL);
  for (conn_t *c = b->pool; c; c = c->next_idle) hak_heap_set_remote_notify(c->heap, NULL, NULL);
  /* A notifier that saw active == true is still between its two counter updates. */
  while (atomic_load(&b->inflight) != 0) sched_yield();
  drain(b);
  hak_heap_collect(heap, false);
  while (b->pool) {
    conn_t *c = b->pool;
    b->pool = c->next_idle;
    conn_destroy(c);
  }
  b->pool_len = 0;
  free(b->map);
  b->map = NULL;
  b->map_cap = b->map_len = 0;
  hak_free(b->read_buf);
  b->read_buf = NULL;
  /* A uv_walk that closed every handle may have closed ours already: libuv forbids a second
  ** uv_close, and that close's callback is not ours, so the record can never be reused. */
  uv_handle_t *internal[2] = {(uv_handle_t *)&b->async, (uv_handle_t *)&b->prepare};
  pthread_mutex_lock(&g_lock);
  atomic_store_explicit(&b->loop, NULL, memory_order_release);
  atomic_store_explicit(&b->heap, NULL, memory_order_release);
  b->closing = 0;
  for (int i = 0; i < 2; i++) {
    if (uv_is_closing(internal[i]))
      b->retired = true;
    else
      b->closing++;
  }
  pthread_mutex_unlock(&g_lock);
  for (int i = 0; i < 2; i++)
    if (!uv_is_closing(internal[i])) uv_close(internal[i], on_internal_closed);
  return 0;
}

/* }====================================================================== */

/* ** {======================================================================
** per-connection heaps
** ======================================================================= */

/* Start a new window when the loop's second has moved on; an idle second forgets its peak. */
static void peak_roll(binding_t *b) {
  uv_loop_t *loop = atomic_load_explicit(&b->loop, memory_order_relaxed);
  uint64_t s = uv_now(loop) / 1000;
  if (s == b->peak_second) return;
  b->peak_prev = s == b->peak_second + 1 ? b->peak_cur : 0;
  b->peak_cur = b->attached;
  b->peak_second = s;
}

/* Idle heaps worth keeping: what the recent peak of attached heaps needs beyond those attached
** now, within the user's cap. */
static size_t pool_want(binding_t *b) {
  size_t peak = b->peak_cur > b->peak_prev ? b->peak_cur : b->peak_prev;
  size_t want = peak > b->attached ? peak - b->attached : 0;
  return want < b->pool_max ? want : b->pool_max;
}

static conn_t *conn_take(binding_t *b) {
  conn_t *c = b->pool;
  if (c) {
    b->pool = c->next_idle;
    b->pool_len--;
    b->reused++;
  } else {
    hak_heap_config_t cfg = {.name = "uv-conn", .shared_guests = true};
    c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->heap = hak_heap_create(&cfg);
    if (!c->heap) {
      free(c);
      return NULL;
    }
    c->b = b;
    hak_heap_set_remote_notify(c->heap, on_remote, c);
    b->created++;
  }
  c->next_idle = NULL;
  c->detached = false;
  c->work = 0;
  c->close_cb = NULL;
  return c;
}

/* The connection is over and no work uses its heap any more. */
static void conn_recycle(binding_t *b, conn_t *c) {
  size_t want;
  peak_roll(b);
  b->attached--;
  b->resets++;
  want = pool_want(b);
  /* The heap may sit on the pending stack; take it off before it can be destroyed. */
  if (atomic_load(&c->queued)) drain(b);
  hak_heap_reset(c->heap);
  if (b->pool_len < want) {
    c->next_idle = b->pool;
    b->pool = c;
    b->pool_len++;
    return;
  }
  conn_destroy(c);
  /* The peak fell: one more idle heap goes with each close until the pool fits it. */
  if (b->pool_len > want) {
    c = b->pool;
    if (atomic_load(&c->queued)) drain(b);
    b->pool = c->next_idle;
    b->pool_len--;
    conn_destroy(c);
  }
}

static void conn_detach(binding_t *b, conn_t *c) {
  map_del(b, c);
  c->handle = NULL;
  c->detached = true;
}

hak_heap_t *hak_uv_conn_heap(uv_handle_t *handle) {
  binding_t *b;
  conn_t *c;
  if (!handle) return NULL;
  b = binding_of(handle->loop);
  if (!b) return NULL;
  c = map_get(b, handle);
  if (c) return c->heap;
  c = conn_take(b);
  if (!c) return NULL;
  c->handle = handle;
  peak_roll(b);
  b->attached++;
  if (b->attached > b->peak_cur) b->peak_cur = b->attached;
  if (map_put(b, c) != 0) {
    c->handle = NULL;
    conn_recycle(b, c);
    return NULL;
  }
  return c->heap;
}

hak_heap_t *hak_uv_handle_heap(const uv_handle_t *handle) {
  binding_t *b = handle ? binding_of(handle->loop) : NULL;
  conn_t *c = b ? map_get(b, handle) : NULL;
  return c ? c->heap : NULL;
}

static void on_conn_closed(uv_handle_t *handle) {
  binding_t *b = binding_of(handle->loop);
  conn_t *c = map_get(b, handle);
  uv_close_cb cb = c->close_cb;
  /* Unkeyed before the user's callback, which may free the handle and reuse its address. */
  conn_detach(b, c);
  if (cb) cb(handle);
  if (c->work == 0) conn_recycle(b, c);
}

void hak_uv_close(uv_handle_t *handle, uv_close_cb close_cb) {
  binding_t *b = binding_of(handle->loop);
  conn_t *c = b ? map_get(b, handle) : NULL;
  if (!c) {
    uv_close(handle, close_cb);
    return;
  }
  c->close_cb = close_cb;
  uv_close(handle, on_conn_closed);
}

int hak_uv_conn_release(uv_handle_t *handle) {
  binding_t *b = handle ? binding_of(handle->loop) : NULL;
  conn_t *c = b ? map_get(b, handle) : NULL;
  if (!c) return UV_EINVAL;
  conn_detach(b, c);
  if (c->work == 0) conn_recycle(b, c);
  return 0;
}

int hak_uv_pool_set_max(uv_loop_t *loop, size_t max_idle) {
  binding_t *b = binding_of(loop);
  if (!b) return UV_EINVAL;
  b->pool_max = max_idle;
  if (b->pool_len > max_idle) drain(b);
  while (b->pool_len > max_idle) {
    conn_t *c = b->pool;
    b->pool = c->next_idle;
    b->pool_len--;
    conn_destroy(c);
  }
  return 0;
}

void hak_uv_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  binding_t *b = binding_of(handle->loop);
  hak_heap_t *heap = NULL;
  void *p = NULL;
  if (b) {
    conn_t *c = map_get(b, handle);
    heap = c ? c->heap : b->root.heap;
    if (suggested > HAK_UV_READ_MAX) suggested = HAK_UV_READ_MAX;
    p = hak_heap_malloc(heap, suggested);
  }
  *buf = uv_buf_init(p, p ? (unsigned)suggested : 0);
}

void hak_uv_alloc_cb_shared(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  binding_t *b = binding_of(handle->loop);
  (void)suggested;
  if (b && !b->read_buf) b->read_buf = hak_heap_malloc(b->root.heap, HAK_UV_READ_SHARED);
  if (b && b->read_buf) *buf = uv_buf_init(b->read_buf, HAK_UV_READ_SHARED);
  else *buf = uv_buf_init(NULL, 0);
}

/* }====================================================================== */

/* ** {======================================================================
** worker handoff
** ======================================================================= */

/* On the threadpool thread: a worker's remote frees wait in its batch until posted, and the
** worker may sleep until the next job. */
static void on_work(uv_work_t *req) {
  hak_uv_work_of(req)->work_cb_(req);
  hak_thread_post_remote();
}

static void on_work_done(uv_work_t *req, int status) {
  hak_uv_work_t *w = hak_uv_work_of(req);
  conn_t *c = w->conn_;
  uv_after_work_cb cb = w->after_work_cb;
  /* w may be freed by cb (it often lives in the very heap it names). */
  if (cb) cb(req, status);
  if (c && --c->work == 0 && c->detached) conn_recycle(c->b, c);
}

int hak_uv_queue_work(uv_loop_t *loop, uv_handle_t *owner, hak_uv_work_t *work,
                      uv_work_cb work_cb, uv_after_work_cb after_work_cb) {
  binding_t *b = binding_of(loop);
  conn_t *c;
  int r;
  if (!b || !work || !work_cb || (owner && owner->loop != loop)) return UV_EINVAL;
  c = owner ? map_get(b, owner) : NULL;
  work->heap = c ? c->heap : b->root.heap;
  work->work_cb_ = work_cb;
  work->after_work_cb = after_work_cb;
  work->conn_ = c;
  r = uv_queue_work(loop, &work->req, on_work, on_work_done);
  if (r == 0 && c) c->work++;
  return r;
}

/* }====================================================================== */

/* ** {======================================================================
** libuv's own allocations
** ======================================================================= */

static _Atomic(hak_heap_t *) g_uv_heap;

static void *uv_heap_malloc(size_t size) {
  return hak_heap_malloc(atomic_load_explicit(&g_uv_heap, memory_order_relaxed), size);
}

/* libuv also frees and reallocs memory it did not get from these functions (1.44 frees the
** buffer of realpath(path, NULL) with uv__free): such pointers go to libc. Not static: tests
** call hak__uv_realloc and hak__uv_free. */
void *hak__uv_realloc(void *p, size_t size);
void *hak__uv_realloc(void *p, size_t size) {
  if (p && !hak_owns(p)) return realloc(p, size);
  return hak_heap_realloc(atomic_load_explicit(&g_uv_heap, memory_order_relaxed), p, size);
}

static void *uv_heap_calloc(size_t count, size_t size) {
  return hak_heap_calloc(atomic_load_explicit(&g_uv_heap, memory_order_relaxed), count, size);
}

/* libuv frees between a failing syscall and its read of errno. */
void hak__uv_free(void *p);
void hak__uv_free(void *p) {
  int saved = errno;
  if (hak_owns(p))
    hak_free(p);
  else
    free(p);
  errno = saved;
}

int hak_uv_replace_allocator(hak_heap_t *heap) {
  if (!heap) return UV_EINVAL;
  atomic_store(&g_uv_heap, heap);
  return uv_replace_allocator(uv_heap_malloc, hak__uv_realloc, uv_heap_calloc, hak__uv_free);
}

/* }====================================================================== */

int hak_uv_loop_stats(const uv_loop_t *loop, hak_uv_stats_t *out) {
  binding_t *b = binding_of(loop);
  if (!b || !out) return UV_EINVAL;
  memset(out, 0, sizeof *out);
  out->wakeups = b->wakeups;
  out->drains = b->drains;
  out->drain_thread = b->drain_thread;
  out->conn_heaps_attached = b->attached;
  out->pool_idle = b->pool_len;
  for (conn_t *c = b->pool; c; c = c->next_idle) {
    hak_heap_stats_t s;
    hak_heap_get_stats(c->heap, &s);
    out->pool_idle_held_bytes += s.held_bytes;
  }
  out->conn_heaps_created = b->created;
  out->conn_heaps_reused = b->reused;
  out->conn_heaps_reset = b->resets;
  return 0;
}
