#!/usr/bin/env python3
"""What `mprof fleet` costs (issue: attach and fleet), measured in one run.

1. 500 tracked processes (tests/targets/idle), idle, then each freeing and re-touching 1 MiB
   every second (500 MiB/s, 128 000 page faults a second across the fleet): mprof's own CPU
   (utime + stime of the process) plus the kernel's run time of its BPF programs
   (kernel.bpf_stats_enabled, run_time_ns), as a share of one core, over a fixed window.
2. mprof's own RSS with 500 and with 10 000 tracked processes.
3. The page-fault loop (tests/targets/faultloop) under `mprof fleet --all`, against no tracing
   at all and against the floor: the same object with an empty rss_stat program
   (MPROF_BENCH_FLOOR=1). Alternated rounds, medians of the loop's own time, and the
   kernel's per-event run time of the rss_stat program.
Writes bench/results_fleet.md.
"""
import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import time

from bpfstats import bpf_run_ns  # noqa: E402 (bench/ is the script's folder)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = os.path.join(ROOT, "build", "tests", "targets")
HZ = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def spawn_idle(n, mib=0, period_ms=0, name=None):
    exe = os.path.join(TARGETS, "idle")
    procs = []
    for _ in range(n):
        procs.append(subprocess.Popen([exe, str(mib), str(period_ms)],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
    return procs


def stop_all(procs):
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait()


def start_fleet(mprof, args, env=None):
    p = subprocess.Popen([mprof, "fleet", "-q"] + args, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env)
    return p


def fleet_cost(mprof, n, mib, period_ms, window_s):
    procs = spawn_idle(n, mib, period_ms)
    time.sleep(1.0)
    f = start_fleet(mprof, ["--name", "idle", "-T", "1"])
    time.sleep(2.0)  # loaded and discovered
    c0, (b0, _, _), t0 = cpu_s(f.pid), bpf_run_ns(f.pid), time.monotonic()
    time.sleep(window_s)
    c1, (b1, _, per), t1 = cpu_s(f.pid), bpf_run_ns(f.pid), time.monotonic()
    rss = rss_kb(f.pid)
    f.send_signal(signal.SIGINT)
    f.wait()
    stop_all(procs)
    wall = t1 - t0
    return {"user": (c1 - c0) / wall * 100, "bpf": (b1 - b0) / 1e9 / wall * 100,
            "rss_kb": rss, "per": per}


def fleet_rss(mprof, n):
    procs = spawn_idle(n)
    time.sleep(2.0 + n / 2000)
    f = start_fleet(mprof, ["--name", "idle", "-T", "1"])
    time.sleep(4.0)
    rss = rss_kb(f.pid)
    f.send_signal(signal.SIGINT)
    f.wait()
    stop_all(procs)
    return rss


def loop_time():
    out = subprocess.run([os.path.join(TARGETS, "faultloop"), "30", "64"], capture_output=True,
                         text=True, check=True).stdout
    return float([l for l in out.splitlines() if l.startswith("elapsed")][-1].split()[1])


def stats_enabled(on):
    subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=%d" % on], check=True)


def all_mode(mprof, rounds):
    """Wall time with the kernel's BPF statistics off (they cost two clock reads per run, for
    the floor too), then one more pass with them on for the ns per event."""
    t = {"none": [], "floor": [], "fleet --all": []}
    ns = {"floor": [], "fleet --all": []}
    for r in range(rounds + 2):
        timed = r < rounds
        stats_enabled(0 if timed else 1)
        order = list(t)
        order = order[r % 3:] + order[:r % 3]
        for k in order:
            if k == "none":
                if timed:
                    t[k].append(loop_time())
                continue
            env = dict(os.environ, MPROF_BENCH_FLOOR="1") if k == "floor" else None
            f = start_fleet(mprof, ["--all"], env=env)
            time.sleep(2.0)
            _, _, before = bpf_run_ns(f.pid)
            dt = loop_time()
            _, _, after = bpf_run_ns(f.pid)
            if timed:
                t[k].append(dt)
            else:
                # names are cut to 15 bytes by the kernel; bpftool may give the whole one
                name = [n for n in after if n.startswith("on_rss_stat") and
                        (("fl" in n) == (k == "floor"))]
                name = name[0] if name else "?"
                d_ns = after.get(name, (0, 0))[0] - before.get(name, (0, 0))[0]
                d_n = after.get(name, (0, 0))[1] - before.get(name, (0, 0))[1]
                if d_n:
                    ns[k].append(d_ns / d_n)
            f.send_signal(signal.SIGINT)
            f.wait()
    med = {k: statistics.median(v) for k, v in t.items()}
    return med, {k: statistics.median(v) for k, v in ns.items() if v}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mprof", default=os.path.join(ROOT, "build", "mprof"))
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--window", type=float, default=20.0)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results_fleet.md"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: needs root")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=1"], check=True)
    try:
        idle = fleet_cost(a.mprof, 500, 0, 0, a.window)
        busy = fleet_cost(a.mprof, 500, 1, 1000, a.window)
        rss500 = idle["rss_kb"]
        rss10k = fleet_rss(a.mprof, 10000)
        med, ns = all_mode(a.mprof, a.rounds)
    finally:
        subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=0"])
    L = ["### 500 tracked processes (%.0f s window)" % a.window, "",
         "| state | mprof (userspace) | its BPF programs | total, % of one core |",
         "|---|---|---|---|",
         "| idle | %.3f%% | %.3f%% | %.3f%% |" % (idle["user"], idle["bpf"],
                                                idle["user"] + idle["bpf"]),
         "| each re-touching 1 MiB every second (500 MiB/s in all) | %.3f%% | %.3f%% | "
         "%.3f%% |" % (busy["user"], busy["bpf"], busy["user"] + busy["bpf"]), "",
         "mprof's RSS: %.1f MiB with 500 processes, %.1f MiB with 10 000." % (
             rss500 / 1024, rss10k / 1024), "",
         "### The page-fault loop (30 x 64 MiB) under `fleet --all` (%d alternated rounds, "
         "medians; timed with the kernel's BPF statistics off, ns/event from two more rounds "
         "with them on, which adds their own two clock reads per run)" % a.rounds, "",
         "| run | loop (s) | ratio to none | ratio to the floor | rss_stat program, ns/event |",
         "|---|---|---|---|---|"]
    for k in ("none", "floor", "fleet --all"):
        L.append("| %s | %.3f | %.3fx | %.3fx | %s |" % (
            k, med[k], med[k] / med["none"], med[k] / med["floor"],
            "%.0f" % ns[k] if k in ns else "-"))
    text = "\n".join(L) + "\n"
    print(text)
    with open(a.out, "w") as f:
        f.write("Measured by bench/bench_fleet.py on %s, %d CPUs.\n\n" % (
            os.uname().release, os.cpu_count()) + text)


if __name__ == "__main__":
    main()
