#!/usr/bin/env python3
"""mprof run overhead and peak capture, measured in one run (see bench/README.md).

For each workload, N alternated rounds run the plain command, `mprof run` (ours, kernel backend)
and memory_profiler's `mprof run` in a rotating order; the table gives median wall times and the
median of the per-round ratios to the plain run. Also: records per second reaching userspace and
.dat bytes per minute for ours, and how many of ten 20 ms spikes each tool writes at full height.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd, **kw):
    """Wall time of the whole command, the workload's own "elapsed" figure, and stderr."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit("bench: %s failed: %s" % (" ".join(cmd), p.stderr.strip()))
    inner = [float(l.split()[1]) for l in p.stdout.splitlines() if l.startswith("elapsed ")]
    return dt, inner[-1] if inner else dt, p.stderr


def bench_workload(name, cmd, mprof, orig, rounds, tmp):
    runs = {"plain": [], "ours": [], "memory_profiler": []}
    ratios = {"ours": [], "memory_profiler": []}
    inner_ratios = {"ours": [], "memory_profiler": []}
    recs, sizes, durs = [], [], []
    for r in range(rounds):
        order = ["plain", "ours", "memory_profiler"]
        order = order[r % 3:] + order[:r % 3]
        this = {}
        for kind in order:
            out = os.path.join(tmp, "%s-%s.dat" % (name, kind))
            if os.path.exists(out):
                os.unlink(out)
            if kind == "plain":
                dt, inner, _ = timed(cmd)
            elif kind == "ours":
                dt, inner, err = timed([mprof, "run", "--stats", "-o", out] + cmd)
                for line in err.splitlines():
                    if "records" in line:
                        recs.append(int(line.split(":")[-1].split()[0]))
                sizes.append(os.path.getsize(out))
                durs.append(dt)
            else:
                if not orig:
                    continue
                dt, inner, _ = timed([orig, "run", "--nopython", "-o", out] + cmd)
            this[kind] = (dt, inner)
            runs[kind].append(dt)
        for kind in ("ours", "memory_profiler"):
            if kind in this:
                ratios[kind].append(this[kind][0] / this["plain"][0])
                inner_ratios[kind].append(this[kind][1] / this["plain"][1])
    res = {"name": name, "plain": statistics.median(runs["plain"])}
    for kind in ("ours", "memory_profiler"):
        if ratios[kind]:
            res[kind] = statistics.median(runs[kind])
            res[kind + "_ratio"] = statistics.median(ratios[kind])
            res[kind + "_inner"] = statistics.median(inner_ratios[kind])
    res["rec_per_s"] = statistics.median(r / d for r, d in zip(recs, durs))
    res["bytes_per_min"] = statistics.median(s / d * 60 for s, d in zip(sizes, durs))
    return res


def spikes_seen(tool, spikes_bin, tmp):
    out = os.path.join(tmp, "spikes.dat")
    if os.path.exists(out):
        os.unlink(out)
    p = subprocess.run(tool + ["run", "-o", out, spikes_bin, "10", "300", "20", "500"],
                       capture_output=True, text=True)
    windows = [tuple(map(float, l.split()[1:3])) for l in p.stdout.splitlines()
               if l.startswith("spike ")]
    mem = []
    with open(out) as f:
        for line in f:
            if line.startswith("MEM "):
                _, m, t = line.split()
                mem.append((float(t), float(m)))
    base = sorted(m for _, m in mem)[len(mem) // 4]
    seen = 0
    for t0, t1 in windows:
        inside = [m for t, m in mem if t0 - 0.002 <= t <= t1 + 0.002]
        if inside and max(inside) >= base + 295:
            seen += 1
    return seen, len(windows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mprof", default=os.path.join(ROOT, "build", "mprof"))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results.md"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: needs root (the kernel backend)")
    orig = shutil.which("python3-mprof", path="/usr/bin") or shutil.which("mprof", path="/usr/bin")
    targets = os.path.join(ROOT, "build", "tests", "targets")
    tmp = tempfile.mkdtemp(prefix="mprof-bench-")
    try:
        rows = [
            bench_workload("page-fault loop (30 x 64 MiB)",
                           [os.path.join(targets, "faultloop"), "30", "64"],
                           a.mprof, orig, a.rounds, tmp),
            bench_workload("CPU-bound Python",
                           [a.python, os.path.join(ROOT, "bench", "cpu_bound.py")],
                           a.mprof, orig, a.rounds, tmp),
        ]
        spikes = {"ours": spikes_seen([a.mprof], os.path.join(targets, "spikes"), tmp)}
        if orig:
            spikes["memory_profiler"] = spikes_seen([orig], os.path.join(targets, "spikes"), tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines = ["| workload | plain (s) | mprof-bpf (s) | whole-command ratio | workload-time ratio "
             "| memory_profiler (s) | whole-command ratio | workload-time ratio "
             "| mprof-bpf records/s | mprof-bpf .dat bytes/min |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mp = "memory_profiler" in r
        lines.append("| %s | %.3f | %.3f | %.3fx | %.3fx | %s | %s | %s | %.0f | %.0f |" % (
            r["name"], r["plain"], r["ours"], r["ours_ratio"], r["ours_inner"],
            "%.3f" % r["memory_profiler"] if mp else "-",
            "%.3fx" % r["memory_profiler_ratio"] if mp else "-",
            "%.3fx" % r["memory_profiler_inner"] if mp else "-",
            r["rec_per_s"], r["bytes_per_min"]))
    lines.append("")
    for tool, (seen, total) in spikes.items():
        lines.append("- %s: %d of %d 20 ms spikes of 300 MiB at full height" % (tool, seen, total))
    text = "\n".join(lines) + "\n"
    print(text)
    with open(a.out, "w") as f:
        f.write("Median of %d alternated rounds, %s, %d CPUs.\n\n" % (
            a.rounds, os.uname().release, os.cpu_count()) + text)


if __name__ == "__main__":
    main()
