#!/usr/bin/env python3
"""The IPython magics' overhead: ours against memory_profiler 0.61 (Debian's), same IPython.

In Debian's ipython3 (the only IPython with 0.61 beside it), N alternated rounds of one IPython
session per tool, each timing, in the same process:
  %memit   -q [0] * (10 ** 7)        against exec() of the statement alone (a 76 MiB list);
  %memit   -q sum(range(10 ** 5))    the same for a statement that allocates nothing: the
                                     magic's own cost;
  %mprun   -f my_func my_func()       (examples/seed.py) against calling my_func() alone.
Figures: median seconds and the median of per-round ratios to the plain run. The increments the
magics report are printed too, to show what each measured.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IPYTHON = "/usr/bin/python3"

SESSION = r'''
import builtins, time, sys
sys.path.insert(0, {examples!r})
builtins.profile = lambda f: f
from seed import my_func
del builtins.profile
%load_ext memory_profiler
STMT = '[0] * (10 ** 7)'
t0 = time.perf_counter(); exec(STMT); print('TIME plain_memit', time.perf_counter() - t0)
t0 = time.perf_counter(); r = get_ipython().run_line_magic('memit', '-o -q ' + STMT); print('TIME memit', time.perf_counter() - t0); print('INC memit', max(r.mem_usage) - r.baseline)
SMALL = 'sum(range(10 ** 5))'
t0 = time.perf_counter(); exec(SMALL); print('TIME plain_memitsmall', time.perf_counter() - t0)
t0 = time.perf_counter(); r = get_ipython().run_line_magic('memit', '-o -q ' + SMALL); print('TIME memitsmall', time.perf_counter() - t0)
t0 = time.perf_counter(); my_func(); print('TIME plain_mprun', time.perf_counter() - t0)
t0 = time.perf_counter(); get_ipython().run_line_magic('mprun', '-f my_func my_func()'); print('TIME mprun', time.perf_counter() - t0)
'''


def session(pythonpath):
    env = dict(os.environ, PYTHONPATH=pythonpath, PYTHONDONTWRITEBYTECODE="1")
    env.pop("MPROF_RSS_FD", None)
    with tempfile.TemporaryDirectory() as d:
        env["IPYTHONDIR"] = d
        p = subprocess.run([IPYTHON, "-m", "IPython", "--no-banner", "--colors=NoColor",
                            "--simple-prompt", "--TerminalInteractiveShell.term_title=False"],
                           input=SESSION.format(examples=os.path.join(ROOT, "examples")),
                           capture_output=True, text=True, env=env, cwd=d)
    out = {}
    for m in re.finditer(r"(TIME|INC) (\w+) ([-\d.e]+)", p.stdout):
        out[(m.group(1), m.group(2))] = float(m.group(3))
    if len(out) != 7:
        sys.exit("bench: the IPython session failed:\n" + p.stdout[-2000:] + p.stderr[-2000:])
    return out


def find_061():
    r = subprocess.run([IPYTHON, "-I", "-c", "import os, site\n"
                        "for d in site.getsitepackages():\n"
                        "    f = os.path.join(d, 'memory_profiler.py')\n"
                        "    if os.path.isfile(f):\n"
                        "        print(f); break\n"], capture_output=True, text=True)
    return r.stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--ours", default=os.path.join(ROOT, "build", "python"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results_magics.md"))
    a = ap.parse_args()
    if subprocess.run([IPYTHON, "-c", "import IPython"], capture_output=True).returncode:
        sys.exit("bench: Debian's ipython3 is not installed (make deps)")
    orig = find_061()
    if not orig:
        sys.exit("bench: Debian's python3-memory-profiler is not installed (make deps)")
    with tempfile.TemporaryDirectory() as shim:
        os.symlink(orig, os.path.join(shim, "memory_profiler.py"))
        tools = {"ours": a.ours, "memory_profiler 0.61": shim}
        names = list(tools)
        res = {n: [] for n in names}
        for r in range(a.rounds):
            for n in names[r % 2:] + names[:r % 2]:
                res[n].append(session(tools[n]))
                print(n, res[n][-1], flush=True)
    lines = ["| magic | plain (s) | ours (s) | ours, ratio | memory_profiler 0.61 (s) | 0.61, ratio "
             "| increment reported: ours / 0.61 (MiB) |", "|---|---|---|---|---|---|---|"]
    labels = {"memit": "%memit [0] * (10 ** 7)", "memitsmall": "%memit sum(range(10 ** 5))",
              "mprun": "%mprun -f my_func my_func()"}
    for magic in ("memit", "memitsmall", "mprun"):
        plain = statistics.median(s[("TIME", "plain_" + magic)] for n in names for s in res[n])
        row = [labels[magic], "%.4f" % plain]
        for n in names:
            t = [s[("TIME", magic)] for s in res[n]]
            ratio = [s[("TIME", magic)] / s[("TIME", "plain_" + magic)] for s in res[n]]
            row += ["%.4f" % statistics.median(t), "%.1fx" % statistics.median(ratio)]
        if magic == "memit":
            row.append(" / ".join("%.2f" % statistics.median(s[("INC", "memit")] for s in res[n])
                                  for n in names))
        else:
            row.append("-")
        lines.append("| " + " | ".join(row) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(a.out, "w") as f:
        f.write("Median of %d alternated rounds, Debian's ipython3 (%s); my_func is "
                "examples/seed.py's; ratio: the median of per-round ratios to the plain "
                "statement.\n\n%s" % (
                    a.rounds, subprocess.run([IPYTHON, "-c", "import IPython; print("
                                              "IPython.__version__)"], capture_output=True,
                                             text=True).stdout.strip(), text))


if __name__ == "__main__":
    main()
