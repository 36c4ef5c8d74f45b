"""The 0.61 report: seed figures, exact layout, options, CLI errors."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import ROOT, ROW, parse_report, row, run, table

SEED = os.path.join(ROOT, 'examples', 'seed.py')
HEADER = 'Line #    Mem usage    Increment  Occurrences   Line Contents'
NOTICE = 'not kernel-attributed'


def test_seed_figures(py, tmp_path):
    shutil.copy(SEED, tmp_path / 'seed.py')
    r = run(py, ['-m', 'memory_profiler', 'seed.py'], cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    t = table(parse_report(r.stdout), 'b = [2]')
    assert t['filename'] == 'seed.py'
    for src, want in (('a = [1]', 7.633), ('b = [2]', 152.590), ('del b', -152.590)):
        assert abs(row(t, src)[1] - want) < 0.1, (src, r.stdout)
    # The first row shows the memory at entry in both columns, as 0.61 does, so
    # the increments add up to the memory at the end.
    first = row(t, '@profile')
    assert abs(first[1] - first[0]) < 0.05 and first[0] > 1 and first[2] == 1
    assert abs(sum(v[1] for v in t['rows'].values() if v[1] is not None)
               - row(t, 'return a')[0]) < 0.01
    assert row(t, 'def my_func')[0] is None
    # Mem usage: the peak while the line ran (b alive at the start of `del b`).
    assert row(t, 'del b')[0] >= row(t, 'b = [2]')[0] - 0.1
    assert r.stderr.count(NOTICE) == 1


def _mask(text):
    # Numbers differ; their fields are checked by ROW's fixed widths below.
    return re.sub(r' +-?\d+\.\d+ MiB', ' N MiB', text)


@pytest.mark.skipif(subprocess.run(['/usr/bin/python3', '-c', 'import memory_profiler, psutil'],
                                   capture_output=True).returncode != 0,
                    reason="Debian's python3-memory-profiler is not installed")
def test_layout_identical_to_memory_profiler(py, tmp_path):
    shutil.copy(SEED, tmp_path / 'seed.py')
    ours = run(py, ['-m', 'memory_profiler', 'seed.py'], cwd=str(tmp_path))
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    theirs = subprocess.run(['/usr/bin/python3', '-m', 'memory_profiler', 'seed.py'],
                            cwd=str(tmp_path), env=env, capture_output=True, text=True)
    assert theirs.returncode == 0, theirs.stderr
    assert _mask(ours.stdout) == _mask(theirs.stdout)
    lines = ours.stdout.splitlines()
    assert lines[2] == HEADER and lines[3] == '=' * 61
    for text in (ours.stdout, theirs.stdout):
        rows = [x for x in text.splitlines()[4:] if x.strip()]
        assert len(rows) == 6 and all(ROW.match(x) for x in rows), text
        assert [x.index('@profile') for x in rows[:1]] == [47]


def test_precision_and_stream(py):
    r = run(py, ['options.py'])
    assert r.returncode == 0, r.stderr
    default, stream = r.stdout.split('=== STREAM ===\n')
    t = table(parse_report(default), 'b = [2]')
    assert re.search(r'^ +16 +\d+\.\d MiB +-?\d+\.\d MiB +1   ', default, re.M), default
    tables = parse_report(stream)
    assert len(tables) == 2, stream          # one table per call
    for t4 in tables:
        assert abs(row(t4, 'a = [1]')[1] - 7.633) < 0.2
        assert re.search(r'^ +10  ?\d+\.\d{4} MiB +\d+\.\d{4} MiB', '\n'.join(t4['raw']), re.M)
    assert 'b = [2]' not in stream and 'a = [1]' not in default
    assert t['filename'].endswith('options.py')


def test_cli_precision_and_output_file(py, tmp_path):
    shutil.copy(SEED, tmp_path / 'seed.py')
    out = tmp_path / 'report.txt'
    out.write_text('previous\n')
    for _ in range(2):
        r = run(py, ['-m', 'memory_profiler', '--precision', '1', '-o', str(out), 'seed.py'],
                cwd=str(tmp_path))
        assert r.returncode == 0, r.stderr
        assert r.stdout == ''
    text = out.read_text()
    assert text.startswith('previous\n')          # -o appends
    assert text.count('Filename: seed.py') == 2
    assert '  152.6 MiB' in text


def test_errors_are_one_line(py, tmp_path):
    r = run(py, ['-m', 'memory_profiler', 'does-not-exist.py'], cwd=str(tmp_path))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == ['Could not find script does-not-exist.py']
    r = run(py, ['-m', 'memory_profiler', '--bogus', 'x.py'], cwd=str(tmp_path))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert 'unrecognized arguments: --bogus' in r.stderr
    r = run(py, ['-m', 'memory_profiler', '--precision', 'x', 'x.py'], cwd=str(tmp_path))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run(py, ['-m', 'memory_profiler'], cwd=str(tmp_path))
    assert r.returncode == 1
    assert 'A program to run must be provided' in r.stdout
    r = run(py, ['-m', 'memory_profiler', 'no_such_module_xyz'], cwd=str(tmp_path))
    assert r.returncode != 0 and 'No module named' in r.stderr


def test_report_printed_when_script_raises(py):
    r = run(py, ['-m', 'memory_profiler', 'exceptions.py'])
    assert r.returncode == 1
    assert r.stderr.rstrip().endswith('ValueError: boom')
    tables = parse_report(r.stdout)
    assert len(tables) == 3
    dies = table(tables, 'c = [3]')
    assert row(dies, 'return c')[0] is None        # never ran
    assert abs(row(dies, 'fails()')[1] - 7.63) < 0.3
    fails = table(tables, 'raise ValueError')
    assert row(fails, 'raise ValueError')[2] == 2
    catches = table(tables, 'except ValueError')
    assert abs(row(catches, 'fails()')[1] - 7.63) < 0.3


def test_module_with_dash_m(py):
    r = run(py, ['-m', 'memory_profiler', '--precision', '2', 'mymod', 'a1', '--x'])
    assert r.returncode == 0, r.stderr
    assert "ARGV ['a1', '--x']" in r.stdout
    t = table(parse_report(r.stdout), 'a = [1]')
    assert t['filename'].endswith('mymod.py')
    assert abs(row(t, 'a = [1]')[1] - 7.63) < 0.1


def test_fallback_notice_as_non_root(py):
    setpriv = shutil.which('setpriv')
    if os.getuid() != 0 or not setpriv or not py.startswith('/usr/'):
        pytest.skip('needs root, setpriv and a system interpreter to drop to nobody')
    d = tempfile.mkdtemp(prefix='mprof-nobody-')   # pytest's tmp_path is 0700
    try:
        shutil.copy(SEED, os.path.join(d, 'seed.py'))
        # the checkout may sit in a folder only root can enter: nobody imports a copy
        shutil.copytree(os.environ['MPROF_PYTHONPATH'], os.path.join(d, 'python'))
        for root, dirs, files in os.walk(d):
            os.chmod(root, 0o777)
        r = run(setpriv, ['--reuid=65534', '--regid=65534', '--clear-groups', py,
                          '-m', 'memory_profiler', 'seed.py'], cwd=d,
                env={'PYTHONPATH': os.path.join(d, 'python')})
    finally:
        shutil.rmtree(d, ignore_errors=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count(NOTICE) == 1 and 'statm' in r.stderr
    assert abs(row(table(parse_report(r.stdout), 'b = [2]'), 'b = [2]')[1] - 152.59) < 0.1
