/*
** Use-after-free writes into freed blocks (issue 11's attacks, default build): a link overwritten
** blind (the attacker cannot read freed memory) in a thread's own free list, and in a remote
** chain waiting for the owner's drain. Each ends in one HAK_ERR_CORRUPTION report naming where
** the bad link was found; the target the attacker chose is never handed out nor written, and the
** heap keeps working.
*/
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "test_util.h"

HT_HEAP_SUITE(corruption, 30);

static unsigned char global_target[256];

/* The attack's write, byte by byte: ASan (which would stop it first) does not instrument it. */
__attribute__((no_sanitize("address"), noinline)) static void raw_write(void *dst, const void *src,
                                                                         size_t n) {
  volatile unsigned char *d = dst;
  for (size_t i = 0; i < n; i++) d[i] = ((const unsigned char *)src)[i];
}

/* The attack's read of freed memory, word by word. */
__attribute__((no_sanitize("address"), noinline)) static uintptr_t raw_word(const void *p, int i) {
  return ((const volatile uintptr_t *)p)[i];
}

/* Overwrite the first word of a freed block: where every allocator keeps its link. */
static void uaf_write_link(void *freed, const void *value) { raw_write(freed, &value, sizeof value); }

/* With a read of freed memory: whatever masks the link of `freed` (nothing in the default build,
** the block's pad in the secure one) is its first word xor the next block's address, which the
** attacker knows; the forged link is the target under that same mask. */
static void uaf_forge_link(void *freed, const void *its_next, const void *target) {
  uintptr_t mask = raw_word(freed, 0) ^ (uintptr_t)its_next;
  uintptr_t forged = (uintptr_t)target ^ mask;
  raw_write(freed, &forged, sizeof forged);
}

/* After the attack: n mallocs of size bytes all get blocks of the heap, never the target. */
static void expect_only_heap_blocks(int n, size_t size, const void *target) {
  for (int i = 0; i < n; i++) {
    void *p = hak_heap_malloc(heap, size);
    cr_assert_not_null(p);
    cr_assert_neq(p, target, "the attacker's target was handed out");
    cr_assert_eq(hak_heap_of(p), heap, "%p is not a block of the heap", p);
  }
}

static void poison_own_list(void *target) {
  void *x = hak_heap_malloc(heap, 64), *y = hak_heap_malloc(heap, 64);
  cr_assert(x && y);
  hak_free(y);
  hak_free(x); /* the list: x, y, ... */
  uaf_write_link(x, target);
  void *first = hak_heap_malloc(heap, 64);
#ifdef HAK_SECURE
  /* x's link is decoded and checked before x is handed out: reported, x kept back */
  cr_assert_eq(errlog.calls, 1);
  cr_assert_neq(first, x);
  cr_assert_eq(hak_heap_of(first), heap);
#else
  cr_assert_eq(first, x, "x comes back first");
  cr_assert_eq(errlog.calls, 0); /* found when the link is about to be followed */
#endif
  expect_only_heap_blocks(100, 64, target);
  cr_assert_eq(errlog.calls, 1, "%d reports", errlog.calls);
  cr_assert_eq(errlog.err, HAK_ERR_CORRUPTION, "error %d (%s)", errlog.err, errlog.msg);
#ifdef HAK_SECURE
  const void *named = x; /* the block whose link was found overwritten */
#else
  const void *named = target; /* found when it was about to be popped: its holder is gone */
#endif
  cr_assert(ht_msg_names_pointer(errlog.msg, named), "message: %s", errlog.msg);
  cr_assert_null(ht_heap_usable(heap));
}

Test(corruption, own_free_list_link_to_a_stack_buffer) {
  unsigned char target[256];
  memset(target, 0, sizeof target);
  poison_own_list(target + 64);
  cr_assert(ht_all_zero(target, sizeof target), "the target was written");
}

Test(corruption, own_free_list_link_to_a_global) {
  memset(global_target, 0, sizeof global_target);
  poison_own_list(global_target + 64);
  cr_assert(ht_all_zero(global_target, sizeof global_target), "the target was written");
}

Test(corruption, own_free_list_link_into_a_live_block_of_the_same_slab) {
  unsigned char *live = hak_heap_malloc(heap, 64);
  memset(live, 0, 64);
  poison_own_list(live + 16); /* inside a live block: not a block start */
  cr_assert(ht_all_zero(live, 64), "the live block was written");
  hak_free(live);
}

static void *free_one(void *p) {
  hak_free(p);
  hak_thread_post_remote(); /* the block is in the owner's remote queue now */
  return NULL;
}

static void poison_remote_chain(void *target) {
  void *x = hak_heap_malloc(heap, 48);
  cr_assert_not_null(x);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, free_one, x), 0);
  pthread_join(t, NULL);
  uaf_write_link(x, target); /* the chain: x -> target */
  hak_heap_drain(heap);
  cr_assert_eq(errlog.calls, 1, "%d reports", errlog.calls);
  cr_assert_eq(errlog.err, HAK_ERR_CORRUPTION, "error %d (%s)", errlog.err, errlog.msg);
  cr_assert(ht_msg_names_pointer(errlog.msg, x), "the report names the block whose link was "
            "overwritten: %s", errlog.msg);
  expect_only_heap_blocks(100, 48, target);
  cr_assert_eq(errlog.calls, 1);
  cr_assert_null(ht_heap_usable(heap));
}

Test(corruption, remote_chain_link_to_a_stack_buffer) {
  unsigned char target[256];
  memset(target, 0, sizeof target);
  poison_remote_chain(target + 64);
  cr_assert(ht_all_zero(target, sizeof target), "the drain wrote into the target");
}

Test(corruption, remote_chain_link_to_a_global) {
  memset(global_target, 0, sizeof global_target);
  poison_remote_chain(global_target + 128);
  cr_assert(ht_all_zero(global_target, sizeof global_target), "the drain wrote into the target");
}

Test(corruption, remote_chain_link_to_unmapped_memory) {
  poison_remote_chain((void *)(uintptr_t)0x10000000000ull); /* 1 TiB: nothing mapped there */
}

/* A live block overflows into its free neighbour (the next block of the slab): the neighbour's
** link and state key are overwritten. The allocator reports it when the neighbour would be handed
** out, and never follows the overwritten link. */

Test(corruption, overflow_into_a_free_neighbour_is_reported_and_not_followed) {
  enum { N = 64 };
  unsigned char *blk[N], *a = NULL, *b = NULL;
  for (int i = 0; i < N; i++) blk[i] = hak_heap_malloc(heap, 64);
  for (int i = 0; i < N && !a; i++) /* secure builds carve in random order: look for a pair */
    for (int j = 0; j < N; j++)
      if (blk[j] == blk[i] + 64) {
        a = blk[i];
        b = blk[j];
        blk[j] = NULL;
        break;
      }
  cr_assert_not_null(a, "no two neighbours among %d blocks", N);
  hak_free(b);
  unsigned char bytes[64 + 16];
  memset(bytes, 0x41, sizeof bytes);
  raw_write(a, bytes, sizeof bytes); /* b's link and key: 0x4141... */
  expect_only_heap_blocks(100, 64, (void *)(uintptr_t)0x4141414141414141ull);
  cr_assert_eq(errlog.calls, 1, "%d reports (%s)", errlog.calls, errlog.msg);
  /* b's header no longer says "free": every double free that does not race is reported at the
  ** free, so this is corruption, reported where it was found (b), not a double free. */
  cr_assert_eq(errlog.err, HAK_ERR_CORRUPTION, "%s", errlog.msg);
  cr_assert(strstr(errlog.msg, "overwritten") != NULL, "%s", errlog.msg);
  cr_assert(ht_msg_names_pointer(errlog.msg, b), "%s", errlog.msg);
  for (int i = 0; i < N; i++) hak_free(blk[i]);
  cr_assert_eq(errlog.calls, 1);
  cr_assert_null(ht_heap_usable(heap));
}

/* ---- An attacker who can read freed memory (issue 11: the secure build's old encoding fell to
** two frees, link = next ^ secret ^ &link) ---- */

/* x, y freed (the list: x, y, ...), then x's link forged with what reading x tells. */
static void forge_own_list(void **px, void *target) {
  void *x = hak_heap_malloc(heap, 64), *y = hak_heap_malloc(heap, 64);
  cr_assert(x && y);
  hak_free(y);
  hak_free(x);
  uaf_forge_link(x, y, target);
  *px = x;
}

/* The old secure attack: a link into the middle of a live block. Never handed out; reported
** where found: the secure build checks x's link before x is handed out, the default build
** the forged address when it is about to be popped. */
Test(corruption, a_link_forged_after_reading_freed_memory_into_a_live_block_is_reported) {
  unsigned char *live = hak_heap_malloc(heap, 64);
  memset(live, 0, 64);
  void *x;
  forge_own_list(&x, live + 16);
  expect_only_heap_blocks(100, 64, live + 16);
  cr_assert_eq(errlog.calls, 1, "%d reports", errlog.calls);
  cr_assert_eq(errlog.err, HAK_ERR_CORRUPTION, "%s", errlog.msg);
#ifdef HAK_SECURE
  cr_assert(ht_msg_names_pointer(errlog.msg, x), "%s", errlog.msg);
#else
  cr_assert(ht_msg_names_pointer(errlog.msg, live + 16), "%s", errlog.msg);
#endif
  cr_assert(ht_all_zero(live, 64), "the live block was written");
  hak_free(live);
  cr_assert_null(ht_heap_usable(heap));
}

/* A link forged to the start of a live block (it passes every structural check): the live
** block's header does not say free, so it is never handed out a second time. */
Test(corruption, a_link_forged_to_the_start_of_a_live_block_never_hands_it_out_twice) {
  unsigned char *live = hak_heap_malloc(heap, 64);
  memset(live, 0x5a, 64);
  void *x;
  forge_own_list(&x, live);
  expect_only_heap_blocks(100, 64, live);
  cr_assert_eq(errlog.calls, 1, "%d reports", errlog.calls);
  cr_assert_eq(errlog.err, HAK_ERR_CORRUPTION, "%s", errlog.msg);
  cr_assert(ht_msg_names_pointer(errlog.msg, live), "%s", errlog.msg);
  hak_free(live);
  cr_assert_eq(errlog.calls, 1, "the live block's free was valid: %s", errlog.msg);
  cr_assert_null(ht_heap_usable(heap));
}

#ifdef HAK_SECURE
/* What the old encoding leaked: link ^ next ^ &link was the heap's secret, the same in every
** free block, and word 1 was the process's free key, the same in every free block. Now both
** differ from block to block. */
Test(corruption, secure_free_headers_hold_no_word_common_to_two_blocks) {
  void *a = hak_heap_malloc(heap, 64), *b = hak_heap_malloc(heap, 64), *c = hak_heap_malloc(heap, 64);
  cr_assert(a && b && c);
  hak_free(a);
  hak_free(b); /* b -> a */
  hak_free(c); /* c -> b */
  uintptr_t sb = raw_word(b, 0) ^ (uintptr_t)a ^ (uintptr_t)b;
  uintptr_t sc = raw_word(c, 0) ^ (uintptr_t)b ^ (uintptr_t)c;
  cr_assert_neq(sb, sc, "two links give one secret");
  cr_assert_neq(raw_word(b, 1), raw_word(c, 1), "two free blocks carry the same state word");
  cr_assert_neq(raw_word(b, 0) ^ (uintptr_t)a, raw_word(c, 0) ^ (uintptr_t)b, "one pad for two");
  cr_assert_eq(errlog.calls, 0);
}

/* A free block's state word, read while it was free and written into a live block of the same
** slab, does not make that block free: the word is a function of the block's own address. */
Test(corruption, secure_a_state_word_replayed_into_a_live_block_does_not_make_it_free) {
  unsigned char *live = hak_heap_malloc(heap, 64);
  void *x;
  forge_own_list(&x, live);
  uintptr_t replay[2] = { 0, raw_word(x, 1) };
  raw_write(live, replay, sizeof replay);
  expect_only_heap_blocks(100, 64, live);
  cr_assert_eq(errlog.calls, 1, "%d reports", errlog.calls);
  cr_assert_eq(errlog.err, HAK_ERR_CORRUPTION, "%s", errlog.msg);
  cr_assert(ht_msg_names_pointer(errlog.msg, live), "%s", errlog.msg);
}

/* The same replay through a remote chain: the owner's drain checks the state word of every
** block it takes from the chain. */
Test(corruption, secure_a_remote_chain_forged_with_a_replayed_state_word_is_reported) {
  unsigned char *live = hak_heap_malloc(heap, 48);
  void *x = hak_heap_malloc(heap, 48);
  cr_assert(live && x);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, free_one, x), 0);
  pthread_join(t, NULL);
  uaf_forge_link(x, NULL, live); /* x was the chain's only block: its link was NULL */
  uintptr_t replay[2] = { 0, raw_word(x, 1) };
  raw_write(live, replay, sizeof replay);
  hak_heap_drain(heap);
  cr_assert_eq(errlog.calls, 1, "%d reports", errlog.calls);
  cr_assert_eq(errlog.err, HAK_ERR_CORRUPTION, "%s", errlog.msg);
  cr_assert(ht_msg_names_pointer(errlog.msg, x), "%s", errlog.msg);
  expect_only_heap_blocks(100, 48, live);
  cr_assert_eq(errlog.calls, 1);
}
#endif

/* A link cut short (forged to NULL): the blocks after it are lost to the list, not handed out;
** when the slab empties, its list holds fewer blocks than it carved: corruption, reported at
** the list's head, and the slab is kept rather than reused under a miscounted list. */
Test(corruption, a_list_cut_short_is_reported_as_corruption_when_its_slab_empties) {
  void *x;
  forge_own_list(&x, NULL);
  cr_assert_eq(hak_heap_malloc(heap, 64), x);
  hak_free(x);
  cr_assert_eq(errlog.calls, 0);
  hak_heap_collect(heap, false);
  cr_assert_eq(errlog.calls, 1, "%d reports", errlog.calls);
  cr_assert_eq(errlog.err, HAK_ERR_CORRUPTION, "%s", errlog.msg);
  cr_assert(strstr(errlog.msg, "ends before") != NULL, "%s", errlog.msg);
  cr_assert(ht_msg_names_pointer(errlog.msg, x), "%s", errlog.msg);
  cr_assert_null(ht_heap_usable(heap));
}

/* A remote chain's link forged to a free block on the owner's own list (whose header says
** free too): remote links carry a mark list links do not, so the drain stops at that block and
** reports it, instead of giving it back a second time (a loop in the list). */
Test(corruption, a_remote_chain_forged_to_a_block_on_a_free_list_is_reported) {
  void *x = hak_heap_malloc(heap, 48), *y = hak_heap_malloc(heap, 48);
  cr_assert(x && y);
  hak_free(y); /* on the owner's list */
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, free_one, x), 0);
  pthread_join(t, NULL);
  uaf_forge_link(x, NULL, y); /* x was the chain's only block: NULL, marked; now y, marked */
  hak_heap_drain(heap);
  cr_assert_eq(errlog.calls, 1, "%d reports", errlog.calls);
  cr_assert_eq(errlog.err, HAK_ERR_CORRUPTION, "%s", errlog.msg);
  cr_assert(ht_msg_names_pointer(errlog.msg, y), "%s", errlog.msg);
  enum { N = 200 };
  void *got[N];
  for (int i = 0; i < N; i++) {
    got[i] = hak_heap_malloc(heap, 48);
    cr_assert_not_null(got[i]);
    for (int j = 0; j < i; j++) cr_assert_neq(got[i], got[j], "%p handed out twice", got[i]);
  }
  cr_assert_eq(errlog.calls, 1);
  for (int i = 0; i < N; i++) hak_free(got[i]);
  hak_heap_stats_t st = ht_stats(heap);
  cr_assert_eq(st.live_blocks, 0);
  cr_assert_null(ht_heap_usable(heap));
}

#ifndef HAK_ASAN /* ASan's own SIGSEGV handler would report and exit instead */
/* The first page of every superslab is a guard: an overflow off the end of a superslab mapped
** just below another faults there, before it reaches the other's header (its heap pointer, list
** links, free mask). */
Test(corruption, the_first_page_of_a_superslab_is_a_guard, .signal = SIGSEGV) {
  char *p = hak_heap_malloc(heap, 16);
  cr_assert_not_null(p);
  char *base = (char *)((uintptr_t)p & ~(((uintptr_t)4 << 20) - 1));
  raw_write(base + 4095, "x", 1);
}
#endif

/* ---- Double frees the issue lists, and fake small blocks: each reported at the free ---- */

static void *free_twice(void *p) {
  hak_free(p);
  hak_free(p); /* the block sits in this thread's batch: its header says free */
  return NULL;
}

Test(corruption, a_double_free_by_another_thread_while_the_block_is_in_its_batch_is_reported) {
  void *p = hak_heap_malloc(heap, 48);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, free_twice, p), 0);
  pthread_join(t, NULL);
  cr_assert_eq(errlog.calls, 1, "%d reports", errlog.calls);
  cr_assert_eq(errlog.err, HAK_ERR_DOUBLE_FREE, "%s", errlog.msg);
  cr_assert(ht_msg_names_pointer(errlog.msg, p), "%s", errlog.msg);
  cr_assert_null(ht_heap_usable(heap));
}

static void *free_and_exit(void *p) {
  hak_free(p); /* posted by the thread's exit */
  return NULL;
}

Test(corruption, a_double_free_after_the_freeing_thread_exited_is_reported) {
  void *p = hak_heap_malloc(heap, 48);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, free_and_exit, p), 0);
  pthread_join(t, NULL);
  hak_free(p); /* in the owner's queue now */
  cr_assert_eq(errlog.calls, 1, "%d reports", errlog.calls);
  cr_assert_eq(errlog.err, HAK_ERR_DOUBLE_FREE, "%s", errlog.msg);
  hak_heap_drain(heap);
  cr_assert_eq(errlog.calls, 1);
  cr_assert_null(ht_heap_usable(heap));
}

/* Pointers the program never got that look like small blocks: a free block of a slab (carved,
** never handed out) and a block start past the slab's carved blocks. */
Test(corruption, fake_small_blocks_are_reported_and_never_handed_out) {
  unsigned char *a = hak_heap_malloc(heap, 64);
  cr_assert_not_null(a);
  void *fakes[2] = { NULL, a + 64 * 1000 };
  for (int i = 0; i < 64 && !fakes[0]; i++) /* a carved free neighbour (any order of carving) */
    if (hak_usable_size(a + 64 * i) == 0 && i > 0) fakes[0] = a + 64 * i;
  cr_assert_not_null(fakes[0]);
  for (int i = 0; i < 2; i++) {
    ht_errlog_clear(&errlog);
    hak_free(fakes[i]);
    cr_assert_eq(errlog.calls, 1, "fake %d: %d reports", i, errlog.calls);
    cr_assert_eq(errlog.err, HAK_ERR_DOUBLE_FREE, "fake %d: %s", i, errlog.msg);
  }
  ht_errlog_clear(&errlog);
  for (int i = 0; i < 200; i++) {
    void *p = hak_heap_malloc(heap, 64);
    cr_assert_not_null(p);
    cr_assert_neq(p, a, "a live block handed out again");
  }
  cr_assert_eq(errlog.calls, 0);
}
