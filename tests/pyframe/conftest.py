"""Interpreters and helpers of the CPython stack tests (make test-pyframe).

Interpreters are found at run time: the newest pyenv build of each of 3.8-3.13 (`pyenv root`)
and Debian's /usr/bin/python3.11 (a static build exporting _PyRuntime). One test runs per
interpreter found; a missing one is simply not in the list (the layout test says which it
skips and why).
"""
import glob
import os
import re
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPTS = os.path.join(HERE, "scripts")
ATTACH = os.environ.get("PYFRAME_ATTACH") or os.path.join(ROOT, "build", "tests", "pyframe",
                                                          "pyframe_attach")
MINORS = (8, 9, 10, 11, 12, 13)


def _pyenv_root():
    if not shutil.which("pyenv"):
        return None
    p = subprocess.run(["pyenv", "root"], capture_output=True, text=True)
    return p.stdout.strip() or None if p.returncode == 0 else None


def _version_key(path):
    m = re.search(r"/versions/(\d+)\.(\d+)\.(\d+)/", path)
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)


def pythons():
    """[(label, path)] of the interpreters to test."""
    out = []
    root = _pyenv_root()
    if root:
        for minor in MINORS:
            found = sorted(glob.glob(os.path.join(root, "versions", "3.%d.*" % minor, "bin",
                                                  "python3")), key=_version_key)
            found = [f for f in found if re.search(r"/versions/3\.%d\.\d+/" % minor, f)]
            if found:
                out.append(("pyenv-3.%d" % minor, found[-1]))
    if os.path.exists("/usr/bin/python3.11"):
        out.append(("debian-3.11", "/usr/bin/python3.11"))
    return out


def pythons_for_layout():
    """Every supported minor version: its interpreter, or None (the test says it is missing)."""
    found = dict(pythons())
    out = [(n, found.get(n)) for n in ["pyenv-3.%d" % m for m in MINORS]]
    return out + [("debian-3.11", found.get("debian-3.11"))]


PYS_FOR_LAYOUT = pythons_for_layout()


def old_pythons():
    """pyenv builds older than 3.8, for the "unsupported version" test."""
    root = _pyenv_root()
    if not root:
        return []
    return sorted(p for p in glob.glob(os.path.join(root, "versions", "*", "bin", "python"))
                  if re.search(r"/versions/(2\.\d+|3\.[0-7])\.\d+/", p))


def kernel_prereqs():
    if os.geteuid() != 0:
        return "needs root (BPF)"
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return "needs kernel BTF"
    if not os.path.exists(ATTACH):
        return "the test driver is not built (make test-pyframe builds it)"
    return None


needs_kernel = pytest.mark.skipif(kernel_prereqs() is not None, reason=str(kernel_prereqs()))


def markers(path):
    """{NAME: line} of the "# @NAME" markers of a script."""
    out = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            m = re.search(r"# @(\w+)", line)
            if m:
                out[m.group(1)] = n
    return out


class Result:
    """The driver's output: stats, prog counters and stacks with their frames."""

    def __init__(self, text):
        self.raw = text
        self.attached = None
        self.stats = {}
        self.prog = None
        self.stacks = []
        for line in text.splitlines():
            f = line.split("\t")
            if f[0] == "attached":
                self.attached = f[1:]
            elif f[0] == "stats":
                self.stats[f[1]] = int(f[2])
            elif f[0] == "prog":
                self.prog = (int(f[1]), int(f[2]))
            elif f[0] == "stack":
                self.stacks.append({"id": int(f[1]), "grown": int(f[2]), "freed": int(f[3]),
                                    "events": int(f[4]), "flags": int(f[5]),
                                    "depth": int(f[6]), "frames": []})
            elif f[0] == "frame":
                self.stacks[-1]["frames"].append((f[1], f[2], f[3]))

    def top_at(self, script, line):
        """Stacks whose running frame is line @line of @script."""
        base = os.path.basename(script)
        return [s for s in self.stacks if s["frames"] and
                os.path.basename(s["frames"][0][1]) == base and s["frames"][0][2] == str(line)]


class Attached:
    """A target started plainly, then the driver attached to it while it runs."""

    def __init__(self, py, script, args=()):
        self.script = script
        self.target = subprocess.Popen([py, script], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True)
        assert self.target.stdout.readline().strip() == "ready"
        self.driver = subprocess.Popen([ATTACH] + list(args) + [str(self.target.pid)],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
        self.first = self.driver.stdout.readline()

    def run(self):
        """Let the target run its steps; returns {step: RSS delta}, the done line, states seen."""
        assert self.first.startswith("attached"), self.driver.stderr.read()
        self.target.stdin.write("go\n")
        self.target.stdin.flush()
        steps, states = {}, set()
        while True:
            states.add(self.state())
            line = self.target.stdout.readline()
            assert line, "the target ended early"
            if line.startswith("step "):
                _, name, delta = line.split()
                steps[name] = int(delta)
            elif line.startswith("done"):
                return steps, line.split()[1:], states

    def state(self):
        with open("/proc/%d/stat" % self.target.pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]

    def finish(self):
        out, err = self.driver.communicate("", timeout=60)
        self.target.stdin.close()
        self.target.wait(timeout=60)
        assert self.driver.returncode == 0, err
        return Result(self.first + out)

    def kill(self):
        for p in (self.driver, self.target):
            if p.poll() is None:
                p.kill()
                p.wait()
