"""--timestamp FUNC lines, profile.timestamp blocks, USDT notes."""
import glob
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, run

FUNC = re.compile(r'^FUNC (\S+) (\d+\.\d{4}) (\d+\.\d{4}) (\d+\.\d{4}) (\d+\.\d{4}) (\d+)$')


def test_func_lines(py):
    r = run(py, ['-m', 'memory_profiler', '--timestamp', 'stamps.py'])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines and all(FUNC.match(x) for x in lines), r.stdout
    recs = [FUNC.match(x).groups() for x in lines]
    names = [x[0] for x in recs]
    assert names == ['__main__.inner'] * 2 + ['__main__.outer'] * 2 + \
        ['__main__.raises'] + ['.block1'] * 2
    level = {x[0]: int(x[5]) for x in recs}
    assert level == {'__main__.inner': 1, '__main__.outer': 0, '__main__.raises': 0, '.block1': 1}
    for name, m0, t0, m1, t1, lvl in recs:
        assert float(t1) >= float(t0)
    # The second outer() after raises() is still level 0: an exception does
    # not leave the level raised (memory_profiler 0.61 does).
    outer = [x for x in recs if x[0] == '__main__.outer']
    assert outer[1][5] == '0'
    block = [x for x in recs if x[0] == '.block1'][0]
    assert float(block[3]) - float(block[1]) > 14.0          # 2*10**6 list = 15.3 MiB


def test_usdt_notes_and_semaphores(py):
    readelf = shutil.which('readelf')
    if not readelf:
        pytest.skip('readelf is not installed')
    r = run(py, ['-c', 'import memory_profiler._mprof_hook as h; print(h.__file__); '
                       'print(h.probes_enabled())'])
    assert r.returncode == 0, r.stderr
    so, sems = r.stdout.split()[0], r.stdout.split('\n')[1]
    assert sems == '(0, 0, 0)'                    # nobody listens
    notes = subprocess.run([readelf, '-n', so], capture_output=True, text=True).stdout
    for probe in ('func_entry', 'func_exit', 'timestamp'):
        assert re.search(r'Provider: mprof\s+Name: %s\s+Location: \S+, Base: \S+, '
                         r'Semaphore: 0x0*[1-9a-f]' % probe, notes), probe


def test_one_extension_per_abi():
    exts = glob.glob(os.path.join(os.environ['MPROF_PYTHONPATH'], 'memory_profiler',
                                  '_mprof_hook*.so'))
    assert exts and all(re.search(r'\.cpython-3\d+-[^/]*\.so$', e) for e in exts), exts
