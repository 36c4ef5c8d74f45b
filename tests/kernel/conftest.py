"""Shared helpers of the real-kernel tests: run build/mprof, parse .dat files."""
import os
import re
import subprocess

import pytest

MPROF = os.environ.get("MPROF") or os.path.abspath("build/mprof")
TARGETS = os.environ.get("TARGETS") or os.path.abspath("build/tests/targets")

LINE = re.compile(
    r"^(CMDLINE .*|MEM -?\d+\.\d{6} \d+\.\d{4}|CHLD \d+ -?\d+\.\d{6} \d+\.\d{4}"
    r"|FUNC \S+ \S+ \S+ \S+ \S+( \d+)?)$"
)


def _is_sanitized(path):
    try:
        out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    except OSError:
        return False
    return "libasan" in out


SANITIZED = _is_sanitized(MPROF)
not_sanitized = pytest.mark.skipif(SANITIZED, reason="memory is measured on the normal build "
                                   "(ASan keeps shadow memory and a quarantine)")


def target(name):
    return os.path.join(TARGETS, name)


def kernel_prereqs():
    """The reason the kernel backend cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return "needs kernel BTF"
    return None


needs_kernel = pytest.mark.skipif(kernel_prereqs() is not None, reason=str(kernel_prereqs()))


class Dat:
    def __init__(self, path):
        self.cmdline = None
        self.mem = []  # (t, MiB)
        self.chld = {}  # pid -> [(t, MiB)]
        with open(path) as f:
            text = f.read()
        assert text.endswith("\n"), "file does not end with a complete line"
        for line in text.splitlines():
            assert LINE.match(line), "malformed line: %r" % line
            kind, rest = line.split(" ", 1)
            if kind == "CMDLINE":
                self.cmdline = rest
            elif kind == "MEM":
                m, t = rest.split()
                self.mem.append((float(t), float(m)))
            elif kind == "CHLD":
                pid, m, t = rest.split()
                self.chld.setdefault(int(pid), []).append((float(t), float(m)))

    def peak(self):
        return max(m for _, m in self.mem)


@pytest.fixture
def open_tmp():
    """A folder every user can write to (pytest's own is private to root)."""
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="mprof-test-")
    os.chmod(d, 0o777)
    from pathlib import Path
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def run_mprof(args, tmp_path, check=True, timeout=120, **kw):
    out = tmp_path / "out.dat"
    cmd = [MPROF, "run", "-o", str(out)] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check:
        assert p.returncode == 0, "mprof failed (%d): %s" % (p.returncode, p.stderr)
    return p, out
