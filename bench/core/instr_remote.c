/*
** instr_remote.c: the loop whose instructions a Cachegrind run counts for remote frees. Thread A
** allocates n blocks of `size` bytes from a heap and exits (its cache is abandoned, its slabs
** stay owned by that cache); thread B, which never uses the heap, then frees them all: every
** free is remote.
**
**   instr_remote <free|skip> <size> <n>
**   free  B frees the n blocks        skip  B does not free them (the run's other costs)
**
** Instructions per remote free = (Ir(free, 2n) - Ir(free, n) - Ir(skip, 2n) + Ir(skip, n)) / n,
** which cancels start-up, thread creation and A's allocations.
*/
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hakmem.h"

static hak_heap_t *heap;
static void **blocks;
static size_t size, n;
static int do_free;

static void *alloc_main(void *arg) {
  (void)arg;
  for (size_t i = 0; i < n; i++) {
    blocks[i] = hak_heap_malloc(heap, size);
    if (!blocks[i]) abort();
  }
  return NULL;
}

static void *free_main(void *arg) {
  (void)arg;
  if (do_free)
    for (size_t i = 0; i < n; i++) hak_free(blocks[i]);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: instr_remote <free|skip> <size> <n>\n");
    return 2;
  }
  do_free = strcmp(argv[1], "free") == 0;
  size = strtoul(argv[2], NULL, 10);
  n = strtoul(argv[3], NULL, 10);
  heap = hak_heap_create(NULL);
  blocks = calloc(n, sizeof *blocks);
  if (!heap || !blocks) return 1;
  pthread_t t;
  pthread_create(&t, NULL, alloc_main, NULL);
  pthread_join(t, NULL);
  pthread_create(&t, NULL, free_main, NULL);
  pthread_join(t, NULL);
  return 0;
}
