#!/usr/bin/env python3
"""The pytest plugin's cost per test: pytest sessions of N trivial tests, with and without it.

Every session runs Debian's pytest on N tests that do nothing, in a scratch folder holding a
copy of the build's package and its metadata (the pytest11 entry point loads the plugin as in
an install), byte-compiled as `make install` does. "Plugin off" is
`-p no:memory_profiler.pytest_plugin`, the same session without it. Sessions:

  loaded, unused       the plugin loaded, no test marked, no --mprof-top: what every session of
                       an interpreter it is installed for pays
  --mprof-top 5        every test measured (VmHWM: a reset, a read of /proc/self/statm and
                       one of /proc/self/status)
  every test marked    @pytest.mark.limit_rss("1 GiB") on each (the same file, plugin off, is
                       its baseline; a pytest.ini declares the marker for it)
  every other marked   in one session, a marked test's time less an unmarked one's
and, as root, the same under `mprof run` (kernel backend), where the plugin reads the kernel
page (a marked test is also line-profiled, to name the line of a peak), against `mprof run`
of the session with the plugin off; that baseline against plain pytest is the run's own cost.

A conftest measures inside the pytest process: the CPU time of each test (its
runtest_protocol), the median over the session; and the process's CPU time from the end of
collection (before the plugin looks for marked tests) to the end of the session. The
per-test overhead is the difference of the medians over the rounds (and the median of the
per-round differences); sessions compared run back to back, their order turning each round.
The reads alone: the CPU time of the meter's two calls (a window's start, its peak), in VmHWM
mode and on the kernel page. Loading the plugin: the CPU time pytest spends loading its
pytest11 entry points, plugin off against loaded, with the .pyc files and without (a user who
cannot write an install folder that was not byte-compiled). The load average is noted at the
start and the end. Writes bench/results_plugin.md.
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
PY = "/usr/bin/python3"
OFF = ["-p", "no:memory_profiler.pytest_plugin"]

CONFTEST = '''
import os
import statistics
import time

import pytest

_start = []
_cpu = []
_wall = []
_by_mark = {True: [], False: []}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session):
    _start.append((time.perf_counter(), time.process_time()))


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item):
    c0, w0 = time.thread_time(), time.perf_counter()
    yield
    _cpu.append(time.thread_time() - c0)
    _wall.append(time.perf_counter() - w0)
    _by_mark[item.get_closest_marker("limit_rss") is not None].append(_cpu[-1])


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    wall, cpu = _start[0]
    with open(os.environ["BENCH_TIMES"], "w") as f:
        f.write("%.9f %.9f %.9f %.9f %.9f\\n" % (
            statistics.median(_cpu), statistics.median(_wall), time.process_time() - cpu,
            statistics.median(_by_mark[True] or [0]), statistics.median(_by_mark[False] or [0])))
'''

INI = "[pytest]\nmarkers =\n    limit_rss(size): the plugin's marker, declared for its absence\n"

# name: (test file, under mprof run, pytest arguments, environment changes)
SESSIONS = {
    "off": ("test_plain.py", False, OFF, {}),
    "off-again": ("test_plain.py", False, OFF, {}),
    "loaded": ("test_plain.py", False, [], {}),
    "top": ("test_plain.py", False, ["--mprof-top", "5"], {}),
    "off-marked": ("test_marked.py", False, OFF, {}),
    "marked": ("test_marked.py", False, [], {}),
    "run-off": ("test_plain.py", True, OFF, {}),
    "run-top": ("test_plain.py", True, ["--mprof-top", "5"], {}),
    "run-off-marked": ("test_marked.py", True, OFF, {}),
    "run-marked": ("test_marked.py", True, [], {}),
    "mixed": ("test_mixed.py", False, [], {}),
    "run-mixed": ("test_mixed.py", True, [], {}),
}

# Run back to back, the order turning each round, so that a session and its baseline meet the
# same load; compared: (label, baseline, session)
GROUPS = [["off", "off-again", "loaded", "top", "run-off", "run-top"],
          ["off-marked", "marked", "run-off-marked", "run-marked"], ["mixed", "run-mixed"]]
ROWS = [("the same session again: the noise", "off", "off-again"),
        ("loaded, unused (no test marked, no `--mprof-top`)", "off", "loaded"),
        ("`--mprof-top 5`, VmHWM", "off", "top"),
        ("every test marked `limit_rss`, VmHWM", "off-marked", "marked"),
        ("`mprof run`, plugin off (the run's own cost)", "off", "run-off"),
        ("`mprof run`, `--mprof-top 5`, kernel page", "run-off", "run-top"),
        ("`mprof run`, every test marked, kernel page (line-profiled)", "run-off-marked",
         "run-marked")]
BASES = {"off": "plugin off", "off-marked": "plugin off, same marks",
         "run-off": "`mprof run`, plugin off",
         "run-off-marked": "`mprof run`, plugin off, same marks"}


# pytest with the CPU time of loading the pytest11 entry points (every plugin installed).
LOADTIME = '''
import sys
import time

import pluggy
import pytest

spent = []
load = pluggy.PluginManager.load_setuptools_entrypoints


def timed(self, group, name=None):
    t0 = time.thread_time()
    try:
        return load(self, group, name)
    finally:
        spent.append(time.thread_time() - t0)


pluggy.PluginManager.load_setuptools_entrypoints = timed
rc = pytest.main(sys.argv[1:])
print("LOAD %.9f" % sum(spent), file=sys.stderr)
sys.exit(rc)
'''


# The plugin's reads alone: a window's start and its peak, 20 000 times each.
METER = '''
import time

from memory_profiler import pytest_plugin

m = pytest_plugin._Meter()
for f in (m.mark, m.peak):
    t0 = time.thread_time()
    for _ in range(20000):
        f()
    print("METER %.9f" % ((time.thread_time() - t0) / 20000))
'''


def meter_cost(mprof, site, tmp, rounds, under_run):
    """Medians over @rounds of (mark, peak) in seconds, in VmHWM mode or under mprof run."""
    script = os.path.join(tmp, "meter.py")
    with open(script, "w") as f:
        f.write(METER)
    env = {k: v for k, v in os.environ.items() if k != "MPROF_RSS_FD"}
    env["PYTHONPATH"] = site
    cmd = [PY, script]
    if under_run:
        cmd = [mprof, "run", "-o", os.path.join(tmp, "meter.dat")] + cmd
    res = []
    for _ in range(rounds):
        p = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        got = [float(x) for x in re.findall(r"^METER ([\d.]+)$", p.stdout, re.M)]
        if p.returncode != 0 or len(got) != 2:
            sys.exit("bench: the meter alone failed:\n%s%s" % (p.stdout[-1500:],
                                                               p.stderr[-1500:]))
        res.append(got)
    return [statistics.median(x[i] for x in res) for i in range(2)]


def load_cost(site, bare, tmp, rounds):
    """Medians over @rounds of the entry points' load time: plugin off, loaded (with .pyc
    files), loaded from @bare (none, and none written)."""
    script = os.path.join(tmp, "loadtime.py")
    with open(script, "w") as f:
        f.write(LOADTIME)
    with open(os.path.join(tmp, "test_one.py"), "w") as f:
        f.write("def test_one():\n    pass\n")
    kinds = {"off": (site, OFF, {}), "pyc": (site, [], {}),
             "nopyc": (bare, [], {"PYTHONDONTWRITEBYTECODE": "1"})}
    res = {k: [] for k in kinds}
    for r in range(rounds + 1):
        names = list(kinds)
        for k in names[r % 3:] + names[:r % 3]:
            path, args, change = kinds[k]
            env = {k2: v for k2, v in os.environ.items() if k2 not in (
                "PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "MPROF_RSS_FD",
                "PYTHONDONTWRITEBYTECODE")}
            env.update(PYTHONPATH=path, BENCH_TIMES=os.path.join(tmp, "times.txt"), **change)
            p = subprocess.run([PY, script, "-q", "-p", "no:cacheprovider"] + args +
                               ["test_one.py"], cwd=tmp, env=env, capture_output=True,
                               text=True)
            m = re.search(r"^LOAD ([\d.]+)$", p.stderr, re.M)
            if p.returncode != 0 or not m:
                sys.exit("bench: loading the plugin (%s) failed:\n%s%s" % (
                    k, p.stdout[-1500:], p.stderr[-1500:]))
            if r:  # the first round warms up
                res[k].append(float(m.group(1)))
    return {k: statistics.median(v) for k, v in res.items()}


def write_tests(tmp, n):
    with open(os.path.join(tmp, "test_plain.py"), "w") as f:
        f.write("".join("def test_%d():\n    pass\n\n\n" % i for i in range(n)))
    with open(os.path.join(tmp, "test_marked.py"), "w") as f:
        f.write("import pytest\n\n\n" + "".join(
            '@pytest.mark.limit_rss("1 GiB")\ndef test_%d():\n    pass\n\n\n' % i
            for i in range(n)))
    with open(os.path.join(tmp, "test_mixed.py"), "w") as f:
        f.write("import pytest\n\n\n" + "".join(
            ('@pytest.mark.limit_rss("1 GiB")\n' if i % 2 == 0 else "") +
            "def test_%d():\n    pass\n\n\n" % i for i in range(n)))
    with open(os.path.join(tmp, "conftest.py"), "w") as f:
        f.write(CONFTEST)
    with open(os.path.join(tmp, "pytest.ini"), "w") as f:
        f.write(INI)


def session(name, mprof, site, tmp):
    """Seconds of one session: a test's CPU time and wall time (medians over the session), the
    process's CPU time from the end of collection to the end, the whole command's wall time, and
    a marked test's CPU time less an unmarked one's (medians over the session)."""
    test, under_run, args, env_change = SESSIONS[name]
    times = os.path.join(tmp, "times.txt")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "MPROF_RSS_FD",
                        "PYTHONDONTWRITEBYTECODE")}
    env.update(PYTHONPATH=site, BENCH_TIMES=times, **env_change)
    cmd = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider"] + args + [test]
    if under_run:
        cmd = [mprof, "run", "-o", os.path.join(tmp, "run.dat")] + cmd
    if os.path.exists(times):
        os.unlink(times)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0 or not os.path.exists(times):
        sys.exit("bench: %s failed (%d):\n%s%s" % (" ".join(cmd), p.returncode,
                                                   p.stdout[-1500:], p.stderr[-1500:]))
    if name in ("top", "run-top") and "highest peaks" not in p.stdout:
        sys.exit("bench: %s: the plugin did not report:\n%s" % (name, p.stdout[-1500:]))
    with open(times) as f:
        cpu, each, part, marked, unmarked = (float(x) for x in f.read().split())
    return cpu, each, part, wall, marked - unmarked


def loadavg():
    return "%.2f / %.2f / %.2f" % os.getloadavg()


def report(res, load, meter, n, rounds):
    """The tables, from {session: [session() per round]}."""
    med = {k: [statistics.median(x[i] for x in v) for i in range(5)] for k, v in res.items()}
    L = ["### Per test (%d trivial tests a session, %d rounds, medians)" % (n, rounds), "",
         "| session | baseline | a test, baseline (us CPU) | a test (us CPU) | overhead (us) "
         "| paired (us) | ratio | from the session's CPU time (us) | a test, wall: baseline / "
         "this (us) | whole session, baseline / this (s) |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for label, base, this in ROWS:
        if this not in med:
            continue
        b, t = med[base], med[this]
        paired = statistics.median(y[0] - x[0] for x, y in zip(res[base], res[this]))
        L.append("| %s | %s | %.1f | %.1f | %+.1f | %+.1f | %.2fx | %+.1f | %.1f / %.1f "
                 "| %.3f / %.3f |" % (
                     label, BASES[base], b[0] * 1e6, t[0] * 1e6, (t[0] - b[0]) * 1e6,
                     paired * 1e6, t[0] / b[0], (t[2] - b[2]) / n * 1e6, b[1] * 1e6,
                     t[1] * 1e6, b[3], t[3]))
    L += ["", "\"A test\": the CPU time of the thread running one test's "
          "`pytest_runtest_protocol` (setup, call, teardown, reports; the kernel's work for it, "
          "page faults included), the median over a session's tests, then over the rounds (CPU "
          "time, not wall time: this VM is shared, and a test preempted by another job would "
          "count that job). Overhead: the difference of those medians; paired: the median of "
          "the per-round differences, the session and its baseline run back to back; ratio: "
          "of the medians. \"From the session's CPU time\": the difference of the medians of "
          "the pytest process's CPU time from the end of collection to the end of the session, "
          "over N (the plugin's one look for marked tests included).", "",
          "### In one session, every other test marked (%d rounds, medians)" % rounds, "",
          "| session | a marked test less an unmarked one (us CPU) |", "|---|---|",
          "| VmHWM | %+.1f |" % (med["mixed"][4] * 1e6)]
    if "run-mixed" in med:
        L.append("| `mprof run`, kernel page (line-profiled) | %+.1f |" % (
            med["run-mixed"][4] * 1e6))
    L += ["", "The two kinds of test interleaved in one process meet the same load: the median "
          "over the session of each kind's CPU time, their difference, the median over the "
          "rounds. What it costs to measure a test, beside an unmeasured one.", "",
          "### The reads alone (CPU time of one call, 20 000 calls, median of 5 runs)", "",
          "| source | start of a test's window (us) | its peak (us) |", "|---|---|---|"]
    for k, (mark, peak) in meter.items():
        L.append("| %s | %.2f | %.2f |" % (k, mark * 1e6, peak * 1e6))
    L += ["", "VmHWM: the reset (a write to `/proc/self/clear_refs`) and the RSS from "
          "`/proc/self/statm`, then `/proc/self/status` read for the high-water mark; the "
          "kernel page: two reads of a shared page.", "",
          "### Loading the plugin (CPU time pytest spends loading the pytest11 entry points, "
          "%d rounds, medians)" % rounds, "",
          "- plugin off: %.1f ms (finding the entry points of every installed distribution)" % (
              load["off"] * 1e3),
          "- loaded, from the .pyc files `make install` writes: %.1f ms (%+.1f ms)" % (
              load["pyc"] * 1e3, (load["pyc"] - load["off"]) * 1e3),
          "- loaded, no .pyc files and none written: %.1f ms (%+.1f ms)" % (
              load["nopyc"] * 1e3, (load["nopyc"] - load["off"]) * 1e3)]
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mprof", default=os.path.join(ROOT, "build", "mprof"))
    ap.add_argument("--package", default=os.path.join(ROOT, "build", "python"),
                    help="the folder holding memory_profiler and its .dist-info")
    ap.add_argument("--tests", type=int, default=200, help="N, the tests of a session")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results_plugin.md"))
    a = ap.parse_args()
    if a.rounds < 5:
        sys.exit("bench: at least 5 rounds")
    if not any(d.startswith("memory_profiler-") for d in os.listdir(a.package)):
        sys.exit("bench: no memory_profiler metadata in '%s' (make)" % a.package)
    root = os.geteuid() == 0
    if not root:
        print("bench: not root: the sessions under mprof run are left out", file=sys.stderr)
    groups = [[k for k in g if root or not SESSIONS[k][1]] for g in GROUPS]
    load_start = loadavg()
    tmp = tempfile.mkdtemp(prefix="mprof-bench-plugin-")
    try:
        bare = os.path.join(tmp, "bare")
        shutil.copytree(a.package, bare, ignore=shutil.ignore_patterns("__pycache__"))
        site = os.path.join(tmp, "site")
        shutil.copytree(bare, site)
        subprocess.run([PY, "-m", "compileall", "-q", "--invalidation-mode", "checked-hash",
                        os.path.join(site, "memory_profiler")], check=True,
                       stdout=subprocess.DEVNULL)
        work = os.path.join(tmp, "work")
        os.mkdir(work)
        write_tests(work, a.tests)
        res = {}
        for g in groups:
            for k in g:  # warm-up: .pyc files, the page cache
                session(k, a.mprof, site, work)
                res[k] = []
        for r in range(a.rounds):
            for g in groups:
                i = r % len(g)
                for k in g[i:] + g[:i]:
                    res[k].append(session(k, a.mprof, site, work))
            print("round %d/%d done" % (r + 1, a.rounds), file=sys.stderr, flush=True)
        load = load_cost(site, bare, work, a.rounds)
        meter = {"VmHWM": meter_cost(a.mprof, site, work, 5, False)}
        if root:
            meter["`mprof run`, kernel page"] = meter_cost(a.mprof, site, work, 5, True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load_end = loadavg()
    text = report(res, load, meter, a.tests, a.rounds)
    print(text)
    ver = subprocess.run([PY, "-c", "import platform, pytest; print(platform.python_version(), "
                          "pytest.__version__)"], capture_output=True, text=True).stdout.split()
    with open(a.out, "w") as f:
        f.write("Measured by bench/bench_plugin.py on %s, %d CPUs; Python %s (%s), pytest %s. "
                "Load average (1/5/15 min) at the start %s, at the end %s.\n\n" % (
                    os.uname().release, os.cpu_count(), ver[0], PY, ver[1], load_start,
                    load_end) + text)


if __name__ == "__main__":
    main()
