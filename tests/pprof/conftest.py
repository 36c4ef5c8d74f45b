"""Fixtures of the pprof export tests: profiles written by pprof_driver (tests/pprof/pprof_driver.c)
from given stacks, and the readers: Python's protobuf, through a module protoc generates from our
user/profile.proto, and `go tool pprof`. `make test-pprof` sets PPROF_DRIVER and PROFILE_PROTO."""
import importlib.util
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# enum mp_line_kind (user/lines.h) and what mp_lines__kind_name() calls each special kind
PY, NOFRAME, UNREADABLE, OUTSIDE, UNRESOLVED = range(5)
KIND_NAMES = {
    NOFRAME: "<no Python frame>",
    UNREADABLE: "<stack not readable>",
    OUTSIDE: "<outside the process>",
    UNRESOLVED: "<code gone before it was named>",
}


class Stack:
    """One stack as mp_lines gives it: frames root first, each (func, file, line); a byte that
    is not UTF-8 is given as its surrogate escape (U+DCFF for 0xff)."""

    def __init__(self, pid, frames=(), grown=0, freed=0, kind=PY, truncated=False):
        self.pid, self.frames, self.kind = pid, list(frames), kind
        self.grown, self.freed, self.truncated = grown, freed, truncated

    def leaf_first(self):
        """The frames as pprof has them, the special kinds as their one frame."""
        if not self.frames:
            return [(KIND_NAMES[self.kind], "", 0)]
        return list(reversed(self.frames))

    def line(self):
        fields = [self.pid, self.kind, self.grown, self.freed, int(self.truncated)]
        for func, file, line in self.frames:
            fields += [func, file, line]
        return "\t".join(str(f) for f in fields) + "\n"


@pytest.fixture(scope="session")
def driver():
    path = os.environ.get("PPROF_DRIVER", os.path.join(ROOT, "build", "tests", "pprof_driver"))
    if not os.access(path, os.X_OK):
        pytest.skip("%s is not built (make test-pprof builds it)" % path)
    return os.path.abspath(path)


@pytest.fixture
def write_profile(driver, tmp_path):
    """write_profile(stacks, time_ns=..., duration_ns=...) -> the path of the gzipped profile."""
    count = [0]

    def write(stacks, time_ns=1700000000123456789, duration_ns=2500000000):
        count[0] += 1
        out = tmp_path / ("profile%d.pb.gz" % count[0])
        data = "".join(s.line() for s in stacks).encode("utf-8", "surrogateescape")
        r = subprocess.run([driver, str(out), str(time_ns), str(duration_ns)], input=data,
                           capture_output=True, timeout=60)
        assert r.returncode == 0, "pprof_driver failed: %s" % r.stderr.decode(errors="replace")
        return str(out)

    return write


@pytest.fixture(scope="session")
def profile_pb2(tmp_path_factory):
    """The module protoc generates from user/profile.proto (skip without protoc or protobuf)."""
    protoc = shutil.which("protoc")
    if not protoc:
        pytest.skip("protoc is not installed (Debian: protobuf-compiler)")
    try:
        import google.protobuf  # noqa: F401
    except ImportError:
        pytest.skip("Python's protobuf is not installed (Debian: python3-protobuf)")
    proto = os.environ.get("PROFILE_PROTO", os.path.join(ROOT, "user", "profile.proto"))
    out = tmp_path_factory.mktemp("pb2")
    subprocess.run([protoc, "--proto_path=" + os.path.dirname(proto), "--python_out=" + str(out),
                    os.path.basename(proto)], check=True, timeout=60)
    spec = importlib.util.spec_from_file_location("profile_pb2", str(out / "profile_pb2.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def go_pprof(tmp_path_factory):
    """go_pprof(*args) -> stdout of `go tool pprof ARGS` (skip without Go)."""
    go = shutil.which("go")
    if not go:
        pytest.skip("go is not installed (Debian: golang-go), so go tool pprof cannot be run")
    home = tmp_path_factory.mktemp("gohome")
    env = dict(os.environ)
    # nothing written to the user's folders, no toolchain download, no browser
    env.update(HOME=str(home), GOCACHE=str(home / "cache"), GOPATH=str(home / "go"),
               PPROF_TMPDIR=str(home), GOTOOLCHAIN="local", GOFLAGS="", BROWSER="true")

    def run(*args):
        r = subprocess.run([go, "tool", "pprof"] + list(args), env=env, capture_output=True,
                           text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, "go tool pprof %s failed: %s" % (" ".join(args), r.stderr)
        return r.stdout

    return run
