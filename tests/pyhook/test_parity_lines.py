"""Line reports side by side with memory_profiler 0.61 on the same interpreter and script.

0.61 runs from Debian's file under each interpreter (support/psutil.py stands in for psutil
where it cannot be installed): its sys.settrace tracer is the ground truth for which lines are
measured and how often each occurs, including comprehensions, generator expressions and loops
inside one line (3.12+: a backward jump to the same line counts, as sys.settrace counts it).
"""
import pytest

import os

from conftest import ROOT, parse_report, run, run061, table, version_of


def _shape(text):
    """{(filename, first line): {line: occurrences or None}} of a report."""
    out = {}
    for t in parse_report(text):
        rows = t['rows']
        out[(t['filename'], min(rows))] = {ln: r[2] for ln, r in rows.items()}
    return out


@pytest.mark.parametrize('script', ['occ_lines.py', 'occ_misc.py', 'occ_async.py'])
def test_occurrences_match_061(py, mp061, script):
    if script == 'occ_async.py' and version_of(py) >= (3, 12):
        pytest.skip('0.61 cannot profile coroutines on 3.12+ (asyncio refuses its wrapper)')
    ours = run(py, ['-m', 'memory_profiler', script])
    theirs = run061(py, mp061, ['-m', 'memory_profiler', script])
    assert ours.returncode == 0, ours.stderr
    assert theirs.returncode == 0, theirs.stderr
    a, b = _shape(ours.stdout), _shape(theirs.stdout)
    assert a and a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], (key, ours.stdout, theirs.stdout)


def test_comprehension_lines_of_the_issue(py):
    """The issue's example: every pass of a comprehension or generator expression counts."""
    r = run(py, ['-m', 'memory_profiler', 'occ_lines.py'])
    assert r.returncode == 0, r.stderr
    rows = {}
    for t in parse_report(r.stdout):
        for ln, row in t['rows'].items():
            rows[row[3].strip()] = row
    # two calls of comps(); 100 and 50 items: far more than one event a line
    assert rows['a = [x for x in range(100)]'][2] >= 2 * 100
    assert rows['b = sum(x for x in range(50))'][2] >= 2 * 50
    assert rows['for i in range(3): z = i'][2] == 2 * 4


def test_first_row_is_the_entry_memory_as_061(py, mp061):
    """Both show the memory at entry on the first row, in both columns; with ours the
    increments of a table add up to its last Mem usage."""
    for runner in (lambda a: run(py, a), lambda a: run061(py, mp061, a)):
        r = runner(['-m', 'memory_profiler', 'occ_lines.py'])
        assert r.returncode == 0, r.stderr
        t = table(parse_report(r.stdout), 'def oneliner')
        first = t['rows'][min(t['rows'])]
        assert abs(first[0] - first[1]) < 0.05 and first[0] > 1, r.stdout
    seed = os.path.join(ROOT, 'examples', 'seed.py')
    t = parse_report(run(py, ['-m', 'memory_profiler', seed]).stdout)[0]
    rows = [v for v in t['rows'].values() if v[0] is not None]
    assert abs(sum(v[1] for v in rows) - rows[-1][0]) < 0.01
