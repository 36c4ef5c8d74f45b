#!/usr/bin/env python3
"""Fixed costs of mprof run and the cost of reading large files, next to memory_profiler 0.61.

1. Python mode: the seed example (examples/seed.py, run through a wrapper that gives it a no-op
   `profile` when none is installed, so that --nopython runs the same work) under `mprof run`
   (Python mode: our memory_profiler --timestamp, FUNC lines through the hook's pipe) and
   `mprof run --nopython`, plus the plain script and memory_profiler's two modes; alternated
   rounds, medians. The fixed cost of Python mode is the median of (Python mode - --nopython)
   per round.
2. mprof's own start-up (to the command's exec) and teardown (from the command's end to the file
   closed and the BPF objects released), from `mprof run --stats /bin/true`.
3. `mprof peak` and `mprof plot` on a generated 1 GiB .dat: wall time and the process's own
   maximum RSS (wait4), ours and memory_profiler's, alternated.
Writes bench/results_fixed.md.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WRAPPER = """import builtins, sys
if not hasattr(builtins, 'profile'):
    builtins.profile = lambda f: f
path = %r
sys.argv[0] = path
exec(compile(open(path).read(), path, 'exec'), {'__name__': '__main__'})
"""


def run_measured(cmd, env=None, cwd=None):
    """Wall seconds, stdout and stderr of @cmd."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
    out, err = p.communicate()
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit("bench: %s failed: %s" % (" ".join(cmd), err.decode(errors="replace")[-500:]))
    return dt, out.decode(errors="replace"), err.decode(errors="replace")


def run_rusage(cmd, cwd=None):
    """Wall seconds and max RSS in KiB of @cmd (wait4 on its pid), output discarded."""
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        if cwd:
            os.chdir(cwd)
        os.execvp(cmd[0], cmd)
    _, status, ru = os.wait4(pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("bench: %s failed" % " ".join(cmd))
    return dt, ru.ru_maxrss


def python_mode(mprof, orig, py, rounds, tmp):
    wrapper = os.path.join(tmp, "seed_any.py")
    with open(wrapper, "w") as f:
        f.write(WRAPPER % os.path.join(ROOT, "examples", "seed.py"))
    env = dict(os.environ, MPROF_PYTHON=py)
    kinds = ["plain", "ours-python", "ours-nopython"]
    if orig:
        kinds += ["mp-python", "mp-nopython"]
    t = {k: [] for k in kinds}
    diff = []
    for r in range(rounds):
        order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
        this = {}
        for k in order:
            out = os.path.join(tmp, "py-%s.dat" % k)
            if os.path.exists(out):
                os.unlink(out)
            if k == "plain":
                cmd = [py, wrapper]
            elif k == "ours-python":
                cmd = [mprof, "run", "-o", out, wrapper]
            elif k == "ours-nopython":
                cmd = [mprof, "run", "--nopython", "-o", out, wrapper]
            elif k == "mp-python":
                cmd = [orig, "run", "-o", out, wrapper]
            else:
                cmd = [orig, "run", "--nopython", "-o", out, py, wrapper]
            dt, _, _ = run_measured(cmd, env=env, cwd=tmp)
            this[k] = dt
            t[k].append(dt)
        diff.append(this["ours-python"] - this["ours-nopython"])
    return {k: statistics.median(v) for k, v in t.items()}, statistics.median(diff)


def startup_teardown(mprof, rounds, tmp):
    st, td, total = [], [], []
    for _ in range(rounds):
        out = os.path.join(tmp, "true.dat")
        if os.path.exists(out):
            os.unlink(out)
        dt, _, err = run_measured([mprof, "run", "--stats", "-o", out, "/bin/true"])
        m = re.search(r"start-up ([\d.]+) ms.*teardown ([\d.]+) ms", err)
        st.append(float(m.group(1)))
        td.append(float(m.group(2)))
        total.append(dt)
    return statistics.median(st), statistics.median(td), statistics.median(total)


def readers(mprof, orig, gendat, size_mib, rounds, tmp):
    big = os.path.join(tmp, "big.dat")
    subprocess.run([gendat, big, str(size_mib)], check=True, stdout=subprocess.DEVNULL)
    size = os.path.getsize(big)
    res = {}
    tools = [("ours", [mprof])] + ([("memory_profiler", [orig])] if orig else [])
    for what in ("peak", "plot"):
        for r in range(rounds):
            for name, tool in (tools if r % 2 == 0 else tools[::-1]):
                png = os.path.join(tmp, "big-%s.png" % name)
                args = [what, big] if what == "peak" else [what, "-o", png, big]
                dt, kb = run_rusage(tool + args, cwd=tmp)
                res.setdefault((what, name), []).append((dt, kb))
    os.unlink(big)
    return size, {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
                  for k, v in res.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mprof", default=os.path.join(ROOT, "build", "mprof"))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--reader-rounds", type=int, default=3)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results_fixed.md"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: needs root (the kernel backend)")
    orig = shutil.which("python3-mprof", path="/usr/bin")
    gendat = os.path.join(ROOT, "build", "tests", "targets", "gendat")
    tmp = tempfile.mkdtemp(prefix="mprof-bench-")
    try:
        py, pydiff = python_mode(a.mprof, orig, a.python, a.rounds, tmp)
        st, td, tot = startup_teardown(a.mprof, a.rounds, tmp)
        size, rd = readers(a.mprof, orig, gendat, a.size_mib, a.reader_rounds, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    L = ["### Python mode on the seed example (%s, %d alternated rounds, medians)" % (
        a.python, a.rounds), "",
        "| run | wall (s) |", "|---|---|"]
    names = {"plain": "plain script", "ours-python": "mprof-bpf `mprof run` (Python mode)",
             "ours-nopython": "mprof-bpf `mprof run --nopython`",
             "mp-python": "memory_profiler `mprof run` (Python mode)",
             "mp-nopython": "memory_profiler `mprof run --nopython`"}
    for k, v in py.items():
        L.append("| %s | %.3f |" % (names[k], v))
    L += ["", "Python mode's fixed cost (median per-round difference to --nopython): "
          "**%.3f s** (goal <= 0.15 s)." % pydiff, "",
          "### mprof's own start-up and teardown (`mprof run --stats /bin/true`, medians)", "",
          "- start-up (mprof's start to the command's exec): %.1f ms" % st,
          "- teardown (the command's end to the file closed and BPF released): %.1f ms" % td,
          "- whole `mprof run /bin/true`: %.3f s" % tot, "",
          "### Reading a %.2f GiB .dat (%d alternated rounds, medians)" % (
              size / 2 ** 30, a.reader_rounds), "",
          "| command | tool | wall (s) | max RSS (MiB) |", "|---|---|---|---|"]
    for (what, name), (dt, kb) in sorted(rd.items()):
        L.append("| `mprof %s` | %s | %.2f | %.1f |" % (what, name, dt, kb / 1024))
    text = "\n".join(L) + "\n"
    print(text)
    with open(a.out, "w") as f:
        f.write("Measured by bench/bench_fixed.py on %s, %d CPUs.\n\n" % (
            os.uname().release, os.cpu_count()) + text)


if __name__ == "__main__":
    main()
