/*
** run.c: runner of the core benchmarks (issue 2). For each workload it runs bench_hakmem,
** bench_mimalloc and bench_glibc interleaved (A B C A B C ...) for R rounds, one process per
** run, takes the throughput from the child's output line and the peak RSS from wait4, and prints
** medians, ratios hakmem/mimalloc and hakmem/glibc, and PASS/MISS against the targets.
** The RSS-base row (information only) subtracts each binary's RSS when it runs no workload.
**
**   ./bazelw run -c opt //bench:core -- [--rounds R] [--seconds S] [--workloads a,b] [--cpu] [-v]
**                                       [--strict]
** --cpu divides by the working threads' CPU time instead of wall time (not for prodcons): steadier
** when other processes share the cores.
**
** Exit status: 0, or 1 if a run failed (or, with --strict, if a target was missed).
*/
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { HAK, MI, GLIBC, NALLOC };
static const char *const alloc_names[NALLOC] = {"hakmem", "mimalloc", "glibc"};

/* Targets of issue 9 (core v2): throughput ratio minimums (0 = none), RSS ratio maximum vs
** mimalloc (issue 2's glibc minimum for request stays). */
typedef struct {
  const char *name;
  const char *unit; /* throughput unit shown */
  double scale;     /* ops/s divided by this */
  double min_vs_mi, min_vs_glibc;
  double max_faults_vs_mi; /* page faults per op, hakmem / mimalloc; 0 = not reported */
} workload_t;

static const workload_t workloads[] = {
  {"random", "Mops/s", 1e6, 1.1, 0, 0},
  {"request", "kreq/s", 1e3, 2.0, 3.0, 0},
  {"prodcons", "Mops/s", 1e6, 2.0, 0, 0},
  {"twoheaps", "Mops/s", 1e6, 1.1, 0, 0},
  {"medium", "kops/s", 1e3, 1.0, 0, 1.5}, /* issue 10 */
};
#define NWORKLOADS ((int)(sizeof workloads / sizeof workloads[0]))
#define RSS_MAX_VS_MI 1.1
#define MAX_ROUNDS 99

static int verbose;

/* ** {======================================================
** Finding the benchmark binaries (runfiles under bazel run, or beside this binary).
** ======================================================= */
static char bin_dir[4096];

static int dir_has_bins(const char *dir) {
  char p[4200];
  for (int a = 0; a < NALLOC; a++) {
    snprintf(p, sizeof p, "%.4000s/bench_%s", dir, alloc_names[a]);
    if (access(p, X_OK) != 0) return 0;
  }
  return 1;
}

static int find_bins(const char *argv0) {
  char cand[4][4096];
  int n = 0;
  const char *rf = getenv("RUNFILES_DIR");
  if (rf) snprintf(cand[n++], sizeof cand[0], "%s/hakmem/bench/core", rf);
  snprintf(cand[n++], sizeof cand[0], "bench/core"); /* bazel run: cwd is the runfiles root */
  snprintf(cand[n++], sizeof cand[0], "%s.runfiles/hakmem/bench/core", argv0);
  snprintf(cand[n], sizeof cand[0], "%s", argv0);
  char *slash = strrchr(cand[n], '/');
  if (slash) *slash = '\0'; else snprintf(cand[n], sizeof cand[0], ".");
  n++;
  for (int i = 0; i < n; i++) {
    if (dir_has_bins(cand[i])) {
      snprintf(bin_dir, sizeof bin_dir, "%.4000s", cand[i]);
      return 0;
    }
  }
  fprintf(stderr, "run: cannot find bench_hakmem, bench_mimalloc, bench_glibc (looked in");
  for (int i = 0; i < n; i++) fprintf(stderr, " %s", cand[i]);
  fprintf(stderr, "); build with ./bazelw run -c opt //bench:core\n");
  return -1;
}
/* }====================================================== */

/* ** {======================================================
** One run: fork/exec, read one line, wait4 for the peak RSS; kill it if it hangs.
** ======================================================= */
typedef struct {
  int ok;
  double ops_per_s;
  double ops_per_cpu_s;
  long rss_kib; /* ru_maxrss from wait4 */
  double faults_per_op; /* page faults of the timed loop (loop_faults=, else the whole
                           process's from wait4) over the ops reported */
  long hwm_kib; /* VmHWM reported by the child, when it does (workload none) */
} result_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static result_t run_one(int alloc, const char *workload, double seconds) {
  result_t res = {0};
  char path[4200], secs[32];
  snprintf(path, sizeof path, "%.4000s/bench_%s", bin_dir, alloc_names[alloc]);
  snprintf(secs, sizeof secs, "%g", seconds);
  int fd[2];
  if (pipe(fd) != 0) return res;
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return res;
  if (pid == 0) {
    dup2(fd[1], 1);
    close(fd[0]);
    close(fd[1]);
    execl(path, path, "--workload", workload, "--seconds", secs, (char *)NULL);
    _exit(127);
  }
  close(fd[1]);
  char out[1024];
  size_t len = 0;
  double deadline = now_s() + seconds * 10 + 20;
  int killed = 0;
  for (;;) {
    int left_ms = (int)((deadline - now_s()) * 1000);
    if (left_ms <= 0) {
      kill(pid, SIGKILL);
      killed = 1;
      break;
    }
    struct pollfd p = {.fd = fd[0], .events = POLLIN};
    int r = poll(&p, 1, left_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t got = read(fd[0], out + len, sizeof out - 1 - len);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    len += (size_t)got;
    if (len == sizeof out - 1) break;
  }
  out[len] = '\0';
  close(fd[0]);
  int status;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {}
  const char *o = strstr(out, "ops_per_s=");
  if (killed) {
    fprintf(stderr, "run: %s %s timed out, killed\n", alloc_names[alloc], workload);
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || o == NULL || ru.ru_maxrss <= 0) {
    if (WIFSIGNALED(status))
      fprintf(stderr, "run: %s %s died of signal %d\n", alloc_names[alloc], workload, WTERMSIG(status));
    else
      fprintf(stderr, "run: %s %s failed (exit %d)\n", alloc_names[alloc], workload,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  } else {
    res.ok = 1;
    res.ops_per_s = atof(o + strlen("ops_per_s="));
    const char *c = strstr(out, "ops_per_cpu_s=");
    res.ops_per_cpu_s = c ? atof(c + strlen("ops_per_cpu_s=")) : 0;
    const char *hw = strstr(out, "hwm_kib=");
    res.hwm_kib = hw ? atol(hw + strlen("hwm_kib=")) : 0;
    res.rss_kib = ru.ru_maxrss;
    const char *n = strstr(out, " ops=");
    double nops = n ? atof(n + strlen(" ops=")) : 0;
    const char *lf = strstr(out, "loop_faults=");
    double faults = lf && atol(lf + strlen("loop_faults=")) >= 0
                        ? (double)atol(lf + strlen("loop_faults="))
                        : (double)(ru.ru_minflt + ru.ru_majflt);
    res.faults_per_op = nops > 0 ? faults / nops : 0;
  }
  if (verbose) fprintf(stderr, "  %s", len ? out : "(no output)\n");
  return res;
}
/* }====================================================== */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median of the successful runs; 0 if none. */
static double median(const double *v, int n) {
  double s[MAX_ROUNDS];
  int m = 0;
  for (int i = 0; i < n; i++) if (v[i] > 0) s[m++] = v[i];
  if (m == 0) return 0;
  qsort(s, (size_t)m, sizeof s[0], cmp_double);
  return m % 2 ? s[m / 2] : (s[m / 2 - 1] + s[m / 2]) / 2;
}

static void print_machine(int rounds, double seconds) {
  struct utsname u;
  uname(&u);
  char model[256] = "?";
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f) {
    char line[512];
    while (fgets(line, sizeof line, f)) {
      if (strncmp(line, "model name", 10) == 0) {
        char *c = strchr(line, ':');
        if (c) snprintf(model, sizeof model, "%s", c + 2);
        model[strcspn(model, "\n")] = '\0';
        break;
      }
    }
    fclose(f);
  }
  time_t t = time(NULL);
  char date[64];
  strftime(date, sizeof date, "%Y-%m-%d %H:%M %Z", localtime(&t));
  printf("hakmem core benchmarks (issue 2)\n");
  printf("machine: %s %s %s, cpu %s, %ld cpus online; %s\n", u.sysname, u.release, u.machine,
         model, sysconf(_SC_NPROCESSORS_ONLN), date);
  printf("%d rounds x %g s per run, allocators interleaved, medians\n", rounds, seconds);
#ifndef NDEBUG
  printf("warning: runner not built with -c opt; the benchmarks probably were not either\n");
#endif
}

static void usage(void) {
  fprintf(stderr, "usage: run [--rounds R] [--seconds S] [--workloads a,b,...] [--cpu] [-v] [--strict]\n"
                  "  workloads: random request prodcons twoheaps medium (default: all)\n"
                  "  --cpu: ops per CPU-second of the working threads instead of wall time\n");
  exit(64);
}

int main(int argc, char **argv) {
  int rounds = 5, strict = 0, cpu = 0;
  double seconds = 1.0;
  int want[NWORKLOADS];
  for (int w = 0; w < NWORKLOADS; w++) want[w] = 1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) rounds = atoi(argv[++i]);
    else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) seconds = atof(argv[++i]);
    else if (strcmp(argv[i], "--workloads") == 0 && i + 1 < argc) {
      char *list = argv[++i];
      for (int w = 0; w < NWORKLOADS; w++) want[w] = 0;
      for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int found = 0;
        for (int w = 0; w < NWORKLOADS; w++)
          if (strcmp(tok, workloads[w].name) == 0) want[w] = found = 1;
        if (!found) usage();
      }
    } else if (strcmp(argv[i], "-v") == 0) verbose = 1;
    else if (strcmp(argv[i], "--strict") == 0) strict = 1;
    else if (strcmp(argv[i], "--cpu") == 0) cpu = 1;
    else usage();
  }
  if (rounds < 1 || rounds > MAX_ROUNDS || !(seconds > 0)) usage();
  if (find_bins(argv[0]) != 0) return 1;
  print_machine(rounds, seconds);
  if (cpu)
    printf("--cpu: throughput per CPU-second of the working threads (prodcons stays wall time)\n");

  static double ops[NWORKLOADS][NALLOC][MAX_ROUNDS], rss[NWORKLOADS][NALLOC][MAX_ROUNDS],
      flt[NWORKLOADS][NALLOC][MAX_ROUNDS];
  int failed = 0;
  /* Peak RSS of each binary doing nothing: subtracted in the RSS-base row. */
  double base[NALLOC];
  for (int a = 0; a < NALLOC; a++) {
    result_t res = run_one(a, "none", seconds);
    base[a] = res.ok ? (double)res.hwm_kib : 0;
  }
  for (int w = 0; w < NWORKLOADS; w++) {
    if (!want[w]) continue;
    fprintf(stderr, "run: %s", workloads[w].name);
    for (int r = 0; r < rounds; r++) {
      for (int a = 0; a < NALLOC; a++) {
        result_t res = run_one(a, workloads[w].name, seconds);
        double rate = cpu && res.ops_per_cpu_s > 0 ? res.ops_per_cpu_s : res.ops_per_s;
        ops[w][a][r] = res.ok ? rate : 0;
        rss[w][a][r] = res.ok ? (double)res.rss_kib : 0;
        flt[w][a][r] = res.ok ? res.faults_per_op : 0;
        failed |= !res.ok;
      }
      fprintf(stderr, " .");
    }
    fprintf(stderr, "\n");
  }

  int missed = 0;
  printf("\n%-9s %-8s %9s %9s %9s %8s %8s  %-27s %s\n", "workload", "metric", "hakmem",
         "mimalloc", "glibc", "hak/mi", "hak/gl", "target", "result");
  for (int w = 0; w < NWORKLOADS; w++) {
    if (!want[w]) continue;
    const workload_t *wl = &workloads[w];
    double m[NALLOC], k[NALLOC];
    for (int a = 0; a < NALLOC; a++) {
      m[a] = median(ops[w][a], rounds);
      k[a] = median(rss[w][a], rounds);
    }
    double vs_mi = m[MI] > 0 ? m[HAK] / m[MI] : 0, vs_gl = m[GLIBC] > 0 ? m[HAK] / m[GLIBC] : 0;
    char target[64];
    int pass = m[HAK] > 0 && vs_mi >= wl->min_vs_mi && vs_gl >= wl->min_vs_glibc;
    if (wl->min_vs_glibc > 0)
      snprintf(target, sizeof target, ">= %.1fx mi, >= %.1fx glibc", wl->min_vs_mi, wl->min_vs_glibc);
    else
      snprintf(target, sizeof target, ">= %.1fx mi", wl->min_vs_mi);
    missed |= !pass;
    printf("%-9s %-8s %9.3f %9.3f %9.3f %7.2fx %7.2fx  %-27s %s\n", wl->name, wl->unit,
           m[HAK] / wl->scale, m[MI] / wl->scale, m[GLIBC] / wl->scale, vs_mi, vs_gl, target,
           m[HAK] > 0 ? (pass ? "PASS" : "MISS") : "FAIL");
    double rvs_mi = k[MI] > 0 ? k[HAK] / k[MI] : 0, rvs_gl = k[GLIBC] > 0 ? k[HAK] / k[GLIBC] : 0;
    int rpass = k[HAK] > 0 && rvs_mi <= RSS_MAX_VS_MI;
    missed |= !rpass;
    snprintf(target, sizeof target, "<= %.1fx mi", RSS_MAX_VS_MI);
    printf("%-9s %-8s %9.1f %9.1f %9.1f %7.2fx %7.2fx  %-27s %s\n", "", "RSS MiB",
           k[HAK] / 1024, k[MI] / 1024, k[GLIBC] / 1024, rvs_mi, rvs_gl, target,
           k[HAK] > 0 ? (rpass ? "PASS" : "MISS") : "FAIL");
    if (wl->max_faults_vs_mi > 0) {
      double f[NALLOC];
      for (int a = 0; a < NALLOC; a++) f[a] = median(flt[w][a], rounds);
      double fvs_mi = f[MI] > 0 ? f[HAK] / f[MI] : 0, fvs_gl = f[GLIBC] > 0 ? f[HAK] / f[GLIBC] : 0;
      int fpass = f[HAK] >= 0 && f[MI] > 0 && fvs_mi <= wl->max_faults_vs_mi;
      missed |= !fpass;
      snprintf(target, sizeof target, "<= %.1fx mi", wl->max_faults_vs_mi);
      printf("%-9s %-8s %9.2f %9.2f %9.2f %7.2fx %7.2fx  %-27s %s\n", "", "faults/op", f[HAK],
             f[MI], f[GLIBC], fvs_mi, fvs_gl, target, fpass ? "PASS" : "MISS");
    }
    double b[NALLOC];
    for (int a = 0; a < NALLOC; a++) b[a] = k[a] - base[a];
    printf("%-9s %-8s %9.2f %9.2f %9.2f %7.2fx %7.2fx  %-27s %s\n", "", "RSS-base",
           b[HAK] / 1024, b[MI] / 1024, b[GLIBC] / 1024, b[MI] > 0 ? b[HAK] / b[MI] : 0,
           b[GLIBC] > 0 ? b[HAK] / b[GLIBC] : 0, "(info: minus process base)", "-");
  }
  printf("\nprocess base RSS (no workload): hakmem %.2f, mimalloc %.2f, glibc %.2f MiB\n",
         base[HAK] / 1024, base[MI] / 1024, base[GLIBC] / 1024);
  if (verbose) {
    printf("\nper-round values (%s; RSS KiB):\n", "ops/s");
    for (int w = 0; w < NWORKLOADS; w++) {
      if (!want[w]) continue;
      for (int a = 0; a < NALLOC; a++) {
        printf("%-9s %-9s", workloads[w].name, alloc_names[a]);
        for (int r = 0; r < rounds; r++) printf(" %.0f/%.0f", ops[w][a][r], rss[w][a][r]);
        printf("\n");
      }
    }
  }
  if (failed) return 1;
  return strict && missed ? 1 : 0;
}
