/*
** ASan proof (build with --config=asan, which sets HAK_ASAN): hakmem poisons what the program
** must not touch, so ASan aborts on a read of a freed small block, of a freed large block, of
** the slack past the size asked for, of a block after hak_heap_reset and after
** hak_heap_destroy. Each read runs in a forked child whose stderr must name the bad access
** ("use-after-poison", "heap-use-after-free" or, for unmapped memory, "SEGV"); a control
** child reading only live bytes must exit 0. Built without ASan it proves nothing and fails
** (Bazel only runs it under --config=asan).
*/
#include <stdio.h>

#include "hz_util.h"

#ifndef HZ_ASAN
int main(void) {
  printf("FAIL: not an ASan build (use --config=asan)\n0 passed, 1 failed\n");
  return 1;
}
#else
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile unsigned char sink;

static void touch(const unsigned char *p) { sink = *(const volatile unsigned char *)p; }

enum { LIVE, SMALL_FREED, LARGE_FREED, SLACK, AFTER_RESET, AFTER_DESTROY, CASES };
static const char *names[] = { "live block (control)", "freed small block",
                               "freed large block", "slack past the request",
                               "block after reset", "block after destroy" };

static void run_case(int c) {
  hak_heap_t *h = hak_heap_create(NULL);
  unsigned char *p = hak_heap_malloc(h, c == LARGE_FREED ? 100000 : c == SLACK ? 20 : 64);
  memset(p, 7, c == LARGE_FREED ? 100000 : c == SLACK ? 20 : 64);
  switch (c) {
    case LIVE: touch(p + 63); break;
    case SMALL_FREED: hak_free(p); touch(p + 8); break;
    case LARGE_FREED: hak_free(p); touch(p + 5000); break;
    case SLACK: touch(p + 24); break;
    case AFTER_RESET: hak_heap_reset(h); touch(p + 8); break;
    case AFTER_DESTROY: hak_heap_destroy(h); touch(p + 8); _exit(0);
  }
  hak_heap_destroy(h);
  _exit(0);
}

int main(void) {
  for (int c = 0; c < CASES; c++) {
    int fd[2];
    if (!hz_check(pipe(fd) == 0, "pipe")) break;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      dup2(fd[1], 2);
      close(fd[0]);
      run_case(c);
    }
    close(fd[1]);
    static char out[65536];
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd[0], out + n, sizeof out - 1 - n)) > 0) n += (size_t)r;
    out[n] = 0;
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (c == LIVE) {
      hz_check(clean && n == 0, "%s: child failed or printed:\n%s", names[c], out);
      continue;
    }
    bool named = strstr(out, "use-after-poison") || strstr(out, "heap-use-after-free") ||
                 strstr(out, "SEGV");
    if (hz_check(!clean && named, "%s: ASan did not stop the read (status %d)\n%.2000s", names[c],
                 status, out))
      printf("caught: %s\n", names[c]);
  }
  return hz_finish();
}
#endif
