/*
** hakmem_uv.h: hakmem for libuv programs. Binds a heap to an event loop so that blocks freed on
** other threads are drained on the loop thread, gives handles (connections) their own recycled
** heaps, and helps hand blocks between threadpool workers and the loop thread.
**
** Conventions are libuv's: functions return 0 or a negative UV_* error code.
**
** Thread rules (the "loop thread" is the thread that runs uv_run on the loop):
**  - hak_uv_loop_bind, hak_uv_loop_unbind, hak_uv_conn_heap, hak_uv_handle_heap, hak_uv_close,
**    hak_uv_conn_release, hak_uv_alloc_cb, hak_uv_alloc_cb_shared, hak_uv_queue_work,
**    hak_uv_pool_set_max, hak_uv_is_internal and hak_uv_loop_stats run on the loop thread only,
**    like the libuv calls they sit beside.
**  - hak_uv_loop_heap may be called from any thread.
**  - Blocks of the loop's heap and of connection heaps may be freed (hak_free) on any thread.
**    A free is *remote* when the freeing thread is not the one whose cache allocated the block.
**    Remote frees go through the owner's lock-free queue; the first one into an empty queue of
**    the loop thread's cache wakes the loop (uv_async_send, which coalesces) and the loop thread
**    drains the queue with hak_heap_drain.
**  - Connection heaps are made with shared_guests (hakmem.h): the loop thread, which creates
**    them, is their home; any other thread (a threadpool worker) allocating from one is a guest
**    and takes blocks from the heap's one guest cache under a lock, not slabs of its own. Every
**    free of a guest block is remote; guests drain them at their refill, and the loop's drain
**    of the heap takes them too.
**  - A connection heap is reset when its handle has closed *and* every work request queued on
**    it with hak_uv_queue_work has finished. Blocks of it still held by anyone else at that point
**    are gone: hand results back to the loop thread before closing.
*/
#ifndef HAKMEM_UV_H
#define HAKMEM_UV_H

#include <hakmem.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with -fvisibility=hidden: only what this header declares is exported. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* ---- a heap bound to a loop ---- */

/*
** Bind heap to loop: remote frees of the heap (and of every connection heap taken on this loop)
** are drained on the loop thread, by an internal uv_async_t woken on the queue's empty to
** non-empty transition plus a drain in an internal uv_prepare_t. Both handles are unreferenced,
** so they never keep uv_run alive. loop->data stays the user's. The heap stays the caller's:
** unbinding does not destroy it.
** Returns 0; UV_EINVAL for a NULL argument; UV_EBUSY if the loop is already bound; UV_ENOMEM.
*/
int hak_uv_loop_bind(uv_loop_t *loop, hak_heap_t *heap);

/*
** Undo hak_uv_loop_bind: stops notifications, drains once, destroys the idle connection heaps
** and closes the internal handles. Run the loop once more (uv_run) before uv_loop_close so the
** close callbacks run, as for any libuv handle. The loop may be bound again at once.
** Internal handles already closed by someone else (a uv_walk closing every handle) are left as
** they are; the binding's record is then never reused (its memory stays reachable).
** Returns 0; UV_EINVAL if the loop is not bound; UV_EBUSY while connection heaps are still
** attached to open handles or in use by queued work (close those handles first).
**
** Shutdown with uv_walk, in this order (docs/LIBUV.md):
**   walk: if (!uv_is_closing(h) && !hak_uv_is_internal(h)) hak_uv_close(h, cb);
**   uv_run(loop, UV_RUN_DEFAULT);    close callbacks run, connection heaps go back to the pool
**   hak_uv_loop_unbind(loop);
**   uv_run(loop, UV_RUN_DEFAULT);    the internal handles close
**   uv_loop_close(loop); hak_heap_destroy(heap);
*/
int hak_uv_loop_unbind(uv_loop_t *loop);

/*
** Nonzero if handle is one of the binding's own handles (a uv_async_t and a uv_prepare_t per
** bound loop), which a uv_walk sees: skip them when closing every handle, above all with a close
** callback that frees the handle (their memory is the binding's). 0 for any other handle, NULL,
** or a loop not bound. Loop thread.
*/
int hak_uv_is_internal(const uv_handle_t *handle);

/* The heap bound to loop, or NULL. Any thread. */
hak_heap_t *hak_uv_loop_heap(const uv_loop_t *loop);

/*
** An alloc_cb for uv_read_start / uv_udp_recv_start: a block of min(suggested, HAK_UV_READ_MAX)
** bytes from the handle's connection heap if it has one, else from the loop's heap. Free
** buf->base with hak_free (from any thread). If the loop is not bound or memory runs out, buf
** gets a NULL base and length 0, so libuv reports UV_ENOBUFS to the read callback.
** libuv suggests 64 KiB for every read; a 16 KiB block stays in a small size class (a 64 KiB
** one would be a large mapping per read) and libuv simply reads again when more is waiting.
** UDP datagrams longer than the buffer are truncated: for UDP write your own alloc_cb.
*/
#define HAK_UV_READ_MAX 16384
void hak_uv_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);

/*
** An alloc_cb that reads into the loop's one shared buffer of HAK_UV_READ_SHARED bytes (made in
** the loop's heap at the first call, freed by hak_uv_loop_unbind), as Node does: no block per
** read and no read buffer in any connection heap. libuv runs each alloc_cb, read and read
** callback in turn on the loop thread, so the buffer is the read callback's until it returns:
** copy out what must be kept (a partial request) and never free buf->base. Unbound loop or no
** memory: {NULL, 0} (UV_ENOBUFS). Streams and UDP (a datagram up to 64 KiB fits; with
** UV_UDP_RECVMMSG the buffer is split as usual and still must not be freed).
*/
#define HAK_UV_READ_SHARED 65536
void hak_uv_alloc_cb_shared(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);

/* ---- per-connection heaps ----
**
** The common case is three lines:
**
**   hak_uv_conn_heap((uv_handle_t *)client);                 after uv_accept
**   uv_read_start((uv_stream_t *)client, hak_uv_alloc_cb, on_read);
**   hak_uv_close((uv_handle_t *)client, on_close);           instead of uv_close
**
** Heaps come from a pool kept per loop; hak_uv_close returns the heap to the pool (reset) right
** after on_close has run, so on_close may still use and free blocks of it.
*/

/*
** The handle's connection heap, attaching one from the loop's pool (or a new one) the first
** time. The handle is only a key: its data field is not touched. Returns NULL if the loop is
** not bound or no heap could be created.
*/
hak_heap_t *hak_uv_conn_heap(uv_handle_t *handle);

/* The handle's connection heap if it has one, else NULL. Never attaches. */
hak_heap_t *hak_uv_handle_heap(const uv_handle_t *handle);

/*
** uv_close(handle, close_cb), then, after close_cb has run, the handle's connection heap (if
** any) is reset and returned to the pool, or later when the last work request queued on it
** with hak_uv_queue_work has finished. close_cb may be NULL. A handle with a connection heap
** must be closed with this function (or hak_uv_conn_release after its own close): the heap is
** keyed by the handle's address, which libuv may hand to a new handle after it is freed.
*/
void hak_uv_close(uv_handle_t *handle, uv_close_cb close_cb);

/*
** Detach the handle's connection heap now, without closing the handle: reset and back to the
** pool (or later, after its queued work has finished). Returns 0, or UV_EINVAL if the handle has
** none.
*/
int hak_uv_conn_release(uv_handle_t *handle);

/*
** The pool sizes itself: a closed connection's heap is kept (reset) while the idle heaps number
** less than the most heaps attached at once in the current or the previous second of loop time
** (uv_now) minus those attached now, so churn at a steady number of concurrent connections
** reuses heaps and creates none; when that peak falls, each close destroys its heap and one
** idle heap more until the pool fits. hak_uv_pool_set_max caps the idle heaps at max_idle
** (default: no cap; 0 disables the pool); extra ones are destroyed at once. UV_EINVAL if the
** loop is not bound.
*/
int hak_uv_pool_set_max(uv_loop_t *loop, size_t max_idle);

/* ---- worker handoff ----
**
** hak_uv_queue_work is uv_queue_work that also tells the work which heap to use and keeps that
** heap alive until the after-work callback has run (even if the handle is closed meanwhile).
** Both directions:
**  - loop to worker: blocks allocated on the loop thread may be freed by the worker; as long as
**    the worker has not allocated from that heap they are remote frees, drained on the loop;
**  - worker to loop: the work callback may allocate from req->heap and leave the result in the
**    request; the after-work callback (loop thread) consumes and frees it. In a connection heap
**    the worker is a guest (above): its blocks come from the shared guest cache, and every free
**    of them, its own included, is remote. In the loop's heap the worker gets a cache of its own
**    and its later frees of the blocks it allocated are local to it.
** After the work callback returns, the worker posts its pending remote frees
** (hak_thread_post_remote), so the loop's drain sees them without waiting for the worker's next
** batch. Inside the callbacks, hak_uv_work_of(uv_req) gives the hak_uv_work_t back.
*/
typedef struct hak_uv_work_s {
  uv_work_t req;                  /* libuv's request; req.data is free for the user */
  void *data;                     /* also free for the user */
  hak_heap_t *heap;               /* set by hak_uv_queue_work: the handle's heap or the loop's */
  uv_work_cb work_cb_;            /* private */
  uv_after_work_cb after_work_cb; /* private */
  void *conn_;                    /* private */
} hak_uv_work_t;

/*
** Queue work on loop's threadpool. owner may be NULL (work uses the loop's heap) or a handle on
** that loop (work uses its connection heap if it has one). Returns 0, UV_EINVAL if the loop is
** not bound or an argument is NULL, or uv_queue_work's error.
*/
int hak_uv_queue_work(uv_loop_t *loop, uv_handle_t *owner, hak_uv_work_t *work,
                      uv_work_cb work_cb, uv_after_work_cb after_work_cb);

static inline hak_uv_work_t *hak_uv_work_of(uv_work_t *req) { return (hak_uv_work_t *)req; }

/* ---- routing libuv's own allocations ---- */

/*
** uv_replace_allocator with functions on heap: libuv's internal malloc, realloc and calloc go to
** heap. libuv also frees memory it got from libc (libuv 1.44 frees the buffer of
** realpath(path, NULL) in uv_fs_req_cleanup), so the free and realloc send pointers outside
** hakmem's memory (hak_owns) to libc's free and realloc; hakmem's own blocks, bad frees of them
** included, go to hak_free. The free preserves errno, as libuv requires. Call it before any
** other libuv call, and never destroy the heap afterwards. Returns 0, or UV_EINVAL for a NULL
** heap or if libuv refuses.
*/
int hak_uv_replace_allocator(hak_heap_t *heap);

/* ---- introspection ---- */

typedef struct hak_uv_stats_s {
  uint64_t wakeups;           /* async callbacks run (notifications coalesce into these) */
  uint64_t drains;            /* hak_heap_drain calls made by the binding */
  uv_thread_t drain_thread;   /* thread that ran the last drain (the loop thread) */
  size_t conn_heaps_attached; /* attached to a handle or kept alive by queued work */
  size_t pool_idle;           /* reset heaps waiting in the pool */
  size_t pool_idle_held_bytes; /* held_bytes summed over those */
  uint64_t conn_heaps_created; /* pool misses */
  uint64_t conn_heaps_reused;  /* pool hits */
  uint64_t conn_heaps_reset;   /* heaps returned to the pool or destroyed after a close */
} hak_uv_stats_t;

/* Returns 0, or UV_EINVAL if the loop is not bound. */
int hak_uv_loop_stats(const uv_loop_t *loop, hak_uv_stats_t *out);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* HAKMEM_UV_H */
