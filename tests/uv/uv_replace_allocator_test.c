/*
** uv_replace_allocator_test.c: hak_uv_replace_allocator routes libuv's own allocations into the
** heap, and its free preserves errno. A plain program: the replacement must come before any
** other libuv call in the process.
*/
#include <hakmem_uv.h>

#include <errno.h>

#include "check.h"

void hak__uv_free(void *p); /* the free handed to libuv (hakmem_uv.c) */

int main(void) {
  hak_heap_config_t cfg = {.name = "libuv"};
  hak_heap_t *heap = hak_heap_create(&cfg);
  hak_heap_stats_t before, after;
  uv_loop_t *loop;
  CHECK(heap != NULL);
  CHECK(hak_uv_replace_allocator(heap) == 0);

  hak_heap_get_stats(heap, &before);
  loop = uv_loop_new(); /* allocates the loop with libuv's allocator */
  CHECK(loop != NULL);
  CHECK(hak_heap_of(loop) == heap);
  uv_loop_delete(loop);
  hak_heap_get_stats(heap, &after);
  CHECK(after.alloc_count > before.alloc_count);
  CHECK(after.free_count > before.free_count);

  void *p = hak_heap_malloc(heap, 64);
  errno = EBADF;
  hak__uv_free(p);
  CHECK(errno == EBADF);
  errno = EAGAIN;
  hak__uv_free(NULL);
  CHECK(errno == EAGAIN);
  return finish();
}
