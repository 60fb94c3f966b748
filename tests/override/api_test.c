/*
** api_test.c: the interposed C allocation functions behave as glibc documents them, and really
** come from hakmem (hak_heap_of is looked up with dlsym in the preloaded library). Run under
** LD_PRELOAD by run_under_preload.sh. Prints "N passed, N failed".
*/
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* C23; glibc 2.36 has neither, so they are looked up in the preloaded library. */
typedef void free_sized_fn(void *p, size_t size);
typedef void free_aligned_sized_fn(void *p, size_t alignment, size_t size);

/* Volatile so that gcc does not warn about the deliberately huge sizes. */
static volatile size_t huge = SIZE_MAX - 4096;
static volatile size_t half = SIZE_MAX / 2;

static int passed, failed;
#define CHECK(cond)                                                 \
  do {                                                              \
    if (cond) {                                                     \
      passed++;                                                     \
    } else {                                                        \
      failed++;                                                     \
      fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                               \
  } while (0)

typedef void *heap_of_fn(const void *p);
static heap_of_fn *heap_of;

static int ours(const void *p) { return heap_of != NULL && heap_of(p) != NULL; }

int main(void) {
  heap_of = (heap_of_fn *)dlsym(RTLD_DEFAULT, "hak_heap_of");
  free_sized_fn *free_sized = (free_sized_fn *)dlsym(RTLD_DEFAULT, "free_sized");
  free_aligned_sized_fn *free_aligned_sized =
      (free_aligned_sized_fn *)dlsym(RTLD_DEFAULT, "free_aligned_sized");
  CHECK(heap_of != NULL && free_sized != NULL && free_aligned_sized != NULL);
  if (heap_of == NULL || free_sized == NULL || free_aligned_sized == NULL) {
    printf("%d passed, %d failed (not running under the override)\n", passed, failed);
    return 1;
  }

  char *p = malloc(100);
  CHECK(p != NULL && ours(p));
  CHECK(malloc_usable_size(p) >= 100);
  __asm__ volatile("" : "+r"(p)); /* hide the size from _FORTIFY_SOURCE: all usable bytes are ours */
  memset(p, 1, malloc_usable_size(p));
  free(p);
  free(NULL);

  void *z = malloc(0);
  CHECK(z != NULL && ours(z));
  free(z);

  int *c = calloc(1000, sizeof(int));
  int zero = 1;
  for (int i = 0; i < 1000; i++) zero &= c[i] == 0;
  CHECK(c != NULL && zero && ours(c));
  free(c);
  errno = 0;
  CHECK(calloc(half, 4) == NULL && errno == ENOMEM);

  char *r = realloc(NULL, 10);
  CHECK(r != NULL && ours(r));
  strcpy(r, "abcdefghi");
  r = realloc(r, 100000);
  CHECK(r != NULL && strcmp(r, "abcdefghi") == 0 && ours(r));
  r = realloc(r, 5);
  CHECK(r != NULL && memcmp(r, "abcde", 5) == 0);
  CHECK(realloc(r, 0) == NULL); /* frees r, as glibc */
  void *r0 = realloc(NULL, 0);
  CHECK(r0 != NULL);
  free(r0);
  errno = 0;
  void *big = malloc(huge);
  CHECK(big == NULL && errno == ENOMEM);

  errno = 0;
  CHECK(reallocarray(NULL, half, 3) == NULL && errno == ENOMEM);
  void *ra = reallocarray(NULL, 10, 10);
  CHECK(ra != NULL && malloc_usable_size(ra) >= 100);
  free(ra);

  void *m = NULL;
  errno = 1234;
  CHECK(posix_memalign(&m, 3, 10) == EINVAL && errno == 1234);
  CHECK(posix_memalign(&m, 4, 10) == EINVAL && errno == 1234); /* not a multiple of sizeof(void*) */
  CHECK(posix_memalign(&m, 48, 10) == EINVAL && errno == 1234);
  CHECK(posix_memalign(&m, 4096, huge) == ENOMEM && errno == 1234);
  CHECK(posix_memalign(&m, 4096, 10) == 0 && ((uintptr_t)m & 4095) == 0 && errno == 1234);
  free(m);
  for (size_t a = 8; a <= ((size_t)1 << 22); a <<= 1) {
    void *q = NULL;
    int rc = posix_memalign(&q, a, a * 3 / 2);
    CHECK(rc == 0 && ((uintptr_t)q & (a - 1)) == 0 && ours(q));
    free(q);
  }

  void *al = aligned_alloc(64, 64);
  CHECK(al != NULL && ((uintptr_t)al & 63) == 0);
  free_aligned_sized(al, 64, 64);
  errno = 0;
  CHECK(aligned_alloc(24, 48) == NULL && errno == EINVAL);

  void *me = memalign(100, 10); /* glibc rounds the alignment up to 128 */
  CHECK(me != NULL && ((uintptr_t)me & 127) == 0);
  free(me);
  long ps = sysconf(_SC_PAGESIZE);
  void *v = valloc(10);
  CHECK(v != NULL && ((uintptr_t)v & (uintptr_t)(ps - 1)) == 0);
  free(v);
  void *pv = pvalloc(1);
  CHECK(pv != NULL && ((uintptr_t)pv & (uintptr_t)(ps - 1)) == 0 && malloc_usable_size(pv) >= (size_t)ps);
  free(pv);

  void *fs = malloc(200);
  free_sized(fs, 200);

  /* Memory hakmem never handed out: freeing it must not crash (it is ignored). */
  void *foreign = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(foreign != MAP_FAILED && !ours((char *)foreign + 64));
  free((char *)foreign + 64);
  CHECK(malloc_usable_size((char *)foreign + 64) == 0);
  static char on_data[64];
  free(on_data + 16);

  CHECK(malloc_trim(0) == 1);

  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
