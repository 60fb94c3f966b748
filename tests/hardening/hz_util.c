/* Helpers shared by the hardening tests (see hz_util.h). */
#include "hz_util.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_long npass, nfail;

double hz_scale(void) {
  const char *s = getenv("HAK_TEST_SCALE");
  if (s && *s) {
    double v = atof(s);
    return v > 0 ? v : 1;
  }
#ifdef HZ_TSAN
  return 0.1;
#else
  return 1;
#endif
}

long hz_scaled(long n, long lo) {
  long v = (long)(n * hz_scale());
  return v < lo ? lo : v;
}

bool hz_check(bool ok, const char *fmt, ...) {
  if (ok) {
    atomic_fetch_add(&npass, 1);
    return true;
  }
  atomic_fetch_add(&nfail, 1);
  va_list ap;
  va_start(ap, fmt);
  fprintf(stdout, "FAIL: ");
  vfprintf(stdout, fmt, ap);
  fprintf(stdout, "\n");
  fflush(stdout);
  va_end(ap);
  return false;
}

int hz_finish(void) {
  long p = atomic_load(&npass), f = atomic_load(&nfail);
  printf("%ld passed, %ld failed\n", p, f);
  if (p == 0 && f == 0) printf("FAIL: nothing was checked\n");
  fflush(stdout);
  return f || p == 0 ? 1 : 0;
}

static size_t statm_field(int i) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long v[2] = { 0, 0 };
  if (!f) return 0;
  if (fscanf(f, "%lu %lu", &v[0], &v[1]) != 2) v[0] = v[1] = 0;
  fclose(f);
  return (size_t)v[i] * (size_t)sysconf(_SC_PAGESIZE);
}

size_t hz_rss_bytes(void) { return statm_field(1); }
size_t hz_vm_bytes(void) { return statm_field(0); }

bool hz_rss_reliable(void) {
#if defined(HZ_ASAN) || defined(HZ_TSAN)
  return false;
#else
  return true;
#endif
}

static atomic_long nerr, ntaken;
static atomic_int last_err;
static char last_msg[256];

static void record(int err, const char *msg, void *arg) {
  (void)arg;
  atomic_store(&last_err, err);
  snprintf(last_msg, sizeof last_msg, "%s", msg ? msg : "(null)");
  atomic_fetch_add(&nerr, 1);
}

void hz_errors_install(void) { hak_set_error_handler(record, NULL); }
long hz_errors(void) { return atomic_load(&nerr); }
int hz_last_err(void) { return atomic_load(&last_err); }
const char *hz_last_msg(void) { return last_msg; }

long hz_errors_take(void) {
  long now = atomic_load(&nerr);
  long before = atomic_exchange(&ntaken, now);
  return now - before;
}

bool hz_filled(const void *p, size_t n, uint8_t v) {
  const unsigned char *b = p;
  if (n == 0) return true;
  return b[0] == v && memcmp(b, b + 1, n - 1) == 0;
}
