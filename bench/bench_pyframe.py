#!/usr/bin/env python3
"""The cost of reading the CPython stack from BPF at every RSS event (bpf/pyframe.bpf.h).

    sudo python3 bench/bench_pyframe.py --attach build/tests/pyframe/pyframe_attach \\
        [--rounds 5] [--python PATH ...] [--work storm,storm-deep,lines] [--out FILE]

For each interpreter and workload (bench/pyframe_target.py), alternated rounds of:
  plain   the workload alone
  nowalk  the test program of tests/pyframe (per event: find the process, the RSS delta, one
          hash update) without the stack: the floor the walk adds to
  walk    the same with mp_py_current_stack(): the fast path when the chain is unchanged
  full    the same, the thread's last chain forgotten first: a full walk (validation and
          interning) at every event
Per mode: the median of the workload's own time and its ratio to plain, and the program's
median cost per event from the kernel's run_time_ns / run_cnt (kernel.bpf_stats_enabled, on
only during those runs, in rounds of their own). The walk's cost per event is the difference
with nowalk. The machine is shared: expect noise in the wall times, less in ns per event.
"""
import argparse
import glob
import os
import re
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(HERE, "pyframe_target.py")
MODES = ("plain", "nowalk", "walk", "full")


def default_pythons():
    out = []
    root = None
    if shutil.which("pyenv"):
        p = subprocess.run(["pyenv", "root"], capture_output=True, text=True)
        root = p.stdout.strip() if p.returncode == 0 else None
    for minor in range(8, 14):
        found = glob.glob(os.path.join(root or "/nonexistent", "versions", "3.%d.*" % minor,
                                       "bin", "python3"))
        found = [f for f in found if re.search(r"/versions/3\.%d\.\d+/" % minor, f)]
        if found:
            out.append(sorted(found)[-1])
    if os.path.exists("/usr/bin/python3.11"):
        out.append("/usr/bin/python3.11")
    return out


def label(py):
    v = subprocess.run([py, "-c", "import platform; print(platform.python_version())"],
                       capture_output=True, text=True).stdout.strip()
    return "%s (%s)" % (v, "Debian" if py.startswith("/usr/") else "pyenv")


def one(attach, py, work, mode, stats):
    """(workload seconds, ns per event or None, user reads per walk call or None) of a run."""
    t = subprocess.Popen([py, TARGET, work], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    try:
        assert t.stdout.readline().strip() == "ready"
        a = None
        if mode != "plain":
            args = [attach, "-m", mode] + (["-s"] if stats else []) + [str(t.pid)]
            a = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            first = a.stdout.readline()
            if not first.startswith("attached"):
                sys.exit("bench_pyframe: %s" % a.stderr.read().strip())
        t.stdin.write("go\n")
        t.stdin.flush()
        secs = float(t.stdout.readline().split()[1])
        ns = reads = None
        if a:
            out, _ = a.communicate("", timeout=120)
            st = {}
            for line in out.splitlines():
                f = line.split("\t")
                if f[0] == "prog" and int(f[1]):
                    ns = int(f[2]) / int(f[1])
                elif f[0] == "stats":
                    st[f[1]] = int(f[2])
            if st.get("calls"):
                reads = st["reads"] / st["calls"]
        return secs, ns, reads
    finally:
        t.stdin.close()
        t.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--attach", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--python", action="append")
    ap.add_argument("--work", default="storm,storm-deep,lines")
    ap.add_argument("--out", default=os.path.join(HERE, "results_pyframe.md"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_pyframe: needs root (BPF)")
    pys = args.python or default_pythons()
    rows = []
    for py in pys:
        for work in args.work.split(","):
            secs = {m: [] for m in MODES}
            ns = {m: [] for m in MODES[1:]}
            reads = {m: [] for m in MODES[2:]}
            for _ in range(args.rounds):
                for m in MODES:
                    secs[m].append(one(args.attach, py, work, m, False)[0])
                for m in MODES[1:]:
                    _, n, rd = one(args.attach, py, work, m, True)
                    ns[m].append(n)
                    if m in reads:
                        reads[m].append(rd)
            med = {m: statistics.median(v) for m, v in secs.items()}
            mns = {m: statistics.median(v) for m, v in ns.items()}
            mrd = {m: statistics.median(v) for m, v in reads.items()}
            row = (label(py), work, med["plain"],
                   med["nowalk"] / med["plain"], med["walk"] / med["plain"],
                   med["full"] / med["plain"], mns["nowalk"], mns["walk"], mns["full"],
                   mns["walk"] - mns["nowalk"], mrd["walk"], mns["full"] - mns["nowalk"],
                   mrd["full"])
            rows.append(row)
            print("%-16s %-10s plain %.3f s  nowalk %.2fx  walk %.2fx  full %.2fx  "
                  "ns/event %.0f / %.0f / %.0f  walk +%.0f (%.1f reads)  full +%.0f (%.1f reads)"
                  % row, flush=True)
    # what one user read costs here: 8 reads of the user stack per event, against nowalk
    per_read = []
    for _ in range(args.rounds):
        base = one(args.attach, pys[0], "storm", "nowalk", True)[1]
        eight = one(args.attach, pys[0], "storm", "reads", True)[1]
        per_read.append((eight - base) / 8)
    read_ns = statistics.median(per_read)
    print("one bpf_probe_read_user() of 8 bytes: %.0f ns (median of %s)"
          % (read_ns, ", ".join("%.0f" % x for x in per_read)))
    with open(args.out, "w") as f:
        f.write("Rounds per cell: %d, alternated; medians. Machine: %s, %d CPUs. One user read "
                "(bpf_probe_read_user of 8 bytes) costs %.0f ns here (median of %s).\n\n"
                % (args.rounds, os.uname().release, os.cpu_count(), read_ns,
                   ", ".join("%.0f" % x for x in per_read)))
        f.write("| Python | workload | plain (s) | nowalk | walk | full | ns/event nowalk |"
                " walk | full | walk cost (ns) | reads/event | full-walk cost (ns) |"
                " reads/event |\n")
        f.write("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            f.write("| %s | %s | %.3f | %.2fx | %.2fx | %.2fx | %.0f | %.0f | %.0f | %.0f |"
                    " %.1f | %.0f | %.1f |\n" % r)
    print("wrote %s" % args.out)


main()
