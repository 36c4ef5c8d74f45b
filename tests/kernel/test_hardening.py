"""mprof run as a new user and a hostile tester meet it: each test here failed before its fix."""
import os
import re
import shutil
import stat
import subprocess
import sys
import time

import pytest

from conftest import MPROF, Dat, needs_kernel, not_sanitized, run_mprof, target

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"
HOOK = os.path.join(os.path.dirname(MPROF), "python", "memory_profiler", "__init__.py")
needs_hook = pytest.mark.skipif(not os.path.exists(HOOK), reason="the CPython hook is not built")


def run_with_rusage(cmd, **kw):
    """Run @cmd; return (returncode, stdout, stderr, its own max RSS in KiB)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    out, err = p.communicate(timeout=300)
    return p.returncode, out, err, p.maxrss if hasattr(p, "maxrss") else None


def maxrss_kb(cmd, **kw):
    """Run @cmd and return (returncode, stdout, stderr, max RSS of that process in KiB)."""
    r, w = os.pipe()
    re_, we = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(w, 1)
        os.dup2(we, 2)
        os.execvpe(cmd[0], cmd, kw.get("env", os.environ))
    os.close(w)
    os.close(we)
    out = os.read(r, 1 << 20).decode()
    err = os.read(re_, 1 << 20).decode()
    _, status, ru = os.wait4(pid, 0)
    os.close(r)
    os.close(re_)
    return os.waitstatus_to_exitcode(status), out, err, ru.ru_maxrss


# ---- 1. the series starts with the command's own image ------------------------------------------

@needs_kernel
def test_bin_true_peak_is_its_own_not_mprofs(tmp_path):
    """`mprof run /bin/true` gave 9.7 MiB, mprof's own image: now /bin/true's own maximum."""
    _, _, _, true_kb = maxrss_kb(["/bin/true"])
    p, out = run_mprof(["/bin/true"], tmp_path)
    d = Dat(out)
    assert d.peak() * 1024 <= true_kb + 256, (d.peak(), true_kb)
    assert d.mem[0][1] < 0.5, "the first value is the exec'd image, not the forked mprof"


@needs_kernel
def test_ring_buffer_mapping_never_reaches_the_file(tmp_path):
    """A 1 GiB ring buffer used to show as a 2 GiB peak of `sleep`."""
    p, out = run_mprof(["--ringbuf-kib", "1048576", "/bin/sleep", "0.3"], tmp_path)
    assert Dat(out).peak() < 8, Dat(out).peak()


@needs_kernel
def test_include_children_starts_at_the_exec_too(tmp_path):
    p, out = run_mprof(["-C", "sh", "-c", "true; true"], tmp_path)
    d = Dat(out)
    assert d.peak() < 8, d.peak()
    assert d.mem[0][1] < 0.5


# ---- 2. Python mode has no uprobes to tear down ------------------------------------------------

@needs_kernel
@needs_hook
def test_python_mode_uses_no_uprobe_and_keeps_func_lines(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text("import time\nkeep = []\n\n@profile\ndef f():\n"
                      "    keep.append(b'\\x01' * (20 << 20))\n"
                      "    time.sleep(1.0)\n\nf()\nf()\n")
    out = tmp_path / "py.dat"
    env = dict(os.environ, MPROF_PYTHON=PY)
    proc = subprocess.Popen([MPROF, "run", "-o", str(out), str(script)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.8)
    fds = [os.readlink("/proc/%d/fd/%s" % (proc.pid, fd))
           for fd in os.listdir("/proc/%d/fd" % proc.pid)]
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert not [f for f in fds if "perf_event" in f], fds
    funcs = [line.split() for line in out.read_text().splitlines() if line.startswith("FUNC ")]
    assert len(funcs) == 2 and all(f[1] == "__main__.f" for f in funcs), funcs
    for f in funcs:
        assert abs((float(f[4]) - float(f[2])) - 20.0) < 1.0, f  # the bytearray, kernel-exact


# ---- 3. no record can be injected through the command line --------------------------------------

@needs_kernel
@pytest.mark.parametrize("args", [
    ["/bin/echo", "x\nMEM", "99999", "1796153000.0"],
    ["/bin/echo", "a\rMEM 99999 1796153000.0"],
    ["/bin/true", "it's", "", "$HOME", "tab\there", "\x01\x7f", b"\xff\xfe".decode("latin-1")],
])
def test_cmdline_is_one_line_a_shell_reads_back(tmp_path, args):
    argv = [a.encode("latin-1") if "\xff" in a else a for a in args]
    p, out = run_mprof(argv, tmp_path)
    raw = out.read_bytes()
    lines = raw.split(b"\n")
    assert sum(1 for line in lines if line.startswith(b"CMDLINE")) == 1
    assert b"\r" not in raw and not re.search(rb"^MEM 99999", raw, re.M)
    cmdline = [line for line in lines if line.startswith(b"CMDLINE ")][0][len(b"CMDLINE "):]
    back = subprocess.run(["bash", "-c", b'printf "%s\\0" ' + cmdline], capture_output=True,
                          check=True).stdout.split(b"\0")[:-1]
    assert back == [a if isinstance(a, bytes) else a.encode() for a in argv]
    raw.decode("utf-8")  # memory_profiler's reader decodes the file as UTF-8
    peaks = subprocess.run([MPROF, "peak", str(out)], capture_output=True, text=True)
    assert peaks.returncode == 0 and float(peaks.stdout.split("\t")[1].split()[0]) < 50


def test_cmdline_quoting_matches_memory_profiler_for_blanks(tmp_path):
    """Words with blanks or tabs are single-quoted, as memory_profiler writes them."""
    p, out = run_mprof(["--backend", "proc", "/bin/echo", "my file.py", "a\tb", "plain"],
                       tmp_path)
    assert Dat(out).cmdline == "/bin/echo 'my file.py' 'a\tb' plain"


# ---- 4. a command that cannot start leaves nothing ----------------------------------------------

@pytest.mark.parametrize("make", ["dir", "noexec", "badinterp"])
def test_command_that_cannot_start_leaves_no_file(tmp_path, make):
    cmd = tmp_path / "thing"
    if make == "dir":
        cmd.mkdir()
    elif make == "noexec":
        cmd.write_text("#!/bin/sh\n")
    else:
        cmd.write_text("#!/nonexistent/interpreter\n")
        cmd.chmod(0o755)
    out = tmp_path / "x.dat"
    p = subprocess.run([MPROF, "run", "-o", str(out), str(cmd)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode in (126, 127), p
    assert len(p.stderr.splitlines()) == 1 and "cannot run" in p.stderr, p.stderr
    assert not out.exists()
    if make != "badinterp":  # known not to start before anything is printed
        assert p.stdout == ""


# ---- 5. absurd numbers --------------------------------------------------------------------------

@pytest.mark.parametrize("args,msg", [
    (["-T", "3e6"], "invalid interval"),
    (["-T", "1e308"], "invalid interval"),
    (["-T", "1e-9"], "invalid interval"),
    (["-T", "-1"], "invalid interval"),
    (["-T", "nan"], "invalid interval"),
    (["-t", "1e308"], "invalid timeout"),
    (["-t", "0"], "invalid timeout"),
    (["--granularity", "1e308"], "invalid granularity"),
    (["--granularity", "0"], "invalid granularity"),
    (["--ringbuf-kib", "-4"], "invalid ring buffer size"),
    (["--ringbuf-kib", "99999999999999999999"], "invalid ring buffer size"),
    (["-T"], "option '-T' needs a value"),
    (["--backend", "foo"], "unknown backend"),
    (["-o", ""], "invalid output"),
])
def test_absurd_numbers_and_missing_values_are_refused(tmp_path, args, msg):
    out = tmp_path / "x.dat"
    extra = ["-o", str(out)] if "-o" not in args else []
    t0 = time.monotonic()
    p = subprocess.run([MPROF, "run"] + extra + args + (["true"] if args != ["-T"] else []),
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2, p
    assert len(p.stderr.splitlines()) == 1 and msg in p.stderr, p.stderr
    assert not out.exists()
    assert time.monotonic() - t0 < 10


@needs_kernel
def test_largest_interval_waits_without_spinning(tmp_path):
    """-T 86400 (the largest) on a 0.5 s command: it sleeps, it does not spin a CPU."""
    out = tmp_path / "x.dat"
    t0 = os.times()
    rc = subprocess.call([MPROF, "run", "-T", "86400", "-o", str(out), "sleep", "0.5"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    t1 = os.times()
    assert rc == 0
    assert (t1.children_user + t1.children_system) - (t0.children_user + t0.children_system) < 0.4
    assert Dat(out).mem


# ---- 7. a full disk never leaves a torn record --------------------------------------------------

@needs_kernel
def test_full_disk_leaves_whole_lines_that_peak_reads(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a small tmpfs")
    try:
        out = mnt / "full.dat"
        p = subprocess.run([MPROF, "run", "-T", "0.001", "-o", str(out), "-M",
                            target("tree")], capture_output=True, text=True, timeout=120)
        assert p.returncode == 1, p
        assert "No space left on device" in p.stderr
        raw = out.read_bytes()
        assert raw.endswith(b"\n"), raw[-40:]
        Dat(out)  # every line whole
        peak = subprocess.run([MPROF, "peak", str(out)], capture_output=True, text=True)
        assert peak.returncode == 0 and peak.stderr == "", peak
    finally:
        subprocess.run(["umount", str(mnt)])


# ---- 8. SUDO_UID without SUDO_GID ---------------------------------------------------------------

@needs_kernel
def test_sudo_uid_without_gid_takes_the_users_group(open_tmp):
    env = {k: v for k, v in os.environ.items() if k != "SUDO_GID"}
    env["SUDO_UID"] = "65534"
    import pwd
    want = pwd.getpwuid(65534).pw_gid
    p, out = run_mprof(["sh", "-c", "id -u; id -g"], open_tmp, env=env)
    assert p.stdout.split()[-2:] == ["65534", str(want)], p.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="sudo variables are read as root only")
def test_sudo_uid_of_nobody_known_without_gid_is_refused(tmp_path):
    import pwd
    uid = 4242
    while True:
        try:
            pwd.getpwuid(uid)
            uid += 1
        except KeyError:
            break
    env = {k: v for k, v in os.environ.items() if k != "SUDO_GID"}
    env["SUDO_UID"] = str(uid)
    out = tmp_path / "x.dat"
    p = subprocess.run([MPROF, "run", "-o", str(out), "id", "-u"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode != 0 and "refusing to run the command as root" in p.stderr, p
    assert p.stdout == "" and not out.exists()


# ---- 9. readers in bounded memory ---------------------------------------------------------------

@pytest.fixture(scope="module")
def big_dat(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.dat"
    out = subprocess.run([target("gendat"), str(path), "150"], capture_output=True, text=True,
                         check=True).stdout
    return path, float(out.split()[1])


@not_sanitized
def test_peak_streams_a_large_file_in_constant_memory(big_dat):
    path, peak = big_dat
    rc, out, err, kb = maxrss_kb([MPROF, "peak", str(path)])
    assert rc == 0, err
    assert out.splitlines()[0] == "%s\t%.3f MiB" % (path, peak)
    assert kb < 32 * 1024, "peak held %d KiB for a 150 MiB file" % kb


@not_sanitized
def test_plot_reduces_a_large_file_while_reading(big_dat, tmp_path):
    path, peak = big_dat
    png = tmp_path / "big.png"
    rc, out, err, kb = maxrss_kb([MPROF, "plot", "-o", str(png), str(path)])
    assert rc == 0, err
    assert kb < 96 * 1024, "plot held %d KiB for a 150 MiB file" % kb
    assert png.stat().st_size > 1000


# ---- 10/11. which Python, and modules -----------------------------------------------------------

@needs_kernel
@needs_hook
def test_python_module_mode_writes_func_lines(tmp_path):
    pkg = tmp_path / "pkgx"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text("@profile\ndef g():\n    return bytearray(8 << 20)\n\ng()\n")
    out = tmp_path / "m.dat"
    env = dict(os.environ, MPROF_PYTHON=PY)
    p = subprocess.run([MPROF, "run", "--python", "-o", str(out), "pkgx.mod"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "cannot run" not in p.stderr
    text = out.read_text()
    assert re.search(r"^FUNC pkgx\.mod\.g ", text, re.M) or re.search(r"^FUNC __main__\.g ",
                                                                       text, re.M), text
    assert Dat(out).cmdline == "%s pkgx.mod" % PY


@needs_kernel
def test_a_python3_shim_is_resolved_to_the_real_interpreter(tmp_path):
    """A pyenv-like shim (a script that runs helpers, then execs) is asked for sys.executable."""
    shims = tmp_path / "shims"
    shims.mkdir()
    shim = shims / "python3"
    shim.write_text("#!/bin/sh\n/bin/true; /bin/true; /bin/true\nexec %s \"$@\"\n" % PY)
    shim.chmod(0o755)
    script = tmp_path / "s.py"
    script.write_text("import os\nos.system('true')\n")
    env = {k: v for k, v in os.environ.items() if k != "MPROF_PYTHON"}
    env["PATH"] = "%s:%s" % (shims, env.get("PATH", "/usr/bin:/bin"))
    p, out = run_mprof(["-M", str(script)], tmp_path, env=env)
    d = Dat(out)
    assert d.cmdline == "%s %s" % (PY, script), d.cmdline
    # the script's own `sh -c true` only, none of the shim's three helpers
    assert len(d.chld) == 1, sorted(d.chld)


# ---- 12. messages -------------------------------------------------------------------------------

def test_help_lists_only_commands_that_work():
    p = subprocess.run([MPROF, "--help"], capture_output=True, text=True)
    assert p.returncode == 0
    names = re.findall(r"^    (\w+) ", p.stdout, re.M)
    assert names, p.stdout
    for name in names:
        h = subprocess.run([MPROF, name, "--help"], capture_output=True, text=True, timeout=30)
        assert h.returncode == 0 and "not available" not in h.stdout + h.stderr, (name, h)


@needs_kernel
def test_tracefs_mounted_by_mprof_is_unmounted_again(tmp_path):
    def mounted():
        return subprocess.run(["mountpoint", "-q", "/sys/kernel/tracing"]).returncode == 0
    was = mounted()
    if was:
        subprocess.run(["umount", "/sys/kernel/tracing"], check=False)
        if mounted():
            pytest.skip("tracefs is busy and cannot be unmounted for this test")
    try:
        p, out = run_mprof(["--rss-tracepoint", "--stats", target("alloc"), "20", "50"], tmp_path)
        assert "tracepoint/kmem/rss_stat" in p.stderr
        assert not mounted(), "mprof left tracefs mounted"
    finally:
        if was and not mounted():
            subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"])


# ---- budgets (--max-rss) ------------------------------------------------------------------------

@needs_kernel
def test_max_rss_over_budget_exits_99_with_one_line(tmp_path):
    p, out = run_mprof(["--max-rss", "50MiB", target("alloc"), "100", "50"], tmp_path,
                       check=False)
    assert p.returncode == 99, p
    err = p.stderr.splitlines()
    assert len(err) == 1 and "is over --max-rss 50MiB (50.000 MiB)" in err[0], err
    peak = float(re.search(r"the peak, ([\d.]+) MiB", err[0]).group(1))
    assert abs(peak - Dat(out).peak()) < 0.001  # the line names the file's own peak
    p, _ = run_mprof(["--max-rss", "1G", target("alloc"), "100", "50"], tmp_path)
    assert p.returncode == 0 and p.stderr == "", p
    p, _ = run_mprof(["-C", "--max-rss", "100 MB", target("tree")], tmp_path, check=False)
    assert p.returncode == 99, "the tree's sum is what -C budgets"


@pytest.mark.parametrize("arg", ["50", "-1MiB", "1e3MB", "lots"])
def test_max_rss_needs_a_size_with_a_unit(tmp_path, arg):
    p, _ = run_mprof(["--max-rss", arg, "true"], tmp_path, check=False)
    assert p.returncode == 2 and "invalid size" in p.stderr, p
