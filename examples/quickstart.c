/*
** quickstart.c: a short tour of hakmem. Creates several heaps, allocates from two threads,
** frees across threads, prints per-heap stats, shows a limit's NULL, destroys a heap at once.
** Run: ./bazelw run //examples:quickstart
*/
#include <errno.h>
#include <hakmem.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define N 10000

static void *blocks[N];

static void print_stats(hak_heap_t *h) {
  hak_heap_stats_t s;
  hak_heap_get_stats(h, &s);
  printf("  %-8s live %8zu B in %5zu blocks | held %8zu B (peak %8zu) | allocs %6llu frees %6llu"
         " (remote %5llu) | superslabs %zu, large %zu\n",
         hak_heap_name(h), s.live_bytes, s.live_blocks, s.held_bytes, s.peak_held_bytes,
         (unsigned long long)s.alloc_count, (unsigned long long)s.free_count,
         (unsigned long long)s.remote_free_count, s.superslab_count, s.large_count);
}

/* Runs on a second thread: allocates from `work`, frees what main allocated from `msgs`. */
static void *worker(void *arg) {
  hak_heap_t *work = arg;
  for (int i = 0; i < N; i++) {
    char *p = hak_heap_malloc(work, 32 + (size_t)(i % 200));
    snprintf(p, 32, "job %d", i);
    hak_free(p);
  }
  for (int i = 0; i < N; i++) hak_free(blocks[i]); /* cross-thread: remote frees */
  return NULL;
}

int main(void) {
  hak_heap_t *msgs = hak_heap_create(&(hak_heap_config_t){ .name = "msgs" });
  hak_heap_t *work = hak_heap_create(&(hak_heap_config_t){ .name = "work" });
  hak_heap_t *req = hak_heap_create(&(hak_heap_config_t){ .name = "request" });

  printf("1. main thread allocates %d messages from 'msgs'\n", N);
  for (int i = 0; i < N; i++) {
    blocks[i] = hak_heap_malloc(msgs, 16 + (size_t)(i % 500));
    memset(blocks[i], 'm', 16);
  }
  print_stats(msgs);

  printf("2. a second thread allocates from 'work' and frees main's messages\n");
  pthread_t t;
  pthread_create(&t, NULL, worker, work);
  pthread_join(t, NULL);
  print_stats(msgs); /* remote frees wait in the queue until 'msgs' drains it */
  hak_heap_collect(msgs, false);
  printf("   after hak_heap_collect(msgs): remote frees drained and reused\n");
  print_stats(msgs);
  print_stats(work);

  printf("3. a per-request heap with a 1 MiB limit\n");
  hak_heap_set_limit(req, 1 << 20);
  size_t got = 0;
  void *p, *last = NULL;
  while ((p = hak_heap_malloc(req, 100 * 1024)) != NULL) {
    got++;
    last = p;
  }
  printf("   %zu x 100 KiB fit; the next one gave NULL with errno %s\n", got,
         errno == ENOMEM ? "ENOMEM" : strerror(errno));
  hak_free(last);
  char *small = hak_heap_malloc(req, 64);
  printf("   after freeing one block the heap is usable again: a 64 B block %s\n",
         small ? "fits" : "does not fit");
  print_stats(req);

  printf("4. destroy 'request' at once (no per-block frees), reset 'work'\n");
  hak_heap_destroy(req);
  hak_heap_reset(work);
  print_stats(work);

  hak_heap_destroy(msgs);
  hak_heap_destroy(work);
  printf("done\n");
  return 0;
}
