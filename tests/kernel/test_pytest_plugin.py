"""memory_profiler.pytest_plugin on a real pytest session: limit_rss, --mprof-top, with the
kernel page under `mprof run` (and the tree with -C) and with VmHWM without it."""
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


def session(tmp_path, prefix):
    (tmp_path / "test_inner.py").write_text(INNER)
    xml = tmp_path / "r.xml"
    env = dict(os.environ, PYTHONPATH=HOOK)
    env.pop("PYTEST_ADDOPTS", None)
    p = subprocess.run(prefix + [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                                 "memory_profiler.pytest_plugin", "--mprof-top", "3",
                                 "--junitxml", str(xml), "test_inner.py"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
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
