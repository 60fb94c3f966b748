/*
** error.h: the error box. Formats a one-line message naming the pointer and the reason and
** passes it to the registered handler. Never allocates; safe to call with hakmem locks free.
*/
#ifndef HAK_ERROR_H
#define HAK_ERROR_H

#include "internal.h"

void hak__report(int err, const char *op, const void *p, const char *why);
/* For code holding a lock: remember the first error of this thread; hak__report_pending()
** reports it once the lock is released. */
void hak__report_later(int err, const char *op, const void *p, const char *why);
void hak__report_pending_slow(void);
extern HAK_HIDDEN HAK_TLS const void *hak__pending_ptr;
static inline void hak__report_pending(void) {
  if (__builtin_expect(hak__pending_ptr != 0, 0)) hak__report_pending_slow();
}

#endif
