"""memory_profiler's own tests against our package, when a checkout of its repository is at
hand: MPROF_UPSTREAM=/path/to/memory_profiler make test-pyhook. (Its tests are not part of
this tree; they run from that checkout.) The list is its Makefile's, without the mprof ones
(they exercise its mprof.py), plus test_increment_display and test_attributes."""
import os

import pytest

from conftest import run

UPSTREAM = os.environ.get('MPROF_UPSTREAM', '')
needs_upstream = pytest.mark.skipif(
    not os.path.isdir(os.path.join(UPSTREAM, 'test')),
    reason='set MPROF_UPSTREAM to a checkout of memory_profiler to run its tests')

UNDER_CLI = ['test_func', 'test_loop', 'test_mprofile', 'test_as', 'test_global',
             'test_precision_command_line', 'test_gen', 'test_unicode']
PLAIN = ['test_tracemalloc', 'test_import', 'test_memory_usage', 'test_precision_import',
         'test_exception', 'test_async', 'test_attributes', 'test_stream_unicode']


@needs_upstream
@pytest.mark.parametrize('name', UNDER_CLI + PLAIN + ['test_increment_display'])
def test_upstream(py, name):
    path = os.path.join(UPSTREAM, 'test', name + '.py')
    if name in UNDER_CLI:
        args = ['-m', 'memory_profiler', path]
    elif name == 'test_increment_display':
        args = ['-m', 'unittest', '-q', 'test.' + name]
    else:
        args = [path]
    r = run(py, args, cwd=UPSTREAM)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
