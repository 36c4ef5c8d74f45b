"""Every backend of 0.61 against its ground truth: tracemalloc's traced bytes, smaps_rollup's PSS
and USS, a child's own VmRSS/VmHWM; memory_usage's shapes; mprof run --backend."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import DEBIAN_PY, ROOT, SCRIPTS, has_module, parse_report, row, run, table

MPROF = os.environ.get('MPROF', '')
needs_mprof = pytest.mark.skipif(not os.path.exists(MPROF), reason='MPROF is not built')


def _json(py, script, *args):
    r = run(py, [script] + list(args))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_tracemalloc_increments_are_the_traced_bytes(py):
    """0.61's own test: bytearray(n) within 0.0001 MiB of what tracemalloc traces for it."""
    d = _json(py, 'tm_bytes.py')
    assert d['tracing']
    for r in d['res']:
        assert abs(r['alloc'][1] - r['truth']) <= 0.0001, r
        assert abs(r['free'][1] + r['truth']) <= 0.0001, r
        assert r['alloc'][0] >= r['truth']                  # Mem usage: the traced total


def test_tracemalloc_from_the_command_line(py, tmp_path):
    truth = run(py, ['-c', 'import tracemalloc; tracemalloc.start(); m = tracemalloc.'
                     'get_traced_memory; x = m(); y = m(); b0 = m(); b = [2] * (2 * 10 ** 7); '
                     'b1 = m(); print(((b1[0] - b0[0]) - (y[0] - x[0])) / 2 ** 20)'])
    want = float(truth.stdout)
    shutil.copy(os.path.join(ROOT, 'examples', 'seed.py'), str(tmp_path / 'seed.py'))
    r = run(py, ['-m', 'memory_profiler', '--backend', 'tracemalloc', 'seed.py'],
            cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    t = table(parse_report(r.stdout), 'b = [2]')
    assert abs(row(t, 'b = [2]')[1] - want) < 0.001, (want, r.stdout)
    assert abs(row(t, 'del b')[1] + want) < 0.001
    assert row(t, 'a = [1]')[0] < 10            # traced bytes, not the process's RSS


def test_pss_and_uss_lines_match_smaps_rollup(py):
    d = _json(py, 'smaps_lines.py')
    for kind in ('pss', 'uss'):
        k = d[kind]
        rows = {int(x): v for x, v in k['rows'].items()}
        alloc, ret = rows[1], rows[2]
        assert abs(alloc[0] - 50.0) < 0.5, k                # the 50 MiB of bytes
        assert abs(ret[1] - k['truth']) < 1.0, k            # smaps_rollup, read just after
        # the entry row (PSS moves with what other processes map: not quite equal)
        assert abs(rows[0][0] - rows[0][1]) < 0.5
        if k['psutil'] is not None:                          # what 0.61 would read
            assert abs(ret[1] - k['psutil']) < 3.0, k


def test_include_children_in_the_line_profiler(py):
    d = _json(py, 'children_lines.py')
    off, on = d['False'], d['True']
    # rows are indexed from the def line; 3 is `rss = status_rss(p.pid)`, the child alive
    assert on['rows']['3'] >= off['rows']['3'] + on['child'] - 1.0, d
    assert off['rows']['3'] < off['rows']['0'] + 5.0


USAGE = r'''
import json, os, subprocess, sys
from memory_profiler import memory_usage

def smaps(pid, kind):
    total = 0
    with open('/proc/%d/smaps_rollup' % pid) as f:
        for line in f:
            if (kind == 'pss' and line.startswith('Pss:')) or \
                    (kind == 'uss' and line.startswith('Private_')):
                total += int(line.split()[1])
    return total / 1024.0

out = {}
for b, kind in (('psutil_pss', 'pss'), ('psutil_uss', 'uss')):
    mine = memory_usage(-1, backend=b)[0]
    out[kind] = (mine, smaps(os.getpid(), kind))
p = subprocess.Popen([sys.executable, sys.argv[1], '40', '0.4'], stdout=subprocess.PIPE, text=True)
seen = memory_usage(p, interval=0.05, backend='psutil_pss')
out['child'] = (max(seen), float(p.stdout.readline().split()[0]))
def spike():
    x = bytes(30 * 2 ** 20)
    del x
out['tm_peak'] = memory_usage((spike,), backend='tracemalloc', max_usage=True)
json.dump(out, sys.stdout)
'''


def test_memory_usage_backends(py, tmp_path):
    s = tmp_path / 'usage_b.py'
    s.write_text(USAGE)
    d = _json(py, str(s), os.path.join(SCRIPTS, 'hold.py'))
    for kind in ('pss', 'uss'):
        assert abs(d[kind][0] - d[kind][1]) < 0.5, d
    assert abs(d['child'][0] - d['child'][1]) < 1.0, d
    assert abs(d['tm_peak'] - 30.0) < 0.1, d     # tracemalloc's own peak: the bytes(30 MiB)


def test_memory_usage_multiprocess_stream_and_no_spurious_zero(py):
    d = _json(py, 'mp_usage.py')
    samples = d['samples']
    assert all(isinstance(s, list) and s[0] > 0 for s in samples)
    assert max(len(s) for s in samples) == 3                 # [main, child1, child2]
    full = [s for s in samples if len(s) == 3]
    hwm = sorted(d['hwm_a'].values())
    # each child's highest sample against its own VmHWM
    seen = sorted(max(s[i] for s in full) for i in (1, 2))
    for got, want in zip(seen, hwm):
        assert want - 2.0 < got <= want + 0.5, (seen, hwm)
    assert d['stream_ret'] is None
    mem = [x for x in d['dat'] if x.startswith('MEM ')]
    chld = {}
    for x in d['dat']:
        if x.startswith('CHLD '):
            _, pid, mib, t = x.split()
            chld[pid] = max(chld.get(pid, 0.0), float(mib))
    assert mem and set(chld) == set(d['hwm_b']), (chld, d['hwm_b'])
    for pid, want in d['hwm_b'].items():
        assert want - 2.0 < chld[pid] <= want + 0.5, (chld, d['hwm_b'])
    for s in d['short']:
        assert s and min(s) > 0, s                           # no 0.0 after the exit
    assert d['pid_n'] == 10 and d['pid_max'] == 'float'
    assert d['call_stream'] is None and d['call_dat'][0].startswith('MEM ')


@needs_mprof
@pytest.mark.parametrize('backend,col', [('psutil_pss', 0), ('psutil_uss', 1)])
def test_mprof_run_backend_pss_uss(tmp_path, backend, col):
    out = tmp_path / 'b.dat'
    p = subprocess.run([MPROF, 'run', '--nopython', '--backend', backend, '-T', '0.05',
                        '-o', str(out), DEBIAN_PY, os.path.join(SCRIPTS, 'hold.py'), '80'],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert 'measures RSS only' in p.stderr and 'smaps_rollup' in p.stderr
    truth = float(p.stdout.splitlines()[-1].split()[col])   # after mprof's own lines
    mem = [float(x.split()[1]) for x in out.read_text().splitlines() if x.startswith('MEM ')]
    assert abs(max(mem) - truth) < 0.5, (max(mem), truth)


@needs_mprof
def test_mprof_run_refuses_tracemalloc(tmp_path):
    out = tmp_path / 't.dat'
    p = subprocess.run([MPROF, 'run', '--backend', 'tracemalloc', '-o', str(out), 'true'],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and len(p.stderr.splitlines()) == 1, p.stderr
    assert 'python -m memory_profiler --backend tracemalloc' in p.stderr
    assert not out.exists()


@pytest.mark.skipif(not os.path.exists(DEBIAN_PY) or not has_module(DEBIAN_PY, 'psutil'),
                    reason='needs Debian python3 with psutil')
def test_pss_uss_as_psutil_reads_them():
    """Our reading of smaps_rollup is psutil's (what 0.61's psutil_pss/uss report)."""
    r = run(DEBIAN_PY, ['-c', 'import psutil, json\n'
                        'from memory_profiler import _hook\n'
                        'x = b"x" * (20 * 2 ** 20)\n'
                        'i = psutil.Process().memory_full_info()\n'
                        'print(json.dumps([i.pss, _hook.smaps_bytes(-1, "pss"), i.uss, '
                        '_hook.smaps_bytes(-1, "uss")]))'])
    assert r.returncode == 0, r.stderr
    pss_ps, pss, uss_ps, uss = json.loads(r.stdout)
    assert abs(pss - pss_ps) < 2 ** 20 and abs(uss - uss_ps) < 2 ** 20
