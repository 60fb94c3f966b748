/*
** lua_bench.c: Lua workloads on hak_lua_alloc, glibc (luaL_newstate) and mimalloc, side by side.
**
**   ./bazelw run -c opt //bench:lua -- [--rounds N] [--scale X] [--only WORKLOAD]
**
** Each run is a fresh child process (one binary per allocator: mimalloc linked in replaces
** malloc process-wide), so its peak RSS (wait4's ru_maxrss) is its own. Rounds interleave the
** allocators, rotating their order; the report gives medians and ratios from this one run.
** Every allocator must print the same checksum for a workload, or the run fails. Besides the
** five scripts: two of them on two threads at once (a state each), and 10k short states.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { ALLOCS = 3, MAX_ROUNDS = 64 };

static const char *const alloc_names[ALLOCS] = {"hakmem", "glibc", "mimalloc"};
static const char *const alloc_bins[ALLOCS] = {"lua_bench_hak", "lua_bench_glibc",
                                               "lua_bench_mimalloc"};
/* A run: a script in one state, the same script in a state per thread on THREADS threads at
** once, or STATES short states in turn (no script). */
typedef struct {
  const char *name, *script;
  const char *threads, *states;
} workload_t;

static const workload_t workloads[] = {
    {"binary_trees", "binary_trees", NULL, NULL},
    {"strings", "strings", NULL, NULL},
    {"table_churn", "table_churn", NULL, NULL},
    {"json", "json", NULL, NULL},
    {"closures_coroutines", "closures_coroutines", NULL, NULL},
    {"binary_trees_2_threads", "binary_trees", "2", NULL},
    {"table_churn_2_threads", "table_churn", "2", NULL},
    {"10k_short_states", NULL, NULL, "10000"},
};
#define NWORK (sizeof workloads / sizeof *workloads)

typedef struct {
  double ms[MAX_ROUNDS];
  double rss_mb[MAX_ROUNDS];
  int n;
  char checksum[256];
} series_t;

static series_t results[NWORK][ALLOCS];
static char dir[4096];

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(const double *v, int n) {
  double s[MAX_ROUNDS];
  memcpy(s, v, (size_t)n * sizeof *v);
  qsort(s, (size_t)n, sizeof *s, cmp_double);
  return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Runs one child; fills its time, peak RSS and checksum (first output line). */
static int run_child(int w, int a, const char *scale, double *ms, double *rss_mb, char *sum,
                     size_t sumlen) {
  char bin[4200], script[4200];
  snprintf(bin, sizeof bin, "%s/%s", dir, alloc_bins[a]);
  const workload_t *wl = &workloads[w];
  if (wl->script) snprintf(script, sizeof script, "%s/workloads/%s.lua", dir, wl->script);
  int fd[2];
  if (pipe(fd) != 0) return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    dup2(fd[1], 1);
    close(fd[0]);
    close(fd[1]);
    if (wl->states) execl(bin, bin, "--states", wl->states, (char *)NULL);
    else if (wl->threads) execl(bin, bin, script, scale, wl->threads, (char *)NULL);
    else execl(bin, bin, script, scale, (char *)NULL);
    fprintf(stderr, "lua_bench: cannot run %s: %s\n", bin, strerror(errno));
    _exit(127);
  }
  close(fd[1]);
  char out[4096];
  size_t n = 0;
  ssize_t r;
  while ((r = read(fd[0], out + n, sizeof out - 1 - n)) > 0) n += (size_t)r;
  out[n] = '\0';
  close(fd[0]);
  int status;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "lua_bench: %s %s failed:\n%s\n", alloc_names[a], workloads[w].name, out);
    return -1;
  }
  char *ns = strstr(out, "ns ");
  if (ns == NULL) return -1;
  *ms = strtod(ns + 3, NULL) / 1e6;
  *rss_mb = ru.ru_maxrss / 1024.0;
  size_t line = strcspn(out, "\n");
  snprintf(sum, sumlen, "%.*s", (int)(line < sumlen - 1 ? line : sumlen - 1), out);
  return 0;
}

static void print_machine(void) {
  struct utsname u;
  uname(&u);
  char model[256] = "unknown CPU";
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f != NULL) {
    char line[512];
    while (fgets(line, sizeof line, f))
      if (strncmp(line, "model name", 10) == 0) {
        char *c = strchr(line, ':');
        if (c) snprintf(model, sizeof model, "%s", c + 2);
        model[strcspn(model, "\n")] = '\0';
        break;
      }
    fclose(f);
  }
  time_t now = time(NULL);
  char date[64];
  strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
  double load[3] = {0};
  getloadavg(load, 3);
  printf("Machine: %s, %ld CPUs, %s %s; %s; load average at start %.2f\n\n", model,
         sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release, date, load[0]);
}

/* The runfiles holding the children and workloads: bazel run's working directory, or beside
** the binary when it is started directly from bazel-bin. */
static int find_dir(const char *argv0) {
  const char *rf = getenv("RUNFILES_DIR");
  char cand[3][4096];
  snprintf(cand[0], sizeof cand[0], "bench/lua");
  snprintf(cand[1], sizeof cand[1], "%s/hakmem/bench/lua", rf != NULL ? rf : ".");
  snprintf(cand[2], sizeof cand[2], "%s.runfiles/hakmem/bench/lua", argv0);
  for (int i = 0; i < 3; i++) {
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/%s", cand[i], alloc_bins[0]);
    if (access(probe, X_OK) == 0) {
      snprintf(dir, sizeof dir, "%s", cand[i]);
      return 1;
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  int rounds = 5;
  const char *scale = "1";
  const char *only = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
      rounds = atoi(argv[++i]);
    else if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc)
      scale = argv[++i];
    else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
      only = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--rounds N] [--scale X] [--only WORKLOAD]\n", argv[0]);
      return 2;
    }
  }
  if (rounds < 1 || rounds > MAX_ROUNDS) rounds = 5;
  if (!find_dir(argv[0])) {
    fprintf(stderr, "lua_bench: cannot find the allocator binaries; run it with bazel run\n");
    return 1;
  }

  print_machine();
  printf("Lua 5.4 workloads, scale %s, %d rounds, allocators interleaved (order rotated per "
         "round), one process per run; medians.\n\n", scale, rounds);
  for (int r = 0; r < rounds; r++) {
    for (size_t w = 0; w < NWORK; w++) {
      if (only != NULL && strcmp(only, workloads[w].name) != 0) continue;
      for (int k = 0; k < ALLOCS; k++) {
        int a = (k + r) % ALLOCS;
        series_t *s = &results[w][a];
        char sum[256];
        if (run_child((int)w, a, scale, &s->ms[s->n], &s->rss_mb[s->n], sum, sizeof sum) != 0)
          return 1;
        if (s->n == 0 && a == 0) snprintf(s->checksum, sizeof s->checksum, "%s", sum);
        if (strcmp(sum, results[w][0].checksum) != 0 && results[w][0].checksum[0] != '\0') {
          fprintf(stderr, "lua_bench: %s on %s printed \"%s\", hakmem \"%s\"\n", workloads[w].name,
                  alloc_names[a], sum, results[w][0].checksum);
          return 1;
        }
        s->n++;
      }
    }
    fprintf(stderr, "round %d/%d done\n", r + 1, rounds);
  }

  printf("| workload | hakmem ms | glibc ms | mimalloc ms | glibc/hakmem | mimalloc/hakmem | "
         "hakmem RSS MiB | glibc RSS MiB | mimalloc RSS MiB | hakmem RSS / best |\n");
  printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  int misses = 0;
  for (size_t w = 0; w < NWORK; w++) {
    if (results[w][0].n == 0) continue;
    double t[ALLOCS], m[ALLOCS];
    for (int a = 0; a < ALLOCS; a++) {
      t[a] = median(results[w][a].ms, results[w][a].n);
      m[a] = median(results[w][a].rss_mb, results[w][a].n);
    }
    double best = m[1] < m[2] ? m[1] : m[2];
    if (m[0] < best) best = m[0];
    double vs_glibc = t[1] / t[0], vs_mi = t[2] / t[0], rss = m[0] / best;
    misses += (vs_glibc < 1.2) + (vs_mi < 1.0) + (rss > 1.1);
    printf("| %s | %.1f | %.1f | %.1f | %.2fx%s | %.2fx%s | %.1f | %.1f | %.1f | %.2f%s |\n",
           workloads[w].name, t[0], t[1], t[2], vs_glibc, vs_glibc < 1.2 ? " (miss)" : "", vs_mi,
           vs_mi < 1.0 ? " (miss)" : "", m[0], m[1], m[2], rss, rss > 1.1 ? " (miss)" : "");
  }
  printf("\nRatios above 1 mean hakmem is faster. Targets: glibc/hakmem >= 1.2, "
         "mimalloc/hakmem >= 1.0, hakmem RSS / best <= 1.1. Misses: %d.\n", misses);
  return 0;
}
