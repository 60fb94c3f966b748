/*
** fork_test.c: fork() while other threads allocate and free. Each child mallocs and frees (in
** its only thread, including blocks inherited from the parent's threads) and exits 0; a child
** that deadlocks is killed by alarm() and counts as a failure. Prints "N passed, N failed".
*/
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { WORKERS = 3, FORKS = 200, SLOTS = 256 };

static atomic_bool stop;
static void *shared[SLOTS];

static void *worker(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  void *mine[SLOTS] = {0};
  while (!atomic_load(&stop)) {
    unsigned k = (unsigned)rand_r(&seed) % SLOTS;
    free(mine[k]);
    size_t n = (size_t)(rand_r(&seed) % 4 == 0 ? rand_r(&seed) % 300000 : rand_r(&seed) % 512);
    mine[k] = malloc(n + 1);
    memset(mine[k], 1, n + 1);
  }
  for (int k = 0; k < SLOTS; k++) free(mine[k]);
  return NULL;
}

static int child_main(void) {
  alarm(10);
  for (int k = 0; k < SLOTS; k++) free(shared[k]); /* allocated by the parent */
  for (int i = 0; i < 10000; i++) {
    char *p = malloc((size_t)(i % 2000) + 1);
    if (p == NULL) return 1;
    p[0] = 'x';
    free(p);
  }
  void *t = NULL;
  pthread_t th;
  if (pthread_create(&th, NULL, worker, (void *)1) != 0) return 2;
  atomic_store(&stop, true);
  pthread_join(th, &t);
  return 0;
}

int main(void) {
  int passed = 0, failed = 0;
  pthread_t th[WORKERS];
  for (int i = 0; i < WORKERS; i++) pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)(i + 1));
  for (int f = 0; f < FORKS; f++) {
    for (int k = 0; k < SLOTS; k++) shared[k] = malloc((size_t)(k * 37 % 4000) + 1);
    pid_t pid = fork();
    if (pid == 0) exit(child_main());
    for (int k = 0; k < SLOTS; k++) free(shared[k]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      passed++;
    } else {
      failed++;
      fprintf(stderr, "fork %d: child status %d (signal %d)\n", f,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    }
  }
  atomic_store(&stop, true);
  for (int i = 0; i < WORKERS; i++) pthread_join(th[i], NULL);
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
