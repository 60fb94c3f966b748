/*
** alloc_test.c: hak_lua_alloc against the lua_Alloc contract of the Lua 5.4 manual, its limit
** behaviour and its per-type accounting, called directly (no lua_State).
*/
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <criterion/criterion.h>
#include <hakmem_lua.h>

static hak_heap_t *heap;

static void setup(void) { heap = hak_heap_create(NULL); }
static void teardown(void) { hak_heap_destroy(heap); }

TestSuite(lua_alloc, .init = setup, .fini = teardown);

static hak_lua_type_stats_t type_stats(void) {
  hak_lua_type_stats_t ts;
  cr_assert_eq(hak_lua_get_type_stats(heap, &ts), 0);
  return ts;
}

static size_t live_bytes(void) {
  hak_heap_stats_t st;
  hak_heap_collect(heap, false);
  hak_heap_get_stats(heap, &st);
  return st.live_bytes;
}

Test(lua_alloc, nsize_zero_frees_and_returns_null) {
  cr_assert_null(hak_lua_alloc(heap, NULL, 0, 0));
  cr_assert_null(hak_lua_alloc(heap, NULL, LUA_TTABLE, 0));
  void *p = hak_lua_alloc(heap, NULL, LUA_TSTRING, 100);
  cr_assert_not_null(p);
  cr_assert_null(hak_lua_alloc(heap, p, 100, 0));
  cr_assert_eq(live_bytes(), 0);
}

Test(lua_alloc, new_block_is_counted_under_its_type_tag) {
  const int tags[] = {LUA_TSTRING, LUA_TTABLE, LUA_TFUNCTION, LUA_TUSERDATA, LUA_TTHREAD};
  void *p[5];
  for (int i = 0; i < 5; i++) {
    p[i] = hak_lua_alloc(heap, NULL, (size_t)tags[i], 40 + (size_t)i);
    cr_assert_not_null(p[i]);
    memset(p[i], 0xab, 40 + (size_t)i);
  }
  hak_lua_type_stats_t ts = type_stats();
  for (int i = 0; i < 5; i++) {
    cr_expect_eq(ts.type[tags[i]].count, 1, "%s", hak_lua_tag_name(tags[i]));
    cr_expect_eq(ts.type[tags[i]].bytes, 40 + (size_t)i, "%s", hak_lua_tag_name(tags[i]));
  }
  cr_expect_eq(ts.count, 5);
  cr_expect_eq(ts.bytes, 40 + 41 + 42 + 43 + 44);
  for (int i = 0; i < 5; i++) hak_lua_alloc(heap, p[i], 40 + (size_t)i, 0);
  ts = type_stats();
  cr_expect_eq(ts.count, 0);
  cr_expect_eq(ts.bytes, 0);
}

Test(lua_alloc, a_tag_that_is_no_type_counts_as_other) {
  void *a = hak_lua_alloc(heap, NULL, 0, 64);
  void *b = hak_lua_alloc(heap, NULL, 4096, 64); /* osize of an unrelated size, as Lua may pass */
  hak_lua_type_stats_t ts = type_stats();
  cr_expect_eq(ts.type[0].count, 2);
  cr_expect_eq(ts.type[0].bytes, 128);
  hak_lua_alloc(heap, a, 64, 0);
  hak_lua_alloc(heap, b, 64, 0);
}

Test(lua_alloc, resize_keeps_contents_and_type) {
  unsigned char *p = hak_lua_alloc(heap, NULL, LUA_TTABLE, 24);
  for (int i = 0; i < 24; i++) p[i] = (unsigned char)i;
  size_t sizes[] = {25, 4000, 300000, 100, 24, 1};
  size_t old = 24;
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    p = hak_lua_alloc(heap, p, old, sizes[k]);
    cr_assert_not_null(p, "resize %zu -> %zu", old, sizes[k]);
    size_t keep = old < sizes[k] ? old : sizes[k];
    for (size_t i = 0; i < keep && i < 24; i++) cr_assert_eq(p[i], i, "byte %zu", i);
    old = sizes[k];
    hak_lua_type_stats_t ts = type_stats();
    cr_expect_eq(ts.type[LUA_TTABLE].count, 1);
    cr_expect_eq(ts.type[LUA_TTABLE].bytes, old);
  }
  hak_lua_alloc(heap, p, old, 0);
  cr_expect_eq(live_bytes(), 0);
}

Test(lua_alloc, growth_past_the_limit_fails_and_keeps_the_block) {
  char *p = hak_lua_alloc(heap, NULL, 0, 1000);
  memset(p, 'x', 1000);
  hak_heap_stats_t st;
  hak_heap_get_stats(heap, &st);
  hak_heap_set_limit(heap, st.held_bytes);
  cr_assert_null(hak_lua_alloc(heap, p, 1000, 64u << 20));
  for (int i = 0; i < 1000; i++) cr_assert_eq(p[i], 'x');
  cr_assert_null(hak_lua_alloc(heap, NULL, LUA_TSTRING, 64u << 20));
  hak_heap_get_stats(heap, &st);
  cr_expect_leq(st.peak_held_bytes, st.limit_bytes);
  hak_lua_alloc(heap, p, 1000, 0);
}

/* At the limit a shrink that has to move cannot get a new block: it must return the old one. */
Test(lua_alloc, shrink_at_the_limit_never_fails) {
  enum { N = 6 };
  const size_t big[N] = {1u << 20, 300000, 70000, 9000, 1500, 200};
  char *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = hak_lua_alloc(heap, NULL, LUA_TUSERDATA, big[i]);
    cr_assert_not_null(p[i]);
    memset(p[i], 'a' + i, big[i]);
  }
  hak_heap_stats_t st;
  hak_heap_get_stats(heap, &st);
  hak_heap_set_limit(heap, st.held_bytes);
  while (hak_lua_alloc(heap, NULL, 0, 16) != NULL) { /* use up what the limit leaves */
  }
  size_t cur[N];
  for (int i = 0; i < N; i++) cur[i] = big[i];
  const size_t steps[] = {150, 40, 17, 1};
  for (size_t s = 0; s < sizeof steps / sizeof *steps; s++) {
    for (int i = 0; i < N; i++) {
      char *q = hak_lua_alloc(heap, p[i], cur[i], steps[s]);
      cr_assert_not_null(q, "shrink %zu -> %zu failed at the limit", cur[i], steps[s]);
      for (size_t k = 0; k < steps[s]; k++) cr_assert_eq(q[k], 'a' + i);
      p[i] = q;
      cur[i] = steps[s];
    }
  }
  hak_heap_get_stats(heap, &st);
  cr_expect_leq(st.peak_held_bytes, st.limit_bytes);
  hak_lua_type_stats_t ts = type_stats();
  cr_expect_eq(ts.type[LUA_TUSERDATA].bytes, N);
  for (int i = 0; i < N; i++) hak_lua_alloc(heap, p[i], cur[i], 0);
  cr_expect_eq(type_stats().type[LUA_TUSERDATA].count, 0);
}

Test(lua_alloc, type_stats_are_zero_once_every_block_is_freed) {
  void *p = hak_lua_alloc(heap, NULL, LUA_TSTRING, 10);
  hak_lua_alloc(heap, p, 10, 0);
  hak_lua_type_stats_t ts = type_stats();
  cr_expect_eq(ts.count, 0);
  for (int t = 0; t < HAK_LUA_NTAGS; t++) cr_expect_eq(ts.type[t].bytes, 0);
}

/* New blocks refused at the heap's limit are not counted: typed (a tag byte) and untyped of a
** class size (none), each until the limit says no. */
Test(lua_alloc, refused_new_blocks_leave_the_counts_exact) {
  static void *p[4096];
  static const struct { size_t tag, size; } kinds[] = {{LUA_TSTRING, 40}, {0, 64}, {LUA_TTABLE, 56}};
  /* the heap's accounting record is made by its first Lua block: before any limit */
  void *anchor = hak_lua_alloc(heap, NULL, LUA_TUSERDATA, 100);
  cr_assert_not_null(anchor);
  size_t n[3] = {0, 0, 0}, total = 0;
  for (int k = 0; k < 3; k++) {
    hak_heap_stats_t st;
    hak_heap_get_stats(heap, &st);
    hak_heap_set_limit(heap, st.held_bytes + 4096); /* one cold page for this kind's class */
    while (total < 4096 && (p[total] = hak_lua_alloc(heap, NULL, kinds[k].tag, kinds[k].size)))
      n[k]++, total++;
    cr_assert_lt(total, 4096, "the limit never refused %zu-byte blocks", kinds[k].size);
    cr_expect_gt(n[k], 0, "a page fits some %zu-byte blocks", kinds[k].size);
  }
  hak_lua_type_stats_t ts = type_stats();
  cr_expect_eq(ts.type[LUA_TSTRING].count, n[0]);
  cr_expect_eq(ts.type[LUA_TSTRING].bytes, 40 * n[0]);
  cr_expect_eq(ts.type[0].count, n[1]);
  cr_expect_eq(ts.type[0].bytes, 64 * n[1]);
  cr_expect_eq(ts.type[LUA_TTABLE].count, n[2]);
  cr_expect_eq(ts.type[LUA_TTABLE].bytes, 56 * n[2]);
  cr_expect_eq(ts.type[LUA_TUSERDATA].count, 1);
  cr_expect_eq(ts.count, total + 1);
  cr_expect_eq(ts.bytes, 40 * n[0] + 64 * n[1] + 56 * n[2] + 100);
  size_t i = 0;
  for (int k = 0; k < 3; k++)
    for (size_t j = 0; j < n[k]; j++) hak_lua_alloc(heap, p[i++], kinds[k].size, 0);
  hak_lua_alloc(heap, anchor, 100, 0);
  ts = type_stats();
  cr_expect_eq(ts.count, 0);
  cr_expect_eq(ts.bytes, 0);
  hak_heap_set_limit(heap, 0);
}

Test(lua_alloc, type_stats_reject_null_arguments) {
  hak_lua_type_stats_t ts;
  errno = 0;
  cr_expect_eq(hak_lua_get_type_stats(NULL, &ts), -1);
  cr_expect_eq(errno, EINVAL);
  cr_expect_eq(hak_lua_get_type_stats(heap, NULL), -1);
}

typedef struct {
  void **blocks;
  int n;
} batch_t;

static void *free_batch(void *arg) {
  batch_t *b = arg;
  for (int i = 0; i < b->n; i++) hak_lua_alloc(heap, b->blocks[i], 32, 0);
  return NULL;
}

Test(lua_alloc, blocks_freed_on_another_thread_are_reclaimed) {
  enum { N = 1000 };
  static void *blocks[N];
  for (int i = 0; i < N; i++) blocks[i] = hak_lua_alloc(heap, NULL, LUA_TTABLE, 32);
  batch_t b = {blocks, N};
  pthread_t t;
  pthread_create(&t, NULL, free_batch, &b);
  pthread_join(t, NULL);
  cr_expect_eq(type_stats().count, 0);
  hak_heap_stats_t st;
  hak_heap_collect(heap, false);
  hak_heap_get_stats(heap, &st);
  cr_expect_eq(st.live_bytes, 0);
  /* N blocks, and the accounting record (a block of the heap), freed with the last of them */
  cr_expect_eq(st.remote_free_count, N + 1, "%llu of %d frees from the other thread counted as remote",
               (unsigned long long)st.remote_free_count, N + 1);
}

/* Lua's power-of-two vectors sit exactly on size classes; the tag byte must not bump them. */
Test(lua_alloc, untyped_blocks_take_the_class_of_their_size_and_typed_ones_keep_a_spare_byte) {
  for (size_t n = 1; n <= 40000; n += n < 4096 ? 1 : 7) {
    void *plain = hak_heap_malloc(heap, n);
    void *untyped = hak_lua_alloc(heap, NULL, 0, n);
    void *typed = hak_lua_alloc(heap, NULL, LUA_TSTRING, n);
    cr_assert_eq(hak_usable_size(untyped), hak_usable_size(plain), "untyped size %zu", n);
    cr_assert_gt(hak_usable_size(typed), n, "typed size %zu", n);
    hak_free(plain);
    hak_lua_alloc(heap, untyped, n, 0);
    hak_lua_alloc(heap, typed, n, 0);
  }
  cr_expect_eq(type_stats().count, 0);
}

/* Untyped blocks may reuse memory full of bytes that look like tags: none may be read as one. */
Test(lua_alloc, stale_bytes_are_never_taken_for_a_tag) {
  enum { N = 64 };
  void *p[N];
  for (size_t n = 1; n <= 2048; n++) {
    for (int i = 0; i < N; i++) {
      p[i] = hak_heap_malloc(heap, n);
      memset(p[i], LUA_TTABLE, hak_usable_size(p[i]));
    }
    for (int i = 0; i < N; i++) hak_free(p[i]);
    for (int i = 0; i < N; i++) p[i] = hak_lua_alloc(heap, NULL, 0, n);
    for (int i = 0; i < N; i++) p[i] = hak_lua_alloc(heap, p[i], n, n > 1 ? n - 1 : 1);
    for (int i = 0; i < N; i++) hak_lua_alloc(heap, p[i], n > 1 ? n - 1 : 1, 0);
    hak_lua_type_stats_t ts = type_stats();
    cr_assert_eq(ts.count, 0, "size %zu: %zu blocks left, %zu as tables", n, ts.count,
                 ts.type[LUA_TTABLE].count);
  }
}
