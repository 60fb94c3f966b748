/*
** instr.c: the loops whose instructions bench/core/instr.sh counts under Cachegrind, built once
** per allocator (-DINSTR_HAKMEM or -DINSTR_MIMALLOC), each linked against its allocator as a
** shared library. One run executes one loop n times and exits; instr.sh runs it with n and 2n
** iterations and divides the difference by n, which cancels start-up and set-up.
**
**   instr_<alloc> <api> <loop> <size> <n>
**   api   heap     a heap created for the run (hak_heap_create / mi_heap_new), the thread's only
**                  one: hak_heap_malloc + hak_free, mi_heap_malloc + mi_free
**         default  the default heap: hak_malloc + hak_free, mi_malloc + mi_free
**         heaps1000  1000 heaps created and each used once (one malloc and free), then the loop
**                  runs on the 500th: the cost of finding a thread's cache among many heaps
**         stub     no allocator: out-of-line stubs that return a static block, for the loop's
**                  own cost
**   loop  pair     malloc one block, write its first byte, free it
**         batch100 malloc 100 blocks (writing each first byte), then free the 100 in order
**   Each iteration of `pair` is one malloc+free pair, of `batch100` a hundred.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { HEAPS = 1000, HEAP_USED = 500, BATCH = 100 };

/* ** {======================================================
** Allocator shims.
** ======================================================= */
#if defined(INSTR_HAKMEM)
#include "hakmem.h"
#define ALLOC_NAME "hakmem"
typedef hak_heap_t iheap_t;
static iheap_t *i_heap_new(void) { return hak_heap_create(NULL); }
static inline void *i_heap_malloc(iheap_t *h, size_t n) { return hak_heap_malloc(h, n); }
static inline void *i_malloc(size_t n) { return hak_malloc(n); }
static inline void i_free(void *p) { hak_free(p); }
#elif defined(INSTR_MIMALLOC)
#include <mimalloc.h>
#define ALLOC_NAME "mimalloc"
typedef mi_heap_t iheap_t;
static iheap_t *i_heap_new(void) { return mi_heap_new(); }
static inline void *i_heap_malloc(iheap_t *h, size_t n) { return mi_heap_malloc(h, n); }
static inline void *i_malloc(size_t n) { return mi_malloc(n); }
static inline void i_free(void *p) { mi_free(p); }
#else
#error "define INSTR_HAKMEM or INSTR_MIMALLOC"
#endif

static _Alignas(16) char stub_block[BATCH][1024];
static unsigned stub_next;

__attribute__((noinline)) static void *stub_malloc(size_t n) {
  (void)n;
  void *p = stub_block[stub_next];
  stub_next = (stub_next + 1) % BATCH;
  return p;
}

__attribute__((noinline)) static void stub_free(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

static void *xcheck(void *p) {
  if (p == NULL) {
    fprintf(stderr, "instr(%s): allocation failed\n", ALLOC_NAME);
    exit(2);
  }
  return p;
}
/* }====================================================== */

/* ** {======================================================
** The loops: one function per (api, loop), so the compiler sees the same shape for each.
** ======================================================= */
#define PAIR_LOOP(MALLOC, FREE)                \
  for (unsigned long i = 0; i < n; i++) {      \
    char *p = xcheck(MALLOC);                  \
    p[0] = (char)i;                            \
    FREE(p);                                   \
  }

#define BATCH_LOOP(MALLOC, FREE)                         \
  for (unsigned long i = 0; i < n; i++) {                \
    void *blk[BATCH];                                    \
    for (int j = 0; j < BATCH; j++) {                    \
      char *p = xcheck(MALLOC);                          \
      p[0] = (char)j;                                    \
      blk[j] = p;                                        \
    }                                                    \
    for (int j = 0; j < BATCH; j++) FREE(blk[j]);        \
  }

static void heap_pair(iheap_t *h, size_t size, unsigned long n) { PAIR_LOOP(i_heap_malloc(h, size), i_free) }
static void heap_batch(iheap_t *h, size_t size, unsigned long n) { BATCH_LOOP(i_heap_malloc(h, size), i_free) }
static void default_pair(size_t size, unsigned long n) { PAIR_LOOP(i_malloc(size), i_free) }
static void default_batch(size_t size, unsigned long n) { BATCH_LOOP(i_malloc(size), i_free) }
static void stub_pair(size_t size, unsigned long n) { PAIR_LOOP(stub_malloc(size), stub_free) }
static void stub_batch(size_t size, unsigned long n) { BATCH_LOOP(stub_malloc(size), stub_free) }
/* }====================================================== */

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s heap|default|heaps1000|stub pair|batch100 <size> <n>\n", argv[0]);
    return 2;
  }
  const char *api = argv[1];
  int batch;
  if (strcmp(argv[2], "pair") == 0) batch = 0;
  else if (strcmp(argv[2], "batch100") == 0) batch = 1;
  else {
    fprintf(stderr, "instr: unknown loop %s\n", argv[2]);
    return 2;
  }
  size_t size = (size_t)strtoul(argv[3], NULL, 10);
  unsigned long n = strtoul(argv[4], NULL, 10);
  if (size < 1 || size > sizeof stub_block[0]) {
    fprintf(stderr, "instr: size must be 1..%zu\n", sizeof stub_block[0]);
    return 2;
  }

  if (strcmp(api, "heap") == 0 || strcmp(api, "heaps1000") == 0) {
    int count = strcmp(api, "heap") == 0 ? 1 : HEAPS;
    iheap_t **heaps = xcheck(calloc((size_t)count, sizeof(iheap_t *)));
    for (int i = 0; i < count; i++) {
      heaps[i] = xcheck(i_heap_new());
      i_free(xcheck(i_heap_malloc(heaps[i], size)));
    }
    iheap_t *h = heaps[count == 1 ? 0 : HEAP_USED - 1];
    if (batch) heap_batch(h, size, n);
    else heap_pair(h, size, n);
    /* Heaps are left for process exit: destroying them is not what is measured. */
    free(heaps);
  } else if (strcmp(api, "default") == 0) {
    if (batch) default_batch(size, n);
    else default_pair(size, n);
  } else if (strcmp(api, "stub") == 0) {
    if (batch) stub_batch(size, n);
    else stub_pair(size, n);
  } else {
    fprintf(stderr, "instr: unknown api %s\n", api);
    return 2;
  }
#ifdef NDEBUG
  printf("instr alloc=%s api=%s loop=%s size=%zu n=%lu ndebug=1\n", ALLOC_NAME, api, argv[2], size, n);
#else
  printf("instr alloc=%s api=%s loop=%s size=%zu n=%lu ndebug=0\n", ALLOC_NAME, api, argv[2], size, n);
#endif
  return 0;
}
