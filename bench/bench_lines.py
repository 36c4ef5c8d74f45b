#!/usr/bin/env python3
"""What `mprof run --lines` costs the profiled program, next to the alternatives.

Workloads (bench/lines_work.py, each timing its own work, start-up excluded), and the seed
example (examples/seed.py, whole command):
  cpu    pure Python without memory growth: --lines should cost nothing (no RSS change, no walk)
  storm  a Python loop faulting 4 MiB in and out, page by page: every page is one walk
  seed   the bundled example (a few 80-160 MiB lines), wall time of the whole command
Modes, alternated round by round, medians:
  plain     the interpreter alone
  rss       mprof run --nopython: the same BPF object, line attribution off (its floor)
  lines     mprof run --lines: the stack walk on every RSS change, nothing in the process
  hook      our in-process line profiler on the kernel page: mprof run python -m
            memory_profiler (the @profile function, line by line)
  mp061     memory_profiler 0.61 (Debian's), python -m memory_profiler; not for cpu, where its
            sys.settrace line events cost thousands of times the plain loop
  scalene   Debian's Scalene, --cli --memory (it replaces the allocator: the storm's blocks are
            not mmapped page by page there, so it is not the same work)
  austin    Debian's Austin, austin -m (1.0: it reads 3.8-3.10 only, so it runs in a second table
            with a pyenv 3.9, beside plain and --lines on that interpreter)
Then the per-event cost of the rss_stat program, with line attribution and without, from the
kernel's own run time of the program (kernel.bpf_stats_enabled, bpftool prog show), on the
storm. Writes bench/results_lines.md. Needs root (BPF).
"""
import argparse
import glob
import os
import shutil
import re
import statistics
import subprocess
import sys
import tempfile
import time

from bpfstats import bpf_run_ns  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "bench", "lines_work.py")
SEED = os.path.join(ROOT, "examples", "seed.py")
SEED_ANY = """import builtins, sys
if not hasattr(builtins, 'profile'):
    builtins.profile = lambda f: f
path = %r
sys.argv[0] = path
exec(compile(open(path).read(), path, 'exec'), {'__name__': '__main__'})
"""


def timed(cmd, env):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit("bench: %s failed: %s" % (" ".join(cmd), p.stderr[-800:]))
    m = re.search(r"^work ([\d.]+)$", p.stdout, re.M)
    return float(m.group(1)) if m else None, wall


def commands(args, tmp, script, sargs, mode):
    py, mprof, out = args.python, args.mprof, os.path.join(tmp, "out.dat")
    base = [py, script] + sargs
    if mode == "plain":
        return base, None
    if mode == "rss":
        return [mprof, "run", "--nopython", "-o", out] + base, None
    if mode == "lines":
        return [mprof, "run", "--lines", "-o", out] + base, None
    if mode == "hook":
        # our hook reading the kernel page, as `sudo mprof run python -m memory_profiler` runs it
        return [mprof, "run", "-o", out, py, "-m", "memory_profiler", "-o", os.devnull,
                script] + sargs, None
    if mode == "mp061":
        return [py, "-m", "memory_profiler", "-o", os.devnull, script] + sargs, {}
    if mode == "scalene":
        return [py, "-m", "scalene", "--cli", "--memory", "--outfile", os.devnull, script] + \
            sargs, {}
    if mode == "austin":
        return ["austin", "-m", "-o", os.devnull, py, script] + sargs, {}
    raise ValueError(mode)


def stage_build(stage):
    """build/lstageN/mprof: charge_line cut at stage N (1: the table alone, 2: the walk alone)."""
    out = os.path.join(ROOT, "build", "lstage%d" % stage)
    subprocess.run(["make", "-s", "-C", ROOT, "OUT=%s" % out,
                    "EXTRA_BPF_CFLAGS=-DMP_LINES_STAGE=%d" % stage, os.path.join(out, "mprof")],
                   check=True, stdout=subprocess.DEVNULL)
    return os.path.join(out, "mprof")


def per_event_ns(args, tmp, lines, mprof=None):
    """ns per run of on_rss_stat over a storm, from the kernel's run_time_ns / run_cnt."""
    out = os.path.join(tmp, "ev.dat")
    cmd = [mprof or args.mprof, "run", "--lines" if lines else "--nopython", "-o", out, args.python, WORK,
           "storm", str(args.storm)]
    old = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
    with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
        f.write("1")
    try:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        last = None
        while p.poll() is None:
            # the programs of this mprof alone, read until it lets them go
            run = bpf_run_ns(p.pid)[2].get("on_rss_stat")
            if run and run[1]:
                last = run
            time.sleep(0.1)
    finally:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(old)
    if not last:
        return None, None
    return last[0] / last[1], last[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", default="/usr/bin/python3",
                    help="the interpreter (Debian's has memory_profiler 0.61 beside it)")
    ap.add_argument("--mprof", default=os.path.join(ROOT, "build", "mprof"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cpu", type=int, default=1500, help="rounds of the cpu workload")
    ap.add_argument("--storm", type=int, default=400, help="4 MiB blocks of the storm")
    ap.add_argument("--stages", action="store_true",
                    help="also price the table and the walk apart (two more builds)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results_lines.md"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_lines: needs root (BPF)")
    has061 = subprocess.run([args.python, "-c", "import memory_profiler, psutil"],
                            capture_output=True).returncode == 0
    tmp = tempfile.mkdtemp(prefix="bench-lines-")
    seed = os.path.join(tmp, "seed_any.py")
    with open(seed, "w") as f:
        f.write(SEED_ANY % SEED)
    loads = [("cpu", WORK, ["cpu", str(args.cpu)]), ("storm", WORK, ["storm", str(args.storm)]),
             ("seed", seed, [])]
    has_scalene = subprocess.run([args.python, "-c", "import scalene"],
                                 capture_output=True).returncode == 0
    modes = ["plain", "rss", "lines", "hook"] + (["mp061"] if has061 else []) + \
        (["scalene"] if has_scalene else [])
    res = {(w, m): [] for w, _, _ in loads for m in modes}
    for r in range(args.rounds):
        for w, script, sargs in loads:
            order = modes[r % len(modes):] + modes[:r % len(modes)]
            for m in order:
                if m == "mp061" and w == "cpu":
                    continue
                cmd, extra = commands(args, tmp, script, sargs, m)
                env = dict(os.environ)
                env.pop("PYTHONPATH", None)
                if extra is not None:
                    env.update(extra)
                res[(w, m)].append(timed(cmd, env))
        print("round %d/%d done" % (r + 1, args.rounds), file=sys.stderr)

    # Austin 1.0 reads 3.8-3.10 only: a pyenv 3.9 beside plain and --lines on it
    austin_py = None
    if shutil.which("austin") and shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
        found = sorted(glob.glob(os.path.join(root, "versions", "3.9.*", "bin", "python3")))
        austin_py = found[-1] if found else None
    ares = {}
    if austin_py:
        amodes = ["plain", "lines", "austin"]
        sub = argparse.Namespace(**dict(vars(args), python=austin_py))
        ares = {(w, m): [] for w, _, _ in loads[:2] for m in amodes}
        for r in range(args.rounds):
            for w, script, sargs in loads[:2]:
                for m in amodes[r % 3:] + amodes[:r % 3]:
                    cmd, extra = commands(sub, tmp, script, sargs, m)
                    env = dict(os.environ)
                    env.pop("PYTHONPATH", None)
                    ares[(w, m)].append(timed(cmd, env))
    ev = {k: per_event_ns(args, tmp, k == "lines") for k in ("rss", "lines")}
    if args.stages:
        ev["table"] = per_event_ns(args, tmp, True, stage_build(1))
        ev["walk"] = per_event_ns(args, tmp, True, stage_build(2))

    def med(w, m, i, table=None):
        v = [x[i] for x in (table or res)[(w, m)] if x[i] is not None]
        return statistics.median(v) if v else None

    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    lines = ["# `mprof run --lines`: what it costs the program (`bench/bench_lines.py`)", "",
             "%s, %d alternated rounds, medians; load average at the end: %s. `work`: the "
             "workload's own time (start-up excluded); `wall`: the whole command." %
             (subprocess.run([args.python, "-V"], capture_output=True, text=True).stdout.strip(),
              args.rounds, load), "",
             "| workload | mode | work (s) | x plain | wall (s) | x plain |",
             "|---|---|---|---|---|---|"]
    for w, _, _ in loads:
        pw, pwall = med(w, "plain", 0), med(w, "plain", 1)
        for m in modes:
            if not res[(w, m)]:
                continue
            wk, wall = med(w, m, 0), med(w, m, 1)
            lines.append("| %s | %s | %s | %s | %.3f | %.2fx |" % (
                w, m, "%.3f" % wk if wk is not None else "-",
                "%.3fx" % (wk / pw) if wk is not None and pw else "-", wall, wall / pwall))
    if ares:
        lines += ["", "Austin 1.0 (`austin -m`) reads 3.8-3.10 only: on %s, same rounds:" %
                  austin_py.split("/versions/")[1].split("/")[0], "",
                  "| workload | mode | work (s) | x plain | wall (s) | x plain |",
                  "|---|---|---|---|---|---|"]
        for w, _, _ in loads[:2]:
            pw, pwall = med(w, "plain", 0, ares), med(w, "plain", 1, ares)
            for m in ("plain", "lines", "austin"):
                wk, wall = med(w, m, 0, ares), med(w, m, 1, ares)
                lines.append("| %s | %s | %.3f | %.3fx | %.3f | %.2fx |" % (
                    w, m, wk, wk / pw, wall, wall / pwall))
    if ev["rss"][0] and ev["lines"][0]:
        lines += ["", "The rss_stat program's own run time on the storm (`run_time_ns / run_cnt`, "
                  "kernel.bpf_stats_enabled): %.0f ns per event with line attribution, %.0f ns "
                  "without (%d and %d runs): the walk and the count add %.0f ns." %
                  (ev["lines"][0], ev["rss"][0], ev["lines"][1], ev["rss"][1],
                   ev["lines"][0] - ev["rss"][0])]
        if args.stages and ev["table"][0] and ev["walk"][0]:
            lines += ["", "Cut at stages (`--stages`, `-DMP_LINES_STAGE`): the table update alone "
                      "(no walk) %+.0f ns, the walk alone (no table) %+.0f ns over the floor." %
                      (ev["table"][0] - ev["rss"][0], ev["walk"][0] - ev["rss"][0])]
    storm_events = args.storm * (4 << 20) // os.sysconf("SC_PAGE_SIZE")
    lw, rw = med("storm", "lines", 0), med("storm", "rss", 0)
    lines += ["", "The storm faults in about %d pages; --lines over its floor (`rss`, the same "
              "BPF object without the walk): %+.0f ns per page." %
              (storm_events, (lw - rw) / storm_events * 1e9)]
    text = "\n".join(lines) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
