"""The layout table (user/pylayout.c) against the headers of every installed interpreter.

tests/pyframe/pylayout_check.c is compiled against each interpreter's own headers (internal
ones included, under Py_BUILD_CORE) and recomputes every field of the table for that version
with offsetof()/sizeof(); any difference, or a field set in the table that the checker does not
verify, fails. Needs no root and no BPF.
"""
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import HERE, PYS_FOR_LAYOUT, ROOT

CC = os.environ.get("PYFRAME_CC") or shutil.which("cc") or "cc"


def include_dir(py):
    p = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"],
                       capture_output=True, text=True, timeout=60)
    return p.stdout.strip() if p.returncode == 0 else None


@pytest.fixture(scope="module")
def table_object():
    """user/pylayout.c compiled once, without any Python headers (they have a pyframe.h too)."""
    d = tempfile.mkdtemp(prefix="pylayout-")
    obj = os.path.join(d, "pylayout.o")
    subprocess.run([CC, "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-c", "-I",
                    os.path.join(ROOT, "user"), "-I", os.path.join(ROOT, "bpf"),
                    os.path.join(ROOT, "user", "pylayout.c"), "-o", obj], check=True)
    yield d, obj
    shutil.rmtree(d)


@pytest.mark.parametrize("py", [p for _, p in PYS_FOR_LAYOUT], ids=[n for n, _ in PYS_FOR_LAYOUT])
def test_table_matches_headers(py, table_object):
    d, obj = table_object
    if py is None:
        pytest.skip("not installed")
    inc = include_dir(py)
    if not inc or not os.path.exists(os.path.join(inc, "Python.h")):
        pytest.skip("%s has no headers (Python.h)" % py)
    if not os.path.isdir(os.path.join(inc, "internal")):
        pytest.skip("%s has no internal headers" % py)
    exe = os.path.join(d, "check-%d" % abs(hash(py)))
    c = subprocess.run([CC, "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-I", inc, "-I",
                        os.path.join(ROOT, "user"), os.path.join(HERE, "pylayout_check.c"), obj,
                        "-o", exe], capture_output=True, text=True)
    assert c.returncode == 0, c.stderr
    r = subprocess.run([exe], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    assert r.stdout.startswith("ok 3."), r.stdout
