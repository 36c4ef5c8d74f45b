#!/usr/bin/env python3
"""Line-profiler overhead: our CPython hook against the plain script and memory_profiler 0.61.

For each interpreter and workload (bench/pyhook_loop.py), N alternated rounds of:
  plain            the script with `profile` a no-op;
  ours (statm)     PYTHONPATH=build/python python -m memory_profiler (no loader: /proc/self/statm);
  ours (kernel)    mprof run python -m memory_profiler (RSS from the BPF page, root only);
  memory_profiler  Debian's python3-memory-profiler (only for Debian's /usr/bin/python3);
  floor            our hook with MPROF_HOOK_NOOP=1: line events reach its C callback, which
                   returns at once; what the interpreter charges for delivering them.
With --compare DIR (another build's python/ folder, e.g. of an earlier commit), two more:
  page             our hook reading a page like the loader's (a memfd, no BPF behind it: the
                   per-line cost of the kernel-page path without root);
  page, DIR        the same with the other build, alternated with it.
The figure is the median of per-round ratios of the profiled section's own time to the plain run.
"""
import argparse
import glob
import os
import statistics
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "bench", "pyhook_loop.py")


def fake_page():
    """A page like the loader's (bpf/mprof.h layout header), that the hook maps read-write."""
    fd = os.memfd_create("mprof-rss", 0)
    os.ftruncate(fd, 4096)
    os.pwrite(fd, struct.pack("IIII", 0x5352504D, 1, 64, 0), 0)
    return fd


def elapsed(cmd, env=None):
    fds = ()
    if env and "MPROF_RSS_FD" in env:
        fds = (int(env["MPROF_RSS_FD"]),)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, pass_fds=fds)
    if p.returncode != 0:
        sys.exit("bench: %s failed: %s" % (" ".join(cmd), p.stderr.strip()[-500:]))
    lines = [l for l in p.stderr.splitlines() if l.startswith("elapsed ")]
    return float(lines[-1].split()[1])


def pythons():
    found = ["/usr/bin/python3"]
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
    except OSError:
        root = ""
    for v in ("3.11", "3.12", "3.13"):
        cands = sorted(glob.glob(os.path.join(root, "versions", v + ".*", "bin", "python3")))
        if root and cands:
            found.append(cands[-1])
    return found


def version(py):
    return subprocess.run([py, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                          capture_output=True, text=True).stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--mprof", default=os.path.join(ROOT, "build", "mprof"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results_pyhook.md"))
    ap.add_argument("--compare", metavar="DIR", help="another build's python/ folder")
    ap.add_argument("--pythons", nargs="*", help="interpreters (default: Debian's, pyenv 3.11-3.13)")
    a = ap.parse_args()
    page = fake_page() if a.compare else None
    ours_env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(a.mprof), "python"))
    orig_env = dict(os.environ)
    orig_env.pop("PYTHONPATH", None)
    rows = []
    for py in a.pythons or pythons():
        for work in ("hot", "thin"):
            args = [SCRIPT, work, str(a.n)]
            modes = {
                "plain": ([py] + args, None),
                "statm": ([py, "-m", "memory_profiler"] + args, ours_env),
                "floor": ([py, "-m", "memory_profiler"] + args,
                          dict(ours_env, MPROF_HOOK_NOOP="1")),
            }
            if os.geteuid() == 0:
                modes["kernel"] = ([a.mprof, "run", "-o", os.devnull, py, "-m",
                                    "memory_profiler"] + args, None)
            if py == "/usr/bin/python3":
                modes["memory_profiler"] = ([py, "-m", "memory_profiler"] + args, orig_env)
            if page is not None:
                modes["page"] = ([py, "-m", "memory_profiler"] + args,
                                 dict(ours_env, MPROF_RSS_FD=str(page)))
                modes["page, other"] = ([py, "-m", "memory_profiler"] + args,
                                        dict(ours_env, MPROF_RSS_FD=str(page),
                                             PYTHONPATH=os.path.abspath(a.compare)))
            ratios = {m: [] for m in modes if m != "plain"}
            plain = []
            names = list(modes)
            for r in range(a.rounds):
                order = names[r % len(names):] + names[:r % len(names)]
                t = {m: elapsed(*modes[m]) for m in order}
                plain.append(t["plain"])
                for m in ratios:
                    ratios[m].append(t[m] / t["plain"])
            rows.append((version(py), py.startswith("/usr/bin"), work, statistics.median(plain),
                         {m: statistics.median(v) for m, v in ratios.items()}))
            print(rows[-1], flush=True)
    cmp_cols = ["page", "page, other"] if page is not None else []
    lines = ["| Python | workload | plain (s) | ours, kernel page | ours, statm | floor: no-op C callback "
             "| memory_profiler 0.61 |" + "".join(" ours, %s |" % c.replace("other", "--compare build")
                                                 for c in cmp_cols),
             "|---|---|---|---|---|---|---|" + "---|" * len(cmp_cols)]
    for ver, deb, work, plain, rt in rows:
        fmt = lambda m: "%.2fx" % rt[m] if m in rt else "-"  # noqa: E731
        lines.append("| %s%s | %s | %.3f | %s | %s | %s | %s |" % (
            ver, " (Debian)" if deb else "", work, plain, fmt("kernel"), fmt("statm"),
            fmt("floor"), fmt("memory_profiler")) + "".join(" %s |" % fmt(c) for c in cmp_cols))
    text = "\n".join(lines) + "\n"
    print(text)
    with open(a.out, "w") as f:
        f.write("Median of %d alternated rounds, %d iterations, ratio of the profiled section's "
                "time to the plain run.\n\n%s" % (a.rounds, a.n, text))


if __name__ == "__main__":
    main()
