"""mprof attach: a process that is already running, kernel-exact from its first value."""
import os
import pwd
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from conftest import MPROF, Dat, needs_kernel, target

PAGE_KB = os.sysconf("SC_PAGESIZE") // 1024


def rss_kb(pid):
    """The target's resident set by a walk of its page tables (smaps_rollup): ground truth."""
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Rss:"):
                return int(line.split()[1])
    raise AssertionError("no Rss in smaps_rollup")


class Holder:
    """tests/targets/holder: idle with BASE MiB until told, then one spike, then waits."""

    def __init__(self, base, spike, ms, name=None, user=None, cwd=None):
        exe = target("holder")
        if name:
            exe = shutil.copy(exe, os.path.join(cwd, name))
        cmd = [exe, str(base), str(spike), str(ms)]
        if user is not None:
            cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups"] + cmd
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready_kb = int(self.p.stdout.readline().split()[1])
        self.pid = self.p.pid
        self.exe = exe

    def spike(self):
        self.p.stdin.write("go\n")
        self.p.stdin.flush()
        t0, t1, hwm, rss = self.p.stdout.readline().split()[1:]
        self.p.stdout.readline()
        return float(t0), float(t1), int(hwm), int(rss)

    def finish(self):
        """EOF on its stdin: it exits (0) wherever it waits."""
        if not self.p.stdin.closed:
            self.p.stdin.close()
        return self.p.wait(timeout=30)


def start_attach(args, out):
    m = subprocess.Popen([MPROF, "attach", "-o", str(out)] + args, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    banner = [m.stdout.readline(), m.stdout.readline()]
    return m, banner


@needs_kernel
@pytest.mark.parametrize("by", ["pid", "name"])
def test_attach_first_value_exact_spike_at_full_height_peak_is_vmhwm(open_tmp, by):
    name = "mph%s" % uuid.uuid4().hex[:8]
    h = Holder(200, 150, 20, name=name if by == "name" else None, cwd=str(open_tmp))
    try:
        time.sleep(0.3)  # idle: no RSS event from here on until the spike
        truth_kb = rss_kb(h.pid)
        out = open_tmp / "att.dat"
        m, banner = start_attach([str(h.pid) if by == "pid" else name], out)
        assert "attaching to process %d" % h.pid in banner[1], banner
        time.sleep(0.35)
        t0, t1, hwm_kb, held_kb = h.spike()
        time.sleep(0.3)
        assert h.finish() == 0, "the target must not be disturbed"
        _, err = m.communicate(timeout=30)
    finally:
        if h.p.poll() is None:
            h.p.kill()
    assert m.returncode == 0, err
    d = Dat(out)
    first = d.mem[0][1] * 1024
    assert abs(first - truth_kb) <= PAGE_KB, (first, truth_kb)
    inside = [mib for t, mib in d.mem if t0 - 0.002 <= t <= t1 + 0.002]
    assert inside and max(inside) * 1024 >= held_kb - PAGE_KB, (inside, held_kb)
    assert abs(d.peak() * 1024 - hwm_kb) <= PAGE_KB, (d.peak() * 1024, hwm_kb)
    assert d.cmdline == "%s 200 150 20" % h.exe


@needs_kernel
def test_attach_follows_children_old_and_new(open_tmp):
    """-M: a child that existed before the attach and one forked after it get CHLD lines."""
    script = open_tmp / "kids.sh"
    holder = target("holder")
    script.write_text("#!/bin/sh\n"
                      "%s 30 0 0 < /dev/null > /dev/null &\n"   # exits at once (EOF)
                      "sleep 30 &\n"
                      "read x\n"
                      "%s 40 0 0 < /dev/null > /dev/null\n"
                      "read y\n" % (holder, holder))
    script.chmod(0o755)
    p = subprocess.Popen([str(script)], stdin=subprocess.PIPE, text=True)
    time.sleep(0.4)
    out = open_tmp / "kids.dat"
    m, _ = start_attach(["-M", "-C", str(p.pid)], out)
    time.sleep(0.3)
    p.stdin.write("\n")
    p.stdin.flush()
    time.sleep(0.6)
    p.stdin.write("\n")
    p.stdin.flush()
    p.wait(timeout=30)
    m.send_signal(signal.SIGINT)
    _, err = m.communicate(timeout=30)
    subprocess.run(["pkill", "-f", "^sleep 30$"])
    assert m.returncode == 0, err
    d = Dat(out)
    peaks = sorted(max(v for _, v in s) for s in d.chld.values())
    assert any(p >= 40 for p in peaks), ("the child forked after the attach", peaks)
    assert len(d.chld) >= 2, ("the sleep that existed before, and the new holder", d.chld)


@needs_kernel
def test_attach_ends_on_timeout_and_on_ctrl_c_leaving_the_target(open_tmp):
    h = Holder(20, 0, 0)
    try:
        out = open_tmp / "t.dat"
        t0 = time.monotonic()
        p = subprocess.run([MPROF, "attach", "-t", "0.5", "-o", str(out), str(h.pid)],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and time.monotonic() - t0 < 5, p
        assert len(Dat(out).mem) >= 3
        m, _ = start_attach([str(h.pid)], open_tmp / "c.dat")
        time.sleep(0.4)
        m.send_signal(signal.SIGINT)
        _, err = m.communicate(timeout=30)
        assert m.returncode == 0, err
        assert h.p.poll() is None, "the target was stopped"
        assert Dat(open_tmp / "c.dat").mem
    finally:
        assert h.finish() == 0


@needs_kernel
def test_run_attach_is_attach(open_tmp):
    h = Holder(10, 0, 0)
    try:
        out = open_tmp / "r.dat"
        p = subprocess.run([MPROF, "run", "--attach", "-t", "0.3", "-o", str(out), str(h.pid)],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert "attaching to process %d" % h.pid in p.stdout
    finally:
        h.finish()


@pytest.mark.skipif(os.geteuid() != 0, reason="sudo variables are read as root only")
def test_under_sudo_only_the_users_own_processes(open_tmp):
    h = Holder(10, 0, 0, user=65534)
    try:
        env = dict(os.environ, SUDO_UID="1", SUDO_GID="1")
        out = open_tmp / "u.dat"
        p = subprocess.run([MPROF, "attach", "-t", "0.2", "-o", str(out), str(h.pid)], env=env,
                           capture_output=True, text=True, timeout=30)
        owner = pwd.getpwuid(65534).pw_name
        assert p.returncode == 1 and len(p.stderr.splitlines()) == 1, p
        assert "belongs to %s" % owner in p.stderr and "--any-user" in p.stderr
        assert not out.exists()
        p = subprocess.run([MPROF, "attach", "--any-user", "-t", "0.2", "-o", str(out),
                            str(h.pid)], env=env, capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        env = dict(os.environ, SUDO_UID="65534", SUDO_GID="65534")
        p = subprocess.run([MPROF, "attach", "-t", "0.2", "-o", str(open_tmp / "v.dat"),
                            str(h.pid)], env=env, capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
    finally:
        h.finish()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_without_bpf_attach_polls_proc(open_tmp):
    h = Holder(30, 0, 0, user=65534)
    try:
        mprof = shutil.copy(MPROF, open_tmp / "mprof")
        out = open_tmp / "np.dat"
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            mprof, "attach", "-t", "0.3", "-o", str(out), str(h.pid)],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert p.stderr.startswith("mprof: kernel backend unavailable (not running as root)")
        assert Dat(out).peak() >= 30
    finally:
        h.finish()


@pytest.mark.parametrize("args,msg", [
    (["999999999"], "invalid pid"),
    (["4000000"], "no process with pid 4000000"),
    (["no-such-process-name-%s" % uuid.uuid4().hex[:6]], "no process whose name contains"),
    ([], "a process to attach to must be given"),
    (["1", "2"], "attach takes one process"),
    (["-T", "0", "1"], "invalid interval"),
])
def test_attach_bad_input_one_line(tmp_path, args, msg):
    out = tmp_path / "x.dat"
    p = subprocess.run([MPROF, "attach", "-o", str(out)] + args, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode in (1, 2), p
    assert len(p.stderr.splitlines()) == 1 and msg in p.stderr, p.stderr
    assert not out.exists()


@needs_kernel
def test_attach_to_a_process_that_exits_at_once(open_tmp):
    """The target vanishes right after being chosen: one line, no file, or a complete file."""
    p = subprocess.Popen(["sleep", "0.05"])
    out = open_tmp / "gone.dat"
    time.sleep(0.01)
    r = subprocess.run([MPROF, "attach", "-o", str(out), str(p.pid)], capture_output=True,
                       text=True, timeout=30)
    p.wait()
    if r.returncode == 0:
        Dat(out)
    else:
        assert len(r.stderr.splitlines()) == 1 and not out.exists(), r
