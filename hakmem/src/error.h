/*
** error.h: the error box. Formats a one-line message naming the pointer and the reason and
** passes it to the registered handler. Never allocates; safe to call with hakmem locks free.
*/
#ifndef HAK_ERROR_H
#define HAK_ERROR_H

void hak__report(int err, const char *op, const void *p, const char *why);

#endif
