#!/usr/bin/env python3
"""What each step of the per-event program costs, in ns per event (the kernel's own
run_time_ns / run_cnt with kernel.bpf_stats_enabled=1).

The BPF object is built several times with -DMP_STAGE=N, which makes on_rss_stat return after
step N (bpf/mprof.bpf.c):
  0: nothing (the program entered and left: bpf_stats' own overhead and the floor)
  1: which member changed, whose memory it is (mm->owner)
  2: the process table lookup
  3: the exact per-CPU sum of the changed member
  4: the time (the per-CPU cache)
  5: the whole program (the store, peak, turning point, window maximum)
and runs the page-fault loop under `mprof fleet --all` with each, alternated rounds, medians.
Writes bench/results_stages.md.
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import time

from bpfstats import bpf_run_ns  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = [(0, "entry and return"), (1, "member, owner (mm->owner->tgid)"),
          (2, "process table lookup"), (3, "exact per-CPU sum"), (4, "time (per-CPU cache)"),
          (5, "the whole program")]


def build(stage):
    out = os.path.join(ROOT, "build", "stage%d" % stage)
    subprocess.run(["make", "-s", "-C", ROOT, "OUT=%s" % out,
                    "EXTRA_BPF_CFLAGS=-DMP_STAGE=%d" % stage, os.path.join(out, "mprof")],
                   check=True, stdout=subprocess.DEVNULL)
    return os.path.join(out, "mprof")


def ns_per_event(mprof):
    f = subprocess.Popen([mprof, "fleet", "--all", "-q"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(2.0)
    subprocess.run([os.path.join(ROOT, "build", "tests", "targets", "faultloop"), "20", "64"],
                   check=True, stdout=subprocess.DEVNULL)
    run = bpf_run_ns(f.pid)[2].get("on_rss_stat")
    val = run[0] / max(run[1], 1) if run else None
    f.send_signal(signal.SIGINT)
    f.wait()
    return val


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results_stages.md"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: needs root")
    bins = {st: build(st) for st, _ in STAGES}
    res = {st: [] for st, _ in STAGES}
    subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=1"], check=True)
    try:
        for r in range(a.rounds):
            order = [st for st, _ in STAGES]
            order = order[r % len(order):] + order[:r % len(order)]
            for st in order:
                v = ns_per_event(bins[st])
                if v is not None:
                    res[st].append(v)
    finally:
        subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=0"])
    L = ["| after step | ns/event (median of %d) | this step |" % a.rounds, "|---|---|---|"]
    prev = None
    for st, what in STAGES:
        m = statistics.median(res[st])
        L.append("| %d. %s | %.0f | %s |" % (st, what, m,
                                            "-" if prev is None else "%+.0f" % (m - prev)))
        prev = m
    text = "\n".join(L) + "\n"
    print(text)
    with open(a.out, "w") as f:
        f.write("Measured by bench/bench_stages.py on %s, %d CPUs (run_time_ns includes "
                "bpf_stats' own two clock reads per run).\n\n" % (os.uname().release,
                                                                  os.cpu_count()) + text)


if __name__ == "__main__":
    main()
