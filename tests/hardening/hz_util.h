/*
** Helpers shared by the hardening tests (plain programs, so they also run under TSan): check
** counting with a final "N passed, N failed" line, a scale factor for short sanitizer runs,
** RSS and mapped size from /proc, a thread-safe recording error handler, byte patterns.
*/
#ifndef HZ_UTIL_H
#define HZ_UTIL_H

#include <hakmem.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HZ_KIB ((size_t)1 << 10)
#define HZ_MIB ((size_t)1 << 20)

#if defined(__SANITIZE_THREAD__)
#define HZ_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HZ_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define HZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HZ_ASAN 1
#endif
#endif

/* Work multiplier: HAK_TEST_SCALE if set (e.g. 0.1), else 1, or 0.1 under TSan. */
double hz_scale(void);
/* n scaled, at least lo. */
long hz_scaled(long n, long lo);

/* Record one check; prints the failure. Returns ok. */
bool hz_check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "N passed, N failed"; the exit status (0 when something passed and nothing failed). */
int hz_finish(void);

size_t hz_rss_bytes(void);
size_t hz_vm_bytes(void);
/* RSS and address-space figures mean little under sanitizers (shadow, quarantine). */
bool hz_rss_reliable(void);

/* Recording error handler: counts reports (any thread) and keeps the last kind and message. */
void hz_errors_install(void);
long hz_errors(void);
int hz_last_err(void);
const char *hz_last_msg(void);
/* Reports since the previous call. */
long hz_errors_take(void);

/* xorshift64 */
static inline uint64_t hz_rand(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* The byte a block of this address and size is filled with. */
static inline uint8_t hz_seed(const void *p, size_t size) {
  uintptr_t x = (uintptr_t)p >> 4;
  return (uint8_t)(x ^ (x >> 8) ^ (x >> 16) ^ size ^ 0x5A);
}
bool hz_filled(const void *p, size_t n, uint8_t v);

#endif
