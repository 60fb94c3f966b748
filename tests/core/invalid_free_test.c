/*
** Invalid frees reach the error handler exactly once, with the right HAK_ERR_* code and a message
** that names the pointer; the handler returns, hak_free returns without touching anything, and
** the heap stays fully usable. Covers stack, glibc, wild and unmapped pointers, interior and
** misaligned pointers into small and large blocks, frees after destroy (HAK_ERR_HEAP_DESTROYED),
** and destroying the default heap. A double free of a small block is reported as
** HAK_ERR_DOUBLE_FREE at the second free, always: behind other frees, after its slab was
** released, after the freeing thread exited, from another thread.
*/
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "test_util.h"

HT_HEAP_SUITE(invalid_free, 30);

static const char *err_name(int err) {
  switch (err) {
  case HAK_ERR_INVALID_POINTER: return "INVALID_POINTER";
  case HAK_ERR_INTERIOR_POINTER: return "INTERIOR_POINTER";
  case HAK_ERR_DOUBLE_FREE: return "DOUBLE_FREE";
  case HAK_ERR_HEAP_DESTROYED: return "HEAP_DESTROYED";
  case HAK_ERR_MISUSE: return "MISUSE";
  case HAK_ERR_CORRUPTION: return "CORRUPTION";
  default: return "?";
  }
}

/* Free p (by hak_free, then by hak_free_sized) and expect one report with code want or alt. */
static void expect_report(void *p, int want, int alt, const char *what) {
  for (int sized = 0; sized < 2; sized++) {
    ht_errlog_clear(&errlog);
    if (sized)
      hak_free_sized(p, 64);
    else
      hak_free(p);
    cr_assert_eq(errlog.calls, 1, "%s %p (%s): handler called %d times, want once", what, p,
                 sized ? "hak_free_sized" : "hak_free", errlog.calls);
    cr_assert(errlog.err == want || errlog.err == alt, "%s %p: err %d (%s), want %s", what, p,
              errlog.err, err_name(errlog.err), err_name(want));
    cr_assert_eq(errlog.arg, &errlog, "handler arg not passed through");
    cr_assert(ht_msg_names_pointer(errlog.msg, p), "%s: message \"%s\" does not name %p", what,
              errlog.msg, p);
  }
}

static void expect_heap_usable(void) {
  ht_errlog_clear(&errlog);
  const char *fail = ht_heap_usable(heap);
  cr_assert_null(fail, "heap unusable after an invalid free: %s", fail);
  cr_assert_eq(errlog.calls, 0, "the usability probe raised errors: %s", errlog.msg);
}

Test(invalid_free, stack_pointer_is_reported_as_invalid) {
  long on_stack[4] = {1, 2, 3, 4};
  expect_report(on_stack, HAK_ERR_INVALID_POINTER, HAK_ERR_INVALID_POINTER, "stack pointer");
  cr_assert_eq(on_stack[0] + on_stack[3], 5, "the stack memory was touched");
  expect_heap_usable();
}

Test(invalid_free, glibc_malloc_pointer_is_reported_as_invalid_and_left_alone) {
  char *small = malloc(48);
  char *large = malloc(4 * HT_MIB);
  cr_assert_not_null(small);
  cr_assert_not_null(large);
  strcpy(small, "glibc");
  expect_report(small, HAK_ERR_INVALID_POINTER, HAK_ERR_INVALID_POINTER, "glibc small");
  expect_report(large, HAK_ERR_INVALID_POINTER, HAK_ERR_INVALID_POINTER, "glibc mmapped");
  cr_assert_str_eq(small, "glibc");
  free(small);
  free(large);
  expect_heap_usable();
}

Test(invalid_free, wild_address_is_reported_as_invalid) {
  expect_report((void *)0x1234560, HAK_ERR_INVALID_POINTER, HAK_ERR_INVALID_POINTER, "wild");
  expect_heap_usable();
}

Test(invalid_free, unmapped_addresses_are_reported_as_invalid) {
  long page = sysconf(_SC_PAGESIZE);
  char *m = mmap(NULL, (size_t)page * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert_neq(m, MAP_FAILED);
  munmap(m, (size_t)page * 4);
  expect_report(m + page, HAK_ERR_INVALID_POINTER, HAK_ERR_INVALID_POINTER, "unmapped");
  expect_report((void *)(uintptr_t)0x7ff000000000ull, HAK_ERR_INVALID_POINTER,
                HAK_ERR_INVALID_POINTER, "high unmapped");
  expect_report((void *)(uintptr_t)0x800000000000ull, HAK_ERR_INVALID_POINTER,
                HAK_ERR_INVALID_POINTER, "non-canonical");
  expect_report((void *)(uintptr_t)0xffff800000001000ull, HAK_ERR_INVALID_POINTER,
                HAK_ERR_INVALID_POINTER, "kernel");
  expect_heap_usable();
}

Test(invalid_free, address_never_handed_out_near_a_live_block_is_reported) {
  /* 256 KiB past a live block: likely inside the same superslab, in a slab of another class or
  ** not carved at all. Depending on what lies there it is "never handed out", "inside a block" or
  ** "a free block", so those three codes are accepted; it must not free anything. */
  void *p = hak_heap_malloc(heap, 64);
  cr_assert_not_null(p);
  void *beyond = (char *)p + 256 * HT_KIB;
  hak_heap_stats_t before = ht_stats(heap);
  ht_errlog_clear(&errlog);
  hak_free(beyond);
  cr_assert_eq(errlog.calls, 1);
  cr_assert(errlog.err == HAK_ERR_INVALID_POINTER || errlog.err == HAK_ERR_INTERIOR_POINTER ||
                errlog.err == HAK_ERR_DOUBLE_FREE,
            "err %s", err_name(errlog.err));
  cr_assert(ht_msg_names_pointer(errlog.msg, beyond));
  cr_assert_eq(ht_stats(heap).free_count, before.free_count);
  hak_free(p);
  expect_heap_usable();
}

Test(invalid_free, interior_pointer_into_small_block_is_reported) {
  static const size_t sizes[] = {32, 64, 100, 512, 4000, 30000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned char *p = hak_heap_malloc(heap, sizes[i]);
    cr_assert_not_null(p);
    ht_fill(p, sizes[i], 0x3C);
    expect_report(p + 16, HAK_ERR_INTERIOR_POINTER, HAK_ERR_INTERIOR_POINTER, "interior small");
    cr_assert(ht_check(p, sizes[i], 0x3C), "interior free touched the block");
    cr_assert_eq(hak_heap_of(p), heap, "interior free freed the block");
    hak_free(p);
  }
  cr_assert_eq(ht_stats(heap).live_blocks, 0);
  expect_heap_usable();
}

Test(invalid_free, misaligned_pointer_is_reported) {
  unsigned char *p = hak_heap_malloc(heap, 64);
  cr_assert_not_null(p);
  ht_fill(p, 64, 0x11);
  expect_report(p + 1, HAK_ERR_INTERIOR_POINTER, HAK_ERR_INTERIOR_POINTER, "misaligned +1");
  expect_report(p + 8, HAK_ERR_INTERIOR_POINTER, HAK_ERR_INTERIOR_POINTER, "misaligned +8");
  expect_report(p + 63, HAK_ERR_INTERIOR_POINTER, HAK_ERR_INTERIOR_POINTER, "misaligned +63");
  cr_assert(ht_check(p, 64, 0x11));
  hak_free(p);
  cr_assert_eq(errlog.calls, 1, "the real free after the bad ones was reported");
  cr_assert_eq(ht_stats(heap).live_blocks, 0);
  expect_heap_usable();
}

Test(invalid_free, interior_pointer_into_large_block_is_reported) {
  unsigned char *p = hak_heap_malloc(heap, 2 * HT_MIB);
  cr_assert_not_null(p);
  ht_fill(p, 2 * HT_MIB, 0x5E);
  expect_report(p + 16, HAK_ERR_INTERIOR_POINTER, HAK_ERR_INTERIOR_POINTER, "interior large +16");
  expect_report(p + 4096, HAK_ERR_INTERIOR_POINTER, HAK_ERR_INTERIOR_POINTER,
                "interior large +4096");
  expect_report(p + HT_MIB, HAK_ERR_INTERIOR_POINTER, HAK_ERR_INTERIOR_POINTER,
                "interior large +1MiB");
  expect_report(p + 3, HAK_ERR_INTERIOR_POINTER, HAK_ERR_INTERIOR_POINTER, "misaligned large");
  cr_assert(ht_check(p, 2 * HT_MIB, 0x5E), "interior free touched the large block");
  cr_assert_eq(hak_heap_of(p), heap);
  cr_assert_eq(ht_stats(heap).large_count, 1);
  hak_free(p);
  cr_assert_eq(ht_stats(heap).large_count, 0);
  expect_heap_usable();
}

Test(invalid_free, pointers_just_before_a_large_block_are_reported) {
  /* A large block starts its mapping (its record is out of band): just below it lies nothing of
  ** hakmem's or another large block, so "never handed out" and "inside a block" are both fair
  ** descriptions and either code is accepted; the block itself is untouched. */
  static const size_t aligns[] = {16, 4096, HT_MIB};
  for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
    unsigned char *p = hak_heap_aligned_alloc(heap, aligns[i], 300 * HT_KIB);
    cr_assert_not_null(p);
    ht_fill(p, 300 * HT_KIB, 0x21);
    expect_report(p - 16, HAK_ERR_INVALID_POINTER, HAK_ERR_INTERIOR_POINTER, "16 before large");
    expect_report(p - 64, HAK_ERR_INVALID_POINTER, HAK_ERR_INTERIOR_POINTER, "64 before large");
    cr_assert(ht_check(p, 300 * HT_KIB, 0x21));
    cr_assert_eq(hak_heap_of(p), heap);
    hak_free(p);
  }
  cr_assert_eq(ht_stats(heap).large_count, 0);
  expect_heap_usable();
}

Test(invalid_free, double_free_of_small_block_is_reported) {
  static const size_t sizes[] = {16, 64, 200, 3000, 32000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *p = hak_heap_malloc(heap, sizes[i]);
    cr_assert_not_null(p);
    hak_free(p);
    ht_errlog_clear(&errlog);
    hak_free(p);
    cr_assert_eq(errlog.calls, 1, "double free of a %zu-byte block: %d reports", sizes[i],
                 errlog.calls);
    cr_assert_eq(errlog.err, HAK_ERR_DOUBLE_FREE, "double free reported as %s",
                 err_name(errlog.err));
    cr_assert(ht_msg_names_pointer(errlog.msg, p), "message \"%s\" does not name %p", errlog.msg,
              p);
    /* Had the block entered a free list twice, two allocations would share it. */
    void *a = hak_heap_malloc(heap, sizes[i]);
    void *b = hak_heap_malloc(heap, sizes[i]);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_neq(a, b, "after a double free of %p two allocations share it", p);
    hak_free(a);
    hak_free(b);
    cr_assert_eq(ht_stats(heap).live_blocks, 0, "live count corrupted by the double free");
  }
  expect_heap_usable();
}

/* Allocate n blocks of size and fail if two of them are the same block. */
static void expect_distinct_allocations(size_t size, int n) {
  void *p[64];
  for (int i = 0; i < n; i++) {
    p[i] = hak_heap_malloc(heap, size);
    cr_assert_not_null(p[i]);
    for (int k = 0; k < i; k++)
      cr_assert_neq(p[i], p[k], "after a double free %p was handed out twice", p[i]);
  }
  for (int i = 0; i < n; i++) hak_free(p[i]);
}

Test(invalid_free, double_free_after_other_frees_is_reported_at_once_and_corrupts_nothing) {
  /* free p; free q; free p: p is no longer at the head of any list; the second free of p is
  ** still reported at the call, exactly once, and no block is handed out twice later. */
  static const size_t sizes[] = {16, 64, 200, 3000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *p = hak_heap_malloc(heap, sizes[i]);
    void *q = hak_heap_malloc(heap, sizes[i]);
    cr_assert_not_null(p);
    cr_assert_not_null(q);
    ht_errlog_clear(&errlog);
    hak_free(p);
    hak_free(q);
    cr_assert_eq(errlog.calls, 0);
    hak_free(p);
    cr_assert_eq(errlog.calls, 1, "%zu bytes: free p; free q; free p: %d reports at the third free",
                 sizes[i], errlog.calls);
    cr_assert_eq(errlog.err, HAK_ERR_DOUBLE_FREE, "reported as %s", err_name(errlog.err));
    expect_distinct_allocations(sizes[i], 48);
    cr_assert_eq(errlog.calls, 1, "%zu bytes: free p; free q; free p reported %d times", sizes[i],
                 errlog.calls);
    cr_assert(ht_msg_names_pointer(errlog.msg, p), "message \"%s\" does not name %p", errlog.msg,
              p);
  }
  expect_heap_usable();
}

static void *free_twice(void *p) {
  hak_free(p);
  hak_free(p);
  return NULL;
}

Test(invalid_free, remote_double_free_is_reported_and_corrupts_nothing) {
  static const size_t sizes[] = {16, 64, 200, 3000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *p = hak_heap_malloc(heap, sizes[i]);
    cr_assert_not_null(p);
    ht_errlog_clear(&errlog);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, free_twice, p), 0);
    pthread_join(t, NULL);
    cr_assert_eq(errlog.calls, 1, "%zu bytes: remote double free: %d reports by the frees",
                 sizes[i], errlog.calls);
    cr_assert_eq(errlog.err, HAK_ERR_DOUBLE_FREE, "reported as %s", err_name(errlog.err));
    cr_assert(ht_msg_names_pointer(errlog.msg, p), "message \"%s\" does not name %p", errlog.msg,
              p);
    hak_heap_collect(heap, false);
    expect_distinct_allocations(sizes[i], 48);
    cr_assert_eq(errlog.calls, 1, "%zu bytes: remote double free reported %d times", sizes[i],
                 errlog.calls);
    cr_assert_eq(errlog.err, HAK_ERR_DOUBLE_FREE, "reported as %s", err_name(errlog.err));
  }
  expect_heap_usable();
}

static void *free_once(void *p) {
  hak_free(p);
  return NULL;
}

Test(invalid_free, local_then_remote_double_free_is_reported_and_corrupts_nothing) {
  static const size_t sizes[] = {16, 64, 200, 3000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *p = hak_heap_malloc(heap, sizes[i]);
    cr_assert_not_null(p);
    ht_errlog_clear(&errlog);
    hak_free(p);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, free_once, p), 0);
    pthread_join(t, NULL);
    cr_assert_eq(errlog.calls, 1, "%zu bytes: local + remote double free: %d reports by the frees",
                 sizes[i], errlog.calls);
    cr_assert_eq(errlog.err, HAK_ERR_DOUBLE_FREE, "reported as %s", err_name(errlog.err));
    hak_heap_collect(heap, false);
    expect_distinct_allocations(sizes[i], 48);
    cr_assert_eq(errlog.calls, 1, "%zu bytes: local + remote double free reported %d times",
                 sizes[i], errlog.calls);
    cr_assert_eq(errlog.err, HAK_ERR_DOUBLE_FREE, "reported as %s", err_name(errlog.err));
  }
  expect_heap_usable();
}

/* Free p twice with one report, at the second free, naming p. */
static void expect_double_free_report(void *p, const char *what) {
  ht_errlog_clear(&errlog);
  hak_free(p);
  cr_assert_eq(errlog.calls, 1, "%s %p: %d reports, want one", what, p, errlog.calls);
  cr_assert_eq(errlog.err, HAK_ERR_DOUBLE_FREE, "%s %p: reported as %s", what, p,
               err_name(errlog.err));
  cr_assert(ht_msg_names_pointer(errlog.msg, p), "%s: message \"%s\" does not name %p", what,
            errlog.msg, p);
}

Test(invalid_free, double_free_after_the_slab_was_released_is_reported) {
  static const size_t sizes[] = {16, 64, 200, 3000, 32000};
  enum { N = 2000 };
  static void *p[N];
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    hak_heap_t *h = hak_heap_create(NULL);
    cr_assert_not_null(h);
    size_t held_before = ht_stats(h).held_bytes;
    for (int k = 0; k < N; k++) {
      p[k] = hak_heap_malloc(h, sizes[i]);
      cr_assert_not_null(p[k]);
    }
    for (int k = 0; k < N; k++) hak_free(p[k]);
    hak_heap_collect(h, true);
    cr_assert_eq(ht_stats(h).held_bytes, held_before, "%zu bytes: the slabs were not released",
                 sizes[i]);
    expect_double_free_report(p[0], "double free after release");
    expect_double_free_report(p[N / 2], "double free after release");
    expect_double_free_report(p[N - 1], "double free after release");
    hak_heap_stats_t s = ht_stats(h);
    cr_assert_eq(s.free_count, N, "a double free was counted");
    cr_assert_eq(s.live_blocks, 0);
    ht_errlog_clear(&errlog);
    const char *fail = ht_heap_usable(h);
    cr_assert_null(fail, "%s", fail);
    cr_assert_eq(errlog.calls, 0, "%s", errlog.msg);
    hak_heap_destroy(h);
  }
}

struct exiting {
  size_t size;
  void *p, *q;   /* p: freed by the thread; q: left live when keep_q */
  bool keep_q;
};

static void *alloc_free_exit(void *arg) {
  struct exiting *e = arg;
  e->p = hak_heap_malloc(heap, e->size);
  e->q = e->keep_q ? hak_heap_malloc(heap, e->size) : NULL;
  hak_free(e->p);
  return NULL;
}

static void *alloc_only(void *arg) {
  struct exiting *e = arg;
  e->p = hak_heap_malloc(heap, e->size);
  return NULL;
}

Test(invalid_free, double_free_after_the_freeing_thread_exited_is_reported) {
  static const size_t sizes[] = {16, 64, 200, 3000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    for (int keep = 0; keep < 2; keep++) {
      /* The owner freed p and exited: its slab was released (keep 0) or abandoned with q. */
      struct exiting e = {.size = sizes[i], .keep_q = keep};
      pthread_t t;
      cr_assert_eq(pthread_create(&t, NULL, alloc_free_exit, &e), 0);
      pthread_join(t, NULL);
      cr_assert_not_null(e.p);
      expect_double_free_report(e.p, keep ? "after exit, slab abandoned" : "after exit");
      ht_errlog_clear(&errlog);
      if (keep) hak_free(e.q);
      hak_heap_collect(heap, false);
      expect_distinct_allocations(sizes[i], 48);
      cr_assert_eq(errlog.calls, 0, "%zu bytes: later report: %s", sizes[i], errlog.msg);
    }
    /* This thread freed the exited owner's block (remotely); the owner drained it at exit. */
    struct exiting e = {.size = sizes[i]};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, alloc_only, &e), 0);
    pthread_join(t, NULL);
    cr_assert_not_null(e.p);
    ht_errlog_clear(&errlog);
    hak_free(e.p);
    cr_assert_eq(errlog.calls, 0, "%s", errlog.msg);
    expect_double_free_report(e.p, "second free after the owner exited");
    hak_heap_collect(heap, true);
    cr_assert_eq(ht_stats(heap).live_blocks, 0, "%zu bytes", sizes[i]);
  }
  expect_heap_usable();
}

Test(invalid_free, double_free_of_large_block_is_reported) {
  void *p = hak_heap_malloc(heap, 3 * HT_MIB);
  cr_assert_not_null(p);
  hak_free(p);
  ht_errlog_clear(&errlog);
  hak_free(p);
  cr_assert_eq(errlog.calls, 1);
  cr_assert_eq(errlog.err, HAK_ERR_DOUBLE_FREE, "second free of a large block reported as %s",
               err_name(errlog.err));
  cr_assert(ht_msg_names_pointer(errlog.msg, p), "message \"%s\" does not name %p", errlog.msg, p);
  hak_heap_stats_t s = ht_stats(heap);
  cr_assert_eq(s.large_count, 0);
  cr_assert_eq(s.free_count, 1, "the second free was counted");
  expect_heap_usable();
}

Test(invalid_free, free_after_heap_destroy_is_reported) {
  hak_heap_t *gone = hak_heap_create(NULL);
  cr_assert_not_null(gone);
  void *small = hak_heap_malloc(gone, 64);
  void *large = hak_heap_malloc(gone, 3 * HT_MIB);
  cr_assert_not_null(small);
  cr_assert_not_null(large);
  hak_heap_destroy(gone);
  /* Whether destroy cached or unmapped the memory, nothing reused it yet: one answer. */
  expect_report(small, HAK_ERR_HEAP_DESTROYED, HAK_ERR_HEAP_DESTROYED, "small after destroy");
  expect_report(large, HAK_ERR_HEAP_DESTROYED, HAK_ERR_HEAP_DESTROYED, "large after destroy");
  expect_heap_usable();
}

Test(invalid_free, free_after_destroy_does_not_disturb_a_new_heap) {
  enum { OLD = 32, NOW = 8 };
  hak_heap_t *gone = hak_heap_create(NULL);
  cr_assert_not_null(gone);
  void *old[OLD];
  for (int i = 0; i < OLD; i++) {
    old[i] = hak_heap_malloc(gone, 128);
    cr_assert_not_null(old[i]);
  }
  hak_heap_destroy(gone);
  hak_heap_t *fresh = hak_heap_create(NULL);
  cr_assert_not_null(fresh);
  void *now[NOW];
  for (int i = 0; i < NOW; i++) {
    now[i] = hak_heap_malloc(fresh, 128);
    cr_assert_not_null(now[i]);
    ht_fill(now[i], 128, (uint8_t)i);
  }
  /* Frees of stale pointers may hit memory the new heap reuses: then they are live blocks of
  ** `fresh` and freeing them is legitimate. Only free those that are not reused; the new heap
  ** holds fewer blocks than were destroyed, so at least OLD - NOW stale frees are tried. */
  int reported = 0;
  for (int i = 0; i < OLD; i++) {
    int reused = 0;
    for (int k = 0; k < NOW; k++) reused |= now[k] == old[i];
    if (reused) continue;
    ht_errlog_clear(&errlog);
    hak_free(old[i]);
    cr_assert_eq(errlog.calls, 1, "stale free of %p not reported", old[i]);
    reported++;
  }
  cr_assert_geq(reported, OLD - NOW);
  for (int i = 0; i < NOW; i++) {
    cr_assert(ht_check(now[i], 128, (uint8_t)i), "stale frees damaged the new heap's block");
    hak_free(now[i]);
  }
  cr_assert_eq(ht_stats(fresh).live_blocks, 0);
  hak_heap_destroy(fresh);
}

Test(invalid_free, destroying_the_default_heap_is_misuse) {
  void *p = hak_malloc(100);
  cr_assert_not_null(p);
  ht_errlog_clear(&errlog);
  hak_heap_destroy(hak_default_heap());
  cr_assert_eq(errlog.calls, 1, "destroying the default heap was not reported");
  cr_assert_eq(errlog.err, HAK_ERR_MISUSE, "reported as %s", err_name(errlog.err));
  cr_assert_eq(hak_heap_of(p), hak_default_heap(), "the default heap lost its block");
  ht_fill(p, 100, 1);
  hak_free(p);
  void *q = hak_malloc(5000);
  cr_assert_not_null(q);
  hak_free(q);
}

Test(invalid_free, null_is_a_no_op_and_not_reported) {
  hak_free(NULL);
  hak_free_sized(NULL, 0);
  hak_free_sized(NULL, 100);
  cr_assert_eq(errlog.calls, 0);
}

Test(invalid_free, invalid_frees_do_not_change_stats) {
  void *p = hak_heap_malloc(heap, 64);
  cr_assert_not_null(p);
  hak_heap_stats_t before = ht_stats(heap);
  int on_stack;
  hak_free(&on_stack);
  hak_free((char *)p + 16);
  hak_free((void *)0x1234560);
  hak_heap_stats_t after = ht_stats(heap);
  cr_assert_eq(errlog.calls, 3);
  cr_assert_eq(after.free_count, before.free_count);
  cr_assert_eq(after.live_blocks, before.live_blocks);
  cr_assert_eq(after.live_bytes, before.live_bytes);
  hak_free(p);
}
