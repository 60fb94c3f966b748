/* block.c: the keyed hash behind the heap secrets and the slab keys; secure builds' slab keys. */
#include "block.h"

#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND(v0, v1, v2, v3)                                                        \
  do {                                                                                  \
    v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                           \
    v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                              \
    v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                              \
    v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                           \
  } while (0)

/* SipHash-2-4 (Aumasson and Bernstein) of the 16-byte message m0, m1. */
uint64_t hak__keyed_hash(const uint64_t key[2], uint64_t m0, uint64_t m1) {
  uint64_t v0 = key[0] ^ 0x736f6d6570736575ull, v1 = key[1] ^ 0x646f72616e646f6dull;
  uint64_t v2 = key[0] ^ 0x6c7967656e657261ull, v3 = key[1] ^ 0x7465646279746573ull;
  const uint64_t m[3] = { m0, m1, (uint64_t)16 << 56 };
  for (int i = 0; i < 3; i++) {
    v3 ^= m[i];
    SIPROUND(v0, v1, v2, v3);
    SIPROUND(v0, v1, v2, v3);
    v0 ^= m[i];
  }
  v2 ^= 0xff;
  for (int i = 0; i < 4; i++) SIPROUND(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

#ifdef HAK_SECURE
/* One hash per assignment (a heap created per request assigns a slab per class it uses): the
** second key is the first through a fixed bijection, so a slab's keys are 64 secret bits. */
void hak__blk_new_keys(hak_heap_t *h, hak__slab_t *s) {
  uint64_t k = hak__keyed_hash(h->secret, (uintptr_t)s, h->key_gen++);
  s->key[0] = k | 1;
  k = (k ^ (k >> 31)) * 0xbf58476d1ce4e5b9ull;
  s->key[1] = (k ^ (k >> 29)) | 1;
}
#endif
