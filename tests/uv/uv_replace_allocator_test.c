/*
** uv_replace_allocator_test.c: hak_uv_replace_allocator routes libuv's own allocations into the
** heap, sends pointers libuv got from libc to libc (uv_fs_realpath), and its free preserves
** errno. A plain program: the replacement must come before any other libuv call in the process.
*/
#include <hakmem_uv.h>

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

void hak__uv_free(void *p);                 /* the free handed to libuv (hakmem_uv.c) */
void *hak__uv_realloc(void *p, size_t size); /* its realloc */

static int realpath_done;
static char realpath_seen[PATH_MAX];

static void on_realpath(uv_fs_t *req) {
  realpath_done = (int)req->result == 0 && req->ptr != NULL;
  if (realpath_done) snprintf(realpath_seen, sizeof realpath_seen, "%s", (char *)req->ptr);
  uv_fs_req_cleanup(req); /* libuv 1.44: uv__free(the buffer realpath() malloc'd) */
}

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

  /* uv_fs_realpath, synchronous and on the threadpool: the result is libc's and freed as such */
  char want[PATH_MAX];
  CHECK(realpath("/proc/self/../self/.", want) != NULL);
  uv_fs_t req;
  CHECK(uv_fs_realpath(NULL, &req, "/proc/self/../self/.", NULL) == 0);
  CHECK(req.ptr != NULL && strcmp(req.ptr, want) == 0);
  CHECK(!hak_owns(req.ptr));
  uv_fs_req_cleanup(&req);
  CHECK(req.ptr == NULL);
  CHECK(uv_fs_realpath(loop, &req, "/proc/self/../self/.", on_realpath) == 0);
  CHECK(uv_run(loop, UV_RUN_DEFAULT) == 0);
  CHECK(realpath_done == 1);
  CHECK(strcmp(realpath_seen, want) == 0);
  CHECK(uv_fs_realpath(NULL, &req, "/no/such/path/at/all", NULL) == UV_ENOENT);
  uv_fs_req_cleanup(&req);

  uv_loop_delete(loop);
  hak_heap_get_stats(heap, &after);
  CHECK(after.alloc_count > before.alloc_count);
  CHECK(after.free_count > before.free_count);
  CHECK(after.live_blocks == before.live_blocks);

  /* foreign pointers: libc's free and realloc; hakmem's blocks: the heap */
  char *foreign = malloc(32);
  strcpy(foreign, "from libc");
  foreign = hak__uv_realloc(foreign, 100000);
  CHECK(foreign != NULL && !hak_owns(foreign) && strcmp(foreign, "from libc") == 0);
  errno = EBADF;
  hak__uv_free(foreign);
  CHECK(errno == EBADF);
  char *own = hak__uv_realloc(NULL, 10);
  CHECK(hak_heap_of(own) == heap);
  own = hak__uv_realloc(own, 5000);
  CHECK(hak_heap_of(own) == heap);
  hak__uv_free(own);

  void *p = hak_heap_malloc(heap, 64);
  errno = EBADF;
  hak__uv_free(p);
  CHECK(errno == EBADF);
  errno = EAGAIN;
  hak__uv_free(NULL);
  CHECK(errno == EAGAIN);
  return finish();
}
