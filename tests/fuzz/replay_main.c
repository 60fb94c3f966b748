/*
** Corpus replay without libFuzzer: feeds every file under the given directories (or the given
** files) to LLVMFuzzerTestOneInput, so the seed corpus and every saved crash input run as a
** plain test in any build (gcc, ASan, secure). README* and dot files are skipped.
*/
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int nrun, nfail;

static void run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    nfail++;
    return;
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
  size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
  fclose(f);
  if (!buf || got != (size_t)n) {
    fprintf(stderr, "cannot read %s\n", path);
    free(buf);
    nfail++;
    return;
  }
  LLVMFuzzerTestOneInput(buf, got); /* aborts on a failed check */
  free(buf);
  nrun++;
}

static void run_path(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "missing %s\n", path);
    nfail++;
    return;
  }
  if (!S_ISDIR(st.st_mode)) {
    run_file(path);
    return;
  }
  struct dirent **names;
  int n = scandir(path, &names, NULL, alphasort);
  for (int i = 0; i < n; i++) {
    const char *d = names[i]->d_name;
    if (d[0] != '.' && strncmp(d, "README", 6) != 0) {
      char sub[4096];
      snprintf(sub, sizeof sub, "%s/%s", path, d);
      run_path(sub);
    }
    free(names[i]);
  }
  free(names);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) run_path(argv[i]);
  printf("%d passed, %d failed\n", nrun, nfail);
  return nfail || nrun == 0 ? 1 : 0;
}
