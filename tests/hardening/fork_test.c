/*
** fork() in a multithreaded process: two threads keep allocating and freeing (shared heaps,
** the default heap, remote frees between them) while the main thread forks again and again.
** Each child must find every hakmem lock usable: it allocates and frees from the default heap,
** from a shared heap the threads were using, from a new heap, reads a shared heap's stats,
** destroys the new heap and exits 0 (an alarm turns a deadlock into a failure). The parent's threads carry on unharmed.
** Prints "N passed, N failed".
*/
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hz_util.h"

enum { THREADS = 2, HEAPS = 2, SLOTS = 64 };

static hak_heap_t *heaps[HEAPS];
static _Atomic(void *) handoff[SLOTS];
static atomic_bool stop;
static atomic_long bad;

static void *churn(void *arg) {
  uint64_t rng = 0xA0761D6478BD642Full * ((uint64_t)(uintptr_t)arg + 1);
  void *mine[32] = { 0 };
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    int i = (int)(hz_rand(&rng) % 32);
    if (mine[i]) {
      if (!hz_filled(mine[i], 16, hz_seed(mine[i], 16))) atomic_fetch_add(&bad, 1);
      /* Half go to another thread through the hand-off slots. */
      if (hz_rand(&rng) & 1) mine[i] = atomic_exchange(&handoff[hz_rand(&rng) % SLOTS], mine[i]);
      hak_free(mine[i]);
      mine[i] = NULL;
    } else {
      uint64_t r = hz_rand(&rng);
      size_t n = 16 + r % 3000;
      mine[i] = (r >> 40) % 3 == 0 ? hak_malloc(n) : hak_heap_malloc(heaps[(r >> 20) % HEAPS], n);
      if (!mine[i]) atomic_fetch_add(&bad, 1);
      else memset(mine[i], hz_seed(mine[i], 16), 16);
    }
  }
  for (int i = 0; i < 32; i++) hak_free(mine[i]);
  return NULL;
}

static int child(void) {
  alarm(20);
  int fails = 0;
  void *p[200];
  hak_heap_t *h = hak_heap_create(NULL);
  hak_heap_t *use[] = { hak_default_heap(), heaps[0], heaps[1], h };
  for (int u = 0; u < 4; u++) {
    for (int i = 0; i < 200; i++) {
      size_t n = i % 50 == 0 ? 100000 : (size_t)(i * 131) % 5000;
      p[i] = hak_heap_malloc(use[u], n);
      if (!p[i]) fails++;
      else memset(p[i], i, n);
    }
    for (int i = 0; i < 200; i++) {
      size_t n = i % 50 == 0 ? 100000 : (size_t)(i * 131) % 5000;
      if (p[i] && !hz_filled(p[i], n, (uint8_t)i)) fails++;
      hak_free(p[i]);
    }
  }
  hak_heap_collect(heaps[0], true);
  /* Stats and destroy walk the remote batches: only this thread's is left to walk (the
  ** parent's threads may have held theirs locked at the fork). */
  hak_heap_stats_t st;
  hak_heap_get_stats(heaps[1], &st);
  hak_heap_destroy(h);
  return fails ? 1 : 0;
}

int main(void) {
  hz_errors_install();
  for (int i = 0; i < HEAPS; i++) heaps[i] = hak_heap_create(NULL);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)i);
  long forks = hz_scaled(30, 5), ok = 0;
  if (getenv("FORKS")) forks = atol(getenv("FORKS"));
  for (long k = 0; k < forks; k++) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) _exit(child());
    int status = 0;
    if (!hz_check(pid > 0 && waitpid(pid, &status, 0) == pid, "fork/wait failed")) break;
    if (hz_check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                 "child %ld: %s %d", k, WIFSIGNALED(status) ? "killed by signal" : "exit status",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status)))
      ok++;
  }
  atomic_store(&stop, true);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  for (int s = 0; s < SLOTS; s++) hak_free(atomic_exchange(&handoff[s], NULL));
  printf("%ld of %ld children allocated and exited cleanly\n", ok, forks);
  hz_check(atomic_load(&bad) == 0, "parent threads: %ld bad blocks or failed allocations",
           atomic_load(&bad));
  hz_check(hz_errors() == 0, "%ld error reports (%s)", hz_errors(), hz_last_msg());
  for (int i = 0; i < HEAPS; i++) {
    hak_heap_collect(heaps[i], true);
    hak_heap_stats_t st;
    hak_heap_get_stats(heaps[i], &st);
    hz_check(st.live_blocks == 0, "heap %d: %zu blocks live after the threads", i, st.live_blocks);
    hak_heap_destroy(heaps[i]);
  }
  return hz_finish();
}
