/*
** mix_user_into_list.c: must NOT compile. Pushes a user pointer (void *, or the typed user
** pointer) onto a thread-cache list, which only takes block bases. The test passes when the
** compiler rejects each variant (selected with -DVARIANT=n) and accepts the correct code.
*/
#include "ptr_bridge.h"
#include "tcache.h"

void push_variant(hak__slab_t *bin, void *user) {
#if VARIANT == 1
  hak__slab_push(bin, user);                   /* raw user pointer as a base */
#elif VARIANT == 2
  hak__slab_push(bin, hak__uptr_from(user));   /* typed user pointer as a base */
#elif VARIANT == 3
  hak__base_t b = user;                       /* implicit conversion to a base */
  hak__slab_push(bin, b);
#else
  hak__slab_push(bin, (hak__base_t){ (hak__block_t *)user }); /* control: explicit base */
#endif
}
