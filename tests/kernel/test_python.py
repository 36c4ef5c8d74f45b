"""mprof run with Python programs: FUNC lines, and kernel-exact line reports through the page."""
import os
import subprocess

import pytest

from conftest import MPROF, Dat, needs_kernel

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3"
HOOK = os.path.join(os.path.dirname(MPROF), "python", "memory_profiler", "__init__.py")

needs_hook = pytest.mark.skipif(not os.path.exists(HOOK), reason="the CPython hook is not built")


def funcs(path):
    out = {}
    with open(path) as f:
        for line in f:
            if line.startswith("FUNC "):
                _, name, m0, t0, m1, t1, level = line.split()
                out[name] = (float(m0), float(t0), float(m1), float(t1), int(level))
    return out


@needs_kernel
@needs_hook
def test_script_gets_func_lines_next_to_kernel_mem(tmp_path):
    out = tmp_path / "ts.dat"
    env = dict(os.environ, MPROF_PYTHON=PY)
    p = subprocess.run([MPROF, "run", "-o", str(out), os.path.join(HERE, "scripts", "timestamps.py")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "running as a Python program" in p.stdout
    f = funcs(out)
    assert set(f) == {"__main__.inner", "__main__.outer", ".block1"}, f
    assert f["__main__.outer"][4] == 0 and f["__main__.inner"][4] == 1 and f[".block1"][4] == 1
    inner, block = f["__main__.inner"], f[".block1"]
    assert abs((inner[2] - inner[0]) - 76.29) < 0.5, inner  # [1] * 10**7: 8 bytes a slot
    assert abs((block[2] - block[0]) - 50.0) < 0.5, block
    d = Dat(out)
    assert d.cmdline == "%s %s" % (PY, os.path.join(HERE, "scripts", "timestamps.py"))
    # the kernel's MEM series saw the block's 50 MiB on top of the list
    assert d.peak() >= block[2] - 0.01


@needs_kernel
@needs_hook
def test_line_report_from_the_kernel_page(tmp_path):
    """mprof run python3 -m memory_profiler: the hook reads exact RSS from the shared page."""
    p = subprocess.run([MPROF, "run", "-o", str(tmp_path / "seed.dat"), PY, "-m",
                        "memory_profiler", os.path.join(ROOT, "examples", "seed.py")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "statm" not in p.stderr, p.stderr  # no fallback notice: the page was used
    incs = {}
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) > 5 and parts[0].isdigit() and parts[2] == "MiB" and parts[4] == "MiB":
            incs[int(parts[0])] = float(parts[3])
    assert abs(incs[3] - 7.633) < 0.1 and abs(incs[4] - 152.590) < 0.1, incs
    assert abs(incs[5] + 152.590) < 0.1, incs


@needs_kernel
@needs_hook
def test_func_lines_survive_a_killed_child(tmp_path):
    """FUNC lines come from the hook's USDT probes as calls end: a kill keeps the finished ones
    (memory_profiler's child writes them at exit, so a kill loses them all)."""
    import signal
    import time
    out = tmp_path / "k.dat"
    env = dict(os.environ, MPROF_PYTHON=PY)
    p = subprocess.Popen([MPROF, "run", "-o", str(out), os.path.join(HERE, "scripts", "killed.py")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 30
    while time.time() < deadline and not (out.exists() and "__main__.done" in out.read_text()):
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert "killed by signal 15" in err
    f = funcs(out)
    assert set(f) == {"__main__.done"}, f
    m0, t0, m1, t1, level = f["__main__.done"]
    assert level == 0 and t1 > t0, f
    inside = [m for t, m in Dat(out).mem if t0 <= t <= t1]
    assert inside and max(inside) - m0 > 29, (f, inside)  # the 30 MiB bytearray, while it lived
