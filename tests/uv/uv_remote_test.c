/*
** uv_remote_test.c: remote frees and worker handoff through a bound loop (plain program so it
** runs under TSan). Threads that never allocate from the heap free blocks made on the loop
** thread; the binding must drain them on the loop thread until nothing is live. Then work queued
** with hak_uv_queue_work on a connection heap hands blocks both ways, and closing the handle
** while work is queued keeps the heap until the last after-work callback. A work callback's
** remote frees are drainable by the loop thread once it has returned.
*/
#include <hakmem_uv.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

enum { THREADS = 4, BLOCKS = 4000, JOBS = 32, DEADLINE_MS = 20000 };

static uv_thread_t loop_thread;

/* ** {======================================================================
** remote frees from plain threads are drained on the loop thread
** ======================================================================= */

static struct {
  uv_loop_t loop;
  hak_heap_t *heap;
  void *blocks[BLOCKS];
  atomic_int done;
  uv_async_t done_async;
  uv_check_t check;
  uv_timer_t deadline;
  bool drained, timed_out;
} R;

static void freer(void *arg) {
  intptr_t t = (intptr_t)arg;
  for (int i = (int)t; i < BLOCKS; i += THREADS) hak_free(R.blocks[i]);
  atomic_fetch_add(&R.done, 1);
  uv_async_send(&R.done_async);
}

static void on_done(uv_async_t *a) { (void)a; }

static void stop_remote(void) {
  uv_close((uv_handle_t *)&R.check, NULL);
  uv_close((uv_handle_t *)&R.deadline, NULL);
  uv_close((uv_handle_t *)&R.done_async, NULL);
}

/* Runs after the poll phase, where the binding's async callback drains. */
static void on_check(uv_check_t *c) {
  hak_heap_stats_t st;
  (void)c;
  if (atomic_load(&R.done) != THREADS) return;
  hak_heap_get_stats(R.heap, &st);
  if (st.live_blocks != 0) return;
  R.drained = true;
  stop_remote();
}

static void on_deadline(uv_timer_t *t) {
  (void)t;
  R.timed_out = true;
  stop_remote();
}

static void remote_frees_are_drained_on_the_loop_thread(void) {
  uv_thread_t threads[THREADS];
  hak_heap_stats_t st;
  hak_uv_stats_t us;
  hak_heap_config_t cfg = {.name = "remote"};

  R.heap = hak_heap_create(&cfg);
  CHECK(uv_loop_init(&R.loop) == 0);
  CHECK(hak_uv_loop_bind(&R.loop, R.heap) == 0);
  for (int i = 0; i < BLOCKS; i++) {
    R.blocks[i] = hak_heap_malloc(R.heap, 16 + (size_t)(i % 64) * 24);
    memset(R.blocks[i], 0xab, 16);
  }
  hak_heap_get_stats(R.heap, &st);
  CHECK(st.live_blocks == BLOCKS);

  uv_async_init(&R.loop, &R.done_async, on_done);
  uv_check_init(&R.loop, &R.check);
  uv_check_start(&R.check, on_check);
  uv_timer_init(&R.loop, &R.deadline);
  uv_timer_start(&R.deadline, on_deadline, DEADLINE_MS, 0);
  for (intptr_t t = 0; t < THREADS; t++) uv_thread_create(&threads[t], freer, (void *)t);
  uv_run(&R.loop, UV_RUN_DEFAULT);
  for (int t = 0; t < THREADS; t++) uv_thread_join(&threads[t]);

  CHECK(!R.timed_out);
  CHECK(R.drained);
  hak_heap_get_stats(R.heap, &st);
  CHECK(st.live_bytes == 0);
  CHECK(st.live_blocks == 0);
  /* Every block was freed by a thread other than its owner, and all of them were drained. */
  CHECK(st.remote_free_count == BLOCKS);
  CHECK(st.free_count == BLOCKS);
  CHECK(hak_uv_loop_stats(&R.loop, &us) == 0);
  CHECK(us.wakeups > 0);
  CHECK(us.drains > 0);
  CHECK(uv_thread_equal(&us.drain_thread, &loop_thread));

  CHECK(hak_uv_loop_unbind(&R.loop) == 0);
  uv_run(&R.loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&R.loop) == 0);
  hak_heap_destroy(R.heap);
}

/* }====================================================================== */

/* ** {======================================================================
** worker handoff both ways on a connection heap
** ======================================================================= */

typedef struct job_s {
  hak_uv_work_t work;
  int id;
  uint32_t *input;  /* loop -> worker: allocated on the loop, freed by the worker */
  uint32_t *output; /* worker -> loop: allocated by the worker, freed on the loop */
  bool right_thread, right_heap;
} job_t;

enum { WORDS = 200 };

static struct {
  uv_loop_t loop;
  hak_heap_t *heap, *conn;
  uv_idle_t owner; /* any handle can own a connection heap: it is only a key */
  int finished, good;
  bool closed, closed_before_last, conn_alive_after_close;
} H;

static void handoff_work(uv_work_t *req) {
  job_t *j = (job_t *)hak_uv_work_of(req);
  uv_thread_t self = uv_thread_self();
  uint32_t sum = 0;
  j->right_thread = !uv_thread_equal(&self, &loop_thread);
  j->right_heap = j->work.heap == H.conn && hak_heap_of(j->input) == H.conn;
  for (int i = 0; i < WORDS; i++) sum += j->input[i];
  hak_free(j->input);
  j->input = NULL;
  j->output = hak_heap_malloc(j->work.heap, WORDS * sizeof *j->output);
  if (j->output)
    for (int i = 0; i < WORDS; i++) j->output[i] = sum + (uint32_t)i;
}

static void handoff_done(uv_work_t *req, int status) {
  job_t *j = (job_t *)hak_uv_work_of(req);
  uv_thread_t self = uv_thread_self();
  bool ok = status == 0 && j->right_thread && j->right_heap && j->output &&
            uv_thread_equal(&self, &loop_thread) && hak_heap_of(j->output) == H.conn;
  uint32_t sum = 0;
  for (int i = 0; i < WORDS; i++) sum += (uint32_t)(j->id * 1000 + i);
  for (int i = 0; ok && i < WORDS; i++) ok = j->output[i] == sum + (uint32_t)i;
  H.good += ok;
  hak_free(j->output);
  hak_free(j);
  if (++H.finished == JOBS) {
    hak_uv_stats_t us;
    hak_uv_loop_stats(&H.loop, &us);
    H.closed_before_last = H.closed;
    /* The heap is only reset after this callback returns. */
    H.conn_alive_after_close = us.conn_heaps_attached == 1 && us.conn_heaps_reset == 0;
  }
}

static void on_owner_closed(uv_handle_t *h) {
  (void)h;
  H.closed = true;
}

static void work_hands_blocks_both_ways_and_keeps_the_heap_until_done(void) {
  hak_uv_stats_t us;
  hak_heap_config_t cfg = {.name = "handoff"};
  H.heap = hak_heap_create(&cfg);
  CHECK(uv_loop_init(&H.loop) == 0);
  CHECK(hak_uv_loop_bind(&H.loop, H.heap) == 0);
  uv_idle_init(&H.loop, &H.owner);
  H.conn = hak_uv_conn_heap((uv_handle_t *)&H.owner);
  CHECK(H.conn != NULL && H.conn != H.heap);
  CHECK(hak_uv_conn_heap((uv_handle_t *)&H.owner) == H.conn);
  CHECK(hak_uv_handle_heap((const uv_handle_t *)&H.owner) == H.conn);

  for (int id = 0; id < JOBS; id++) {
    job_t *j = hak_heap_malloc(H.conn, sizeof *j);
    memset(j, 0, sizeof *j);
    j->id = id;
    j->input = hak_heap_malloc(H.conn, WORDS * sizeof *j->input);
    for (int i = 0; i < WORDS; i++) j->input[i] = (uint32_t)(id * 1000 + i);
    CHECK(hak_uv_queue_work(&H.loop, (uv_handle_t *)&H.owner, &j->work, handoff_work,
                            handoff_done) == 0);
  }
  /* Closed while all the work is still queued or running. */
  hak_uv_close((uv_handle_t *)&H.owner, on_owner_closed);
  CHECK(hak_uv_handle_heap((const uv_handle_t *)&H.owner) == H.conn);
  CHECK(hak_uv_loop_unbind(&H.loop) == UV_EBUSY);
  uv_run(&H.loop, UV_RUN_DEFAULT);

  CHECK(H.finished == JOBS);
  CHECK(H.good == JOBS);
  CHECK(H.closed);
  CHECK(H.conn_alive_after_close);
  CHECK(hak_uv_loop_stats(&H.loop, &us) == 0);
  CHECK(us.conn_heaps_attached == 0);
  CHECK(us.conn_heaps_reset == 1);
  CHECK(us.pool_idle == 1);
  CHECK(hak_uv_handle_heap((const uv_handle_t *)&H.owner) == NULL);

  CHECK(hak_uv_loop_unbind(&H.loop) == 0);
  uv_run(&H.loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&H.loop) == 0);
  hak_heap_destroy(H.heap);
}

/* }====================================================================== */

/* ** {======================================================================
** a work callback's remote frees are posted when it returns
** ======================================================================= */

enum { FEW = 10 }; /* well under a batch: nothing would reach the owner before a post */

static struct {
  uv_loop_t loop;
  hak_heap_t *heap, *other;
  hak_uv_work_t work;
  void *blocks[FEW];
  size_t drained;
  uint64_t remote;
} P;

static void free_few(uv_work_t *req) {
  (void)req;
  for (int i = 0; i < FEW; i++) hak_free(P.blocks[i]);
}

static void drain_few(uv_work_t *req, int status) {
  hak_heap_stats_t st;
  (void)req;
  (void)status;
  /* The worker thread lives on, idle, in the threadpool: only its post makes these drainable. */
  P.drained = hak_heap_drain(P.other);
  hak_heap_get_stats(P.other, &st);
  P.remote = st.remote_free_count;
}

static void work_frees_are_posted_when_the_work_callback_returns(void) {
  hak_heap_config_t cfg = {.name = "post"};
  P.heap = hak_heap_create(&cfg);
  P.other = hak_heap_create(NULL); /* not bound: its drain is the loop thread's own call */
  CHECK(uv_loop_init(&P.loop) == 0);
  CHECK(hak_uv_loop_bind(&P.loop, P.heap) == 0);
  for (int i = 0; i < FEW; i++) P.blocks[i] = hak_heap_malloc(P.other, 64);
  CHECK(hak_uv_queue_work(&P.loop, NULL, &P.work, free_few, drain_few) == 0);
  uv_run(&P.loop, UV_RUN_DEFAULT);
  CHECK(P.drained == FEW);
  CHECK(P.remote == FEW);
  CHECK(hak_uv_loop_unbind(&P.loop) == 0);
  uv_run(&P.loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&P.loop) == 0);
  hak_heap_destroy(P.other);
  hak_heap_destroy(P.heap);
}

/* }====================================================================== */

int main(void) {
  loop_thread = uv_thread_self();
  remote_frees_are_drained_on_the_loop_thread();
  work_hands_blocks_both_ways_and_keeps_the_heap_until_done();
  work_frees_are_posted_when_the_work_callback_returns();
  return finish();
}
