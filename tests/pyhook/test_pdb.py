"""--pdb-mmem: the debugger opens in the frame of the line during which memory crossed the
limit, before the next line runs (0.61 opens it one event later and steps the frame back)."""
import os
import shutil

from conftest import (ROOT, line_of, needs_061, run, run061, DEBIAN_PY, loader_page,
                      page_owner_is_child)

SEED = os.path.join(ROOT, 'examples', 'seed.py')


def test_seed_stops_with_b_alive(py, tmp_path):
    shutil.copy(SEED, str(tmp_path / 'seed.py'))
    r = run(py, ['-m', 'memory_profiler', '--pdb-mmem', '100', 'seed.py'], cwd=str(tmp_path),
            input='p len(a), len(b)\nwhere\nc\n')
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert 'exceeded the maximum of 100.00 MiB\nStepping into the debugger \n' in out
    assert 'crossed during line 4 of seed.py: b = [2] * (2 * 10 ** 7)' in out
    assert '(5)my_func()\n-> del b' in out                 # before `del b` runs
    assert '(1000000, 20000000)' in out                    # a and b alive
    assert 'Line #' not in out                             # no report in this mode, as 0.61


@needs_061
def test_seed_061_has_b_alive_too(mp061_path, tmp_path):
    shutil.copy(SEED, str(tmp_path / 'seed.py'))
    r = run061(DEBIAN_PY, mp061_path, ['-m', 'memory_profiler', '--pdb-mmem', '100', 'seed.py'],
               cwd=str(tmp_path), input='p len(a), len(b)\nc\n')
    assert r.returncode == 0, r.stderr
    assert '(1000000, 20000000)' in r.stdout and '-> b = [2]' in r.stdout


def _page_run(py, limit):
    """The loader's page (a real BPF map), whose values the script itself writes."""
    fd = loader_page()
    fd2 = os.dup(fd)
    try:
        return run(py, ['-m', 'memory_profiler', '--pdb-mmem', str(limit), 'pdb_page.py'],
                   env={'MPROF_RSS_FD': str(fd), 'TEST_FD': str(fd2)}, pass_fds=(fd, fd2),
                   preexec_fn=page_owner_is_child(fd), input='p __name__\nc\n')
    finally:
        os.close(fd)
        os.close(fd2)


def test_kernel_page_a_spike_inside_a_line(py):
    """The peak of the line counts (300 MiB, though it ends at 150): exact to the page."""
    r = _page_run(py, 200)
    assert r.returncode == 0, r.stderr
    L = line_of('pdb_page.py', 'after_spike = 1')
    assert 'Current memory 300.00 MiB exceeded the maximum of 200.00 MiB' in r.stdout, r.stdout
    assert 'crossed during line %d of pdb_page.py' % (L - 1) in r.stdout
    assert 'pdb_page.py(%d)f()\n-> after_spike = 1' % L in r.stdout, r.stdout


def test_kernel_page_in_the_callee_frame(py):
    r = _page_run(py, 110)
    assert r.returncode == 0, r.stderr
    L = line_of('pdb_page.py', 'in_g = 1')
    assert 'Current memory 120.00 MiB exceeded' in r.stdout, r.stdout
    assert 'pdb_page.py(%d)g()\n-> in_g = 1' % L in r.stdout, r.stdout
