/*
** malloc_override.c: the drop-in malloc of hakmem. Built as libhakmem_override.so and loaded with
** LD_PRELOAD, it defines the C allocation functions of glibc and sends them to the default heap
** through the public API. C++ new/delete reach it through libstdc++'s operator new.
**
** What it promises:
**  - every pointer it hands out comes from hak_default_heap(), except the few handed out while
**    this file itself is initialising on the same thread (re-entry from getenv-free set-up code,
**    e.g. a libc call that allocates); those come from a small static bootstrap arena, are never
**    reused, and free() of them is a no-op;
**  - free() of a pointer hakmem never handed out does not crash: by default it is leaked and
**    counted (HAKMEM_VERBOSE=1 prints each one); double and interior frees abort as glibc does;
**  - errno: set to ENOMEM on allocation failure, never touched by posix_memalign.
** Environment (read once, at initialisation; see docs/OVERRIDE.md): HAKMEM_STATS, HAKMEM_VERBOSE,
** HAKMEM_CHECK, HAKMEM_ON_ERROR, HAKMEM_LIMIT, HAKMEM_PURGE_DELAY_MS.
*/
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hakmem.h"

#define OVR_EXPORT __attribute__((visibility("default")))
#define OVR_NOINLINE __attribute__((noinline))
#define OVR_LIKELY(x) __builtin_expect(!!(x), 1)
#define OVR_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ** {====================================================== options and state */

enum { OVR_ON_ERROR_ABORT, OVR_ON_ERROR_WARN, OVR_ON_ERROR_IGNORE };

typedef struct ovr_options_s {
  bool stats;      /* HAKMEM_STATS: print the default heap's stats at exit */
  bool verbose;    /* HAKMEM_VERBOSE: start-up line, one line per foreign free */
  bool check;      /* HAKMEM_CHECK: look every freed pointer up before freeing it */
  int on_error;    /* HAKMEM_ON_ERROR: abort (default) | warn | ignore, for double/interior frees */
  size_t limit;    /* HAKMEM_LIMIT: cap on the default heap's held bytes, 0 = none */
  bool purge_set;  /* HAKMEM_PURGE_DELAY_MS given: the default heap's purge delay */
  int32_t purge_delay_ms;
} ovr_options_t;

static ovr_options_t ovr_opt;

/* 0 = not started, 1 = a thread is initialising, 2 = ready. Readers that see 2 see ovr_opt. */
static _Atomic int ovr_state;
static __thread bool ovr_in_init;          /* this thread runs ovr_init_slow */
static _Atomic size_t ovr_foreign_frees;   /* frees of pointers hakmem never handed out */
static _Atomic size_t ovr_reported_errors; /* other errors passed over (warn/ignore) */

/* ** }====================================================== */

/* ** {====================================================== bootstrap arena */

/* Allocations made while this thread initialises the override. Bump-allocated, never freed.
** Each block is preceded by a 16-byte header holding its size. */
#define OVR_BOOT_SIZE (64 * 1024)
static _Alignas(4096) unsigned char ovr_boot[OVR_BOOT_SIZE];
static _Atomic size_t ovr_boot_used;
/* Set before the bootstrap arena hands anything out, or when HAKMEM_CHECK is on: only then
** does free look at a pointer before hak_free does (a free sees it set whenever the block came
** from the arena: the store precedes the block's publication). */
static _Atomic bool ovr_free_slow;

static inline bool ovr_is_boot(const void *p) {
  return (const unsigned char *)p >= ovr_boot && (const unsigned char *)p < ovr_boot + OVR_BOOT_SIZE;
}

static void *ovr_boot_alloc(size_t alignment, size_t size) {
  if (alignment < 16) alignment = 16;
  if (size > OVR_BOOT_SIZE) return NULL;
  size_t need = ((size + 15) & ~(size_t)15) + alignment + 16;
  size_t start = atomic_fetch_add(&ovr_boot_used, need);
  if (start + need > OVR_BOOT_SIZE) return NULL;
  atomic_store_explicit(&ovr_free_slow, true, memory_order_relaxed);
  uintptr_t base = (uintptr_t)(ovr_boot + start) + 16;
  uintptr_t p = (base + alignment - 1) & ~(uintptr_t)(alignment - 1);
  ((size_t *)p)[-1] = size;
  return (void *)p; /* static storage: already zero */
}

static inline size_t ovr_boot_size(const void *p) { return ((const size_t *)p)[-1]; }

/* ** }====================================================== */

/* ** {====================================================== initialisation and exit */

/* Formats without stdio: no allocation, safe in the destructor and the error handler. */
static void ovr_write(const char *s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = write(2, s, n);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      return;
    }
    s += w;
    n -= (size_t)w;
  }
}

static bool ovr_env_flag(const char *name) {
  const char *v = getenv(name);
  return v != NULL && *v != '\0' && strcmp(v, "0") != 0 && strcmp(v, "no") != 0 &&
         strcmp(v, "false") != 0;
}

/* "123", "64k", "512M", "2g" (binary units). Returns 0 for anything unparsable. */
static size_t ovr_parse_size(const char *v) {
  if (v == NULL) return 0;
  char *end = NULL;
  unsigned long long n = strtoull(v, &end, 10);
  if (end == v) return 0;
  switch (*end) {
    case 'k': case 'K': n <<= 10; end++; break;
    case 'm': case 'M': n <<= 20; end++; break;
    case 'g': case 'G': n <<= 30; end++; break;
    default: break;
  }
  if (*end == 'b' || *end == 'B') end++;
  return *end == '\0' ? (size_t)n : 0;
}

static void ovr_error_handler(int err, const char *msg, void *arg) {
  (void)arg;
  if (err == HAK_ERR_INVALID_POINTER) {
    /* Not ours (or already unmapped): leaking it is the only safe choice. */
    atomic_fetch_add(&ovr_foreign_frees, 1);
    if (ovr_opt.verbose) {
      ovr_write("hakmem: ignored: ");
      ovr_write(msg);
      ovr_write("\n");
    }
    return;
  }
  if (ovr_opt.on_error == OVR_ON_ERROR_ABORT) {
    ovr_write("hakmem: ");
    ovr_write(msg);
    ovr_write("\n");
    abort();
  }
  atomic_fetch_add(&ovr_reported_errors, 1);
  if (ovr_opt.on_error == OVR_ON_ERROR_WARN) {
    ovr_write("hakmem: warning: ");
    ovr_write(msg);
    ovr_write("\n");
  }
}

static void ovr_read_env(void) {
  ovr_opt.stats = ovr_env_flag("HAKMEM_STATS");
  ovr_opt.verbose = ovr_env_flag("HAKMEM_VERBOSE");
  ovr_opt.check = ovr_env_flag("HAKMEM_CHECK");
  if (ovr_opt.check) atomic_store_explicit(&ovr_free_slow, true, memory_order_relaxed);
  ovr_opt.limit = ovr_parse_size(getenv("HAKMEM_LIMIT"));
  const char *d = getenv("HAKMEM_PURGE_DELAY_MS");
  if (d != NULL && *d != '\0') {
    char *end = NULL;
    long ms = strtol(d, &end, 10);
    if (*end == '\0') {
      ovr_opt.purge_set = true;
      ovr_opt.purge_delay_ms = ms > INT32_MAX ? INT32_MAX : ms < -1 ? -1 : (int32_t)ms;
    }
  }
  const char *e = getenv("HAKMEM_ON_ERROR");
  ovr_opt.on_error = OVR_ON_ERROR_ABORT;
  if (e != NULL && strcmp(e, "warn") == 0) ovr_opt.on_error = OVR_ON_ERROR_WARN;
  if (e != NULL && strcmp(e, "ignore") == 0) ovr_opt.on_error = OVR_ON_ERROR_IGNORE;
}

static void ovr_init_slow(void) {
  if (ovr_in_init) return; /* re-entered from our own set-up: caller uses the bootstrap arena */
  int expected = 0;
  if (atomic_compare_exchange_strong(&ovr_state, &expected, 1)) {
    ovr_in_init = true;
    ovr_read_env();
    hak_set_error_handler(ovr_error_handler, NULL);
    hak_heap_t *heap = hak_default_heap();
    if (ovr_opt.limit != 0) hak_heap_set_limit(heap, ovr_opt.limit);
    if (ovr_opt.purge_set) hak_heap_set_purge_delay(heap, ovr_opt.purge_delay_ms);
    if (ovr_opt.verbose) ovr_write("hakmem: malloc override active (default heap)\n");
    ovr_in_init = false;
    atomic_store_explicit(&ovr_state, 2, memory_order_release);
    return;
  }
  /* Another thread initialises; it takes microseconds and never waits for us. */
  while (atomic_load_explicit(&ovr_state, memory_order_acquire) != 2) {
  }
}

static inline bool ovr_ready(void) {
  if (OVR_LIKELY(atomic_load_explicit(&ovr_state, memory_order_acquire) == 2)) return true;
  ovr_init_slow();
  return !ovr_in_init;
}

/* Make sure we start even if nothing allocated before the program's constructors. */
__attribute__((constructor)) static void ovr_constructor(void) { (void)ovr_ready(); }

static char *ovr_fmt_u64(char *out, const char *label, uint64_t v) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (*label) *out++ = *label++;
  while (n > 0) *out++ = digits[--n];
  return out;
}

static void ovr_print_stats(void) {
  hak_heap_stats_t s;
  hak_heap_get_stats(hak_default_heap(), &s);
  char buf[1024];
  char *o = buf;
  o = ovr_fmt_u64(o, "hakmem stats (default heap, pid ", (uint64_t)getpid());
  o = ovr_fmt_u64(o, ")\n  live_bytes        ", s.live_bytes);
  o = ovr_fmt_u64(o, "\n  live_blocks       ", s.live_blocks);
  o = ovr_fmt_u64(o, "\n  held_bytes        ", s.held_bytes);
  o = ovr_fmt_u64(o, "\n  peak_held_bytes   ", s.peak_held_bytes);
  o = ovr_fmt_u64(o, "\n  limit_bytes       ", s.limit_bytes);
  o = ovr_fmt_u64(o, "\n  alloc_count       ", s.alloc_count);
  o = ovr_fmt_u64(o, "\n  free_count        ", s.free_count);
  o = ovr_fmt_u64(o, "\n  remote_free_count ", s.remote_free_count);
  o = ovr_fmt_u64(o, "\n  superslab_count   ", s.superslab_count);
  o = ovr_fmt_u64(o, "\n  large_count       ", s.large_count);
  o = ovr_fmt_u64(o, "\n  foreign_frees     ", atomic_load(&ovr_foreign_frees));
  o = ovr_fmt_u64(o, "\n  bootstrap_bytes   ", atomic_load(&ovr_boot_used));
  o = ovr_fmt_u64(o, "\n  errors_passed     ", atomic_load(&ovr_reported_errors));
  *o++ = '\n';
  *o = '\0';
  ovr_write(buf);
}

__attribute__((destructor)) static void ovr_destructor(void) {
  if (atomic_load(&ovr_state) == 2 && ovr_opt.stats) ovr_print_stats();
}

/* ** }====================================================== */

/* ** {====================================================== the interposed functions */

static inline bool ovr_is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

static void *ovr_aligned(size_t alignment, size_t size) {
  if (OVR_UNLIKELY(!ovr_ready())) return ovr_boot_alloc(alignment, size);
  if (alignment <= 16) return hak_malloc(size);
  return hak_aligned_alloc(alignment, size);
}

/* HAKMEM_CHECK: a free of anything that is not a live block (double free, foreign or wild
** pointer) is an error handled per HAKMEM_ON_ERROR, whether or not this build of the core
** detects it by itself. */
static void ovr_check_failed(void *p) {
  static const char hex[] = "0123456789abcdef";
  char msg[96] = "free(): 0x";
  char *o = msg + strlen(msg);
  for (int sh = (int)sizeof(uintptr_t) * 8 - 4; sh >= 0; sh -= 4) *o++ = hex[((uintptr_t)p >> sh) & 15];
  strcpy(o, " is not a live block (double free or foreign pointer)");
  ovr_error_handler(HAK_ERR_DOUBLE_FREE, msg, NULL);
}

static OVR_NOINLINE void ovr_free_checked(void *p) {
  if (OVR_UNLIKELY(ovr_is_boot(p))) return;
  if (OVR_UNLIKELY(ovr_opt.check) && p != NULL && hak_usable_size(p) == 0) {
    ovr_check_failed(p);
    return;
  }
  hak_free(p);
}

/* malloc and free are hak_malloc and hak_free behind one test each (a tail call, no frame). */
static inline void ovr_free(void *p) {
  if (OVR_UNLIKELY(atomic_load_explicit(&ovr_free_slow, memory_order_relaxed)))
    ovr_free_checked(p);
  else
    hak_free(p);
}

static OVR_NOINLINE void *ovr_malloc_boot(size_t size) {
  if (ovr_ready()) return hak_malloc(size);
  return ovr_boot_alloc(16, size);
}

OVR_EXPORT void *malloc(size_t size) {
  if (OVR_LIKELY(atomic_load_explicit(&ovr_state, memory_order_acquire) == 2))
    return hak_malloc(size);
  return ovr_malloc_boot(size);
}

OVR_EXPORT void free(void *p) { ovr_free(p); }

OVR_EXPORT void *calloc(size_t count, size_t size) {
  if (OVR_UNLIKELY(!ovr_ready())) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) return NULL;
    return ovr_boot_alloc(16, total);
  }
  return hak_calloc(count, size);
}

OVR_EXPORT void *realloc(void *p, size_t size) {
  if (OVR_UNLIKELY(!ovr_ready())) {
    void *q = ovr_boot_alloc(16, size);
    if (q != NULL && p != NULL) {
      size_t old = ovr_is_boot(p) ? ovr_boot_size(p) : size;
      memcpy(q, p, old < size ? old : size);
    }
    return q;
  }
  if (OVR_UNLIKELY(ovr_is_boot(p))) {
    if (size == 0) return NULL; /* "frees" p as glibc does */
    void *q = hak_malloc(size);
    if (q != NULL) {
      size_t old = ovr_boot_size(p);
      memcpy(q, p, old < size ? old : size);
    }
    return q;
  }
  return hak_realloc(p, size);
}

OVR_EXPORT void *reallocarray(void *p, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, total);
}

OVR_EXPORT void *memalign(size_t alignment, size_t size) {
  /* glibc: any alignment is accepted, rounded up to a power of two. */
  if (!ovr_is_pow2(alignment)) {
    if (alignment > ((size_t)1 << (sizeof(size_t) * 8 - 2))) {
      errno = EINVAL;
      return NULL;
    }
    size_t a = 16;
    while (a < alignment) a <<= 1;
    alignment = a;
  }
  return ovr_aligned(alignment, size);
}

OVR_EXPORT int posix_memalign(void **out, size_t alignment, size_t size) {
  if (!ovr_is_pow2(alignment) || alignment % sizeof(void *) != 0) return EINVAL;
  int saved = errno;
  void *p = ovr_aligned(alignment, size);
  errno = saved;
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}

OVR_EXPORT void *aligned_alloc(size_t alignment, size_t size) {
  if (!ovr_is_pow2(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  return ovr_aligned(alignment, size);
}

static size_t ovr_page_size(void) {
  static _Atomic size_t cached;
  size_t ps = atomic_load_explicit(&cached, memory_order_relaxed);
  if (ps == 0) {
    long v = sysconf(_SC_PAGESIZE);
    ps = v > 0 ? (size_t)v : 4096;
    atomic_store_explicit(&cached, ps, memory_order_relaxed);
  }
  return ps;
}

OVR_EXPORT void *valloc(size_t size) { return ovr_aligned(ovr_page_size(), size); }

OVR_EXPORT void *pvalloc(size_t size) {
  size_t ps = ovr_page_size();
  size_t rounded;
  if (__builtin_add_overflow(size, ps - 1, &rounded)) {
    errno = ENOMEM;
    return NULL;
  }
  rounded &= ~(ps - 1);
  return ovr_aligned(ps, rounded == 0 ? ps : rounded);
}

OVR_EXPORT size_t malloc_usable_size(void *p) {
  if (p == NULL) return 0;
  if (OVR_UNLIKELY(ovr_is_boot(p))) return ovr_boot_size(p);
  return hak_usable_size(p);
}

OVR_EXPORT void free_sized(void *p, size_t size) {
  if (OVR_UNLIKELY(atomic_load_explicit(&ovr_free_slow, memory_order_relaxed)))
    ovr_free_checked(p);
  else
    hak_free_sized(p, size);
}

OVR_EXPORT void free_aligned_sized(void *p, size_t alignment, size_t size) {
  (void)alignment;
  (void)size;
  ovr_free(p);
}

/* glibc extras that would otherwise act on glibc's own (unused) arenas. */
OVR_EXPORT int malloc_trim(size_t pad) {
  (void)pad;
  if (!ovr_ready()) return 0;
  hak_thread_flush();
  hak_heap_collect(hak_default_heap(), true);
  return 1;
}

OVR_EXPORT void malloc_stats(void) {
  if (ovr_ready()) ovr_print_stats();
}

/* ** }====================================================== */
