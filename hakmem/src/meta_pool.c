/* meta_pool.c: a free list of HAK_META_SIZE objects over 256 KiB OS chunks. */
#include "meta_pool.h"

#include <pthread.h>
#include <string.h>

#include "internal.h"
#include "os.h"
#include "track.h"

#define CHUNK ((size_t)256 * 1024)

static pthread_mutex_t meta_lock = HAK_MUTEX_INIT;
static void *free_list;
static char *bump, *bump_end;

void *hak__meta_alloc(void) {
  void *p = NULL;
  pthread_mutex_lock(&meta_lock);
  if (free_list) {
    p = free_list;
    free_list = *(void **)p;
  } else {
    if (bump == bump_end) {
      char *c = hak__os_map_aligned(CHUNK, 4096);
      if (c) {
        bump = c;
        bump_end = c + CHUNK;
      }
    }
    if (bump != bump_end) {
      p = bump;
      bump += HAK_META_SIZE;
    }
  }
  pthread_mutex_unlock(&meta_lock);
  if (p) {
    HAK_TRACK_OPEN(p, HAK_META_SIZE);
    memset(p, 0, HAK_META_SIZE);
  }
  return p;
}

void hak__meta_free(void *p) {
  if (!p) return;
  pthread_mutex_lock(&meta_lock);
  *(void **)p = free_list;
  free_list = p;
  /* Tool builds: a use of a freed heap, cache or TLS page is reported (the link stays open). */
  HAK_TRACK_CLOSE((char *)p + sizeof(void *), HAK_META_SIZE - sizeof(void *));
  pthread_mutex_unlock(&meta_lock);
}

void hak__meta_lock_all(void) { pthread_mutex_lock(&meta_lock); }
void hak__meta_unlock_all(void) { pthread_mutex_unlock(&meta_lock); }
void hak__meta_reinit_child(void) { hak__mutex_init(&meta_lock); }
