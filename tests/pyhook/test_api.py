"""Decorator surface: methods, coroutines, `with profile:`, memory_usage."""
import json

from conftest import parse_report, row, run, table


def test_methods_coroutines_and_with_block(py):
    r = run(py, ['-m', 'memory_profiler', 'misc.py'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('1000000 2000000\n')
    tables = parse_report(r.stdout)
    assert len(tables) == 3
    assert abs(row(table(tables, 'v = [n]'), 'v = [n]')[1] - 7.63) < 0.2
    co = table(tables, 'await asyncio.sleep')
    assert abs(row(co, 'b = [2]')[1] - 7.63) < 0.2
    # a pass and a resumption after the await, as sys.settrace counts them
    assert row(co, 'await asyncio.sleep')[2] == 2
    plain = table(tables, 'c = [3]')            # add_function + `with profile:`
    assert abs(row(plain, 'c = [3]')[1] - 7.63) < 0.2


def test_memory_usage(py):
    r = run(py, ['usage.py'])
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert len(d['base']) == 1 and d['base'][0] > 1
    assert d['ret'] == 7 and d['calls'] == 1
    assert d['peak'] - d['base'][0] > 190          # the 200 MiB spike
    assert d['child_n'] >= 2 and d['child_max'] > 45


def test_timestamp_attribute_only_in_timestamp_mode(py, tmp_path):
    (tmp_path / 't.py').write_text('with profile.timestamp("b"):\n    x = 1\n')
    r = run(py, ['-m', 'memory_profiler', 't.py'], cwd=str(tmp_path))
    assert r.returncode == 1 and 'AttributeError' in r.stderr
    r = run(py, ['-m', 'memory_profiler', '--timestamp', 't.py'], cwd=str(tmp_path))
    assert r.returncode == 0 and r.stdout.startswith('FUNC .b '), r.stdout + r.stderr
