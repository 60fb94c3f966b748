/*
** Invalid frees are detected every time, in whatever mode this is built (default, asan,
** secure, debug): foreign pointers (stack, static, libc, mmap, hakmem's own metadata, wild),
** interior pointers into small and large blocks, frees after hak_heap_destroy and
** hak_heap_reset (before the memory is reused), immediate double frees of small and large
** blocks, and a double free behind another free (reported by the time the block is reused,
** never handed out twice). Each is reported exactly once to the handler, with the pointer in
** the message, through hak_free, hak_free_sized and hak_heap_realloc alike, and the heap stays
** usable. Every double free is caught at once, as HAK_ERR_DOUBLE_FREE, in every build and from
** any thread; every free after destroy is HAK_ERR_HEAP_DESTROYED.
*/
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "hz_util.h"

#define SMALL_MAX ((size_t)32768)

static bool names(const char *msg, const void *p) {
  char hex[32];
  snprintf(hex, sizeof hex, "%" PRIxPTR, (uintptr_t)p);
  return strstr(msg, hex) != NULL;
}

/* Call `how` (0 free, 1 free_sized, 2 realloc) on p; one report of kind want (0 = any). */
static bool expect_report(void *p, int how, int want, const char *what) {
  hz_errors_take();
  errno = 0;
  void *q = NULL;
  if (how == 0) hak_free(p);
  else if (how == 1) hak_free_sized(p, 16);
  else q = hak_realloc(p, 48);
  long n = hz_errors_take();
  bool ok = n == 1 && (want == 0 || hz_last_err() == want) && names(hz_last_msg(), p) &&
            (how != 2 || (q == NULL && errno == EINVAL));
  return hz_check(ok, "%s %p (call %d): %ld report(s), kind %d, msg \"%s\"", what, p, how, n,
                  hz_last_err(), hz_last_msg());
}

static bool heap_usable(hak_heap_t *h) {
  void *ps[64];
  bool ok = true;
  for (int i = 0; i < 64; i++) {
    size_t n = (size_t)(i * 997) % 70000;
    ps[i] = hak_heap_malloc(h, n);
    if (!ps[i]) return false;
    memset(ps[i], i, n);
  }
  for (int i = 0; i < 64; i++) {
    ok = ok && hz_filled(ps[i], (size_t)(i * 997) % 70000, (uint8_t)i);
    hak_free(ps[i]);
  }
  return ok && hz_errors_take() == 0;
}

static void foreign_pointers(void) {
  static char static_buf[256];
  char stack_buf[256];
  char *libc = malloc(256);
  char *page = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  hak_heap_t *h = hak_heap_create(NULL);
  void *small = hak_heap_malloc(h, 64);
  void *ptrs[] = {
    stack_buf + 16, static_buf + 32, libc, libc + 16, page, page + 4096, h,
    (void *)(uintptr_t)0x10, (void *)(uintptr_t)0x7ffffffff000ull, (void *)~(uintptr_t)0xF,
  };
  int nptrs = (int)(sizeof ptrs / sizeof ptrs[0]);
  long rounds = hz_scaled(200, 10);
  for (long r = 0; r < rounds; r++)
    for (int i = 0; i < nptrs; i++) {
      if (!expect_report(ptrs[i], (int)((r + i) % 3), HAK_ERR_INVALID_POINTER, "foreign"))
        return;
    }
  for (int i = 0; i < nptrs; i++)
    hz_check(hak_usable_size(ptrs[i]) == 0 && hak_heap_of(ptrs[i]) == NULL,
             "foreign %p looks like a live block", ptrs[i]);
  /* The metadata at the start of the small block's superslab is not a block either. */
  void *meta = (void *)(((uintptr_t)small & ~(uintptr_t)((4u << 20) - 1)) + 16);
  expect_report(meta, 0, 0, "superslab metadata");
  hz_check(heap_usable(h), "heap usable after foreign frees");
  hak_free(small);
  hak_heap_destroy(h);
  munmap(page, 65536);
  free(libc);
}

static const size_t sizes[] = { 1, 16, 17, 100, 128, 129, 500, 1024, 3000, 4096, 10000,
                                20000, 32768, 32769, 70000, 1 << 20, 9 << 20 };
#define NSIZES ((int)(sizeof sizes / sizeof sizes[0]))

static void interior_pointers(void) {
  hak_heap_t *h = hak_heap_create(NULL);
  for (int i = 0; i < NSIZES; i++) {
    unsigned char *p = hak_heap_malloc(h, sizes[i]);
    size_t us = hak_usable_size(p);
    memset(p, 0xC3, sizes[i]);
    size_t offs[] = { 1, 8, 15, us / 2 + 1, us - 1 };
    for (int k = 0; k < 5; k++) {
      if (offs[k] == 0 || offs[k] >= us) continue;
      for (int how = 0; how < 3; how++)
        expect_report(p + offs[k], how, HAK_ERR_INTERIOR_POINTER, "interior");
    }
    /* A large block starts its mapping (its record is out of band): just below it lies
    ** whatever the address space holds there, reported as such, and the block is untouched. */
    if (us > SMALL_MAX) expect_report(p - 16, 0, 0, "just below a large block");
    hz_check(hz_filled(p, sizes[i], 0xC3) && hak_usable_size(p) == us,
             "block of %zu changed by interior frees", sizes[i]);
    hak_free(p);
    hz_check(hz_errors_take() == 0, "block of %zu still freeable", sizes[i]);
  }
  /* Aligned large blocks: below them, and inside. */
  for (size_t align = 65536; align <= ((size_t)1 << 21); align <<= 1) {
    unsigned char *p = hak_heap_aligned_alloc(h, align, 1000);
    expect_report(p - 64, 0, 0, "just below an aligned large block");
    expect_report(p + 32, 2, HAK_ERR_INTERIOR_POINTER, "aligned large interior");
    hak_free(p);
  }
  hz_check(heap_usable(h), "heap usable after interior frees");
  hak_heap_stats_t st;
  hak_heap_get_stats(h, &st);
  hz_check(st.live_blocks == 0, "interior frees freed nothing (%zu live)", st.live_blocks);
  hak_heap_destroy(h);
}

/* Blocks of every size above in heap h, some of them twice. */
static int fill_heap(hak_heap_t *h, void **out, int max) {
  int n = 0;
  for (int i = 0; i < NSIZES && n < max; i++)
    for (int k = 0; k < 3 && n < max; k++) {
      out[n] = hak_heap_malloc(h, sizes[i]);
      memset(out[n], 1, sizes[i] < 4096 ? sizes[i] : 4096);
      n++;
    }
  return n;
}

static void after_destroy_and_reset(void) {
  enum { MAXB = 3 * NSIZES, NH = 8 };
  long rounds = hz_scaled(20, 2);
  for (long r = 0; r < rounds; r++) {
    /* Several heaps at once, so some superslabs are cached and some unmapped. */
    hak_heap_t *hs[NH];
    void *bl[NH][MAXB];
    int n[NH];
    for (int j = 0; j < NH; j++) {
      hs[j] = hak_heap_create(NULL);
      n[j] = fill_heap(hs[j], bl[j], MAXB);
    }
    for (int j = 0; j < NH; j++) hak_heap_destroy(hs[j]);
    for (int j = 0; j < NH; j++)
      for (int i = 0; i < n[j]; i++)
        if (!expect_report(bl[j][i], (int)((i + r) % 3), HAK_ERR_HEAP_DESTROYED,
                           "free after destroy"))
          goto next;
    hak_heap_t *h = hak_heap_create(NULL);
    int m = fill_heap(h, bl[0], MAXB);
    hak_heap_reset(h);
    for (int i = 0; i < m; i++)
      if (!expect_report(bl[0][i], (int)((i + r) % 3), 0, "free after reset")) break;
    hz_check(heap_usable(h), "heap usable after reset and stale frees");
    hak_heap_destroy(h);
  next:;
  }
}

static void double_frees(void) {
  long rounds = hz_scaled(200, 20);
  for (long r = 0; r < rounds; r++) {
    hak_heap_t *h = hak_heap_create(NULL);
    size_t size = sizes[r % NSIZES];
    void *p = hak_heap_malloc(h, size);
    hak_free(p);
    hz_check(hak_usable_size(p) == 0 && hak_heap_of(p) == NULL, "freed %p looks live", p);
    if (!expect_report(p, (int)(r % 3), HAK_ERR_DOUBLE_FREE, "immediate double free")) {
      hak_heap_destroy(h);
      break;
    }
    hz_check(heap_usable(h), "heap usable after a double free");
    hak_heap_stats_t st;
    hak_heap_collect(h, false);
    hak_heap_get_stats(h, &st);
    hz_check(st.live_blocks == 0, "double free of %zu: %zu live", size, st.live_blocks);
    hak_heap_destroy(h);
  }
}

/* free a, free b, free a: reported at the third free, and a is never handed out twice. */
static void double_free_behind_another(void) {
  for (int i = 0; i < NSIZES; i++) {
    if (sizes[i] > SMALL_MAX) continue;
    hak_heap_t *h = hak_heap_create(NULL);
    void *a = hak_heap_malloc(h, sizes[i]);
    void *b = hak_heap_malloc(h, sizes[i]);
    hz_errors_take();
    hak_free(a);
    hak_free(b);
    hak_free(a);
    long at_once = hz_errors_take();
    void *got[8];
    for (int k = 0; k < 8; k++) got[k] = hak_heap_malloc(h, sizes[i]);
    long total = at_once + hz_errors_take();
    bool distinct = true;
    for (int k = 0; k < 8; k++)
      for (int j = 0; j < k; j++) distinct = distinct && got[k] != got[j];
    hz_check(total == 1 && distinct,
             "size %zu: free a, b, a: %ld report(s), blocks %s", sizes[i], total,
             distinct ? "distinct" : "handed out twice");
    hz_check(at_once == 1 && hz_last_err() == HAK_ERR_DOUBLE_FREE,
             "size %zu: double free behind another not caught at once (%ld, kind %d)", sizes[i],
             at_once, hz_last_err());
    for (int k = 0; k < 8; k++) hak_free(got[k]);
    hak_heap_destroy(h);
  }
}

static void *free_it(void *p) {
  hak_free(p);
  return NULL;
}

/* One report of a double free, at the free just made; `got` keeps how many reports there were. */
static long got;

static bool one_double_free(void) {
  got = hz_errors_take();
  return got == 1 && hz_last_err() == HAK_ERR_DOUBLE_FREE;
}

/* The second free comes from another thread, or after the cache flushed. */
static void double_frees_across_threads_and_flushes(void) {
  bool ok;
  for (int i = 0; i < NSIZES; i++) {
    hak_heap_t *h = hak_heap_create(NULL);
    void *p = hak_heap_malloc(h, sizes[i]);
    hak_free(p);
    hz_errors_take();
    pthread_t t;
    pthread_create(&t, NULL, free_it, p);
    pthread_join(t, NULL);
    ok = one_double_free();
    hz_check(ok, "cross-thread double free of %zu: %ld report(s), kind %d",
             sizes[i], got, hz_last_err());
    /* Owner frees after a remote free. */
    p = hak_heap_malloc(h, sizes[i]);
    pthread_create(&t, NULL, free_it, p);
    pthread_join(t, NULL);
    hak_free(p);
    ok = one_double_free();
    hz_check(ok, "double free after a remote free of %zu: %ld report(s), kind %d",
             sizes[i], got, hz_last_err());
    /* Enough frees of the class after it that the cache returned it to its slab. */
    if (sizes[i] <= SMALL_MAX) {
      void *q[600];
      for (int k = 0; k < 600; k++) q[k] = hak_heap_malloc(h, sizes[i]);
      hak_free(q[0]);
      for (int k = 1; k < 600; k++) hak_free(q[k]);
      hz_errors_take();
      hak_free(q[0]);
      ok = one_double_free();
      hz_check(ok, "double free of a flushed %zu block: %ld report(s), kind %d",
               sizes[i], got, hz_last_err());
    }
    hz_check(heap_usable(h), "heap usable after double frees");
    hak_heap_destroy(h);
  }
}

int main(void) {
  const char *mode = "default";
#if defined(HAK_SECURE)
  mode = "secure";
#elif defined(HZ_ASAN)
  mode = "asan";
#elif defined(HAK_DEBUG)
  mode = "debug";
#endif
  printf("invalid frees, %s build\n", mode);
  hz_errors_install();
  foreign_pointers();
  interior_pointers();
  after_destroy_and_reset();
  double_frees();
  double_free_behind_another();
  double_frees_across_threads_and_flushes();
  return hz_finish();
}
