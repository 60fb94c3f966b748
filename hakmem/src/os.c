/* os.c: the OS box (mmap/munmap/madvise/mprotect). No locks, no logging. */
#include "os.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

size_t hak__os_page_size(void) { return 4096; }

void *hak__os_map_aligned(size_t size, size_t align) {
  if (size == 0 || size + align < size) { errno = ENOMEM; return NULL; }
  size_t span = align > 4096 ? size + align : size;
  void *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) { errno = ENOMEM; return NULL; }
  if (span == size) return p;
  uintptr_t a = (uintptr_t)p, b = (a + align - 1) & ~(uintptr_t)(align - 1);
  if (b > a) munmap(p, b - a);
  uintptr_t end = a + span, want_end = b + size;
  if (end > want_end) munmap((void *)want_end, end - want_end);
  return (void *)b;
}

void hak__os_unmap(void *p, size_t size) {
  int e = errno;
  munmap(p, size);
  errno = e;
}

void hak__os_guard(void *p, size_t size) {
  int e = errno;
  mprotect(p, size, PROT_NONE);
  errno = e;
}

void hak__os_decommit(void *p, size_t size) {
  int e = errno;
  madvise(p, size, MADV_DONTNEED);
  errno = e;
}
