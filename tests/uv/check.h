/*
** check.h: the tiny harness of the plain (non-Criterion) libuv tests, which must run under TSan.
** CHECK records a failure and goes on; finish() prints "N passed, N failed" and gives the exit code.
*/
#ifndef HAK_UV_TEST_CHECK_H
#define HAK_UV_TEST_CHECK_H

#include <stdio.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (cond) {                                                            \
      check_passed++;                                                      \
    } else {                                                               \
      check_failed++;                                                      \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                      \
  } while (0)

static int finish(void) {
  printf("%d passed, %d failed\n", check_passed, check_failed);
  return check_failed == 0 && check_passed > 0 ? 0 : 1;
}

#endif
