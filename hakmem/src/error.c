/* error.c: the error handler and message formatting (no malloc, no stdio). */
#include "error.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hakmem.h"

static void default_handler(int err, const char *msg, void *arg) {
  (void)err;
  (void)arg;
  char line[320];
  size_t n = 0;
  const char *pre = "hakmem: ";
  size_t lp = strlen(pre), lm = strlen(msg);
  if (lm > sizeof line - lp - 2) lm = sizeof line - lp - 2;
  memcpy(line, pre, lp);
  memcpy(line + lp, msg, lm);
  n = lp + lm;
  line[n++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, n);
  (void)w;
  abort();
}

static _Atomic(hak_error_fn *) handler = default_handler;

HAK_TLS const void *hak__pending_ptr;
static HAK_TLS const char *pending_op, *pending_why;
static HAK_TLS int pending_err;

void hak__report_later(int err, const char *op, const void *p, const char *why) {
  if (hak__pending_ptr) return;
  hak__pending_ptr = p;
  pending_err = err;
  pending_op = op;
  pending_why = why;
}

void hak__report_pending_slow(void) {
  const void *p = hak__pending_ptr;
  hak__pending_ptr = NULL;
  hak__report(pending_err, pending_op, p, pending_why);
}
static _Atomic(void *) handler_arg;

void hak_set_error_handler(hak_error_fn *fn, void *arg) {
  atomic_store(&handler_arg, arg);
  atomic_store(&handler, fn ? fn : default_handler);
}

static size_t put(char *dst, size_t at, size_t cap, const char *s) {
  while (*s && at + 1 < cap) dst[at++] = *s++;
  return at;
}

void hak__report(int err, const char *op, const void *p, const char *why) {
  char msg[256], hex[2 + 16 + 1];
  uintptr_t v = (uintptr_t)p;
  int i = 0, started = 0;
  hex[i++] = '0';
  hex[i++] = 'x';
  for (int sh = 60; sh >= 0; sh -= 4) {
    unsigned d = (unsigned)(v >> sh) & 15u;
    if (d || started || sh == 0) {
      hex[i++] = "0123456789abcdef"[d];
      started = 1;
    }
  }
  hex[i] = 0;
  size_t n = 0;
  n = put(msg, n, sizeof msg, op);
  n = put(msg, n, sizeof msg, "(");
  n = put(msg, n, sizeof msg, hex);
  n = put(msg, n, sizeof msg, "): ");
  n = put(msg, n, sizeof msg, why);
  msg[n] = 0;
  hak_error_fn *fn = atomic_load(&handler);
  fn(err, msg, atomic_load(&handler_arg));
}
