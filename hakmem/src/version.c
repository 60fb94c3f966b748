/* version.c: the library's version, for programs to compare with the header they built with. */
#include "hakmem.h"

int hak_version(void) { return HAKMEM_VERSION; }
