"""memory_profiler.pytest_plugin on a real pytest session: limit_rss, --mprof-top, with the
kernel page under `mprof run` (and the tree with -C) and with VmHWM without it; loaded by its
pytest11 entry point (the build folder holds the package's metadata, as an install does)."""
import os
import subprocess
import xml.etree.ElementTree as ET

import pytest

from conftest import MPROF, needs_kernel

PY = "/usr/bin/python3"
HOOK = os.path.join(os.path.dirname(MPROF), "python")

INNER = '''
import subprocess
import sys

import pytest

keep = []


@pytest.mark.limit_rss("64 MiB")
def test_small():
    keep.append(b"x" * (16 << 20))


@pytest.mark.limit_rss("64 MiB")
def test_big_spike():
    data = b"x" * (200 << 20)
    del data


@pytest.mark.xfail(strict=True)
@pytest.mark.limit_rss("10 MiB")
def test_xfail_over_budget():
    b = b"x" * (50 << 20)
    del b


def test_plain_failure():
    assert 1 == 2


@pytest.mark.limit_rss("32 MiB")
def test_child_process():
    subprocess.run([sys.executable, "-c", "b = b'x' * (100 << 20)"], check=True)


@pytest.fixture
def big_setup():
    x = b"y" * (100 << 20)
    yield x


@pytest.mark.limit_rss("20 MiB")
def test_setup_is_excluded(big_setup):
    assert len(big_setup) == 100 << 20
'''

needs_pytest = pytest.mark.skipif(
    subprocess.run([PY, "-c", "import pytest"]).returncode != 0, reason="no pytest for " + PY)
needs_hook = pytest.mark.skipif(not os.path.isdir(os.path.join(HOOK, "memory_profiler")),
                                reason="the CPython hook is not built")


def pytest_session(tmp_path, src, args, prefix=()):
    """Runs pytest on @src (as test_inner.py) with the build's package on PYTHONPATH; returns
    the process and {test name: (outcome, message)} from its JUnit XML."""
    (tmp_path / "test_inner.py").write_text(src)
    xml = tmp_path / "r.xml"
    env = dict(os.environ, PYTHONPATH=HOOK)
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    p = subprocess.run(list(prefix) + [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider"] +
                       list(args) + ["--junitxml", str(xml), "test_inner.py"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert xml.exists(), p.stdout + p.stderr
    outcomes = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        name = case.get("name")
        kids = {c.tag: c for c in case}
        if "failure" in kids:
            outcomes[name] = ("failed", kids["failure"].get("message", "") +
                              (kids["failure"].text or ""))
        elif "skipped" in kids:
            outcomes[name] = ("skipped", kids["skipped"].get("message", ""))
        else:
            outcomes[name] = ("passed", "")
    return p, outcomes


def session(tmp_path, prefix):
    # -p names the plugin the entry point already loads: it must be loaded once, not fail
    return pytest_session(tmp_path, INNER, ["-p", "memory_profiler.pytest_plugin",
                                            "--mprof-top", "3"], prefix)


def common(p, o, kind):
    assert o["test_small"][0] == "passed", o
    assert o["test_big_spike"][0] == "failed", o
    msg = o["test_big_spike"][1]
    assert "memory limit exceeded" in msg and "above the limit of 64.000 MiB" in msg, msg
    assert kind in msg, msg
    assert o["test_xfail_over_budget"][0] == "skipped", o  # xfailed
    assert o["test_plain_failure"][0] == "failed" and "assert 1 == 2" in o["test_plain_failure"][1]
    assert o["test_setup_is_excluded"][0] == "passed", o
    top = p.stdout[p.stdout.index("highest peaks"):]
    assert top.splitlines()[1].endswith("test_inner.py::test_big_spike"), top
    return msg


@needs_pytest
@needs_hook
def test_plugin_without_root_uses_vmhwm(tmp_path):
    p, o = session(tmp_path, [])
    common(p, o, "VmHWM (this process)")
    assert o["test_child_process"][0] == "passed", "a child is not this process's memory"


@needs_kernel
@needs_pytest
@needs_hook
def test_plugin_under_mprof_run_reads_the_kernel_page(tmp_path):
    p, o = session(tmp_path, [MPROF, "run", "-o", str(tmp_path / "k.dat")])
    msg = common(p, o, "process (kernel page, exact)")
    assert "the peak was reached at test_inner.py:" in msg, msg
    assert 'data = b"x" * (200 << 20)' in msg, msg
    assert o["test_child_process"][0] == "passed", o


@needs_kernel
@needs_pytest
@needs_hook
def test_plugin_under_mprof_run_c_counts_the_child(tmp_path):
    p, o = session(tmp_path, [MPROF, "run", "-C", "-o", str(tmp_path / "c.dat")])
    common(p, o, "process tree (kernel page, exact)")
    assert o["test_child_process"][0] == "failed", o
    assert "process tree" in o["test_child_process"][1]


BUDGET = '''
import pytest


@pytest.mark.limit_rss("64 MiB")
def test_over():
    data = b"x" * (200 << 20)
    del data


@pytest.mark.limit_rss("64 MiB")
def test_under():
    data = b"x" * (8 << 20)
    del data
'''


@needs_pytest
@needs_hook
def test_entry_point_loads_the_plugin_without_p(tmp_path):
    p, o = pytest_session(tmp_path, BUDGET, [])
    assert o["test_over"][0] == "failed", (o, p.stdout)
    assert "memory limit exceeded" in o["test_over"][1], o
    assert o["test_under"][0] == "passed", o
    assert "Plugin already registered" not in p.stderr


@needs_pytest
@needs_hook
def test_no_p_turns_the_entry_point_off(tmp_path):
    p, o = pytest_session(tmp_path, BUDGET, ["-p", "no:memory_profiler.pytest_plugin"])
    assert o["test_over"][0] == "passed", o             # nobody measured it
    assert "Unknown pytest.mark.limit_rss" in p.stdout, p.stdout


# VmHWM is left alone where nothing is measured: a spike in one test is still the process's
# high-water mark in the next (and so ru_maxrss, which reads the same mark).
UNTOUCHED = '''
import pytest


def kb(key):
    with open("/proc/self/status") as f:
        return int(next(l for l in f if l.startswith(key)).split()[1])


def test_a_spike():
    data = b"x" * (300 << 20)
    del data


def test_b_mark_kept():
    assert kb("VmHWM:") > kb("VmRSS:") + (200 << 10)


@pytest.mark.limit_rss("64 MiB")
def test_c_marked():
    pass
'''


@needs_pytest
@needs_hook
def test_unmeasured_tests_keep_their_vmhwm(tmp_path):
    # no marked test collected (deselected) and no --mprof-top: nothing hooked into the tests
    p, o = pytest_session(tmp_path, UNTOUCHED, ["-k", "not marked"])
    assert o == {"test_a_spike": ("passed", ""), "test_b_mark_kept": ("passed", "")}, o
    # a marked test in the session: only it is measured
    p, o = pytest_session(tmp_path, UNTOUCHED, [])
    assert o["test_b_mark_kept"][0] == "passed" and o["test_c_marked"][0] == "passed", o
    # --mprof-top measures every test, so each resets the mark (the check sees it)
    p, o = pytest_session(tmp_path, UNTOUCHED, ["--mprof-top", "1"])
    assert o["test_b_mark_kept"][0] == "failed", o
    assert "mprof: 1 highest peaks" in p.stdout and "test_a_spike" in p.stdout, p.stdout


METER = '''
import os
from memory_profiler import pytest_plugin as pp

real_open = os.open


def no_clear_refs(path, *a):
    if path.endswith("clear_refs"):
        raise PermissionError(13, "Permission denied")
    return real_open(path, *a)


os.open = no_clear_refs
m = pp._Meter()
start = m.mark()
print(m.kind)
print(m.peak() >= start > 0)
'''


@needs_hook
def test_vmhwm_that_cannot_be_reset_says_so(tmp_path):
    env = dict(os.environ, PYTHONPATH=HOOK)
    env.pop("MPROF_RSS_FD", None)
    p = subprocess.run([PY, "-c", METER], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        "VmHWM (this process) since it started: cannot reset it (Permission denied)", "True"]
