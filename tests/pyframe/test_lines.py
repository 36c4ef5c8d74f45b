"""`mprof attach --lines` and `mprof run --lines` end to end, on every interpreter found.

The truth is what the targets did: scripts/lines.py (started plainly, attached while it runs)
and scripts/run_lines.py allocate and free known amounts at known lines and measure their own
RSS change across each step. Every line must be charged that within 2 % in the .dat's LINE
records; the rows of a process must add up to its RSS change over the window; the stacks files
must carry the same numbers; the target is never stopped or traced; a process we cannot read
is recorded with RSS only, said in one line.
"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse

import pytest

from conftest import ROOT, SCRIPTS, markers, needs_kernel, old_pythons, pythons

MIB = 1 << 20
MPROF = os.environ.get("MPROF") or os.path.join(ROOT, "build", "mprof")
LINES = os.path.join(SCRIPTS, "lines.py")
RUN_LINES = os.path.join(SCRIPTS, "run_lines.py")
PYS = pythons()
TOTAL = re.compile(r"^Total \(pid (\d+)\): grown ([\d.]+) MiB, freed ([\d.]+) MiB, net "
                   r"([-+][\d.]+) MiB; RSS ([\d.]+) -> ([\d.]+) MiB \(([-+][\d.]+) MiB\)")


def near(got, want, tol=0.02):
    return abs(got - want) <= tol * want


def unescape(s):
    return urllib.parse.unquote(s)


class LineRecords:
    """The LINE and STACK records of a .dat."""

    def __init__(self, path):
        self.lines = []   # (pid, grown, freed, events, line, func, file)
        self.stacks = []  # (pid, grown, freed, events, [(func, file, line)])
        with open(path) as f:
            for rec in f.read().splitlines():
                kind, _, rest = rec.partition(" ")
                if kind == "LINE":
                    pid, g, fr, ev, line, func, file = rest.split(" ")
                    self.lines.append((int(pid), int(g), int(fr), int(ev), int(line),
                                       unescape(func), unescape(file)))
                elif kind == "STACK":
                    pid, g, fr, ev, frames = rest.split(" ")
                    fs = []
                    for fr_ in frames.split(";"):
                        func, file, line = fr_.split(":")
                        fs.append((unescape(func), unescape(file), int(line)))
                    self.stacks.append((int(pid), int(g), int(fr), int(ev), fs))

    def at(self, script, line, key):
        """Bytes grown or freed at line @line of @script (every function on it)."""
        i = 1 if key == "grown" else 2
        base = os.path.basename(script)
        return sum(r[i] for r in self.lines if os.path.basename(r[6]) == base and r[4] == line)

    def special(self, name, key):
        i = 1 if key == "grown" else 2
        return sum(r[i] for r in self.lines if r[6] == "-" and r[5] == name)


def totals(stdout):
    out = {}
    for line in stdout.splitlines():
        m = TOTAL.match(line)
        if m:
            out[int(m.group(1))] = [float(x) for x in m.groups()[1:]]
    return out


def check_totals(rec, stdout, pid):
    """The rows add up to the process's RSS change over the window."""
    t = totals(stdout)[pid]
    grown, freed, net, start, end, change = t
    mine = [r for r in rec.lines if r[0] == pid]
    assert abs(sum(r[1] for r in mine) / MIB - grown) < 0.002
    assert abs(sum(r[2] for r in mine) / MIB - freed) < 0.002
    assert abs(net - change) < 0.1, (net, change, stdout)


@needs_kernel
@pytest.mark.parametrize("py", [p for _, p in PYS], ids=[n for n, _ in PYS])
def test_attach_lines_grow_and_free_what_they_did(py, tmp_path):
    m = markers(LINES)
    dat, st, ss = tmp_path / "a.dat", tmp_path / "s.txt", tmp_path / "s.json"
    target = subprocess.Popen([py, LINES], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    mp = None
    try:
        assert target.stdout.readline().strip() == "ready"
        mp = subprocess.Popen([MPROF, "attach", "--lines", "--top", "0", "-o", str(dat),
                               "--stacks", str(st), "--speedscope", str(ss), str(target.pid)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen = ""
        while "attaching to process" not in seen:
            line = mp.stdout.readline()
            assert line, mp.stderr.read()
            seen += line
        target.stdin.write("go\n")
        target.stdin.flush()
        steps, states = {}, set()
        while True:
            with open("/proc/%d/stat" % target.pid) as f:
                states.add(f.read().rsplit(")", 1)[1].split()[0])
            line = target.stdout.readline()
            assert line, "the target ended early"
            if line.startswith("step "):
                _, name, delta = line.split()
                steps[name] = int(delta)
            elif line.startswith("done"):
                done = line.split()[1:]
                break
        target.stdin.close()
        target.wait(timeout=60)
        out, err = mp.communicate(timeout=60)
    finally:
        for p in (mp, target):
            if p and p.poll() is None:
                p.kill()
                p.wait()
    assert mp.returncode == 0, err
    assert "process %d exited" % target.pid in err, err
    assert "stack reads failed" not in err, err
    rec = LineRecords(dat)

    for name, key, nominal, step in [
        ("A", "grown", 100 * MIB, "a"),
        ("MEMSET", "grown", 50 * MIB, "memset"),  # native memory, filled by C
        ("FREE", "freed", 50 * MIB, "free"),
        ("BIG", "grown", 60 * MIB, None),
        ("DEL", "freed", 60 * MIB, "del"),
        ("GEN", "grown", 25 * MIB, "gen"),
        ("THREAD", "grown", 40 * MIB, "thread"),  # a second Python thread
        ("INNER", "grown", 60 * MIB, None),       # two calls, 20 and 40 MiB
    ]:
        got = rec.at(LINES, m[name], key)
        assert near(got, nominal), (name, got / MIB, out)
        if step:
            assert near(got, abs(steps[step])), (name, got, steps[step])
    # a native thread (pthread_create, no Python state): no Python line, its own row
    assert near(rec.special("<no Python frame>", "grown"), 30 * MIB, 0.05), out
    assert rec.at(LINES, m["JOIN"], "grown") < MIB
    # what was there before the attach is not charged
    assert rec.at(LINES, m["PRE"], "grown") < MIB
    check_totals(rec, out, target.pid)

    # the table: heaviest first within its function, with the line's source
    assert re.search(r"^ +%d +100\.\d+ MiB +100\.\d+ MiB +0\.000 MiB +\d+ +.*bytearray\(100 \* MIB\)"
                     % m["A"], out, re.M), out

    # the stacks, root first, the same bytes as the STACK records
    thread_lines = [ln for ln in st.read_text().splitlines()
                    if ln.rsplit(" ", 1)[0].endswith("(%s:%d)" % (LINES, m["THREAD"]))]
    assert thread_lines, st.read_text()
    frames = thread_lines[0].rsplit(" ", 1)[0].split(";")
    assert frames[0].startswith("Thread._bootstrap (") or frames[0].startswith("_bootstrap ("), \
        frames
    assert frames[-1].split(" ")[0].endswith("thread_work")
    assert near(sum(int(ln.rsplit(" ", 1)[1]) for ln in thread_lines), 40 * MIB)
    grown_stacks = sum(s[1] for s in rec.stacks)
    assert sum(int(ln.rsplit(" ", 1)[1]) for ln in st.read_text().splitlines()) == grown_stacks

    prof = json.loads(ss.read_text())
    p0 = prof["profiles"][0]
    assert p0["type"] == "sampled" and p0["unit"] == "bytes"
    assert sum(p0["weights"]) == grown_stacks
    names = prof["shared"]["frames"]
    assert any(f["name"].endswith("thread_work") and f.get("line") == m["THREAD"]
               for f in names), names

    # never stopped, never traced
    gap_ms, tracer = float(done[0]), int(done[1])
    assert tracer == 0 and gap_ms < 5000, done
    assert not states & {"T", "t"}, states


@needs_kernel
@pytest.mark.parametrize("py", [p for _, p in PYS], ids=[n for n, _ in PYS])
def test_run_lines_without_the_hook(py, tmp_path):
    m = markers(RUN_LINES)
    dat = tmp_path / "r.dat"
    r = subprocess.run([MPROF, "run", "--lines", "-o", str(dat), py, RUN_LINES],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    steps = {ln.split()[1]: int(ln.split()[2]) for ln in r.stdout.splitlines()
             if ln.startswith("step ")}
    assert "hooked False False" in r.stdout, r.stdout
    text = dat.read_text()
    assert "\nFUNC " not in text and "\nMEM " in text
    rec = LineRecords(dat)
    assert near(rec.at(RUN_LINES, m["BUILD"], "grown"), 80 * MIB), r.stdout
    assert near(rec.at(RUN_LINES, m["BUILD"], "grown"), steps["build"])
    assert near(rec.at(RUN_LINES, m["MEMSET"], "grown"), steps["memset"])
    assert near(rec.at(RUN_LINES, m["FREE"], "freed"), -steps["free"])
    # the caller's line is not charged what its callee did: rows are by running line
    assert rec.at(RUN_LINES, m["CALL"], "grown") < MIB
    # the caller is in the stack
    [build] = [s for s in rec.stacks if s[4] and s[4][-1][2] == m["BUILD"] and s[1] > MIB]
    assert [f[2] for f in build[4][-2:]] == [m["CALL"], m["BUILD"]], build
    pid = next(iter(totals(r.stdout)))
    check_totals(rec, r.stdout, pid)
    # `keep` is freed by the interpreter's finalization (no frame left), or with the process
    assert (rec.special("<no Python frame>", "freed") +
            rec.special("<released at exit>", "freed")) > 80 * MIB


@needs_kernel
def test_top_sums_the_lighter_lines(tmp_path):
    py = PYS[0][1] if PYS else sys.executable
    dat = tmp_path / "t.dat"
    r = subprocess.run([MPROF, "run", "--lines", "--top", "2", "-o", str(dat), py, RUN_LINES],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [ln for ln in r.stdout.splitlines() if re.match(r"^ +\d+ +-?[\d.]+ MiB", ln)]
    assert len(rows) == 2, r.stdout
    assert re.search(r"<\d+ lighter lines, --top 2>", r.stdout), r.stdout
    pid = next(iter(totals(r.stdout)))
    check_totals(LineRecords(dat), r.stdout, pid)


@needs_kernel
def test_not_python_is_recorded_with_rss_only(tmp_path):
    dat = tmp_path / "n.dat"
    r = subprocess.run([MPROF, "run", "--lines", "-o", str(dat), "sleep", "0.2"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert re.search(r"--lines: process \d+: not a python process: recorded its RSS only",
                     r.stderr), r.stderr
    assert len(r.stderr.splitlines()) == 1, r.stderr
    text = dat.read_text()
    assert "\nMEM " in text and "\nLINE " not in text


@needs_kernel
@pytest.mark.parametrize("py", old_pythons()[:1] or [None])
def test_unsupported_version_is_said(py, tmp_path):
    if py is None:
        pytest.skip("no interpreter older than 3.8 installed")
    p = subprocess.Popen([py, "-c", "import time; time.sleep(1.5)"])
    try:
        time.sleep(0.3)
        r = subprocess.run([MPROF, "attach", "--lines", "-o", str(tmp_path / "u.dat"),
                            str(p.pid)], capture_output=True, text=True, timeout=60)
    finally:
        p.kill()
        p.wait()
    assert r.returncode == 0, r.stderr
    assert ("process %d: unsupported python version (3.8 to 3.13 are supported): recording "
            "its RSS only" % p.pid) in r.stderr, r.stderr


@pytest.mark.parametrize("args,msg", [
    (["--top", "3"], "--top needs --lines"),
    (["--stacks", "x"], "--stacks needs --lines"),
    (["--speedscope", "x"], "--speedscope needs --lines"),
    (["--pprof", "x"], "--pprof needs --lines"),
    (["--lines", "--backend", "proc"], "--lines needs the kernel backend, not 'proc'"),
    (["--lines", "--rss-tracepoint"], "--lines needs the tp_btf program"),
    (["--lines", "--top", "-1"], "invalid --top '-1'"),
    (["--lines", "--top", "2.5"], "invalid --top '2.5'"),
    (["--lines", "--stacks", ""], "invalid file name '' for --stacks"),
])
def test_bad_line_options(args, msg, tmp_path):
    for cmd in (["run"] + args + ["true"], ["attach"] + args + ["1"]):
        r = subprocess.run([MPROF] + cmd, capture_output=True, text=True, timeout=30,
                           cwd=str(tmp_path))
        assert r.returncode == 2, (cmd, r.stderr)
        assert msg in r.stderr and len(r.stderr.splitlines()) == 1, (cmd, r.stderr)
        assert os.listdir(str(tmp_path)) == []


@needs_kernel
def test_fleet_lines_per_process(tmp_path):
    """A shell in the fleet execs Python later: it is read from its exec on; its rows go to its
    own .dat, and the stacks file names the process of each stack when there are several."""
    py = dict(PYS).get("pyenv-3.12") or (PYS[-1][1] if PYS else sys.executable)
    m = markers(RUN_LINES)
    out = tmp_path / "out"
    out.mkdir()
    sh = subprocess.Popen(["sh", "-c", 'read x; exec "$0" "$1"', py, RUN_LINES],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        fl = subprocess.Popen([MPROF, "fleet", "--pid", str(sh.pid), "--lines", "-q", "-o",
                               str(out), "--duration", "30", "--stacks",
                               str(tmp_path / "s.txt")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # loaded and following the shell: its file is made when it is found
        deadline = time.monotonic() + 30
        while not any(f.name.startswith("mprofile_%d_" % sh.pid) for f in out.iterdir()):
            assert fl.poll() is None and time.monotonic() < deadline, fl.stderr.read()
            time.sleep(0.05)
        sh.stdin.write("go\n")
        sh.stdin.flush()
        sh.wait(timeout=60)
        fl.send_signal(2)
        fo, fe = fl.communicate(timeout=60)
    finally:
        for p in (sh,):
            if p.poll() is None:
                p.kill()
    assert fl.returncode == 0, fe
    assert "--lines: 1 processes recorded with RSS only: not a python process" not in fe, fe
    [dat] = [f for f in out.iterdir() if f.name.startswith("mprofile_%d_" % sh.pid)]
    rec = LineRecords(dat)
    assert near(rec.at(RUN_LINES, m["BUILD"], "grown"), 80 * MIB), (fo, fe)
    assert all(r[0] == sh.pid for r in rec.lines)
    check_totals(rec, fo, sh.pid)


@needs_kernel
def test_pprof_and_report_of_a_real_run(tmp_path):
    """The files other tools read, from a real run: pprof (read by go tool pprof) and the
    report page (its data carries the line rows)."""
    import shutil
    py = PYS[-1][1] if PYS else sys.executable
    dat, pb, html = tmp_path / "p.dat", tmp_path / "p.pb.gz", tmp_path / "p.html"
    r = subprocess.run([MPROF, "run", "--lines", "--pprof", str(pb), "-o", str(dat), py,
                        RUN_LINES], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with open(pb, "rb") as f:
        assert f.read(2) == b"\x1f\x8b"  # gzip
    go = shutil.which("go")
    if go:
        top = subprocess.run([go, "tool", "pprof", "-top", "-unit=B", "-sample_index=grown_bytes",
                              str(pb)],
                             capture_output=True, text=True, timeout=120)
        assert top.returncode == 0, top.stderr
        [row] = [ln.split() for ln in top.stdout.splitlines() if ln.split()[-1:] == ["build"]]
        assert near(float(row[0].rstrip("B")), 80 * MIB), top.stdout
    rep = subprocess.run([MPROF, "report", "-o", str(html), str(dat)], capture_output=True,
                         text=True, timeout=120)
    assert rep.returncode == 0, rep.stderr
    page = html.read_text()
    assert "return bytearray(n * MIB)  # @BUILD" in page


@needs_kernel
@pytest.mark.parametrize("py", [p for _, p in PYS], ids=[n for n, _ in PYS])
def test_numpy_array_in_a_thread(py, tmp_path):
    if subprocess.run([py, "-c", "import numpy"], capture_output=True).returncode:
        pytest.skip("numpy is not installed for %s" % py)
    script = os.path.join(SCRIPTS, "numpy_thread.py")
    dat = tmp_path / "np.dat"
    r = subprocess.run([MPROF, "run", "--lines", "-o", str(dat), py, script],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rec = LineRecords(dat)
    line = markers(script)["NUMPY"]
    # np.ones runs numpy's own Python code (its dispatch wrappers) before the C code that fills
    # the array: the running line is numpy's, the script's line is the caller in those stacks
    ours = [s for s in rec.stacks
            if any(os.path.basename(f[1]) == "numpy_thread.py" and f[2] == line for f in s[4])]
    got = sum(s[1] for s in ours)
    assert near(got, 64 * MIB), (got / MIB, r.stdout)
    for s in ours:
        names = [f[0].rsplit(".", 1)[-1] for f in s[4]]
        assert names[0] == "_bootstrap" and "work" in names, names  # the thread's own stack


@needs_kernel
@pytest.mark.parametrize("py", [p for _, p in PYS], ids=[n for n, _ in PYS])
def test_module_body_named_after_its_code_and_process_are_gone(py, tmp_path):
    """A module body's code is freed once imported, and the process exits right after: its
    lines are named all the same (from the snapshot BPF took), and no stack stays unnamed."""
    script = os.path.join(SCRIPTS, "import_body.py")
    mod = os.path.join(SCRIPTS, "import_body_mod.py")
    dat = tmp_path / "body.dat"
    r = subprocess.run([MPROF, "run", "--lines", "--top", "0", "-o", str(dat), py, "-B", script],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rec = LineRecords(dat)
    assert near(rec.at(mod, markers(mod)["BODY"], "grown"), 40 * MIB), r.stdout
    [body] = [s for s in rec.stacks if any(f[1] == mod for f in s[4])]
    names = [(f[0], os.path.basename(f[1]), f[2]) for f in body[4]]
    assert names[0] == ("<module>", "import_body.py", markers(script)["IMPORT"]), names
    assert names[-1] == ("<module>", "import_body_mod.py", markers(mod)["BODY"]), names
    assert rec.special("<code gone before it was named>", "grown") == 0, r.stdout
    assert "could not name" not in r.stderr, r.stderr
    pid = {s[0] for s in rec.stacks}.pop()
    check_totals(rec, r.stdout, pid)


@needs_kernel
@pytest.mark.parametrize("py", [p for _, p in PYS], ids=[n for n, _ in PYS])
def test_forked_children_that_exit_at_once_are_named(py, tmp_path):
    """Children forked by the script, each gone a few ms after its line: every child's line is
    charged its 8 MiB bytearray (what lies around the line, copy-on-write faults, goes to the
    lines around it: the child's own RSS change across them bounds it), named as in the
    parent's interpreter."""
    script = os.path.join(SCRIPTS, "fork_children.py")
    dat = tmp_path / "kids.dat"
    r = subprocess.run([MPROF, "run", "--lines", "--top", "0", "-o", str(dat), py, script],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    kids = {int(w[1]): int(w[2]) for w in (ln.split() for ln in r.stdout.splitlines())
            if len(w) == 3 and w[0] == "child"}
    assert len(kids) == 20, r.stdout
    rec = LineRecords(dat)
    line = markers(script)["CHILD"]
    for pid, delta in kids.items():
        got = sum(x[1] for x in rec.lines if x[0] == pid and x[4] == line and
                  os.path.basename(x[6]) == "fork_children.py")
        assert near(got, 8 * MIB) and got <= delta, (pid, got, delta, r.stdout)
    assert "could not name" not in r.stderr, r.stderr


@needs_kernel
@pytest.mark.parametrize("opt", ["--stacks", "--speedscope", "--pprof"])
def test_unwritable_stacks_file_fails_before_the_run(opt, tmp_path):
    """A file that cannot be written is said at once, before anything runs or is recorded."""
    bad = str(tmp_path / "no-such-folder" / "out")
    marker = tmp_path / "ran"
    r = subprocess.run([MPROF, "run", "--lines", opt, bad, "-o", str(tmp_path / "x.dat"),
                        "sh", "-c", "touch %s" % marker], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1, r.stderr
    assert r.stderr == "mprof: error: cannot write '%s': No such file or directory\n" % bad
    assert not marker.exists() and not (tmp_path / "x.dat").exists()
