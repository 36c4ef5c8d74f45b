"""The IPython extension in a real IPython driven through its prompt, and in a real Jupyter
kernel executing a notebook headless; side by side with 0.61 where Debian's IPython runs it.

Interpreters without an IPython of their own run the pure-Python IPython of one that has it
(support/ipython_closure.py lists its files; they are linked into a folder on PYTHONPATH).
"""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import (DEBIAN_PY, MP061, SCRIPTS, SUPPORT, _pythons, has_module, needs_061,
                      parse_report, row, table)

PROMPT = re.compile(r'^(?:In \[\d+\]: |\s*\.\.\.: |Out\[\d+\]: )+')
MEMIT = re.compile(r'peak memory: (\d+\.\d\d) MiB, increment: (-?\d+\.\d\d) MiB')

SESSION = '''%load_ext memory_profiler
from ipy_mod import my_func, other, spawn
%mprun -f my_func -f other -T {report} my_func(); other()
def at_prompt(n):
    x = [0] * n
    return len(x)


%mprun -f at_prompt at_prompt(5 * 10 ** 6)
%mprun -c -f spawn spawn()
%memit [0] * (10 ** 7)
r = %memit -o -q -r3 -i0.01 [1] * (5 * 10 ** 6)
print('RESULT', repr(r), r.repeat, len(r.mem_usage), r.interval, r.timeout, r.include_children)
r
%%memit x = [0] * 10 ** 6
y = bytearray(50 * 2 ** 20)


import subprocess, sys
%memit -c -t2 -i0.01 subprocess.run([sys.executable, '-c', 'import time; x = b"x" * (60 * 2 ** 20); time.sleep(0.3)'])
print('END')
'''


def _donors():
    """Interpreters whose (pure-Python) IPython others can borrow, Debian's first: its
    IPython 8.5 runs on 3.8 to 3.13, pyenv's 8.12 needs 3.10."""
    return [p for p in [DEBIAN_PY] + [p for p in _pythons() if not p.startswith('/usr/')]
            if os.path.exists(p) and has_module(p, 'IPython')]


_shims = {}
_pycache = []


def _cache(tmp_path_factory):
    """One bytecode cache for every IPython run, kept in the build folder: the borrowed IPython
    is compiled once per interpreter, not at each start (its own folder holds another version's
    .pyc)."""
    if not _pycache:
        d = os.path.join(os.path.dirname(os.environ['MPROF_PYTHONPATH']), 'pyhook', 'pycache')
        try:
            os.makedirs(d, exist_ok=True)
        except OSError:
            d = str(tmp_path_factory.mktemp('pycache'))
        _pycache.append(d)
    return _pycache[0]


def _shim(donor, tmp_path_factory):
    if donor not in _shims:
        d = tmp_path_factory.mktemp('ipython-shim')
        listing = d / 'files.json'
        subprocess.run([donor, os.path.join(SUPPORT, 'ipython_closure.py'), str(listing)],
                       capture_output=True, text=True, cwd=str(d),
                       env=dict(os.environ, IPYTHONDIR=str(d / 'ipython')))
        links = d / 'links'
        links.mkdir()
        for path in json.loads(listing.read_text()) if listing.exists() else []:
            dest = links / os.path.basename(path)
            if not dest.exists():
                os.symlink(path, str(dest))
        _shims[donor] = str(links)
    return _shims[donor]


def _ipython(py, tmp_path_factory):
    """(argv prefix, PYTHONPATH entries, None) that run IPython under py, or a skip reason."""
    if has_module(py, 'IPython'):
        return [py, '-m', 'IPython'], [], None
    why = 'no interpreter here has IPython'
    for donor in _donors():
        shim = _shim(donor, tmp_path_factory)
        r = subprocess.run([py, '-c', 'import IPython.terminal.ipapp'], capture_output=True,
                           text=True, env=dict(os.environ, PYTHONPATH=shim,
                                               PYTHONPYCACHEPREFIX=_cache(tmp_path_factory)))
        if r.returncode == 0:
            return [py, '-m', 'IPython'], [shim], None
        why = 'the IPython of %s does not run here: %s' % (
            donor, (r.stderr.strip().splitlines() or ['?'])[-1])
    return None, None, why


def _session(argv, pythonpath, tmp_path, cache):
    report = tmp_path / 'report.txt'
    env = dict(os.environ)
    env.pop('MPROF_RSS_FD', None)
    env.pop('PYTHONDONTWRITEBYTECODE', None)
    env['PYTHONPATH'] = os.pathsep.join(pythonpath)
    env['PYTHONPYCACHEPREFIX'] = cache
    env['IPYTHONDIR'] = str(tmp_path / 'ipython')      # no profile of the machine's user
    r = subprocess.run(argv + ['--no-banner', '--colors=NoColor', '--simple-prompt',
                               '--TerminalInteractiveShell.term_title=False'],
                       input=SESSION.format(report=report), cwd=SCRIPTS, env=env,
                       capture_output=True, text=True, timeout=300)
    text = '\n'.join(PROMPT.sub('', x) for x in r.stdout.splitlines())
    return r, text, report


def test_magics_in_ipython(py, tmp_path, tmp_path_factory):
    argv, path, why = _ipython(py, tmp_path_factory)
    if why:
        pytest.skip(why)
    r, text, report = _session(argv, path + [os.environ['MPROF_PYTHONPATH']], tmp_path,
                               _cache(tmp_path_factory))
    assert 'END' in text, r.stdout + r.stderr
    assert 'Error' not in text, text
    tables = parse_report(text)
    # %mprun -f twice: both tables, seed figures
    mine = table(tables, 'b = [2]')
    assert mine['filename'].endswith('ipy_mod.py')
    assert abs(row(mine, 'b = [2]')[1] - 152.59) < 0.2 and row(mine, 'del b')[1] < -152
    assert abs(row(table(tables, 'c = [3]'), 'c = [3]')[1] - 38.15) < 0.3
    saved = report.read_text()
    assert 'def my_func' in saved and 'def other' in saved and 'Filename: ' in saved
    assert '*** Profile printout saved to text file %s.' % report in text
    # a function defined at the prompt (0.61: "Could not find file"); 38 MiB, more than glibc's
    # largest mmap threshold, so the memory is new, not reused from the heap
    prompt = table(tables, 'x = [0] * n')
    assert abs(row(prompt, 'x = [0] * n')[1] - 38.15) < 1.0
    # -c: the child's 80 MiB count on the line that waits for it
    sp = table(tables, 'p.stdout.readline()')
    assert row(sp, 'p.stdout.readline()')[1] > 75, text
    # %memit: the kernel's high-water mark, so the whole 76 MiB (0.61 samples every 0.1 s)
    lines = [m.groups() for m in MEMIT.finditer(text)]
    assert abs(float(lines[0][1]) - 76.29) < 1.0, text
    res = re.search(r"RESULT <MemitResult : peak memory: [\d.]+ MiB, increment: ([\d.]+) MiB> "
                    r"3 3 0.01 None False", text)
    assert res and abs(float(res.group(1)) - 38.15) < 1.0, text
    assert len(lines) == 5                # -q printed nothing; `r` shows its repr
    assert abs(float(lines[2][1]) - float(res.group(1))) < 0.01
    assert abs(float(lines[3][1]) - 50.0) < 1.0          # the cell, not its setup line
    assert float(lines[4][1]) > 55                       # -c: the child's 60 MiB


@needs_061
def test_magics_beside_061_in_debian_ipython(tmp_path, tmp_path_factory):
    if not has_module(DEBIAN_PY, 'IPython'):
        pytest.skip("Debian's ipython3 is not installed")
    d = tmp_path / 'mp061'
    d.mkdir()
    os.symlink(MP061, str(d / 'memory_profiler.py'))
    argv = [DEBIAN_PY, '-m', 'IPython']
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    cache = _cache(tmp_path_factory)
    r1, ours, _ = _session(argv, [os.environ['MPROF_PYTHONPATH']], tmp_path / 'a', cache)
    r2, theirs, _ = _session(argv, [str(d)], tmp_path / 'b', cache)
    assert 'END' in ours and 'END' in theirs, r2.stdout + r2.stderr

    def shape(text, src):
        t = table(parse_report(text), src)
        return {ln: v[2] for ln, v in t['rows'].items()}

    for src in ('b = [2]', 'c = [3]', 'p.stdout.readline()'):
        assert shape(ours, src) == shape(theirs, src), src
    # the same lines, but 0.61's repr() of a MemitResult is object's (IPython shows both alike)
    assert len(MEMIT.findall(ours)) == 5 and len(MEMIT.findall(theirs)) == 4
    assert re.search(r'RESULT <memory_profiler.MemitResult object at 0x[0-9a-f]+> '
                     r'3 3 0.01 None False', theirs), theirs
    assert 'Could not find file' in theirs and 'Could not find file' not in ours


NOTEBOOK_CELLS = [
    '%load_ext memory_profiler',
    'from ipy_mod import my_func, other',
    '%mprun -f my_func -f other my_func(); other()',
    '%memit [0] * (10 ** 7)',
    '%%memit x = [0] * 10 ** 6\ny = bytearray(50 * 2 ** 20)',
    'r = %memit -o -q [1] * (5 * 10 ** 6)\nr',
]


def _notebook(tmp_path, pythonpath):
    nb = {'cells': [{'cell_type': 'code', 'execution_count': None, 'metadata': {},
                     'outputs': [], 'source': c} for c in NOTEBOOK_CELLS],
          'metadata': {'kernelspec': {'display_name': 'Python 3', 'language': 'python',
                                      'name': 'python3'}},
          'nbformat': 4, 'nbformat_minor': 5}
    src = tmp_path / 'nb.ipynb'
    src.write_text(json.dumps(nb))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([pythonpath, SCRIPTS]),
               PYTHONDONTWRITEBYTECODE='1', IPYTHONDIR=str(tmp_path / 'ipython'),
               JUPYTER_CONFIG_DIR=str(tmp_path / 'jupyter'), PYDEVD_DISABLE_FILE_VALIDATION='1')
    env.pop('MPROF_RSS_FD', None)
    r = subprocess.run(['jupyter-nbconvert', '--to', 'notebook', '--execute', '--stdout',
                        str(src)], cwd=str(tmp_path), env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    outs = []
    for cell in json.loads(r.stdout)['cells']:
        text = ''
        for o in cell['outputs']:
            if o.get('name') == 'stdout':
                text += ''.join(o['text'])
            elif o['output_type'] == 'execute_result':
                text += ''.join(o['data']['text/plain'])
        outs.append(text)
    return outs


@pytest.mark.skipif(not shutil.which('jupyter-nbconvert') or not os.path.exists(DEBIAN_PY)
                    or not has_module(DEBIAN_PY, 'ipykernel'),
                    reason='jupyter-nbconvert and python3-ipykernel are not installed')
def test_magics_in_a_jupyter_kernel(tmp_path):
    """The kernel is Debian's python3 (the only one with ipykernel and pyzmq here)."""
    outs = _notebook(tmp_path, os.environ['MPROF_PYTHONPATH'])
    tables = parse_report(outs[2])
    assert len(tables) == 2, outs               # in the cell's output, not a lost pager payload
    assert abs(row(table(tables, 'b = [2]'), 'b = [2]')[1] - 152.59) < 0.2
    assert abs(float(MEMIT.search(outs[3]).group(2)) - 76.29) < 1.0
    assert abs(float(MEMIT.search(outs[4]).group(2)) - 50.0) < 1.0
    assert re.fullmatch(r'<MemitResult : peak memory: [\d.]+ MiB, increment: [\d.]+ MiB>',
                        outs[5].strip()), outs[5]
    if MP061 is not None:
        d = tmp_path / 'mp061'
        d.mkdir()
        os.symlink(MP061, str(d / 'memory_profiler.py'))
        theirs = _notebook(tmp_path, str(d))
        assert MEMIT.search(theirs[3]) and MEMIT.search(theirs[4])
        assert re.fullmatch(r'<MemitResult : peak memory: [\d.]+ MiB, increment: [\d.]+ MiB>',
                            theirs[5].strip())
        # 0.61 pages its report: a headless run keeps none of it
        assert not parse_report(theirs[2])
