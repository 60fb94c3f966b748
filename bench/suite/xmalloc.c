/*
** xmalloc.c: producer/consumer cross-thread frees, after xmalloc-test (Lever & Boreham) as in
** mimalloc-bench. Half the threads malloc batches of blocks of random sizes and publish them;
** the other half take batches and free every block, so each free is remote. The queue is
** bounded: producers wait (on a condition variable) when it is full.
*/
#include "wl_common.h"

enum { BATCH = 256, MAX_QUEUED = 64 };

typedef struct xm_batch_s {
  struct xm_batch_s *next;
  void *blocks[BATCH];
} xm_batch_t;

static struct {
  pthread_mutex_t lock;
  pthread_cond_t not_full;
  pthread_cond_t not_empty;
  xm_batch_t *head;
  int queued;
  int producers_left;
} xm_q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0};

typedef struct xm_thread_s {
  uint64_t seed;
  uint64_t batches;
  int producer;
} xm_thread_t;

static void *xm_producer(xm_thread_t *t) {
  wl_rng_t r = wl_rng(t->seed);
  for (uint64_t b = 0; b < t->batches; b++) {
    xm_batch_t *batch = wl_xmalloc(sizeof(xm_batch_t));
    for (int i = 0; i < BATCH; i++) {
      size_t n = wl_size_skewed(&r, 3, 9);
      char *p = wl_xmalloc(n);
      p[0] = (char)i;
      batch->blocks[i] = p;
    }
    pthread_mutex_lock(&xm_q.lock);
    while (xm_q.queued >= MAX_QUEUED) pthread_cond_wait(&xm_q.not_full, &xm_q.lock);
    batch->next = xm_q.head;
    xm_q.head = batch;
    xm_q.queued++;
    pthread_cond_signal(&xm_q.not_empty);
    pthread_mutex_unlock(&xm_q.lock);
  }
  pthread_mutex_lock(&xm_q.lock);
  xm_q.producers_left--;
  pthread_cond_broadcast(&xm_q.not_empty);
  pthread_mutex_unlock(&xm_q.lock);
  return NULL;
}

static void *xm_consumer(void) {
  for (;;) {
    pthread_mutex_lock(&xm_q.lock);
    while (xm_q.head == NULL && xm_q.producers_left > 0) pthread_cond_wait(&xm_q.not_empty, &xm_q.lock);
    xm_batch_t *batch = xm_q.head;
    if (batch == NULL) {
      pthread_mutex_unlock(&xm_q.lock);
      return NULL;
    }
    xm_q.head = batch->next;
    xm_q.queued--;
    pthread_cond_signal(&xm_q.not_full);
    pthread_mutex_unlock(&xm_q.lock);
    for (int i = 0; i < BATCH; i++) free(batch->blocks[i]);
    free(batch);
  }
}

static void *xm_worker(void *arg) {
  xm_thread_t *t = arg;
  return t->producer ? xm_producer(t) : xm_consumer();
}

int main(int argc, char **argv) {
  wl_args_t a = wl_parse(argc, argv, 2);
  int producers = a.threads / 2 > 0 ? a.threads / 2 : 1;
  int consumers = a.threads - producers > 0 ? a.threads - producers : 1;
  uint64_t total_batches = wl_scaled(8000, a.scale);
  xm_q.producers_left = producers;
  xm_thread_t *ts = wl_xmalloc(sizeof(xm_thread_t) * (size_t)(producers + consumers));
  for (int i = 0; i < producers + consumers; i++) {
    ts[i].seed = (uint64_t)i + 7;
    ts[i].producer = i < producers;
    ts[i].batches = total_batches / (uint64_t)producers;
  }
  double t0 = wl_now();
  wl_run_threads(producers + consumers, xm_worker, ts, sizeof(xm_thread_t));
  double secs = wl_now() - t0;
  free(ts);
  wl_report("xmalloc", producers + consumers,
            total_batches / (uint64_t)producers * (uint64_t)producers * BATCH, secs);
  return 0;
}
