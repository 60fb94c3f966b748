/*
** thread_churn_test.c: thousands of short threads allocate, free blocks of earlier threads and
** exit; a pthread key destructor and a C11 thread-local cleanup allocate and free after the
** thread's hakmem cache may already be gone. Memory held by the default heap must not grow
** with the number of threads (caches are returned at thread exit). Prints "N passed, N failed".
*/
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BATCH = 8, SLOTS = 64 };

typedef struct stats_s {
  size_t live_bytes, live_blocks, held_bytes, peak_held_bytes, limit_bytes;
  unsigned long long alloc_count, free_count, remote_free_count;
  size_t superslab_count, large_count;
} stats_t;

static void *handoff[BATCH][SLOTS];
static pthread_key_t key;

static void key_destructor(void *v) {
  free(v);
  void *late = malloc(777); /* allocation during thread teardown */
  free(late);
}

static void *worker(void *arg) {
  void **mine = arg;
  pthread_setspecific(key, malloc(64));
  for (int k = 0; k < SLOTS; k++) free(mine[k]); /* blocks of a dead thread */
  void *tmp[256];
  for (int i = 0; i < 256; i++) tmp[i] = malloc((size_t)(i * 13 % 3000) + 1);
  for (int i = 0; i < 256; i++) free(tmp[i]);
  for (int k = 0; k < SLOTS; k++) {
    mine[k] = malloc((size_t)(k * 61 % 1500) + 1);
    memset(mine[k], 7, 1);
  }
  return NULL;
}

static size_t held(void) {
  void (*get)(void *, stats_t *) = (void (*)(void *, stats_t *))dlsym(RTLD_DEFAULT, "hak_heap_get_stats");
  void *(*def)(void) = (void *(*)(void))dlsym(RTLD_DEFAULT, "hak_default_heap");
  void (*flush)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "hak_thread_flush");
  void (*collect)(void *, _Bool) = (void (*)(void *, _Bool))dlsym(RTLD_DEFAULT, "hak_heap_collect");
  if (!get || !def || !flush || !collect) return 0;
  flush();
  collect(def(), 1);
  stats_t s;
  get(def(), &s);
  return s.held_bytes;
}

static void churn(int rounds) {
  for (int r = 0; r < rounds; r++) {
    pthread_t th[BATCH];
    for (int i = 0; i < BATCH; i++) pthread_create(&th[i], NULL, worker, handoff[(i + r) % BATCH]);
    for (int i = 0; i < BATCH; i++) pthread_join(th[i], NULL);
  }
}

int main(void) {
  int passed = 0, failed = 0;
  pthread_key_create(&key, key_destructor);
  churn(50);
  size_t h1 = held();
  churn(400);
  size_t h2 = held();
  if (h1 == 0) {
    failed++;
    fprintf(stderr, "not running under the hakmem override (no hak_heap_get_stats)\n");
  } else if (h2 <= h1 * 2 + (4u << 20)) {
    passed++;
  } else {
    failed++;
    fprintf(stderr, "held bytes grew with threads: %zu after 400 threads, %zu after 3600\n", h1, h2);
  }
  /* The last threads' blocks outlive them: still live hakmem blocks, freeable here. */
  void *(*heap_of)(const void *) = (void *(*)(const void *))dlsym(RTLD_DEFAULT, "hak_heap_of");
  int live = 0;
  for (int b = 0; b < BATCH; b++)
    for (int k = 0; k < SLOTS; k++) {
      live += heap_of != NULL && heap_of(handoff[b][k]) != NULL &&
              ((unsigned char *)handoff[b][k])[0] == 7;
      free(handoff[b][k]);
    }
  if (live == BATCH * SLOTS) {
    passed++;
  } else {
    failed++;
    fprintf(stderr, "%d of %d blocks left by exited threads are live hakmem blocks\n", live,
            BATCH * SLOTS);
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
