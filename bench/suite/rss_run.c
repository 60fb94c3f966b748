/*
** rss_run.c: runs a command and reports its peak RSS, wall time and CPU time (user + system of
** the command and the children it waited for), as the runner needs them.
** Usage: rss_run <report-file> <program> [args...]. The runner (Python) cannot measure a child's
** peak RSS itself: the kernel counts the pre-exec copy of the forking process, and Python's
** image is larger than most workloads. This small process forks instead, waits with wait4 and
** writes "maxrss_kib=N secs=S cpu=C status=X" to the report file. SIGTERM and SIGINT are passed on.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t rr_child;

static void rr_forward(int sig) {
  if (rr_child > 0) kill((pid_t)rr_child, sig);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: rss_run <report-file> <program> [args...]\n");
    return 2;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 2;
  }
  if (pid == 0) {
    execvp(argv[2], argv + 2);
    perror(argv[2]);
    _exit(127);
  }
  rr_child = pid;
  signal(SIGTERM, rr_forward);
  signal(SIGINT, rr_forward);
  int status = 0;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0) {
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  FILE *f = fopen(argv[1], "w");
  if (f != NULL) {
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
    fprintf(f, "maxrss_kib=%ld secs=%.6f cpu=%.6f status=%d\n", ru.ru_maxrss, secs, cpu,
            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    fclose(f);
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}
