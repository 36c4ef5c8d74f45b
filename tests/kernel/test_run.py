"""mprof run against real processes on the real kernel, checked against ground truth."""
import os
import signal
import stat
import subprocess
import time

import pytest

from conftest import MPROF, Dat, needs_kernel, run_mprof, target

PAGE_KB = os.sysconf("SC_PAGESIZE") // 1024


def kv_lines(text, key):
    return [line.split()[1:] for line in text.splitlines() if line.startswith(key + " ")]


@needs_kernel
def test_known_allocation_peak_equals_own_vmhwm(tmp_path):
    """The recorded peak equals the target's own VmHWM (read while it holds its peak)."""
    p, out = run_mprof([target("alloc"), "200", "100"], tmp_path)
    hwm_kb = int(kv_lines(p.stdout, "VmHWM")[0][0])
    d = Dat(out)
    peak_kb = d.peak() * 1024
    assert abs(peak_kb - hwm_kb) <= PAGE_KB, (peak_kb, hwm_kb)
    assert "kernel backend unavailable" not in p.stderr


@needs_kernel
def test_classic_tracepoint_path_is_exact_too(tmp_path):
    """--rss-tracepoint: the kernel's own locked sum, attached through tracefs."""
    p, out = run_mprof(["--rss-tracepoint", "--stats", target("alloc"), "120", "100"], tmp_path)
    assert "tracepoint/kmem/rss_stat" in p.stderr, p.stderr
    hwm_kb = int(kv_lines(p.stdout, "VmHWM")[0][0])
    assert abs(Dat(out).peak() * 1024 - hwm_kb) <= PAGE_KB


@needs_kernel
def test_default_path_is_tp_btf_and_needs_no_tracefs(tmp_path):
    """The default programs attach without tracefs (tp_btf, raw tracepoints)."""
    mounted = subprocess.run(["mountpoint", "-q", "/sys/kernel/tracing"]).returncode == 0
    if mounted:
        subprocess.run(["umount", "/sys/kernel/tracing"], check=False)
    try:
        if subprocess.run(["mountpoint", "-q", "/sys/kernel/tracing"]).returncode == 0:
            pytest.skip("tracefs is busy and cannot be unmounted for this test")
        p, out = run_mprof(["--stats", target("alloc"), "40", "50"], tmp_path)
        assert "tp_btf/rss_stat" in p.stderr, p.stderr
        assert subprocess.run(["mountpoint", "-q", "/sys/kernel/tracing"]).returncode != 0
        assert Dat(out).peak() >= 40
    finally:
        if mounted:
            subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"])


@needs_kernel
def test_ten_20ms_spikes_all_at_full_height(tmp_path):
    """Ten 300 MiB spikes resident ~20 ms each: all ten are in the file at full height."""
    p, out = run_mprof([target("spikes"), "10", "300", "20", "300"], tmp_path)
    spikes = [(float(a), float(b)) for a, b in kv_lines(p.stdout, "spike")]
    assert len(spikes) == 10
    d = Dat(out)
    base = sorted(m for _, m in d.mem)[len(d.mem) // 4]
    seen = 0
    for t0, t1 in spikes:
        inside = [m for t, m in d.mem if t0 - 0.002 <= t <= t1 + 0.002]
        if inside and max(inside) >= base + 295:
            seen += 1
    assert seen == 10, "only %d of 10 spikes at full height" % seen


@needs_kernel
@pytest.mark.parametrize("flags", [["-C", "-M"], ["-M"]])
def test_tree_children_with_real_peaks(tmp_path, flags):
    """fork, 1 ms children, sh -c + exec and a grandchild: each in the file with its peak."""
    p, out = run_mprof(flags + [target("tree")], tmp_path)
    procs = {int(pid): (kind, int(kb)) for pid, kind, kb in kv_lines(p.stdout, "proc")}
    kinds = sorted(k for k, _ in procs.values())
    assert kinds == ["blink"] * 5 + ["fork", "grandchild", "shexec"], kinds
    d = Dat(out)
    for pid, (kind, hwm_kb) in procs.items():
        assert pid in d.chld, "%s child %d missing" % (kind, pid)
        peak_kb = max(m for _, m in d.chld[pid]) * 1024
        # The start values at fork come from the folded counter (off by under
        # percpu_counter_batch pages per CPU until that member moves): 64 pages here.
        assert abs(peak_kb - hwm_kb) <= 64 * PAGE_KB + PAGE_KB, (kind, peak_kb, hwm_kb)
    if "-C" in flags:
        shexec_kb = [kb for k, kb in procs.values() if k == "shexec"][0]
        assert d.peak() * 1024 >= shexec_kb, "the tree's sum is below one of its members"
    else:
        root_peak = d.peak()
        assert root_peak < 30, "without -C, MEM is the root alone (%.1f MiB)" % root_peak


@needs_kernel
def test_sigint_leaves_a_complete_file(tmp_path):
    out = tmp_path / "int.dat"
    proc = subprocess.Popen([MPROF, "run", "-o", str(out), target("alloc"), "100", "10000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not proc.stdout.readline().startswith("VmRSS"):  # it holds its 100 MiB now
        pass
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "killed by signal 2" in stderr
    d = Dat(out)
    assert d.cmdline and len(d.mem) >= 5
    assert d.peak() >= 100


@needs_kernel
def test_exit_code_is_reported_and_propagated(tmp_path):
    p, _ = run_mprof(["sh", "-c", "exit 3"], tmp_path)
    assert "exited with status 3" in p.stderr
    p, _ = run_mprof(["-E", "sh", "-c", "exit 3"], tmp_path, check=False)
    assert p.returncode == 3


@needs_kernel
def test_sudo_user_runs_target_and_owns_file(open_tmp):
    tmp_path = open_tmp
    env = dict(os.environ, SUDO_UID="65534", SUDO_GID="65534")
    p, out = run_mprof(["sh", "-c", "id -u; id -g"], tmp_path, env=env)
    assert p.stdout.split()[-2:] == ["65534", "65534"]
    st = os.stat(out)
    assert (st.st_uid, st.st_gid) == (65534, 65534)
    assert Dat(out).mem


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_non_root_falls_back_to_polling_with_one_line(open_tmp):
    import shutil
    # the checkout may sit in a folder only root can enter: run copies from an open one
    mprof = shutil.copy(MPROF, open_tmp / "mprof")
    alloc = shutil.copy(target("alloc"), open_tmp / "alloc")
    out = open_tmp / "nr.dat"
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        mprof, "run", "-o", str(out), alloc, "50", "300"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mprof: kernel backend unavailable"), lines
    assert "not running as root" in lines[0]
    d = Dat(out)
    assert d.peak() >= 50


def test_bad_inputs_give_one_line_and_nonzero(tmp_path):
    cases = [
        (["--bogus", "true"], "unknown option"),
        (["-T", "abc", "true"], "invalid interval"),
        ([], "a command to run must be provided"),
        (["/nonexistent/cmd"], "cannot run"),
        (["--backend", "bogus", "true"], "unknown backend"),
    ]
    for args, msg in cases:
        out = tmp_path / "bad.dat"
        p = subprocess.run([MPROF, "run", "-o", str(out)] + args, capture_output=True,
                           text=True, timeout=30)
        assert p.returncode != 0, args
        assert len(p.stderr.splitlines()) == 1 and msg in p.stderr, (args, p.stderr)
        assert not out.exists(), args
    p = subprocess.run([MPROF, "run", "-o", "/nonexistent-dir/x.dat", "true"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and len(p.stderr.splitlines()) == 1
    assert "cannot open" in p.stderr


def test_proc_backend_records_the_target(tmp_path):
    p, out = run_mprof(["--backend", "proc", target("alloc"), "80", "400"], tmp_path)
    d = Dat(out)
    assert d.peak() >= 80
    assert d.cmdline.endswith("alloc 80 400")


def test_timeout_stops_recording_and_leaves_the_command(tmp_path):
    """-t: memory_profiler stops sampling after the timeout and does not kill the command."""
    import time
    out = tmp_path / "t.dat"
    t0 = time.time()
    rc = subprocess.call([MPROF, "run", "-t", "1", "-o", str(out), "sleep", "3"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    assert rc == 0 and time.time() - t0 < 2.5
    d = Dat(out)
    assert d.mem and max(t for t, _ in d.mem) - min(t for t, _ in d.mem) < 1.5


def test_output_is_appended_and_interval_honoured(tmp_path):
    """-o appends like memory_profiler; -T sets the tick period."""
    out = tmp_path / "out.dat"
    run_mprof(["-T", "0.05", target("alloc"), "10", "300"], tmp_path)
    first = Dat(out)
    run_mprof(["-T", "0.05", target("alloc"), "10", "300"], tmp_path)
    text = out.read_text()
    assert text.count("CMDLINE ") == 2
    ticks = sorted(t for t, _ in first.mem)
    gaps = sorted(b - a for a, b in zip(ticks, ticks[1:]))
    assert 0.03 < gaps[len(gaps) // 2] < 0.07, gaps  # median spacing ~ 0.05 s


@needs_kernel
def test_fault_storm_stays_bounded_and_losses_are_reported(tmp_path):
    """A storm of one-page rises and falls: with the default granularity it sends almost nothing;
    with one-page turning points and a 4 KiB ring buffer, records are lost and mprof says so."""
    p, out = run_mprof(["--stats", target("churn"), "1000", "100"], tmp_path)
    import re
    recs, lost = map(int, re.search(r"(\d+) records, (\d+) lost", p.stderr).groups())
    assert recs < 100 and lost == 0, p.stderr  # 200 000 rss_stat events, a handful of records
    assert "were lost" not in p.stderr
    p, out = run_mprof(["--stats", "--granularity", "0.004", "--ringbuf-kib", "4",
                        target("churn"), "1000", "100"], tmp_path)
    assert "kernel records were lost (ring buffer full)" in p.stderr, p.stderr
    Dat(out)  # still complete and parseable
    p, _ = run_mprof(["--ringbuf-kib", "3", "true"], tmp_path, check=False)
    assert p.returncode == 2 and "invalid ring buffer size" in p.stderr
