/* os.c: the OS box (mmap/mremap/munmap/madvise/mprotect). No locks, no logging. */
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

int hak__os_extend(void *p, size_t size) {
  int e = errno;
  void *q = mmap(p, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (q == p) return 0;
  if (q != MAP_FAILED) munmap(q, size); /* a kernel without MAP_FIXED_NOREPLACE took a hint */
  errno = e;
  return -1;
}

/* Moves what it can, front first; returns the bytes moved. */
static size_t move_split(char *src, size_t len, char *dst, size_t unit) {
  if (mremap(src, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst) != MAP_FAILED) return len;
  /* Before Linux 6.17 a move stays within one mapping (EFAULT): halve at a unit boundary. */
  if (errno != EFAULT || len <= unit) return 0;
  size_t half = (len / 2 + unit - 1) & ~(unit - 1);
  size_t done = move_split(src, half, dst, unit);
  if (done < half) return done;
  return half + move_split(src + half, len - half, dst + half, unit);
}

int hak__os_move(void *src, size_t len, void *dst, size_t unit) {
  int e = errno;
  size_t done = move_split(src, len, dst, unit);
  if (done == len) return 0;
  /* Put back what moved (onto its old, now unmapped range), so nothing has changed. */
  if (done) move_split(dst, done, src, unit);
  errno = e;
  return -1;
}

int hak__os_grow(void *p, size_t old, size_t size) {
  int e = errno;
  if (mremap(p, old, size, 0) != MAP_FAILED) return 0;
  errno = e;
  return -1;
}

int hak__os_move_grow(void *p, size_t old, size_t size, void *t) {
  int e = errno;
  if (mremap(p, old, size, MREMAP_MAYMOVE | MREMAP_FIXED, t) != MAP_FAILED) return 0;
  errno = e;
  return -1;
}
