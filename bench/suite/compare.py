#!/usr/bin/env python3
"""compare.py: runs the suite's workloads under each allocator (LD_PRELOAD), interleaved per
round, and writes a Markdown table and a gnuplot SVG chart of medians, as ratios to hakmem.

Started by `./bazelw run -c opt //bench:compare -- [options]` (see docs/bench-suite.md). Time
and peak RSS of each run come from wait4(); the microbenchmarks also print their own timed
section, which is what their time column uses.
"""
import argparse
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

LIBDIR = "/usr/lib/x86_64-linux-gnu"
# name -> LD_PRELOAD value. glibc preloads libc itself so that programs linked against another
# allocator (Debian's redis-server links jemalloc) really run on glibc's malloc.
SYSTEM_ALLOCATORS = {
    "glibc": LIBDIR + "/libc.so.6",
    "mimalloc": LIBDIR + "/libmimalloc.so.2",
    "jemalloc": LIBDIR + "/libjemalloc.so.2",
    "tcmalloc": LIBDIR + "/libtcmalloc_minimal.so.4",
}
ALLOCATOR_ORDER = ["hakmem", "glibc", "mimalloc", "jemalloc", "tcmalloc"]

# name -> (binary in bench/suite, multi-threaded?)
MICRO = {
    "larson": ("wl_larson", True),
    "xmalloc": ("wl_xmalloc", True),
    "cache-scratch": ("wl_cache_scratch", True),
    "cache-thrash": ("wl_cache_thrash", True),
    "mstress": ("wl_mstress", True),
    "glibc-thread": ("wl_glibc_thread", True),
    "realloc": ("wl_realloc_grow", True),
    "rptest": ("wl_rptest", True),
    "sh6bench": ("wl_sh6bench", True),
    "sh8bench": ("wl_sh8bench", True),
    "glibc-simple": ("wl_glibc_simple", False),
    "malloc-large": ("wl_malloc_large", False),
}
PROGRAMS = {"redis": False, "gcc": False}
DESCRIPTIONS = {
    "larson": "Larson server simulation: per-thread tables of 1000 blocks (16-1000 B), random "
              "replace; threads live one epoch and the next epoch's threads inherit the tables "
              "(cross-thread frees). 30 epochs.",
    "xmalloc": "xmalloc-test: half the threads malloc batches of 256 blocks (8-1023 B), the other "
               "half free them (all frees remote); bounded queue.",
    "cache-scratch": "Hoard cache-scratch (passive false sharing): each thread frees an 8-byte object "
                     "the main thread allocated next to the others', then allocates, writes 500 "
                     "times and frees, repeatedly.",
    "cache-thrash": "Hoard cache-thrash (active false sharing): each thread allocates 8-byte objects "
                    "and writes each 500 times.",
    "mstress": "mimalloc-bench mstress-like: 50% allocate (1% of them 64 KiB-4 MiB, every page "
               "touched), 30% free, 20% swap with a shared transfer table; threads replaced for 10 "
               "rounds.",
    "glibc-thread": "glibc bench-malloc-thread-like: per-thread random malloc/free over 1024 slots, "
                    "sizes mostly 16-1023 B, 1 in 64 up to 32 KiB; no cross-thread frees.",
    "realloc": "realloc-heavy: 64 buffers per thread grown by 1-64 bytes per realloc up to random "
               "caps (256 B-1 MiB), then shrunk or freed.",
    "rptest": "rpmalloc-benchmark-like: per-thread working set of 2048 blocks (16 B-16 KiB); each "
              "round frees a random 10-50% run of it and refills it, and hands a batch of 64 new "
              "blocks to the next thread to free (~1 in 10 frees remote).",
    "sh6bench": "SmartHeap sh6bench-like: per-thread batches of 200-2000 blocks (8 B-1 KiB), each "
                "freed one iteration later, in turn forward, reverse, even-then-odd, or half "
                "locally and half by the next thread (1 in 8 frees remote).",
    "sh8bench": "SmartHeap sh8bench-like: each iteration allocates two batches of 200-2000 blocks "
                "(8 B-1 KiB); one is freed locally an iteration later, the other is handed whole to "
                "the next thread, which frees it (half the frees remote).",
    "glibc-simple": "glibc bench-malloc-simple-like, one thread: for sizes 16-1024 B (powers of two) "
                    "and batches of 25/100/400/1600, malloc the batch then free it in order; "
                    "600,000 blocks per size and batch.",
    "malloc-large": "mimalloc-bench malloc-large-like, one thread: 20 live blocks of 5-25 MiB, one "
                    "replaced at random 2000 times, each new block zero-filled.",
    "redis": "redis-server (Debian, 127.0.0.1) under the allocator; redis-benchmark (not "
             "preloaded) with SET, GET, LPUSH, LPOP, SADD, HSET, 40,000 requests each, 20 clients, "
             "pipeline 8, 200-byte values, 100,000 random keys; time = sum over tests of "
             "requests / (requests per second); RSS = the server's peak.",
    "gcc": "gcc -O2 -c of a generated 60-function C file (cc1 and as run under the allocator "
           "too); wall time, peak RSS of the largest process.",
}
ALL_WORKLOADS = list(MICRO) + list(PROGRAMS)


def log(msg):
    print(msg, flush=True)


def measured_argv(args, argv, alloc_path, report):
    """argv run through rss_run (peak RSS, wall time) and env (LD_PRELOAD for argv only)."""
    pre = [os.path.join(args.bindir, "rss_run"), report, "/usr/bin/env", "-u", "LD_PRELOAD"]
    if alloc_path:
        pre.append("LD_PRELOAD=" + alloc_path)
    return pre + argv


def read_report(report):
    try:
        with open(report) as f:
            fields = dict(kv.split("=", 1) for kv in f.read().split())
        return int(fields["maxrss_kib"]), float(fields["secs"]), float(fields["cpu"])
    except (OSError, KeyError, ValueError):
        return 0, 0.0, 0.0


def run_measured(args, argv, alloc_path, timeout):
    """Runs argv under the allocator; returns (exit status, seconds, peak RSS KiB, stdout, stderr).
    Seconds are CPU seconds (user + system, the process and its children) with --metric cpu, wall
    seconds with --metric wall."""
    report = os.path.join(args.workdir, "rss_report.txt")
    if os.path.exists(report):
        os.unlink(report)
    proc = subprocess.Popen(measured_argv(args, argv, alloc_path, report), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return ("timeout", 0.0, 0, out or "", err or "")
    rss, secs, cpu = read_report(report)
    return (proc.returncode, cpu if args.metric == "cpu" else secs, rss, out or "", err or "")


def run_micro(args, name, alloc_path):
    binary = os.path.join(args.bindir, MICRO[name][0])
    rc, wall, rss, out, err = run_measured(
        args, [binary, str(args.threads), str(args.scale)], alloc_path, 120)
    if rc != 0:
        return None, f"exit {rc}: {err.strip()[-300:]}"
    for line in out.splitlines():
        if line.startswith("RESULT "):
            fields = dict(kv.split("=", 1) for kv in line.split()[1:])
            # wall: the workload's own timed section; cpu: the whole process's CPU time
            return {"time": wall if args.metric == "cpu" else float(fields["secs"]), "rss": rss}, None
    return None, "no RESULT line"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, deadline):
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            # The server is still starting: a short back-off between connection attempts.
            time.sleep(0.02)
    return False


def run_redis(args, alloc_path, workdir):
    server = shutil.which("redis-server")
    bench = shutil.which("redis-benchmark")
    if not server or not bench:
        return None, "redis-server/redis-benchmark not installed (apt-get install redis-server redis-tools)"
    port = free_port()
    report = os.path.join(workdir, "redis_report.txt")
    if os.path.exists(report):
        os.unlink(report)
    argv = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", workdir, "--loglevel", "warning"]
    proc = subprocess.Popen(measured_argv(args, argv, alloc_path, report), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        if not wait_for_port(port, proc, time.monotonic() + 10):
            return None, "redis-server did not start: " + (proc.stderr.read() if proc.poll() is not None else "")
        n = str(int(40000 * args.scale))
        out = subprocess.run([bench, "-h", "127.0.0.1", "-p", str(port), "-n", n, "-r", "100000",
                              "-d", "200", "-c", "20", "-P", "8", "-t", "set,get,lpush,lpop,sadd,hset",
                              "--csv"], env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            return None, "redis-benchmark failed: " + out.stderr[-300:]
        rps = []
        for line in out.stdout.splitlines()[1:]:
            cols = [c.strip('"') for c in line.split(",")]
            if len(cols) > 1:
                rps.append(float(cols[1]))
        if not rps:
            return None, "no redis-benchmark results"
        total = sum(int(n) / r for r in rps)  # seconds the server needed for all requests
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.returncode not in (0, 128 + signal.SIGTERM):
        return None, f"redis-server exit {proc.returncode}"
    return {"time": total, "rss": read_report(report)[0]}, None


def make_gcc_input(workdir):
    """A C file of a few hundred functions with loops, switches and inlining work for -O2."""
    path = os.path.join(workdir, "gcc_input.c")
    with open(path, "w") as f:
        f.write("/* generated by bench/suite/compare.py */\n#include <string.h>\n#include <stdio.h>\n")
        f.write("struct s { int a[16]; double d; char name[32]; struct s *next; };\n")
        for i in range(60):
            f.write(f"static int helper{i}(struct s *p, int x) {{\n  int acc = {i};\n")
            f.write("  for (int k = 0; k < 16; k++) acc += p->a[k] * (x ^ k);\n")
            f.write("  switch (x & 7) {\n")
            for c in range(8):
                f.write(f"    case {c}: acc = acc * {c + 3} + {i}; p->d += acc / {c + 1}.0; break;\n")
            f.write("  }\n  snprintf(p->name, sizeof p->name, \"%d\", acc);\n")
            f.write("  return acc + (int)strlen(p->name);\n}\n")
            f.write(f"int func{i}(struct s *p, int n) {{\n  int r = 0;\n")
            f.write(f"  for (int j = 0; j < n; j++) r += helper{i}(p, j) + helper{(i * 7) % (i + 1)}(p, r);\n")
            f.write("  return r;\n}\n")
    return path


def run_gcc(args, alloc_path, workdir, src):
    gcc = shutil.which("gcc")
    if not gcc:
        return None, "gcc not installed"
    obj = os.path.join(workdir, "gcc_input.o")
    rc, wall, rss, out, err = run_measured(args, [gcc, "-O2", "-c", src, "-o", obj], alloc_path, 300)
    if rc != 0:
        return None, f"gcc exit {rc}: {err.strip()[-300:]}"
    return {"time": wall, "rss": rss}, None


def fmt_ratio(x):
    return f"{x:.2f}x"


def write_outputs(args, allocs, workloads, med, fails, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    others = [a for a in allocs if a != "hakmem"]
    lines = []
    lines.append("<!-- written by `./bazelw run -c opt //bench:compare`; do not edit by hand -->")
    lines.append("# Allocator comparison (benchmark suite of issue 5)")
    lines.append("")
    lines.append(f"Machine: {os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}; "
                 f"{args.rounds} rounds, median per cell; threads = {args.threads}; scale = {args.scale}; "
                 f"metric = {args.metric}; "
                 f"run on {time.strftime('%Y-%m-%d')}.")
    lines.append("")
    lines.append("Time ratio = allocator's median time / hakmem's median time (above 1.00: hakmem is faster). "
                 "RSS ratio = allocator's peak RSS / hakmem's (above 1.00: hakmem uses less). "
                 + ("Times are CPU seconds (user + system) of the whole process (microbenchmarks, gcc and "
                    "its children: `--metric cpu`, the default), " if args.metric == "cpu" else
                    "Times are the workload's own timed section (microbenchmarks), gcc's wall time, ")
                 + "and for redis the requests over redis-benchmark's rate summed over its tests. "
                 "Peak RSS comes from wait4() "
                 "(redis: the server; gcc: the largest of gcc and its children).")
    lines.append("")
    hdr = "| workload | hakmem time | hakmem RSS | " + " | ".join(
        f"{a} time | {a} RSS" for a in others) + " |"
    lines.append(hdr)
    lines.append("|" + "---|" * (3 + 2 * len(others)))
    for w in workloads:
        h = med.get((w, "hakmem"))
        row = [w]
        if h:
            row += [f"{h['time']:.3f} s", f"{h['rss'] / 1024:.1f} MB"]
        else:
            row += ["fail", "fail"]
        for a in others:
            m = med.get((w, a))
            if not m:
                row += ["fail" if (w, a) in fails else "-", "-"]
            elif h:
                row += [f"{m['time']:.3f} s ({fmt_ratio(m['time'] / h['time'])})",
                        f"{m['rss'] / 1024:.1f} MB ({fmt_ratio(m['rss'] / max(h['rss'], 1))})"]
            else:
                row += [f"{m['time']:.3f} s", f"{m['rss'] / 1024:.1f} MB"]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("Targets (issue 5): hakmem at least as fast as mimalloc everywhere, at least 1.5x glibc "
                 "on multi-threaded workloads, peak RSS at most 1.1x mimalloc's.")
    lines.append("")
    lines.append("| workload | vs mimalloc speed | vs glibc speed (MT: >= 1.5) | RSS / mimalloc RSS |")
    lines.append("|---|---|---|---|")
    for w in workloads:
        h, mi, gl = med.get((w, "hakmem")), med.get((w, "mimalloc")), med.get((w, "glibc"))
        if not h:
            continue
        mt = MICRO.get(w, (None, False))[1]
        c1 = f"{mi['time'] / h['time']:.2f} {'ok' if mi['time'] / h['time'] >= 1.0 else 'MISS'}" if mi else "-"
        if gl:
            g = gl["time"] / h["time"]
            c2 = f"{g:.2f} {('ok' if g >= 1.5 else 'MISS') if mt else '(single-threaded)'}"
        else:
            c2 = "-"
        c3 = f"{h['rss'] / max(mi['rss'], 1):.2f} {'ok' if h['rss'] <= 1.1 * mi['rss'] else 'MISS'}" if mi else "-"
        lines.append(f"| {w} | {c1} | {c2} | {c3} |")
    if fails:
        lines.append("")
        lines.append("Failed runs: " + "; ".join(f"{w}/{a}: {msg}" for (w, a), msg in sorted(fails.items())))
    lines.append("")
    lines.append("![allocator comparison](bench-suite.svg)")
    lines.append("")
    lines.append("## Workloads")
    lines.append("")
    for w in workloads:
        lines.append(f"- **{w}**: {DESCRIPTIONS[w]}")
    lines.append("")
    lines.append("## Reproduce")
    lines.append("")
    lines.append("`./bazelw run -c opt //bench:compare -- --rounds 5` (options: `--workloads larson,redis`, "
                 "`--allocators hakmem,mimalloc`, `--threads N`, `--scale X`, `--no-write`). Each round runs "
                 "every workload under every allocator in turn (the starting allocator rotates per round); "
                 "cells are medians over rounds. The machine is shared and small: expect 10-30% noise "
                 "between runs, more on the shortest workloads; use more rounds to tighten it.")
    md_path = os.path.join(out_dir, "bench-suite.md")
    with open(md_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    log(f"compare: wrote {md_path}")
    write_chart(allocs, workloads, med, out_dir)


def write_chart(allocs, workloads, med, out_dir):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        log("compare: gnuplot not found (apt-get install gnuplot-nox): no chart")
        return
    rows = [w for w in workloads if (w, "hakmem") in med]
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data.txt")
        with open(data, "w") as f:
            f.write("workload " + " ".join(allocs) + " " + " ".join(a + "_rss" for a in allocs) + "\n")
            for w in rows:
                h = med[(w, "hakmem")]
                speed = [f"{h['time'] / med[(w, a)]['time']:.4f}" if (w, a) in med else "NaN" for a in allocs]
                rss = [f"{med[(w, a)]['rss'] / max(h['rss'], 1):.4f}" if (w, a) in med else "NaN" for a in allocs]
                f.write(w + " " + " ".join(speed) + " " + " ".join(rss) + "\n")
        svg = os.path.join(out_dir, "bench-suite.svg")
        n = len(allocs)
        script = f"""
set terminal svg size 1000,720 dynamic font "sans,11" background rgb "white"
set output "{svg}"
set multiplot layout 2,1
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key outside right top vertical
set grid ytics
set xtics rotate by -20
set yrange [0:*]
set title "Throughput relative to hakmem (higher is faster; hakmem = 1)"
plot for [i=2:{n + 1}] "{data}" using i:xtic(1) title columnheader(i)
set title "Peak RSS relative to hakmem (lower uses less memory; hakmem = 1)"
plot for [i={n + 2}:{2 * n + 1}] "{data}" using i:xtic(1) title columnheader(i)
unset multiplot
"""
        r = subprocess.run([gnuplot], input=script, text=True, capture_output=True)
        if r.returncode != 0:
            log("compare: gnuplot failed: " + r.stderr[-500:])
        else:
            log(f"compare: wrote {svg}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workloads", default=",".join(ALL_WORKLOADS),
                   help="comma-separated subset of: " + ",".join(ALL_WORKLOADS))
    p.add_argument("--allocators", default=",".join(ALLOCATOR_ORDER),
                   help="comma-separated subset of: " + ",".join(ALLOCATOR_ORDER))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--metric", choices=("cpu", "wall"), default="cpu",
                   help="cpu (default): CPU seconds of the whole process, steadier on a shared "
                        "machine; wall: the workload's own timed section (gcc: wall time)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--scale", type=float, default=1.0, help="multiplies each workload's amount of work")
    p.add_argument("--out-dir", default=None, help="default: <workspace>/docs")
    p.add_argument("--no-write", action="store_true", help="print the results, write nothing")
    p.add_argument("--runfiles", default=os.getcwd(), help="directory holding bench/ and hakmem/")
    args = p.parse_args()

    args.bindir = os.path.join(args.runfiles, "bench", "suite")
    hakmem_so = os.path.abspath(os.path.join(args.runfiles, "hakmem", "libhakmem_override.so"))
    paths = dict(SYSTEM_ALLOCATORS, hakmem=hakmem_so)
    allocs = []
    for a in args.allocators.split(","):
        if a not in paths:
            sys.exit(f"compare: unknown allocator {a}")
        if not os.path.exists(paths[a]):
            log(f"compare: {a} not found at {paths[a]}: skipped")
            continue
        allocs.append(a)
    workloads = [w for w in args.workloads.split(",") if w]
    for w in workloads:
        if w not in ALL_WORKLOADS:
            sys.exit(f"compare: unknown workload {w}")
    out_dir = args.out_dir
    if out_dir is None:
        ws = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
        out_dir = os.path.join(ws, "docs") if ws else None
    if out_dir is None and not args.no_write:
        log("compare: not started by `bazel run` and no --out-dir: results are printed only")

    results = {}
    fails = {}
    total = args.rounds * len(workloads) * len(allocs)
    step = 0
    with tempfile.TemporaryDirectory(prefix="hakmem-compare-") as workdir:
        args.workdir = workdir
        gcc_src = make_gcc_input(workdir) if "gcc" in workloads else None
        for rnd in range(args.rounds):
            for w in workloads:
                # Rotate the starting allocator each round so none always runs first.
                order = allocs[rnd % len(allocs):] + allocs[:rnd % len(allocs)]
                for a in order:
                    step += 1
                    if (w, a) in fails:
                        continue
                    path = paths[a]
                    if w in MICRO:
                        res, err = run_micro(args, w, path)
                    elif w == "redis":
                        res, err = run_redis(args, path, workdir)
                    else:
                        res, err = run_gcc(args, path, workdir, gcc_src)
                    if res is None:
                        fails[(w, a)] = err
                        log(f"[{step}/{total}] round {rnd + 1}/{args.rounds} {w:13s} {a:9s} FAILED: {err}")
                        continue
                    results.setdefault((w, a), []).append(res)
                    log(f"[{step}/{total}] round {rnd + 1}/{args.rounds} {w:13s} {a:9s} "
                        f"{res['time']:8.3f} s  {res['rss'] / 1024:8.1f} MB")
    med = {}
    for key, rs in results.items():
        if key in fails:
            continue
        med[key] = {"time": statistics.median(r["time"] for r in rs),
                    "rss": statistics.median(r["rss"] for r in rs)}
    log("")
    log(f"{'workload':13s} " + " ".join(f"{a:>20s}" for a in allocs))
    for w in workloads:
        cells = []
        h = med.get((w, "hakmem"))
        for a in allocs:
            m = med.get((w, a))
            if not m:
                cells.append(f"{'fail':>20s}")
            elif h:
                cells.append(f"{m['time'] / h['time']:6.2f}x t {m['rss'] / max(h['rss'], 1):6.2f}x rss")
            else:
                cells.append(f"{m['time']:7.3f}s {m['rss'] / 1024:7.1f}MB")
        log(f"{w:13s} " + " ".join(cells))
    log("(ratios to hakmem: above 1 = hakmem faster / smaller)")
    if out_dir and not args.no_write:
        write_outputs(args, allocs, workloads, med, fails, out_dir)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
