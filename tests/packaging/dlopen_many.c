/*
** dlopen_many.c: loads an installed libhakmem.so into 8 fresh link namespaces (dlmopen with
** LM_ID_NEWLM) and uses a heap in each through dlsym. Each namespace loads its own libc, whose
** initial-exec TLS takes static TLS space; glibc reserves that space for a few namespaces
** (glibc.rtld.nns, default 4) plus 512 bytes (glibc.rtld.optional_static_tls). A libhakmem.so
** built with initial-exec TLS takes some of it in each namespace and soon finds none left
** ("cannot allocate memory in static TLS block", at the fifth namespace with glibc 2.36); one
** built with HAK_TLS_DYNAMIC takes none and loads in every namespace where libc still loads
** (11 with glibc 2.36's defaults). Built and run by .ci/cmake_check.sh on the installed copy:
**   dlopen_many /prefix/lib/libhakmem.so
** Exit 0 when all namespaces work; 1 with the failing namespace and dlerror() otherwise.
*/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <hakmem.h>

#define NAMESPACES 8

typedef struct api_s {
  int (*version)(void);
  hak_heap_t *(*heap_create)(const hak_heap_config_t *);
  void *(*heap_malloc)(hak_heap_t *, size_t);
  void (*heap_get_stats)(hak_heap_t *, hak_heap_stats_t *);
  size_t (*usable_size)(const void *);
  void (*free)(void *);
  void (*heap_destroy)(hak_heap_t *);
} api_t;

static int fail(int ns, const char *what, const char *detail) {
  printf("namespace %d: %s%s%s\n", ns, what, detail ? ": " : "", detail ? detail : "");
  return 1;
}

static void *sym(void *lib, const char *name) {
  void *p = dlsym(lib, name);
  if (p == NULL) printf("dlsym %s: %s\n", name, dlerror());
  return p;
}

static int load(void *lib, api_t *api) {
  *(void **)&api->version = sym(lib, "hak_version");
  *(void **)&api->heap_create = sym(lib, "hak_heap_create");
  *(void **)&api->heap_malloc = sym(lib, "hak_heap_malloc");
  *(void **)&api->heap_get_stats = sym(lib, "hak_heap_get_stats");
  *(void **)&api->usable_size = sym(lib, "hak_usable_size");
  *(void **)&api->free = sym(lib, "hak_free");
  *(void **)&api->heap_destroy = sym(lib, "hak_heap_destroy");
  return api->version && api->heap_create && api->heap_malloc && api->heap_get_stats &&
         api->usable_size && api->free && api->heap_destroy;
}

/* One heap in one namespace: a block, its stats, its free, the heap's destruction. */
static int use(int ns, const api_t *api) {
  if (api->version() != HAKMEM_VERSION) return fail(ns, "hak_version differs from hakmem.h", 0);
  hak_heap_t *heap = api->heap_create(&(hak_heap_config_t){.name = "dlopen"});
  if (heap == NULL) return fail(ns, "hak_heap_create returned NULL", 0);
  char *p = api->heap_malloc(heap, 100);
  if (p == NULL) return fail(ns, "hak_heap_malloc returned NULL", 0);
  memset(p, 0xab, 100);
  size_t usable = api->usable_size(p);
  hak_heap_stats_t st;
  api->heap_get_stats(heap, &st);
  if (usable < 100 || st.live_blocks != 1 || st.live_bytes != usable)
    return fail(ns, "wrong stats after one hak_heap_malloc", 0);
  api->free(p);
  api->heap_get_stats(heap, &st);
  if (st.live_blocks != 0 || st.live_bytes != 0) return fail(ns, "wrong stats after hak_free", 0);
  api->heap_destroy(heap);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s /path/to/libhakmem.so\n", argv[0]);
    return 2;
  }
  for (int ns = 0; ns < NAMESPACES; ns++) {
    void *lib = dlmopen(LM_ID_NEWLM, argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) return fail(ns, "dlmopen", dlerror());
    api_t api;
    if (!load(lib, &api)) return fail(ns, "missing symbols", 0);
    if (use(ns, &api) != 0) return 1;
  }
  printf("dlopen_many: %d namespaces ok\n", NAMESPACES);
  return 0;
}
