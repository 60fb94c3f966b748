/*
** uv_api_test.c: the single-threaded contract of hakmem_uv: binding a loop, bad use and its
** error codes, the alloc_cb's choice of heap, connection heaps reset and reused after close.
*/
#include <criterion/criterion.h>
#include <hakmem_uv.h>

#include <string.h>

static uv_loop_t loop;
static hak_heap_t *heap;

static void setup(void) {
  hak_heap_config_t cfg = {.name = "api"};
  cr_assert_eq(uv_loop_init(&loop), 0);
  heap = hak_heap_create(&cfg);
  cr_assert_not_null(heap);
}

/* Unbinds if still bound; the loop must then close cleanly. */
static void teardown(void) {
  if (hak_uv_loop_heap(&loop)) cr_expect_eq(hak_uv_loop_unbind(&loop), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_expect_eq(uv_loop_close(&loop), 0);
  hak_heap_destroy(heap);
}

TestSuite(uv_api, .init = setup, .fini = teardown);

Test(uv_api, bind_then_loop_heap_returns_the_heap) {
  cr_expect_null(hak_uv_loop_heap(&loop));
  cr_assert_eq(hak_uv_loop_bind(&loop, heap), 0);
  cr_expect_eq(hak_uv_loop_heap(&loop), heap);
}

Test(uv_api, binding_twice_returns_ebusy) {
  cr_assert_eq(hak_uv_loop_bind(&loop, heap), 0);
  cr_expect_eq(hak_uv_loop_bind(&loop, heap), UV_EBUSY);
  cr_expect_eq(hak_uv_loop_heap(&loop), heap);
}

Test(uv_api, binding_one_heap_to_two_loops_returns_ebusy) {
  uv_loop_t other;
  cr_assert_eq(uv_loop_init(&other), 0);
  cr_assert_eq(hak_uv_loop_bind(&loop, heap), 0);
  cr_expect_eq(hak_uv_loop_bind(&other, heap), UV_EBUSY);
  cr_expect_eq(uv_loop_close(&other), 0);
}

Test(uv_api, unbind_without_bind_returns_einval) {
  cr_expect_eq(hak_uv_loop_unbind(&loop), UV_EINVAL);
}

Test(uv_api, null_arguments_return_einval) {
  cr_expect_eq(hak_uv_loop_bind(NULL, heap), UV_EINVAL);
  cr_expect_eq(hak_uv_loop_bind(&loop, NULL), UV_EINVAL);
  cr_expect_eq(hak_uv_loop_unbind(NULL), UV_EINVAL);
  cr_expect_null(hak_uv_loop_heap(NULL));
  cr_expect_eq(hak_uv_replace_allocator(NULL), UV_EINVAL);
}

Test(uv_api, unbound_loop_gives_clear_errors) {
  uv_idle_t idle;
  hak_uv_work_t w;
  hak_uv_stats_t st;
  uv_buf_t buf;
  uv_idle_init(&loop, &idle);
  cr_expect_null(hak_uv_conn_heap((uv_handle_t *)&idle));
  cr_expect_null(hak_uv_handle_heap((uv_handle_t *)&idle));
  cr_expect_eq(hak_uv_conn_release((uv_handle_t *)&idle), UV_EINVAL);
  cr_expect_eq(hak_uv_pool_set_max(&loop, 1), UV_EINVAL);
  cr_expect_eq(hak_uv_loop_stats(&loop, &st), UV_EINVAL);
  cr_expect_eq(hak_uv_queue_work(&loop, NULL, &w, (uv_work_cb)abort, NULL), UV_EINVAL);
  hak_uv_alloc_cb((uv_handle_t *)&idle, 1024, &buf);
  cr_expect_null(buf.base);
  cr_expect_eq(buf.len, 0);
  hak_uv_close((uv_handle_t *)&idle, NULL); /* no heap: plain uv_close */
  uv_run(&loop, UV_RUN_DEFAULT);
}

Test(uv_api, binding_leaves_loop_data_to_the_user) {
  int marker;
  loop.data = &marker;
  cr_assert_eq(hak_uv_loop_bind(&loop, heap), 0);
  uv_run(&loop, UV_RUN_NOWAIT);
  cr_expect_eq(loop.data, &marker);
  cr_assert_eq(hak_uv_loop_unbind(&loop), 0);
  cr_expect_eq(loop.data, &marker);
}

Test(uv_api, internal_handles_do_not_keep_uv_run_alive) {
  cr_assert_eq(hak_uv_loop_bind(&loop, heap), 0);
  cr_expect_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
}

Test(uv_api, unbind_lets_the_loop_close_and_rebinding_works_at_once) {
  cr_assert_eq(hak_uv_loop_bind(&loop, heap), 0);
  cr_assert_eq(hak_uv_loop_unbind(&loop), 0);
  cr_expect_null(hak_uv_loop_heap(&loop));
  cr_expect_eq(hak_uv_loop_unbind(&loop), UV_EINVAL);
  cr_assert_eq(hak_uv_loop_bind(&loop, heap), 0);
  cr_expect_eq(hak_uv_loop_heap(&loop), heap);
  cr_assert_eq(hak_uv_loop_unbind(&loop), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_expect_eq(uv_loop_close(&loop), 0);
  cr_assert_eq(uv_loop_init(&loop), 0); /* for teardown */
}

Test(uv_api, alloc_cb_uses_the_connection_heap_else_the_loops) {
  uv_idle_t a, b;
  uv_buf_t buf;
  cr_assert_eq(hak_uv_loop_bind(&loop, heap), 0);
  uv_idle_init(&loop, &a);
  uv_idle_init(&loop, &b);
  hak_heap_t *conn = hak_uv_conn_heap((uv_handle_t *)&a);
  cr_assert_not_null(conn);
  hak_uv_alloc_cb((uv_handle_t *)&a, 65536, &buf);
  cr_expect_eq(hak_heap_of(buf.base), conn);
  cr_expect_eq(buf.len, HAK_UV_READ_MAX);
  hak_free(buf.base);
  hak_uv_alloc_cb((uv_handle_t *)&b, 100, &buf);
  cr_expect_eq(hak_heap_of(buf.base), heap);
  cr_expect_eq(buf.len, 100);
  hak_free(buf.base);
  hak_uv_close((uv_handle_t *)&a, NULL);
  hak_uv_close((uv_handle_t *)&b, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
}

Test(uv_api, shared_alloc_cb_gives_every_handle_the_loops_one_buffer) {
  uv_idle_t a, b;
  uv_buf_t ba, bb, none;
  hak_heap_stats_t st;
  uv_idle_init(&loop, &a);
  hak_uv_alloc_cb_shared((uv_handle_t *)&a, 65536, &none);
  cr_expect_null(none.base); /* loop not bound */
  cr_expect_eq(none.len, 0);
  cr_assert_eq(hak_uv_loop_bind(&loop, heap), 0);
  uv_idle_init(&loop, &b);
  hak_heap_t *conn = hak_uv_conn_heap((uv_handle_t *)&a);
  hak_uv_alloc_cb_shared((uv_handle_t *)&a, 65536, &ba);
  hak_uv_alloc_cb_shared((uv_handle_t *)&b, 100, &bb);
  cr_expect_eq(ba.base, bb.base);
  cr_expect_eq(ba.len, HAK_UV_READ_SHARED);
  cr_expect_eq(bb.len, HAK_UV_READ_SHARED);
  cr_expect_eq(hak_heap_of(ba.base), heap);
  hak_heap_get_stats(conn, &st);
  cr_expect_eq(st.held_bytes, 0); /* nothing in the connection heap */
  hak_heap_get_stats(heap, &st);
  cr_expect_eq(st.live_blocks, 1);
  cr_expect_eq(st.live_bytes, HAK_UV_READ_SHARED);
  hak_uv_close((uv_handle_t *)&a, NULL);
  hak_uv_close((uv_handle_t *)&b, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(hak_uv_loop_unbind(&loop), 0);
  hak_heap_get_stats(heap, &st);
  cr_expect_eq(st.live_blocks, 0); /* unbind freed it */
}

Test(uv_api, unbind_with_an_attached_connection_heap_returns_ebusy) {
  uv_idle_t a;
  cr_assert_eq(hak_uv_loop_bind(&loop, heap), 0);
  uv_idle_init(&loop, &a);
  cr_assert_not_null(hak_uv_conn_heap((uv_handle_t *)&a));
  cr_expect_eq(hak_uv_loop_unbind(&loop), UV_EBUSY);
  hak_uv_close((uv_handle_t *)&a, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_expect_eq(hak_uv_loop_unbind(&loop), 0);
}

static bool close_cb_could_free;
static void *kept_block;

static void on_close_frees(uv_handle_t *h) {
  (void)h;
  /* The heap is reset only after this callback: its blocks are still live here. */
  close_cb_could_free = hak_heap_of(kept_block) != NULL;
  hak_free(kept_block);
}

Test(uv_api, closing_resets_the_heap_after_close_cb_and_the_pool_reuses_it) {
  uv_idle_t a, b;
  hak_uv_stats_t us;
  hak_heap_stats_t st;
  cr_assert_eq(hak_uv_loop_bind(&loop, heap), 0);
  uv_idle_init(&loop, &a);
  hak_heap_t *conn = hak_uv_conn_heap((uv_handle_t *)&a);
  cr_assert_not_null(conn);
  kept_block = hak_heap_malloc(conn, 100);
  for (int i = 0; i < 100; i++) (void)hak_heap_malloc(conn, 48); /* never freed: reset does it */
  hak_uv_close((uv_handle_t *)&a, on_close_frees);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_expect(close_cb_could_free);
  cr_assert_eq(hak_uv_loop_stats(&loop, &us), 0);
  cr_expect_eq(us.conn_heaps_reset, 1);
  cr_expect_eq(us.conn_heaps_attached, 0);
  cr_expect_eq(us.pool_idle, 1);
  hak_heap_get_stats(conn, &st);
  cr_expect_eq(st.live_blocks, 0);

  uv_idle_init(&loop, &b);
  cr_expect_eq(hak_uv_conn_heap((uv_handle_t *)&b), conn);
  cr_assert_eq(hak_uv_loop_stats(&loop, &us), 0);
  cr_expect_eq(us.conn_heaps_created, 1);
  cr_expect_eq(us.conn_heaps_reused, 1);
  cr_expect_eq(hak_uv_conn_release((uv_handle_t *)&b), 0);
  cr_expect_null(hak_uv_handle_heap((uv_handle_t *)&b));
  uv_close((uv_handle_t *)&b, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
}

Test(uv_api, many_handles_get_distinct_heaps_and_the_pool_is_capped) {
  enum { N = 200 };
  static uv_idle_t h[N];
  hak_heap_t *heaps[N];
  hak_uv_stats_t us;
  cr_assert_eq(hak_uv_loop_bind(&loop, heap), 0);
  cr_assert_eq(hak_uv_pool_set_max(&loop, 8), 0);
  for (int i = 0; i < N; i++) {
    uv_idle_init(&loop, &h[i]);
    heaps[i] = hak_uv_conn_heap((uv_handle_t *)&h[i]);
    cr_assert_not_null(heaps[i]);
  }
  for (int i = 0; i < N; i++) {
    cr_expect_eq(hak_uv_handle_heap((uv_handle_t *)&h[i]), heaps[i]);
    for (int k = 0; k < i; k += 37) cr_expect_neq(heaps[k], heaps[i]);
  }
  for (int i = 0; i < N; i += 2) hak_uv_close((uv_handle_t *)&h[i], NULL);
  for (int i = 1; i < N; i += 2) cr_expect_eq(hak_uv_handle_heap((uv_handle_t *)&h[i]), heaps[i]);
  for (int i = 1; i < N; i += 2) hak_uv_close((uv_handle_t *)&h[i], NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(hak_uv_loop_stats(&loop, &us), 0);
  cr_expect_eq(us.conn_heaps_attached, 0);
  cr_expect_eq(us.conn_heaps_reset, N);
  cr_expect_eq(us.pool_idle, 8);
}

/* Ten waves of 50 connections opened and closed: the pool keeps what the peak needs, so only
** the first wave creates heaps. */
/* n handles each get a connection heap, then all close and the loop runs their close callbacks:
** the heaps go back to the pool. */
static void conn_wave(uv_idle_t *h, int n) {
  for (int i = 0; i < n; i++) {
    uv_idle_init(&loop, &h[i]);
    cr_assert_not_null(hak_uv_conn_heap((uv_handle_t *)&h[i]));
  }
  for (int i = 0; i < n; i++) hak_uv_close((uv_handle_t *)&h[i], NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
}

Test(uv_api, churn_at_50_connections_creates_50_heaps_and_reuses_them) {
  enum { N = 50, WAVES = 10 };
  static uv_idle_t h[N];
  hak_uv_stats_t us;
  cr_assert_eq(hak_uv_loop_bind(&loop, heap), 0);
  for (int w = 0; w < WAVES; w++) {
    conn_wave(h, N);
    cr_assert_eq(hak_uv_loop_stats(&loop, &us), 0);
    cr_expect_eq(us.pool_idle, N);
  }
  cr_expect_eq(us.conn_heaps_created, N);
  cr_expect_eq(us.conn_heaps_reused, N * (WAVES - 1));
  cr_expect_eq(us.conn_heaps_reset, N * WAVES);
}

Test(uv_api, pool_cap_destroys_idle_heaps_beyond_it) {
  enum { N = 20 };
  static uv_idle_t h[N];
  hak_uv_stats_t us;
  cr_assert_eq(hak_uv_loop_bind(&loop, heap), 0);
  conn_wave(h, N);
  cr_assert_eq(hak_uv_loop_stats(&loop, &us), 0);
  cr_expect_eq(us.pool_idle, N);
  cr_expect_eq(hak_uv_pool_set_max(&loop, 5), 0);
  cr_assert_eq(hak_uv_loop_stats(&loop, &us), 0);
  cr_expect_eq(us.pool_idle, 5);
  cr_expect_eq(hak_uv_pool_set_max(&loop, 0), 0);
  cr_assert_eq(hak_uv_loop_stats(&loop, &us), 0);
  cr_expect_eq(us.pool_idle, 0);
}

/*
** {======================================================================
** Shutdown with uv_walk
** ======================================================================= */

static int walk_internal, walk_closed;

/* The documented walk: the binding's handles are skipped, the others closed with hak_uv_close. */
static void close_all_but_internal(uv_handle_t *h, void *arg) {
  (void)arg;
  if (hak_uv_is_internal(h)) {
    walk_internal++;
    return;
  }
  if (!uv_is_closing(h)) {
    hak_uv_close(h, NULL);
    walk_closed++;
  }
}

/* libuv's usual walk, which knows nothing of hakmem: every handle not yet closing. */
static void close_every_handle(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) {
    uv_close(h, NULL);
    walk_closed++;
  }
}

Test(uv_api, is_internal_names_exactly_the_bindings_two_handles) {
  uv_idle_t idle;
  cr_expect_eq(hak_uv_is_internal(NULL), 0);
  uv_idle_init(&loop, &idle);
  cr_expect_eq(hak_uv_is_internal((uv_handle_t *)&idle), 0); /* unbound loop */
  cr_assert_eq(hak_uv_loop_bind(&loop, heap), 0);
  cr_expect_eq(hak_uv_is_internal((uv_handle_t *)&idle), 0);
  walk_internal = walk_closed = 0;
  uv_walk(&loop, close_all_but_internal, NULL);
  cr_expect_eq(walk_internal, 2);
  cr_expect_eq(walk_closed, 1);
  uv_run(&loop, UV_RUN_DEFAULT);
}

Test(uv_api, walk_closing_every_other_handle_then_unbind_shuts_down_cleanly) {
  enum { N = 5 };
  uv_idle_t conn[N];
  uv_timer_t timer;
  hak_uv_stats_t us;
  cr_assert_eq(hak_uv_loop_bind(&loop, heap), 0);
  for (int i = 0; i < N; i++) {
    uv_idle_init(&loop, &conn[i]);
    hak_heap_t *h = hak_uv_conn_heap((uv_handle_t *)&conn[i]);
    cr_assert_not_null(h);
    for (int k = 0; k < 10; k++) cr_assert_not_null(hak_heap_malloc(h, 100)); /* left to reset */
  }
  uv_timer_init(&loop, &timer);
  uv_timer_start(&timer, (uv_timer_cb)abort, 60000, 0);
  walk_internal = walk_closed = 0;
  uv_walk(&loop, close_all_but_internal, NULL);
  cr_expect_eq(walk_internal, 2);
  cr_expect_eq(walk_closed, N + 1);
  cr_expect_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_assert_eq(hak_uv_loop_stats(&loop, &us), 0);
  cr_expect_eq(us.conn_heaps_attached, 0);
  cr_expect_eq(us.conn_heaps_reset, N);
  cr_expect_eq(us.pool_idle, N);
  cr_expect_eq(hak_uv_loop_unbind(&loop), 0);
  cr_expect_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_expect_eq(uv_loop_close(&loop), 0);
  cr_assert_eq(uv_loop_init(&loop), 0); /* for teardown */
}

Test(uv_api, walk_that_also_closes_the_internal_handles_then_unbind_works) {
  uv_idle_t idle;
  uv_loop_t other;
  cr_assert_eq(hak_uv_loop_bind(&loop, heap), 0);
  uv_idle_init(&loop, &idle);
  walk_closed = 0;
  uv_walk(&loop, close_every_handle, NULL);
  cr_expect_eq(walk_closed, 3);
  cr_expect_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_expect_eq(hak_uv_loop_unbind(&loop), 0); /* no second uv_close of the internal handles */
  cr_expect_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_expect_eq(uv_loop_close(&loop), 0);
  /* The binding's record is retired; other loops bind with a fresh one. */
  cr_assert_eq(uv_loop_init(&other), 0);
  cr_expect_eq(hak_uv_loop_bind(&other, heap), 0);
  cr_expect_eq(hak_uv_loop_heap(&other), heap);
  cr_expect_eq(hak_uv_loop_unbind(&other), 0);
  uv_run(&other, UV_RUN_DEFAULT);
  cr_expect_eq(uv_loop_close(&other), 0);
  cr_assert_eq(uv_loop_init(&loop), 0); /* for teardown */
}

/* }====================================================================== */
