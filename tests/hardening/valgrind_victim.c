/*
** The program valgrind_test.sh runs under memcheck, built from the hakmem sources with
** HAK_VALGRIND=1. "clean" uses every kind of block correctly (memcheck must stay silent);
** "uaf" reads a freed hakmem block; "leak" drops the only pointer to a live block in a program
** that also holds a libc block, "leak_pure" in a program that never calls libc's malloc
** (memcheck skips its leak search when its own malloc list is empty), "leak_large" drops the
** only pointer to a live large block (its record holds the address encoded); "reset" reads a block
** after hak_heap_reset; "uninit" branches on bytes malloc left undefined.
*/
#include <hakmem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile unsigned char sink;
void *vg_reachable; /* global, so the compiler keeps the libc block */

static int clean(void) {
  hak_heap_t *h = hak_heap_create(NULL);
  void *ps[64];
  for (int i = 0; i < 64; i++) {
    size_t n = (size_t)(i * 1237) % 70000 + 1;
    ps[i] = hak_heap_malloc(h, n);
    memset(ps[i], i, n);
  }
  unsigned char *z = hak_heap_calloc(h, 100, 3);
  sink = z[299];
  z = hak_heap_realloc(h, z, 5000);
  sink = z[299];
  unsigned char *a = hak_heap_aligned_alloc(h, 4096, 100);
  a[99] = 1;
  for (int i = 0; i < 64; i += 2) hak_free(ps[i]);
  hak_free(z);
  hak_heap_reset(h);
  for (int i = 0; i < 10; i++) {
    char *p = hak_heap_malloc(h, 100);
    strcpy(p, "reused after reset");
    sink = (unsigned char)p[3];
  }
  hak_heap_destroy(h);
  char *d = hak_malloc(200);
  memset(d, 1, 200);
  d = hak_realloc(d, 100000);
  sink = (unsigned char)d[199];
  hak_free(d);
  unsigned char *big = hak_malloc(3u << 20); /* a large block grown (mremap) and shrunk */
  memset(big, 4, 3u << 20);
  big = hak_realloc(big, 9u << 20);
  memset(big + (3u << 20), 5, 6u << 20);
  sink = big[(3u << 20) - 1];
  big = hak_realloc(big, 1u << 20);
  sink = big[100];
  hak_free(big);
  return 0;
}

/* Out of line, so no register or stack slot of main keeps the address. */
static __attribute__((noinline)) void leak_large(void) {
  unsigned char *volatile q = hak_malloc(3u << 20); /* planted: dropped on return */
  memset(q, 3, 3u << 20);
}

/* Clears the stack below the caller's frame, where leak_large's frames were: the exit path's
** frames reuse that memory, and memcheck scans them. */
static __attribute__((noinline)) void scrub_stack(void) {
  volatile unsigned char junk[64 * 1024];
  memset((void *)junk, 0, sizeof junk);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "clean";
  if (strcmp(mode, "clean") == 0) return clean();
  hak_heap_t *h = hak_heap_create(NULL);
  unsigned char *p = hak_heap_malloc(h, 64);
  memset(p, 1, 64);
  if (strcmp(mode, "uaf") == 0) {
    hak_free(p);
    sink = p[10]; /* planted: read of a freed hakmem block */
  } else if (strcmp(mode, "reset") == 0) {
    hak_heap_reset(h);
    sink = p[10]; /* planted: read of a block freed by reset */
  } else if (strcmp(mode, "leak") == 0 || strcmp(mode, "leak_pure") == 0) {
    if (strcmp(mode, "leak") == 0) vg_reachable = malloc(10);
    p = hak_malloc(777); /* planted: the only pointer to this block is dropped */
    memset(p, 2, 777);
    p = NULL;
  } else if (strcmp(mode, "leak_large") == 0) {
    hak_free(p); /* the only leak is the large block */
    leak_large();
    scrub_stack();
  } else if (strcmp(mode, "uninit") == 0) {
    unsigned char *u = hak_heap_malloc(h, 32);
    if (u[5] == 42) puts("planted: branch on uninitialised bytes");
  }
  return 0;
}
