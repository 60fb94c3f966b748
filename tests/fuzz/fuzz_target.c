/*
** libFuzzer target for hakmem: the input is a program of operations on a few heaps, checked
** against a shadow model. Valid operations must succeed (or fail with the documented errno
** under a limit) and never call the error handler; blocks keep their contents (one fill byte
** per block), usable size >= request, 16-byte (or the requested) alignment and their owner
** heap; held_bytes never grows past the limit; stats count exactly the live blocks, and
** nothing after a reset. Invalid frees (interior, foreign, double, after reset/destroy) must
** each be reported exactly once to the (non-aborting) error handler and leave the heap usable.
** Stale pointers are only used while hakmem cannot have reused their memory: between the op
** that killed them and the next allocating op. Deterministic per input.
**
** Corruption (issue 11): a second thread frees blocks on request (remote frees, batched, posted
** or not) and the owner drains; ops write into freed blocks (the header words, or past them) and
** past the end of a live block into a free neighbour. Once the model has made a corruption,
** reports of HAK_ERR_CORRUPTION are allowed at any later op, and nothing else changes: no error
** of another kind on a valid call, no block handed out twice or overlapping a live one (adopt),
** every live block's contents intact, and the canary buffers the forged links may name (a
** global, a stack buffer) never written.
*/
#include <errno.h>
#include <hakmem.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NHEAPS 4
#define NBLOCKS 64
#define NSTALE 64
#define MAX_OPS 400
#define MAX_BIG 4
#define SMALL_MAX ((size_t)32768)
#define MEDIUM_MAX ((size_t)1 << 20) /* blocks above it are large: mappings of their own */
#define MIB ((size_t)1 << 20)
#define SS_SIZE ((size_t)4 << 20)

#define NTAGS 4 /* the tags a heap's counts cover; tagged ops also try tag NTAGS */

typedef struct {
  hak_heap_t *h;
  size_t limit;
  size_t last_held;
  hak_tag_count_t counts[NTAGS]; /* kept by hakmem's tagged calls */
  hak_tag_count_t want[NTAGS];   /* the model's */
} fz_heap_t;

typedef struct {
  unsigned char *p;
  size_t size, usable, align;
  bool large; /* a mapping of its own (stats count it in large_count) */
  int heap;
  uint8_t fill;
  bool tagged;  /* made by hak_heap_malloc_tagged: only the tagged ops touch it */
  bool counted; /* its calls pass the heap's counts */
  uint8_t tag;
} fz_block_t;

/* Why a pointer is stale; small blocks freed normally can be recycled by a later free's
** list push without an allocation, so only secure builds promise to catch those. */
enum { ST_FREED_SMALL, ST_FREED_LARGE, ST_RESET, ST_DESTROYED };

typedef struct {
  void *p;
  int kind;
} fz_stale_t;

static fz_heap_t heaps[NHEAPS];
static fz_block_t blocks[NBLOCKS];
static fz_stale_t stale[NSTALE];
static int nstale;
static int nbig;
static unsigned opno;

static const uint8_t *in_data;
static size_t in_size, in_pos;

/* Reports seen as expected, per input (printed when HAK_FUZZ_VERBOSE is set). */
static unsigned nexpected;
/* Tagged calls made, per input (printed with the above). */
static unsigned ntagged;

static struct {
  int calls;
  int err;
  char msg[256];
  int corrupt_calls; /* HAK_ERR_CORRUPTION reports after the model corrupted something */
} errlog;

/* The model wrote into freed memory or past a block's end: corruption reports are allowed. */
static bool corrupted;
static unsigned ncorruptions;

static void fz_handler(int err, const char *msg, void *arg) {
  (void)arg;
  if (corrupted && err == HAK_ERR_CORRUPTION) {
    errlog.corrupt_calls++;
    return;
  }
  errlog.calls++;
  errlog.err = err;
  snprintf(errlog.msg, sizeof errlog.msg, "%s", msg ? msg : "(null)");
}

/* What a forged link may name outside hakmem: never written (checked after every op). */
#define CANARY 0xC3
static unsigned char global_canary[256];
static unsigned char *stack_canary;

static void fz_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "hakmem fuzz: op %u: ", opno);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (last error %d: %s)\n", errlog.err, errlog.msg);
  va_end(ap);
  abort();
}

#define CHECK(cond, ...) \
  do {                   \
    if (!(cond)) fz_fail(__VA_ARGS__); \
  } while (0)

static uint8_t byte(void) { return in_pos < in_size ? in_data[in_pos++] : 0; }
static uint16_t u16(void) { return (uint16_t)(byte() | (byte() << 8)); }

/* Sizes: mostly small across all classes, some medium and large, rarely > 8 MiB or
** near SIZE_MAX (must fail with ENOMEM). */
static size_t take_size(void) {
  uint8_t m = byte();
  uint16_t v = u16();
  switch (m >> 6) {
    case 0: return v & 0xFF;
    case 1: return v % 4097;
    case 2: return v % (SMALL_MAX + 2);
    default:
      if (m == 0xFF) return (v & 1) ? SIZE_MAX - (v >> 1) : 9 * MIB + v;
      return (v & 3) ? SMALL_MAX + 1 + (size_t)v * 16 : MEDIUM_MAX + 1 + (size_t)v * 8;
  }
}

static bool is_huge(size_t size) { return size > ((size_t)1 << 60); }

/* ---- shadow model helpers ---- */

static bool filled(const unsigned char *p, size_t n, uint8_t v) {
  uint64_t w = 0x0101010101010101ull * v;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x;
    memcpy(&x, p + i, 8);
    if (x != w) return false;
  }
  for (; i < n; i++)
    if (p[i] != v) return false;
  return true;
}

static void expect_no_error(const char *what) {
  CHECK(errlog.calls == 0, "%s: unexpected error report", what);
}

static void expect_one_error(const char *what, int want) {
  if (corrupted && errlog.calls == 0 && errlog.corrupt_calls > 0) { /* reported as corruption */
    nexpected++;
    return;
  }
  CHECK(errlog.calls == 1, "%s: expected one error report, got %d", what, errlog.calls);
  CHECK(want == 0 || errlog.err == want, "%s: error kind %d, expected %d", what, errlog.err,
        want);
  errlog.calls = 0;
  nexpected++;
}

static void stale_clear(void) { nstale = 0; }

static void stale_remove(int k) { stale[k] = stale[--nstale]; }

static void stale_add(void *p, int kind) {
  if (nstale < NSTALE) stale[nstale++] = (fz_stale_t){ p, kind };
}

static bool stale_detectable(int kind) {
#ifdef HAK_SECURE
  (void)kind;
  return true;
#else
  return kind != ST_FREED_SMALL;
#endif
}

static int free_slot(void) {
  for (int i = 0; i < NBLOCKS; i++)
    if (!blocks[i].p) return i;
  return -1;
}

/* A live block chosen by the input, untagged (or tagged: pick_tagged), or -1. */
static int pick_kind(bool tagged) {
  int start = byte() % NBLOCKS;
  for (int k = 0; k < NBLOCKS; k++) {
    int i = (start + k) % NBLOCKS;
    if (blocks[i].p && blocks[i].tagged == tagged) return i;
  }
  return -1;
}
static int pick_block(void) { return pick_kind(false); }
static int pick_tagged(void) { return pick_kind(true); }

static int pick_heap(void) {
  int i = byte() % NHEAPS;
  return heaps[i].h ? i : -1;
}

static void check_block(const fz_block_t *b, const char *what) {
  CHECK(filled(b->p, b->size, b->fill), "%s: contents of %p (size %zu) changed", what,
        (void *)b->p, b->size);
  CHECK(hak_usable_size(b->p) == b->usable, "%s: usable size of %p changed", what,
        (void *)b->p);
  CHECK(hak_heap_of(b->p) == heaps[b->heap].h, "%s: owner of %p changed", what, (void *)b->p);
}

static void check_limit(int hi) {
  fz_heap_t *fh = &heaps[hi];
  hak_heap_stats_t st;
  hak_heap_get_stats(fh->h, &st);
  CHECK(st.limit_bytes == fh->limit, "limit %zu, expected %zu", st.limit_bytes, fh->limit);
  /* Above the limit a heap may only shrink; at or below it, it stays there. */
  size_t cap = fh->limit > fh->last_held ? fh->limit : fh->last_held;
  CHECK(!fh->limit || st.held_bytes <= cap, "held %zu above limit %zu (was %zu)", st.held_bytes,
        fh->limit, fh->last_held);
  fh->last_held = st.held_bytes;
}

/* A new block from an allocating call: check it and enter it in the model. */
/* Does a fresh block of this size and alignment get a mapping of its own? Above the medium
** classes, or aligned more than a slab (64 KiB) is. */
static bool predict_large(size_t size, size_t align) {
  return size > MEDIUM_MAX || align > ((size_t)64 << 10);
}

static void adopt(int slot, void *q, size_t size, size_t align, bool large, int hi, bool zeroed,
                  const char *what) {
  fz_block_t *b = &blocks[slot];
  uintptr_t a = (uintptr_t)q;
  CHECK(a % 16 == 0 && a % (align ? align : 1) == 0, "%s: %p not aligned to %zu", what, q,
        align);
  size_t us = hak_usable_size(q);
  CHECK(us >= size, "%s: usable %zu < request %zu", what, us, size);
  CHECK(hak_heap_of(q) == heaps[hi].h, "%s: hak_heap_of(%p) wrong", what, q);
  for (int i = 0; i < NBLOCKS; i++) {
    const fz_block_t *o = &blocks[i];
    if (i == slot || !o->p) continue;
    CHECK(a + us <= (uintptr_t)o->p || (uintptr_t)o->p + o->usable <= a,
          "%s: %p overlaps live block %p", what, q, (void *)o->p);
  }
  if (zeroed) CHECK(filled(q, size, 0), "%s: calloc block %p not zeroed", what, q);
  b->p = q;
  b->size = size;
  b->usable = us;
  b->align = align;
  b->large = large;
  b->heap = hi;
  b->fill = (uint8_t)(opno * 37u + 11u);
  b->tagged = false;
  memset(q, b->fill, size);
}

static void expect_alloc_failure(void *q, const char *what) {
  CHECK(q == NULL, "%s: huge request succeeded", what);
  CHECK(errno == ENOMEM, "%s: errno %d, expected ENOMEM", what, errno);
}

/* The allocation failed: fine only for impossible sizes or under a limit. */
static void trace(const char *what, const void *p, size_t size, size_t align, int hi) {
  static int on = -1;
  if (on < 0) on = getenv("HAK_FUZZ_TRACE") != NULL;
  if (on) fprintf(stderr, "op %u: %s %p size %zu align %zu heap %d\n", opno, what, p, size, align, hi);
}

static void allowed_failure(int hi, size_t size, const char *what) {
  CHECK(errno == ENOMEM, "%s: failed with errno %d", what, errno);
  CHECK(heaps[hi].limit != 0 || is_huge(size), "%s of %zu failed without a limit", what, size);
}

static void drop_block(int i) { blocks[i].p = NULL; }

/* ---- operations ---- */

static void op_create(void) {
  int hi = byte() % NHEAPS;
  uint8_t f = byte();
  if (heaps[hi].h) return;
  hak_heap_config_t cfg = { .name = "fuzz", .limit_bytes = (f & 1) ? (size_t)(f >> 1) << 16 : 0 };
  stale_clear();
  hak_heap_t *h = hak_heap_create(&cfg);
  CHECK(h != NULL, "hak_heap_create failed");
  heaps[hi] = (fz_heap_t){ .h = h, .limit = cfg.limit_bytes };
  check_limit(hi);
}

static void op_alloc(int kind) {
  int hi = pick_heap();
  size_t size = take_size();
  size_t count = 1, align = 0;
  if (kind == 1) {
    count = byte() % 5;
    if (byte() == 0xFE) count = SIZE_MAX / 2 + 2; /* overflow */
  }
  if (kind == 2) align = (size_t)1 << (byte() % 21);
  int slot = free_slot();
  if (hi < 0 || slot < 0) return;
  size_t total;
  bool overflow = __builtin_mul_overflow(count, size, &total);
  bool big = !overflow && !is_huge(total) && total > 8 * MIB;
  if (big && nbig >= MAX_BIG) return;
  stale_clear();
  errno = 0;
  void *q;
  const char *what = kind == 0 ? "malloc" : kind == 1 ? "calloc" : "aligned_alloc";
  if (kind == 0) q = hak_heap_malloc(heaps[hi].h, size);
  else if (kind == 1) q = hak_heap_calloc(heaps[hi].h, count, size);
  else q = hak_heap_aligned_alloc(heaps[hi].h, align, size);
  expect_no_error(what);
  trace(what, q, total, align, hi);
  if (overflow || is_huge(total)) {
    expect_alloc_failure(q, what);
  } else if (!q) {
    allowed_failure(hi, total, what);
  } else {
    if (big) nbig++;
    adopt(slot, q, total, align, predict_large(total, align), hi, kind == 1, what);
  }
  check_limit(hi);
}

static void op_realloc(void) {
  int hi = pick_heap();
  int bi = pick_block();
  size_t size = take_size();
  if (hi < 0 || bi < 0) return;
  if (!is_huge(size) && size > 8 * MIB) return;
  fz_block_t old = blocks[bi];
  check_block(&old, "realloc (before)");
  stale_clear();
  errno = 0;
  void *q = hak_heap_realloc(heaps[hi].h, old.p, size);
  expect_no_error("realloc");
  trace("realloc", q, size, 0, hi);
  if (size == 0) {
    /* glibc semantics: frees and returns NULL. */
    CHECK(q == NULL, "realloc(p, 0) returned %p", q);
    drop_block(bi);
    stale_add(old.p, old.large ? ST_FREED_LARGE : ST_FREED_SMALL);
    return;
  }
  if (!q) {
    allowed_failure(hi, size, "realloc");
    check_block(&old, "failed realloc");
    return;
  }
  size_t keep = old.size < size ? old.size : size;
  CHECK(filled(q, keep, old.fill), "realloc lost contents (%zu -> %zu)", old.size, size);
  /* In place it stays in its heap; a moved block lives in the target heap. */
  int owner = q == (void *)old.p ? old.heap : hi;
  drop_block(bi);
  if (q != (void *)old.p)
    stale_add(old.p, old.large ? ST_FREED_LARGE : ST_FREED_SMALL);
  /* A large block stays large when resized in its own heap (or shrunk): mremap may move it. */
  bool stays_large = old.large && (q == (void *)old.p || hi == old.heap);
  adopt(bi, q, size, 0, stays_large || predict_large(size, 0), owner, false, "realloc");
  check_limit(hi);
  if (owner != hi) check_limit(owner);
}

static void op_free(bool sized) {
  int bi = pick_block();
  if (bi < 0) return;
  fz_block_t b = blocks[bi];
  check_block(&b, "free");
  trace("free", b.p, b.size, 0, b.heap);
  if (sized) hak_free_sized(b.p, b.size);
  else hak_free(b.p);
  expect_no_error("free");
  drop_block(bi);
  stale_add(b.p, b.large ? ST_FREED_LARGE : ST_FREED_SMALL);
  check_limit(b.heap);
}

static void forget_heap_blocks(int hi, int kind) {
  for (int i = 0; i < NBLOCKS; i++) {
    if (!blocks[i].p || blocks[i].heap != hi) continue;
    stale_add(blocks[i].p, kind);
    drop_block(i);
  }
  /* The counts belong to the caller, which drops them with the heap's blocks. */
  memset(heaps[hi].counts, 0, sizeof heaps[hi].counts);
  memset(heaps[hi].want, 0, sizeof heaps[hi].want);
}

static void expect_empty(int hi, const char *what) {
  hak_heap_stats_t st;
  hak_heap_get_stats(heaps[hi].h, &st);
  CHECK(st.live_bytes == 0 && st.live_blocks == 0 && st.large_count == 0,
        "%s: stats say %zu bytes in %zu blocks (%zu large) live", what, st.live_bytes,
        st.live_blocks, st.large_count);
}

static void op_reset(void) {
  int hi = pick_heap();
  if (hi < 0) return;
  for (int i = 0; i < NBLOCKS; i++)
    if (blocks[i].p && blocks[i].heap == hi) check_block(&blocks[i], "reset (before)");
  hak_heap_reset(heaps[hi].h);
  expect_no_error("reset");
  forget_heap_blocks(hi, ST_RESET);
  expect_empty(hi, "reset");
  check_limit(hi);
}

/* Free, realloc or query a stale pointer: reported, NULL/0 answers, nothing touched. */
static void stale_probe(void *p, int how, const char *what) {
  CHECK(hak_usable_size(p) == 0, "%s: usable size of stale %p not 0", what, p);
  CHECK(hak_heap_of(p) == NULL, "%s: stale %p still has an owner", what, p);
  if (how == 0) {
    hak_free(p);
  } else if (how == 1) {
    hak_free_sized(p, 16);
  } else {
    errno = 0;
    int hi = pick_heap();
    void *q = hak_heap_realloc(hi >= 0 ? heaps[hi].h : hak_default_heap(), p, 32);
    CHECK(q == NULL && errno == EINVAL, "%s: realloc of stale %p gave %p errno %d", what, p, q,
          errno);
  }
  expect_one_error(what, 0);
}

static void op_destroy(void) {
  int hi = pick_heap();
  int probes = byte() % 4;
  if (hi < 0) return;
  for (int i = 0; i < NBLOCKS; i++)
    if (blocks[i].p && blocks[i].heap == hi) check_block(&blocks[i], "destroy (before)");
  hak_heap_destroy(heaps[hi].h);
  expect_no_error("destroy");
  heaps[hi].h = NULL;
  int first = nstale;
  forget_heap_blocks(hi, ST_DESTROYED);
  for (int k = first; k < nstale && probes > 0; k++, probes--)
    stale_probe(stale[k].p, byte() % 3, "free after destroy");
}

static void op_set_limit(void) {
  int hi = pick_heap();
  uint8_t f = byte();
  if (hi < 0) return;
  size_t limit = (size_t)f << 16;
  CHECK(hak_heap_set_limit(heaps[hi].h, limit) == 0, "set_limit failed");
  CHECK(hak_heap_get_limit(heaps[hi].h) == limit, "get_limit disagrees");
  heaps[hi].limit = limit;
  check_limit(hi);
}

static void op_stats(void) {
  int hi = pick_heap();
  bool force = byte() & 1;
  if (hi < 0) return;
  hak_heap_collect(heaps[hi].h, force);
  expect_no_error("collect");
  size_t n = 0, bytes = 0, large = 0;
  for (int i = 0; i < NBLOCKS; i++) {
    if (!blocks[i].p || blocks[i].heap != hi) continue;
    check_block(&blocks[i], "stats");
    n++;
    bytes += blocks[i].usable;
    large += blocks[i].large;
  }
  hak_heap_stats_t st;
  hak_heap_get_stats(heaps[hi].h, &st);
  CHECK(st.live_blocks == n && st.live_bytes == bytes && st.large_count == large,
        "stats: %zu blocks / %zu bytes / %zu large live, model %zu / %zu / %zu", st.live_blocks,
        st.live_bytes, st.large_count, n, bytes, large);
  CHECK(st.held_bytes >= bytes, "held %zu < live %zu", st.held_bytes, bytes);
  CHECK(st.peak_held_bytes >= st.held_bytes, "peak below held");
  check_limit(hi);
}

static void op_interior(void) {
  int bi = pick_block();
  uint16_t v = u16();
  bool use_realloc = byte() & 1;
  if (bi < 0) return;
  fz_block_t *b = &blocks[bi];
  unsigned char *p = b->p + 1 + v % (b->usable - 1);
  if (b->large && (v & 1)) p = b->p + b->usable - 16; /* a large block's end */
  CHECK(hak_usable_size(p) == 0 && hak_heap_of(p) == NULL, "interior %p looks live", (void *)p);
  if (use_realloc) {
    errno = 0;
    void *q = hak_heap_realloc(heaps[b->heap].h, p, 64);
    CHECK(q == NULL && errno == EINVAL, "realloc of interior pointer gave %p errno %d", q, errno);
  } else {
    hak_free(p);
  }
  expect_one_error("interior free", HAK_ERR_INTERIOR_POINTER);
  check_block(b, "after interior free");
}

static void op_foreign(void) {
  static unsigned char static_buf[64];
  unsigned char stack_buf[64];
  uint8_t k = byte() % 5;
  void *p;
  void *mallocd = NULL;
  int bi;
  switch (k) {
    case 0: p = stack_buf + 16; break;
    case 1: p = static_buf + 16; break;
    case 2: p = mallocd = malloc(48); break;
    case 3: p = hak_default_heap(); break; /* hakmem's own metadata, not a block */
    default:
      bi = pick_block();
      if (bi < 0) return;
      /* A superslab's metadata (or a 4 MiB boundary in or below a large block): never a
      ** block start. */
      p = (void *)(((uintptr_t)blocks[bi].p & ~(uintptr_t)(SS_SIZE - 1)) + 16);
      break;
  }
  CHECK(hak_usable_size(p) == 0 && hak_heap_of(p) == NULL, "foreign %p looks live", p);
  hak_free(p);
  expect_one_error("foreign free", k == 4 ? 0 : HAK_ERR_INVALID_POINTER);
  free(mallocd);
}

/* Double free right away. Small blocks: after hak_thread_flush the frees take the remote path,
** which checks the block's state in every build. Large blocks: always checked. */
static void op_double_free(void) {
  int bi = pick_block();
  int how = byte() % 3;
  if (bi < 0) return;
  fz_block_t b = blocks[bi];
  check_block(&b, "double free (before)");
  bool large = b.large;
#ifndef HAK_SECURE
  if (!large) hak_thread_flush();
#endif
  hak_free(b.p);
  expect_no_error("first free");
  drop_block(bi);
  stale_add(b.p, large ? ST_FREED_LARGE : ST_FREED_SMALL);
  CHECK(hak_usable_size(b.p) == 0, "freed %p still has a usable size", (void *)b.p);
  if (how == 2) {
    errno = 0;
    void *q = hak_heap_realloc(heaps[b.heap].h, b.p, 8);
    CHECK(q == NULL && errno == EINVAL, "realloc after free gave %p errno %d", q, errno);
  } else if (how == 1) {
    hak_free_sized(b.p, b.size);
  } else {
    hak_free(b.p);
  }
  expect_one_error("double free", 0);
}

static void op_stale(void) {
  if (nstale == 0) return;
  int k = byte() % nstale;
  int how = byte() % 3;
  if (!stale_detectable(stale[k].kind)) return;
  stale_probe(stale[k].p, how, "stale free");
}

static void op_bad_args(void) {
  int hi = pick_heap();
  uint8_t k = byte();
  if (hi < 0) return;
  hak_heap_t *h = heaps[hi].h;
  errno = 0;
  void *q;
  switch (k % 4) {
    case 0:
      q = hak_heap_aligned_alloc(h, 3 + (size_t)(k >> 2) * 2, 64); /* not a power of two */
      CHECK(q == NULL && errno == EINVAL, "bad alignment gave %p errno %d", q, errno);
      break;
    case 1:
      q = hak_heap_aligned_alloc(h, 0, 64);
      CHECK(q == NULL && errno == EINVAL, "alignment 0 gave %p errno %d", q, errno);
      break;
    case 2:
      q = hak_heap_calloc(h, SIZE_MAX / 16 + 1 + k, 16);
      CHECK(q == NULL && errno == ENOMEM, "calloc overflow gave %p errno %d", q, errno);
      break;
    default:
      hak_free(NULL);
      hak_free_sized(NULL, 0);
      CHECK(hak_usable_size(NULL) == 0 && hak_heap_of(NULL) == NULL, "NULL looks live");
      break;
  }
  expect_no_error("bad arguments");
}

/* ---- tagged blocks: the tag byte at p[size] exactly when the block is longer ---- */

static void check_counts(int hi, const char *what) {
  for (int t = 0; t < NTAGS; t++)
    CHECK(heaps[hi].counts[t].bytes == heaps[hi].want[t].bytes &&
              heaps[hi].counts[t].count == heaps[hi].want[t].count,
          "%s: tag %d counts %zu bytes %zu blocks, the model %zu, %zu", what, t,
          heaps[hi].counts[t].bytes, heaps[hi].counts[t].count, heaps[hi].want[t].bytes,
          heaps[hi].want[t].count);
}

/* A tagged block's tag as the rule puts it, and the model's count of it. */
static void check_tagged(const fz_block_t *b, const char *what) {
  check_block(b, what);
  if (b->tag != 0)
    CHECK(b->usable > b->size, "%s: tagged %p has no room for its tag", what, (void *)b->p);
  if (b->usable > b->size)
    CHECK(b->p[b->size] == b->tag, "%s: tag byte of %p is %u, not %u", what, (void *)b->p,
          b->p[b->size], b->tag);
}

static void count(fz_block_t *b, size_t size, int sign) {
  if (!b->counted || b->tag >= NTAGS) return;
  hak_tag_count_t *w = &heaps[b->heap].want[b->tag];
  w->bytes += sign > 0 ? size : -size;
  w->count += sign > 0 ? 1 : (size_t)-1;
}

static void adopt_tagged(int slot, void *q, size_t size, int hi, uint8_t tag, bool counted,
                         const char *what) {
  adopt(slot, q, size, 0, predict_large(size + (tag != 0), 0), hi, false, what);
  fz_block_t *b = &blocks[slot];
  b->tagged = true;
  b->counted = counted;
  b->tag = tag;
  if (!b->large && size <= MEDIUM_MAX)
    CHECK(b->usable == hak_good_size(tag ? size + 1 : size), "%s: usable %zu of %zu bytes tag %u",
          what, b->usable, size, tag);
  check_tagged(b, what);
}

static void op_tagged_alloc(void) {
  int hi = pick_heap();
  size_t size = take_size();
  uint8_t k = byte();
  uint8_t tag = (uint8_t)(k % (NTAGS + 1)); /* NTAGS: past the counts, refused when counted */
  bool counted = k & 0x80;
  int slot = free_slot();
  if (hi < 0 || slot < 0) return;
  bool big = !is_huge(size) && size > 8 * MIB;
  if (big && nbig >= MAX_BIG) return;
  stale_clear();
  errno = 0;
  void *q = hak_heap_malloc_tagged(heaps[hi].h, size, tag, counted ? heaps[hi].counts : NULL,
                                   NTAGS);
  ntagged++;
  expect_no_error("malloc_tagged");
  if (counted && tag >= NTAGS) {
    CHECK(q == NULL && errno == EINVAL, "a tag past the counts gave %p errno %d", q, errno);
  } else if (is_huge(size) || (tag && size == SIZE_MAX)) {
    expect_alloc_failure(q, "malloc_tagged");
  } else if (!q) {
    allowed_failure(hi, size, "malloc_tagged");
  } else {
    if (big) nbig++;
    adopt_tagged(slot, q, size, hi, tag, counted, "malloc_tagged");
    count(&blocks[slot], size, +1);
  }
  check_counts(hi, "malloc_tagged");
  check_limit(hi);
}

/* Resize (to 0: free) or free a tagged block; the tag comes back from the free. */
static void op_tagged_change(void) {
  int bi = pick_tagged();
  uint8_t how = byte();
  size_t size = take_size();
  if (bi < 0) return;
  fz_block_t old = blocks[bi];
  int hi = old.heap;
  hak_tag_count_t *counts = old.counted ? heaps[hi].counts : NULL;
  check_tagged(&old, "tagged (before)");
  stale_clear();
  ntagged++;
  errno = 0;
  if (how & 1) {
    int t = hak_free_tagged(old.p, old.size, counts, NTAGS);
    expect_no_error("free_tagged");
    CHECK(t == old.tag, "free_tagged of %p returned %d, not %u", (void *)old.p, t, old.tag);
    count(&old, old.size, -1);
    drop_block(bi);
    stale_add(old.p, old.large ? ST_FREED_LARGE : ST_FREED_SMALL);
  } else {
    if (!is_huge(size) && size > 8 * MIB) return;
    void *q = hak_heap_realloc_tagged(heaps[hi].h, old.p, old.size, size, counts, NTAGS);
    expect_no_error("realloc_tagged");
    if (size == 0) {
      CHECK(q == NULL, "realloc_tagged(p, 0) returned %p", q);
      count(&old, old.size, -1);
      drop_block(bi);
      stale_add(old.p, old.large ? ST_FREED_LARGE : ST_FREED_SMALL);
    } else if (!q) {
      CHECK(size > old.size, "a shrink of %p (%zu -> %zu) failed", (void *)old.p, old.size, size);
      allowed_failure(hi, size, "realloc_tagged");
      check_tagged(&old, "failed realloc_tagged");
    } else {
      size_t keep = old.size < size ? old.size : size;
      CHECK(filled(q, keep, old.fill), "realloc_tagged lost contents (%zu -> %zu)", old.size,
            size);
      count(&old, old.size, -1);
      drop_block(bi);
      if (q != (void *)old.p) stale_add(old.p, old.large ? ST_FREED_LARGE : ST_FREED_SMALL);
      /* A large block stays large in its own heap (mremap); the byte may need size + 1. */
      adopt(bi, q, size, 0, old.large || predict_large(size + (old.tag != 0), 0), hi, false,
            "realloc_tagged");
      fz_block_t *b = &blocks[bi];
      b->tagged = true;
      b->counted = old.counted;
      b->tag = old.tag;
      check_tagged(b, "realloc_tagged");
      count(b, size, +1);
    }
  }
  check_counts(hi, "tagged change");
  check_limit(hi);
}

/* ---- corruption (issue 11) ---- */

/* The second thread: it frees what it is handed, then posts its batch or not, while the main
** thread waits (one op at a time: deterministic). */
static struct {
  pthread_t t;
  sem_t go, done;
  void *p;
  bool post;
  bool up;
} helper;

static void *helper_main(void *arg) {
  (void)arg;
  for (;;) {
    sem_wait(&helper.go);
    hak_free(helper.p);
    if (helper.post) hak_thread_post_remote();
    sem_post(&helper.done);
  }
  return NULL;
}

static void helper_free(void *p, bool post) {
  if (!helper.up) {
    sem_init(&helper.go, 0, 0);
    sem_init(&helper.done, 0, 0);
    CHECK(pthread_create(&helper.t, NULL, helper_main, NULL) == 0, "pthread_create failed");
    helper.up = true;
  }
  helper.p = p;
  helper.post = post;
  sem_post(&helper.go);
  sem_wait(&helper.done);
}

/* A free by the other thread: a remote free (batched; posted when the byte says so). */
static void op_remote_free(void) {
  int bi = pick_block();
  bool post = byte() & 1;
  if (bi < 0) return;
  fz_block_t b = blocks[bi];
  check_block(&b, "remote free");
  trace("remote free", b.p, b.size, 0, b.heap);
  helper_free(b.p, post);
  expect_no_error("remote free");
  drop_block(bi);
  stale_add(b.p, b.large ? ST_FREED_LARGE : ST_FREED_SMALL);
  check_limit(b.heap);
}

static void op_drain(void) {
  int hi = pick_heap();
  if (hi < 0) return;
  hak_heap_drain(heaps[hi].h);
  expect_no_error("drain");
}

/* The attack's writes: ASan (which would stop them first) does not instrument them. */
__attribute__((no_sanitize("address"), noinline)) static void raw_write(void *dst, const void *src,
                                                                         size_t n) {
  volatile unsigned char *d = dst;
  for (size_t i = 0; i < n; i++) d[i] = ((const unsigned char *)src)[i];
}
__attribute__((no_sanitize("address"), noinline)) static uint64_t raw_word(const void *p) {
  return *(const volatile uint64_t *)p;
}

/* Builds whose malloc checks a link before it reads through it. The default build's fast path
** reads the state word at the address a link names (docs/SECURITY.md): a blind write of a wild
** address there faults, so in that build the values below are addresses of mapped memory. */
#if defined(HAK_SECURE) || defined(HAK_ASAN)
#define LINKS_CHECKED 1
#else
#define LINKS_CHECKED 0
#endif

/* A stale small block whose memory is still a superslab's (readable), or NULL. */
static unsigned char *stale_small(uint8_t k) {
  if (nstale == 0) return NULL;
  const fz_stale_t *st = &stale[k % nstale];
  return st->kind == ST_FREED_SMALL && hak_owns(st->p) ? st->p : NULL;
}

/* A value an attacker would write over word `word` (0: the link, 1: the state word). */
static uint64_t attack_value(uint64_t old, int word) {
  uint8_t k = byte();
  uint8_t off = byte();
  int bi;
  unsigned char *o;
  switch (k % 8) {
    case 0: return 0;
    case 1: /* a live block, at its start or inside */
      bi = pick_block();
      return bi < 0 ? 0 : (uintptr_t)blocks[bi].p + (off & 1 ? 16u * (off >> 1) % blocks[bi].usable : 0);
    case 2: return (uintptr_t)global_canary + (off % 16) * 16;
    case 3: return (uintptr_t)stack_canary + (off % 16) * 16;
    case 4: /* another free block */
      o = stale_small(off);
      return o ? (uintptr_t)o : 0;
    case 5: /* the same word of another free block, replayed */
      o = stale_small(off);
      if (!o) return 0;
      old = raw_word(o + 8 * word);
      return LINKS_CHECKED || word || old == 0 || hak_owns((void *)(uintptr_t)old) ? old : 0;
    case 6: /* a bit flip within the slab */
      if (!LINKS_CHECKED && word == 0 && (old == 0 || !hak_owns((void *)(uintptr_t)old))) return 0;
      return old ^ ((uint64_t)1 << (4 + off % 12));
    default:
      if (!LINKS_CHECKED && word == 0) return 0;
      return (uint64_t)u16() << 48 | (uint64_t)u16() << 32 | (uint64_t)u16() << 16 | u16();
  }
}

/* A write into one of the two header words of a freed small block, while its memory is still
** a superslab's. */
static void op_uaf_write(void) {
  uint8_t k = byte();
  int word = byte() & 1;
  unsigned char *p = stale_small(k);
  if (!p) return;
  unsigned char *at = p + 8 * word;
  uint64_t old = raw_word(at), v = attack_value(old, word);
  trace("uaf write", at, v, 0, -1);
  raw_write(at, &v, sizeof v);
  if (v != old) {
    corrupted = true;
    ncorruptions++;
    stale_remove(k % nstale); /* its header no longer says free: a second free is not seen */
  }
}

/* An overflow: n bytes past the usable end of a live small or medium block, into a free
** neighbour (never into a live block of the model, nor past its superslab). */
static void op_overflow(void) {
  int bi = pick_block();
  uint8_t n = 1 + byte() % 24;
  uint8_t fill = byte();
  if (!LINKS_CHECKED) n = 16; /* a neighbour's link and state word both, nothing after them */
  if (bi < 0 || blocks[bi].large) return;
  unsigned char *end = blocks[bi].p + blocks[bi].usable;
  if (((uintptr_t)end + n - 1) / SS_SIZE != (uintptr_t)blocks[bi].p / SS_SIZE) return;
  for (int i = 0; i < NBLOCKS; i++) {
    const fz_block_t *o = &blocks[i];
    if (o->p && o->p < end + n && end < o->p + o->usable) return;
  }
  if (!hak_owns(end)) return;
  unsigned char bytes[24];
  memset(bytes, fill, sizeof bytes);
  trace("overflow", end, n, 0, blocks[bi].heap);
  raw_write(end, bytes, n);
  corrupted = true;
  ncorruptions++;
  for (int k = nstale - 1; k >= 0; k--) /* a freed neighbour's header may be gone */
    if ((unsigned char *)stale[k].p + 16 > end && (unsigned char *)stale[k].p < end + n)
      stale_remove(k);
}

/* Nothing outside hakmem's blocks was written, and (after a corruption) no live block. */
static void check_canaries(void) {
  CHECK(filled(global_canary, sizeof global_canary, CANARY), "the global canary was written");
  CHECK(filled(stack_canary, 256, CANARY), "the stack canary was written");
  if (!corrupted) return;
  for (int i = 0; i < NBLOCKS; i++) {
    const fz_block_t *b = &blocks[i];
    if (!b->p) continue;
    size_t n = b->size <= SMALL_MAX ? b->size : 256;
    CHECK(filled(b->p, n, b->fill), "live block %p (size %zu) was written", (void *)b->p,
          b->size);
  }
}

static void op_more(void) {
  switch (byte() % 7) {
    case 0: op_bad_args(); break;
    case 1: op_remote_free(); break;
    case 2: op_drain(); break;
    case 3: op_uaf_write(); break;
    case 4: op_overflow(); break; /* 0-4 as before the tagged ops: the seeds keep their meaning */
    case 5: op_tagged_alloc(); break;
    default: op_tagged_change(); break;
  }
}

static void teardown(void) {
  for (int i = 0; i < NBLOCKS; i++)
    if (blocks[i].p) check_block(&blocks[i], "teardown");
  hak_thread_flush(); /* reports found while releasing slabs come out here, not in the next input */
  for (int hi = 0; hi < NHEAPS; hi++) {
    if (!heaps[hi].h) continue;
    hak_heap_destroy(heaps[hi].h);
    heaps[hi].h = NULL;
  }
  hak_thread_flush();
  memset(blocks, 0, sizeof blocks);
  stale_clear();
  expect_no_error("teardown");
  check_canaries();
  if (getenv("HAK_FUZZ_VERBOSE"))
    fprintf(stderr, "hakmem fuzz: %u ops, %u invalid calls reported, %u corruptions made, %d "
            "corruption reports, %u tagged calls\n", opno, nexpected, ncorruptions,
            errlog.corrupt_calls, ntagged);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  unsigned char stack_buf[256];
  memset(stack_buf, CANARY, sizeof stack_buf);
  memset(global_canary, CANARY, sizeof global_canary);
  stack_canary = stack_buf;
  corrupted = false;
  ncorruptions = 0;
  hak_set_error_handler(fz_handler, NULL);
  memset(&errlog, 0, sizeof errlog);
  memset(heaps, 0, sizeof heaps);
  memset(blocks, 0, sizeof blocks);
  nstale = 0;
  nbig = 0;
  nexpected = 0;
  ntagged = 0;
  in_data = data;
  in_size = size;
  in_pos = 0;
  /* Two heaps always exist, one of them limited, so short inputs do something. */
  heaps[0].h = hak_heap_create(NULL);
  hak_heap_config_t lim = { .name = "limited", .limit_bytes = 4 * MIB };
  heaps[1] = (fz_heap_t){ .h = hak_heap_create(&lim), .limit = lim.limit_bytes };
  CHECK(heaps[0].h && heaps[1].h, "hak_heap_create failed");
  for (opno = 0; opno < MAX_OPS && in_pos < in_size; opno++) {
    switch (byte() % 16) {
      case 0: op_create(); break;
      case 1: op_alloc(0); break;
      case 2: op_alloc(1); break;
      case 3: op_realloc(); break;
      case 4: op_alloc(2); break;
      case 5: op_free(false); break;
      case 6: op_free(true); break;
      case 7: op_reset(); break;
      case 8: op_destroy(); break;
      case 9: op_set_limit(); break;
      case 10: op_stats(); break;
      case 11: op_interior(); break;
      case 12: op_foreign(); break;
      case 13: op_double_free(); break;
      case 14: op_stale(); break;
      default: op_more(); break;
    }
    check_canaries();
  }
  teardown();
  return 0;
}
