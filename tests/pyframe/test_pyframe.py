"""End to end: a test BPF object using bpf/pyframe.bpf.h, attached to running interpreters.

Each interpreter runs scripts/lines.py, started plainly; the driver attaches while it runs; the
target then allocates known amounts at known lines. Every line must be charged what it grew or
freed within 2 % (the truth: the nominal size, and the RSS change the target measured itself),
with its calling chain; lines that ran before the attach are not charged; the target is never
stopped or traced. Then the refusals: a non-Python process, versions we do not read, a binary
without symbols, a wrong layout.
"""
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import (ATTACH, SCRIPTS, Attached, markers, needs_kernel, old_pythons,
                      pythons)

MIB = 1 << 20
LINES = os.path.join(SCRIPTS, "lines.py")
PYS = pythons()


def near(got, want, tol=0.02):
    return abs(got - want) <= tol * want


def one_line(result, line, key):
    stacks = result.top_at(LINES, line)
    return sum(s[key] for s in stacks), stacks


@needs_kernel
@pytest.mark.parametrize("py", [p for _, p in PYS], ids=[n for n, _ in PYS])
def test_lines_grow_and_free_what_they_did(py):
    m = markers(LINES)
    a = Attached(py, LINES)
    try:
        steps, done, states = a.run()
        r = a.finish()
    finally:
        a.kill()
    why = "\n".join("%s %s" % (s["frames"][:2], (s["grown"], s["freed"])) for s in r.stacks)

    # 3.13+ reads its offsets from _Py_DebugOffsets, which agree with the table
    minor = int(r.attached[1])
    assert r.attached[2] == ("1" if minor >= 13 else "0") and r.attached[3] == "0", r.attached

    # nothing failed, nothing was guessed
    for k in ("failed", "bad_code", "bad_frame", "collisions", "stacks_full", "partial",
              "resolver_failures", "resolver_stale"):
        assert r.stats[k] == 0, (k, r.stats)
    assert r.stats["fast"] > r.stats["walked"] > 0, r.stats

    expect = [  # line, grown or freed, nominal bytes, the step whose own RSS change is the truth
        ("A", "grown", 100 * MIB, "a"),
        ("MEMSET", "grown", 50 * MIB, "memset"),  # ctypes.memset: the GIL is released
        ("FREE", "freed", 50 * MIB, "free"),
        ("BIG", "grown", 60 * MIB, None),
        ("DEL", "freed", 60 * MIB, "del"),
        ("GEN", "grown", 25 * MIB, "gen"),
        ("THREAD", "grown", 40 * MIB, "thread"),
    ]
    for name, key, nominal, step in expect:
        got, _ = one_line(r, m[name], key)
        assert near(got, nominal), (name, got, nominal, why)
        if step:
            assert near(got, abs(steps[step])), (name, got, steps[step], why)

    # one function, two call sites: each caller is charged its own call (a top-frame-only
    # fast path would give both to the first)
    _, inner = one_line(r, m["INNER"], "grown")
    by_site = {}
    for s in inner:
        lines = [int(f[2]) for f in s["frames"]]
        assert s["frames"][1][0] == "outer" and lines[1] == m["OUTER"], s["frames"]
        site = m["X1"] if m["X1"] in lines else m["X2"] if m["X2"] in lines else None
        assert site, s["frames"]
        by_site[site] = by_site.get(site, 0) + s["grown"]
        names = [f[0] for f in s["frames"]]
        assert names[-1] == "<module>" and "main" in names and "work" in names, names
    assert near(by_site.get(m["X1"], 0), 20 * MIB), by_site
    assert near(by_site.get(m["X2"], 0), 40 * MIB), by_site
    assert near(by_site[m["X1"]], steps["x1"]) and near(by_site[m["X2"]], steps["x2"])

    # the generator's frame sits on the frame that resumed it
    _, gen = one_line(r, m["GEN"], "grown")
    assert any(int(f[2]) == m["NEXT"] for s in gen for f in s["frames"][1:]), gen

    # the second thread's stack is its own: the target function, then threading's bootstrap
    _, th = one_line(r, m["THREAD"], "grown")
    for s in th:
        names = [f[0].rsplit(".", 1)[-1] for f in s["frames"]]
        assert names[0] == "thread_work" and "run" in names and names[-1] == "_bootstrap", names
        assert os.path.basename(s["frames"][-1][1]) == "threading.py"

    # a native thread (pthread_create, no Python state) is charged to no Python line: its
    # strdup() of 30 MiB is in the "no Python frame" row, not on the line waiting for it
    none = sum(s["grown"] for s in r.stacks if s["id"] == 0)
    assert near(none, 30 * MIB), (none, why)
    assert one_line(r, m["JOIN"], "grown")[0] < MIB
    assert near(one_line(r, m["NFILL"], "grown")[0], 30 * MIB)
    assert r.stats["no_tstate"] > 0, r.stats

    # the 30 MiB of PRE were there before the attach: not charged
    pre, _ = one_line(r, m["PRE"], "grown")
    assert pre < MIB, pre

    # never stopped, never traced: its heartbeat thread kept beating (the longest pause is the
    # GIL held by a 100 MiB memset, longer on a loaded machine, never the whole attach)
    gap_ms, tracer = float(done[0]), int(done[1])
    assert tracer == 0
    assert gap_ms < 5000, gap_ms
    assert not states & {"T", "t"}, states


def refused(pid, *args):
    p = subprocess.run([ATTACH] + list(args) + [str(pid)], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and p.stdout == "", (p.returncode, p.stdout, p.stderr)
    return p.stderr


@needs_kernel
def test_not_python():
    p = subprocess.Popen(["sleep", "60"])
    try:
        assert refused(p.pid) == "pyframe_attach: not a python process\n"
    finally:
        p.kill()
        p.wait()


@needs_kernel
def test_no_such_process():
    p = subprocess.Popen(["true"])
    p.wait()
    assert refused(p.pid) == "pyframe_attach: no such process\n"


@needs_kernel
@pytest.mark.parametrize("py", old_pythons() or [None])
def test_unsupported_versions(py):
    if py is None:
        pytest.skip("no interpreter older than 3.8 installed")
    # once it is up: before, it is refused as "not initialized yet"
    up = "import sys, time; sys.stdout.write('up\\n'); sys.stdout.flush(); time.sleep(60)"
    p = subprocess.Popen([py, "-c", up], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "up\n"
        assert refused(p.pid) == (
            "pyframe_attach: unsupported python version (3.8 to 3.13 are supported)\n")
    finally:
        p.kill()
        p.wait()


@needs_kernel
def test_binary_without_symbols():
    """An executable named like Python but without _PyRuntime: a stripped static build."""
    d = tempfile.mkdtemp(prefix="pyframe-")
    try:
        fake = os.path.join(d, "python3.11")
        shutil.copy(shutil.which("sleep"), fake)
        p = subprocess.Popen([fake, "60"])
        try:
            assert refused(p.pid) == "pyframe_attach: stripped binary: no _PyRuntime symbol\n"
        finally:
            p.kill()
            p.wait()
    finally:
        shutil.rmtree(d)


@needs_kernel
@pytest.mark.parametrize("real,wrong", [(11, 12), (12, 11), (10, 9), (13, 12), (11, 10)])
def test_wrong_layout_is_refused(real, wrong):
    """Read as another version, every interpreter fails the live layout checks."""
    py = dict(PYS).get("pyenv-3.%d" % real)
    if not py:
        pytest.skip("pyenv 3.%d is not installed" % real)
    p = subprocess.Popen([py, "-c", "import time; time.sleep(60)"])
    try:
        import time
        time.sleep(0.3)  # initialized
        err = refused(p.pid, "-V", str(wrong))
        assert err.startswith("pyframe_attach: python layout check failed"), err
        # and read as itself, the same process is accepted
        q = subprocess.run([ATTACH, str(p.pid)], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=60)
        assert q.returncode == 0 and q.stdout.startswith("attached"), q.stderr
    finally:
        p.kill()
        p.wait()


def attach_run(py, script, args=()):
    a = Attached(py, os.path.join(SCRIPTS, script), args)
    try:
        a.run()
        return a.finish()
    finally:
        a.kill()


@needs_kernel
@pytest.mark.parametrize("py", [p for _, p in PYS], ids=[n for n, _ in PYS])
def test_deep_stack_keeps_its_top(py):
    m = markers(os.path.join(SCRIPTS, "deep.py"))
    r = attach_run(py, "deep.py")
    [s] = [s for s in r.top_at("deep.py", m["BOTTOM"]) if s["grown"]]
    assert near(s["grown"], 20 * MIB), s["grown"]
    assert s["depth"] == 32 and s["flags"] == 1, s  # MP_PYSTACK_TRUNCATED
    assert [f[0] for f in s["frames"]] == ["down"] * 32
    assert r.stats["truncated"] >= 1 and r.stats["failed"] == 0


@needs_kernel
@pytest.mark.parametrize("py", [p for _, p in PYS], ids=[n for n, _ in PYS])
def test_recycled_code_objects(py):
    """24 copies of one function, each at the address of the one freed before it.

    Frames are identified by address: the copies share one stack id, charged to the right
    function and line, and named after one of the copies (see the README's limits). What must
    never happen: a frame charged to something else, or a failure.
    """
    a = Attached(py, os.path.join(SCRIPTS, "churn.py"))
    try:
        assert a.first.startswith("attached"), a.driver.stderr.read()
        a.target.stdin.write("go\n")
        a.target.stdin.flush()
        codes = []
        while True:
            line = a.target.stdout.readline()
            assert line
            if line.startswith("code "):
                codes.append(line.split()[1])
            elif line.startswith("done"):
                break
        r = a.finish()
    finally:
        a.kill()
    assert len(codes) == 24 and len(set(codes)) < 24, "CPython did not reuse any address"
    line = markers(os.path.join(SCRIPTS, "churn.py"))["ALLOC"]
    charged = [s for s in r.stacks if s["grown"] >= MIB]
    assert charged, r.stacks
    for s in charged:
        name, path, at = s["frames"][0]
        assert name == "template" and at == str(line), s["frames"]
        assert os.path.basename(path).startswith("gen"), s["frames"]
    assert near(sum(s["grown"] for s in charged), 24 * 4 * MIB)
    assert r.stats["failed"] == 0 and r.stats["resolver_failures"] == 0, r.stats


@needs_kernel
@pytest.mark.parametrize("py", [p for _, p in PYS], ids=[n for n, _ in PYS])
def test_resolver_survives_garbage(py):
    """Random addresses of the live target, and real code objects read with scrambled
    layouts (under ASan/UBSan when run by make): errors or strings, never a crash."""
    r = attach_run(py, "lines.py", ["-F", "20000"])
    fuzz = [l for l in r.raw.splitlines() if l.startswith("fuzz\t")]
    assert fuzz, r.raw
    tried, ok = map(int, fuzz[0].split("\t")[1:])
    assert tried >= 20000 and ok < tried


@needs_kernel
def test_static_build_under_another_name():
    """Debian's static python3.11 copied to a name that says nothing: Py_Version tells."""
    if not os.path.exists("/usr/bin/python3.11"):
        pytest.skip("no /usr/bin/python3.11")
    d = tempfile.mkdtemp(prefix="pyframe-")
    try:
        app = os.path.join(d, "someapp")
        shutil.copy("/usr/bin/python3.11", app)
        m = markers(LINES)
        r = attach_run(app, "lines.py")
        got, _ = one_line(r, m["A"], "grown")
        assert r.attached[0].startswith("0x30b") and r.attached[4] == app, r.attached
        assert near(got, 100 * MIB), got
    finally:
        shutil.rmtree(d)
