/* meta_pool.c: a free list per object size over 256 KiB OS chunks, carved by one bump pointer
** (both sizes are multiples of 128, so every object stays cache-line aligned). */
#include "meta_pool.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "internal.h"
#include "os.h"
#include "track.h"

#define CHUNK ((size_t)256 * 1024)
_Static_assert(HAK_META_SIZE % 128 == 0 && HAK_META_REC_SIZE % 128 == 0, "sizes keep alignment");

static pthread_mutex_t meta_lock = HAK_MUTEX_INIT;
static void *free_list, *rec_free_list;
static char *bump, *bump_end;

static void *take(void **list, size_t size) {
  void *p = NULL;
  pthread_mutex_lock(&meta_lock);
  if (*list) {
    p = *list;
    *list = *(void **)p;
  } else {
    if ((size_t)(bump_end - bump) < size) {
      /* The rest of the old chunk (less than one object) is left unused. */
      char *c = hak__os_map_aligned(CHUNK, 4096);
      if (c) {
        bump = c;
        bump_end = c + CHUNK;
      }
    }
    if ((size_t)(bump_end - bump) >= size) {
      p = bump;
      bump += size;
    }
  }
  pthread_mutex_unlock(&meta_lock);
  if (p) {
    HAK_TRACK_OPEN(p, size);
    memset(p, 0, size);
  } else {
    errno = ENOMEM;
  }
  return p;
}

static void give(void **list, void *p, size_t size) {
  (void)size; /* used by tool builds only */
  if (!p) return;
  pthread_mutex_lock(&meta_lock);
  *(void **)p = *list;
  *list = p;
  /* Tool builds: a use of a freed heap, cache, TLS page or record is reported (the link stays
  ** open). */
  HAK_TRACK_CLOSE((char *)p + sizeof(void *), size - sizeof(void *));
  pthread_mutex_unlock(&meta_lock);
}

void *hak__meta_alloc(void) { return take(&free_list, HAK_META_SIZE); }
void hak__meta_free(void *p) { give(&free_list, p, HAK_META_SIZE); }
void *hak__meta_rec_alloc(void) { return take(&rec_free_list, HAK_META_REC_SIZE); }
void hak__meta_rec_free(void *p) { give(&rec_free_list, p, HAK_META_REC_SIZE); }

void hak__meta_lock_all(void) { pthread_mutex_lock(&meta_lock); }
void hak__meta_unlock_all(void) { pthread_mutex_unlock(&meta_lock); }
void hak__meta_reinit_child(void) { hak__mutex_init(&meta_lock); }
