"""Attribution: per-frame previous line, increments that add up, peaks."""
import json
import os
import struct

import pytest


from conftest import loader_page, page_owner_is_child, MIB, line_of, parse_report, results_rows, row, run, table


def _json(py, script, **kw):
    r = run(py, [script], **kw)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_nested_calls_charge_what_the_callee_left(py):
    r = run(py, ['-m', 'memory_profiler', 'nested.py'])
    assert r.returncode == 0, r.stderr
    tables = parse_report(r.stdout)
    inner, outer = table(tables, 'x = [0]'), table(tables, 'n = inner()')
    call = row(outer, 'n = inner()')
    assert abs(call[1] - 38.147) < 0.2, r.stdout       # not the process total
    assert abs(row(outer, 'a = [1]')[1] - 7.633) < 0.1
    # The callee's transient 15 MiB is visible in the caller's peak.
    assert call[0] >= row(outer, 'a = [1]')[0] + 38.1 + 15.2 - 0.3
    body = [v[1] for v in inner['rows'].values() if v[1] is not None and '@profile' not in v[3]]
    assert abs(sum(body) - 38.147) < 0.2
    # The first row holds the memory at entry: the caller's state then.
    assert abs(row(inner, '@profile')[1] - row(outer, 'a = [1]')[0]) < 0.3


def test_loop_increments_add_up(py):
    d = _json(py, 'loop.py')
    rows = results_rows(d['results'], '__main__.loop')
    total = sum(v[0] for v in rows.values())
    # with the entry memory on the first row, they add up to the memory at the exit
    assert abs(total - d['after']) / MIB < 0.5, (total / MIB, d['after'] / MIB)
    first = rows[line_of('loop.py', 'def loop')]
    assert abs(first[0] - (d['after'] - d['net'])) / MIB < 0.5
    occ = {ln: v[2] for ln, v in rows.items()}
    assert occ[line_of('loop.py', 'for i in range(5)')] == 6
    assert occ[line_of('loop.py', 'acc.append')] == 5
    # The `for` line allocates nothing of its own: no drift there.
    assert abs(rows[line_of('loop.py', 'for i in range(5)')][0]) / MIB < 0.1
    # Rebinding twice: never more than the memory the line really held.
    rebind = results_rows(d['results'], '__main__.rebind')
    rb = rebind[line_of('loop.py', 'return len(b)') - 1]
    assert rb[2] == 2
    assert 15.0 < rb[0] / MIB <= 2 * 15.26 + 0.2


def test_recursion_counts_each_frame_once(py):
    d = _json(py, 'recursion.py')
    rows = results_rows(d['results'], '__main__.build')
    chunk = rows[line_of('recursion.py', 'chunk = [n]')]
    assert chunk[2] == 5 and abs(chunk[0] / MIB - 5 * 7.63) < 0.5
    assert abs(rows[line_of('recursion.py', 'rest = build')][0]) / MIB < 0.3
    assert rows[line_of('recursion.py', 'def build') - 1][2] == 6     # calls (@prof line)
    # the entry memory counts once, for the outermost call
    assert abs(sum(v[0] for v in rows.values()) - d['after']) / MIB < 0.5


def test_generators(py):
    d = _json(py, 'generators.py')
    gen = results_rows(d['results'], '__main__.gen')
    block = gen[line_of('generators.py', 'block = [i]')]
    assert block[2] == 3 and abs(block[0] / MIB - 3 * 7.63) < 0.5
    # 0.61 (sys.settrace) counts the yield line once when it runs and once per
    # resumption there
    assert gen[line_of('generators.py', 'yield block')][2] == 6
    assert abs(gen[line_of('generators.py', 'yield block')][0]) / MIB < 0.3
    assert gen[line_of('generators.py', 'def gen') - 1][2] == 1   # resumptions are not calls
    cons = results_rows(d['results'], '__main__.consume')
    assert cons[line_of('generators.py', 'other = [1]')][2] == 4
    # The `for` line resumes the (other) profiled generator: charged with it.
    assert abs(cons[line_of('generators.py', 'for b in gen')][0] / MIB - 4 * 7.63) < 0.6
    assert abs(sum(v[0] for v in cons.values()) - d['after']) / MIB < 0.5


def test_threads_do_not_corrupt_the_report(py):
    r = run(py, ['-m', 'memory_profiler', 'threads.py'])
    assert r.returncode == 0, r.stderr
    t = table(parse_report(r.stdout), 'out.append')
    assert row(t, 'def work')[0] is None
    assert row(t, '@profile')[2] == 5
    assert row(t, 'out = []')[2] == 5
    assert row(t, 'for i in range(n)')[2] == 5 * 201
    assert row(t, 'out.append')[2] == 5 * 200
    assert row(t, 'x = len(out)')[2] == 5 * 200
    assert row(t, 'return x')[2] == 5


def test_kernel_page_exact_attribution(py):
    """The loader's page (a real BPF map) written by the test: exact values, peaks, nesting."""
    fd = loader_page()
    fd2 = os.dup(fd)
    try:
        r = run(py, ['shared_page.py'], env={'MPROF_RSS_FD': str(fd), 'TEST_FD': str(fd2)},
                pass_fds=(fd, fd2), preexec_fn=page_owner_is_child(fd))
    finally:
        os.close(fd)
        os.close(fd2)
    assert r.returncode == 0, r.stderr
    assert 'not kernel-attributed' not in r.stderr
    d = json.loads(r.stdout)
    assert d['source'][:2] == ['kernel', True]
    f = {ln: (inc / MIB, peak / MIB, occ)
         for ln, (inc, peak, occ) in results_rows(d['results'], '__main__.f').items()}
    L = lambda s: line_of('shared_page.py', s)  # noqa: E731
    assert f[L('def f') - 1][:2] == (50, 50)                        # the memory at entry
    assert f[L('set_rss(300)') - 1][:2] == (50, 100)
    assert f[L('set_rss(300); set_rss(150)')][:2] == (50, 300)    # the spike is seen
    assert f[L('    g()')][:2] == (20, 170)                         # what g left behind
    assert f[L('return 0') - 1][:2] == (-70, 170)
    assert sum(v[0] for v in f.values()) == 100                     # the memory at exit
    g = {ln: (inc / MIB, peak / MIB) for ln, (inc, peak, occ)
         in results_rows(d['results'], '__main__.g').items()}
    assert g[L('set_rss(170)')] == (20, 170)


ENV_PROBE = ("import os, memory_profiler as mp\n"
             "@mp.profile\n"
             "def f():\n"
             "    return 1\n"
             "f()\n"
             "print(mp._hook.rss_source()[0], os.environ.get('MPROF_RSS_FD'), "
             "os.environ.get('MPROF_FUNC_FD'))")


@pytest.mark.parametrize('what', ['empty file', 'memfd page', 'pipe', 'bad number'])
def test_bad_rss_fd_falls_back_without_crashing(py, tmp_path, what):
    """Anything but the loader's map as MPROF_RSS_FD: statm, one notice, no SIGBUS, no stale env."""
    fds = []
    if what == 'empty file':
        fds = [os.open(str(tmp_path / 'empty'), os.O_RDWR | os.O_CREAT, 0o600)]
    elif what == 'memfd page':
        fds = [os.memfd_create('mprof-rss')]
        os.ftruncate(fds[0], 4096)
        os.pwrite(fds[0], struct.pack('IIII', 0x5352504d, 2, 64, 0), 0)
    elif what == 'pipe':
        fds = list(os.pipe())
    env = {'MPROF_RSS_FD': str(fds[0]) if fds else '12x', 'MPROF_FUNC_FD': '99'}
    try:
        r = run(py, [probe_script(tmp_path)], env=env, pass_fds=tuple(fds))
    finally:
        for fd in fds:
            os.close(fd)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].split() == ['statm', 'None', 'None'], r.stdout
    assert "MPROF_RSS_FD=" in r.stderr and r.stderr.count('\n') == 1, r.stderr


def probe_script(tmp_path):
    p = tmp_path / 'probe.py'
    p.write_text(ENV_PROBE + '\n')
    return str(p)


def test_the_loader_map_is_taken_and_its_number_not_passed_on(py, tmp_path):
    fd = loader_page()
    try:
        r = run(py, [probe_script(tmp_path)], env={'MPROF_RSS_FD': str(fd)}, pass_fds=(fd,),
                preexec_fn=page_owner_is_child(fd))
        # the same page seen by a process it does not describe (a grandchild): refused
        r2 = run(py, [probe_script(tmp_path)], env={'MPROF_RSS_FD': str(fd)}, pass_fds=(fd,))
    finally:
        os.close(fd)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].split() == ['kernel', 'None', 'None'], (r.stdout, r.stderr)
    assert r.stderr == '', r.stderr
    assert r2.stdout.splitlines()[-1].split() == ['statm', 'None', 'None'], r2.stdout
    assert 'describes process' in r2.stderr, r2.stderr
