"""Fixtures for the file-command tests: our binary, memory_profiler's own mprof, real files."""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, "tests", "data")


def _env():
    env = dict(os.environ)
    env["TZ"] = "UTC"
    env["LC_ALL"] = "C"
    # Under ASan, fontconfig's configuration (allocated once, never freed) is not our leak.
    supp = os.path.join(HERE, "lsan.supp")
    env["LSAN_OPTIONS"] = ("suppressions=%s:print_suppressions=0:" % supp
                           + env.get("LSAN_OPTIONS", ""))
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


class Result:
    def __init__(self, p):
        self.rc = p.returncode
        self.out = p.stdout
        self.err = p.stderr

    def __repr__(self):
        return "rc=%r\nstdout:\n%s\nstderr:\n%s" % (self.rc, self.out, self.err)


@pytest.fixture(scope="session")
def mprof_bin():
    path = os.environ.get("MPROF", os.path.join(ROOT, "build", "mprof"))
    if not os.access(path, os.X_OK):
        pytest.skip("%s is not built (run make)" % path)
    return os.path.abspath(path)


@pytest.fixture
def ours(mprof_bin):
    """Run our mprof with arguments; returns a Result (text output)."""
    def run(*args, cwd=None, timeout=120):
        p = subprocess.run([mprof_bin] + [str(a) for a in args], cwd=cwd, env=_env(),
                           capture_output=True, text=True, timeout=timeout)
        # A sanitizer report is a failure whatever the exit status says.
        assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
        return Result(p)
    return run


def _orig_cmd():
    """memory_profiler's mprof, run from its module (Debian names the script python3-mprof)."""
    py = os.environ.get("TESTPY", "/usr/bin/python3")
    probe = subprocess.run([py, "-c", "import mprof, memory_profiler"], capture_output=True)
    if probe.returncode:
        return None
    return [py, "-m", "mprof"]


@pytest.fixture(scope="session")
def orig_cmd():
    cmd = _orig_cmd()
    if cmd is None:
        pytest.skip("memory_profiler is not installed (apt-get install python3-memory-profiler)")
    return cmd


@pytest.fixture
def orig(orig_cmd):
    """Run memory_profiler's mprof; returns a Result."""
    def run(*args, cwd=None, timeout=120):
        env = _env()
        env["MPLBACKEND"] = "Agg"
        p = subprocess.run(orig_cmd + [str(a) for a in args], cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=timeout)
        return Result(p)
    return run


NESTED_PY = textwrap.dedent("""\
    import time

    @profile
    def leaf(n):
        x = bytearray(n * 2**20)
        time.sleep(0.05)
        return len(x)

    @profile
    def middle(n):
        return sum(leaf(n + i) for i in range(3))

    @profile
    def top():
        keep = [0] * (3 * 10**6)
        middle(10)
        with profile.timestamp("spike"):
            big = bytearray(60 * 2**20)
            time.sleep(0.2)
            del big
        return len(keep)

    top()
    time.sleep(0.1)
    """)

POOL_PY = textwrap.dedent("""\
    import multiprocessing, time

    def work(n):
        b = bytearray(n * 2**20)
        time.sleep(0.4)
        return len(b)

    if __name__ == "__main__":
        with multiprocessing.Pool(2) as p:
            p.map(work, [20, 40])
    """)


@pytest.fixture(scope="session")
def real_files(tmp_path_factory, orig_cmd):
    """Profiles written right now by memory_profiler's `mprof run`: FUNC lines (Python mode,
    nested functions and a timestamp block), children (-M -C), and a plain command."""
    d = tmp_path_factory.mktemp("real")
    (d / "nested.py").write_text(NESTED_PY)
    (d / "pool.py").write_text(POOL_PY)
    env = _env()
    runs = {
        "funcs.dat": ["run", "-T", "0.02", "-o", "funcs.dat", "nested.py"],
        "children.dat": ["run", "-M", "-C", "-T", "0.05", "-o", "children.dat",
                         sys.executable, "pool.py"],
        "plain.dat": ["run", "-o", "plain.dat", sys.executable, "-c",
                      "import time; a = bytearray(30 * 2**20); time.sleep(0.3); "
                      "b = bytearray(50 * 2**20); time.sleep(0.3)"],
    }
    for name, args in runs.items():
        p = subprocess.run(orig_cmd + args, cwd=d, env=env, capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 0, p.stderr
        assert (d / name).stat().st_size > 0
    text = (d / "funcs.dat").read_text()
    assert "FUNC __main__.leaf" in text and "FUNC .spike" in text
    assert "CHLD " in (d / "children.dat").read_text()
    return d


@pytest.fixture
def data_dir():
    return DATA


def copy_data(dst, *names):
    for n in names:
        shutil.copy(os.path.join(DATA, n), os.path.join(str(dst), n))
