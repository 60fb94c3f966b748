/*
** hak_owns: true for any address inside memory hakmem holds (small, medium and large blocks,
** live or freed), false for memory it never handed out and for memory it gave back to the OS.
*/
#include <criterion/criterion.h>
#include <stdlib.h>

#include "test_util.h"

TestSuite(owns, .timeout = 30);

static int static_data[16];

Test(owns, blocks_of_every_kind_are_owned_live_and_freed) {
  hak_heap_t *h = hak_heap_create(NULL);
  const size_t sizes[] = {1, 100, 4000, 30000, 100000, HT_MEDIUM_MAX, HT_MEDIUM_MAX + 1, 5 * HT_MIB};
  void *p[8];
  for (int i = 0; i < 8; i++) {
    p[i] = hak_heap_malloc(h, sizes[i]);
    cr_assert(hak_owns(p[i]), "size %zu", sizes[i]);
    cr_assert(hak_owns((char *)p[i] + sizes[i] - 1), "last byte of size %zu", sizes[i]);
  }
  for (int i = 0; i < 8; i++) hak_free(p[i]);
  cr_expect(hak_owns(p[0]), "a freed small block stays in its superslab");
  hak_heap_destroy(h);
}

Test(owns, memory_hakmem_never_handed_out_is_not_owned) {
  int on_stack;
  void *libc_small = malloc(64), *libc_large = malloc(4 * HT_MIB);
  cr_expect_not(hak_owns(NULL));
  cr_expect_not(hak_owns(&on_stack));
  cr_expect_not(hak_owns(libc_small));
  cr_expect_not(hak_owns(libc_large));
  cr_expect_not(hak_owns(static_data));
  cr_expect_not(hak_owns((void *)(uintptr_t)1));
  cr_expect_not(hak_owns((void *)~(uintptr_t)0));
  free(libc_small);
  free(libc_large);
}

Test(owns, memory_given_back_to_the_os_is_not_owned) {
  hak_heap_t *h = hak_heap_create(NULL);
  void *small = hak_heap_malloc(h, 64), *large = hak_heap_malloc(h, 20 * HT_MIB);
  hak_heap_destroy(h);
  hak_heap_t *other = hak_heap_create(NULL);
  hak_heap_collect(other, true); /* empties the process-wide caches of mappings */
  cr_expect_not(hak_owns(small));
  cr_expect_not(hak_owns(large));
  hak_heap_destroy(other);
}
