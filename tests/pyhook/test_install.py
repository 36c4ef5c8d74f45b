"""make install: mprof, its man pages, and memory_profiler for every built interpreter, importable
without PYTHONPATH (a .pth in each site-packages) with its package metadata, whose pytest11 entry
point has pytest load the plugin with no -p.

The tree is installed with DESTDIR into a scratch folder; to use it as installed, a private
mount namespace binds the staged folders over the real ones (root only), so each interpreter
imports from exactly where `make install` would have put the files.
"""
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from conftest import ROOT, _pythons

MPROF = os.environ.get('MPROF', '')
SRC = os.environ.get('MPROF_SRC', ROOT)
MAN = os.path.join(os.path.dirname(MPROF), 'man', 'man1')
needs_mprof = pytest.mark.skipif(not os.path.exists(MPROF), reason='MPROF is not built')


def _commands():
    out = subprocess.run([MPROF, '--help'], capture_output=True, text=True).stdout
    return re.findall(r'^    (\w+) ', out, re.M)


@needs_mprof
@pytest.mark.skipif(not shutil.which('groff'), reason='groff is not installed')
def test_man_pages_render_and_name_every_option():
    cmds = _commands()
    assert {'run', 'attach', 'plot', 'peak', 'list', 'clean', 'rm'} <= set(cmds)
    pages = ['mprof.1'] + ['mprof-%s.1' % c for c in cmds]
    assert sorted(os.listdir(MAN)) == sorted(pages)
    for page in pages:
        path = os.path.join(MAN, page)
        r = subprocess.run(['groff', '-man', '-Tutf8', '-ww', '-z', path],
                           capture_output=True, text=True)
        assert r.returncode == 0 and not r.stderr, (page, r.stderr)
        src = open(path).read()
        assert '@VERSION@' not in src and '.SH NAME' in src, page
        if page == 'mprof.1':
            for c in cmds:
                assert 'mprof\\-%s' % c in src, c
            continue
        cmd = page[len('mprof-'):-2]
        help_ = subprocess.run([MPROF, cmd, '--help'], capture_output=True, text=True).stdout
        opts = set(re.findall(r'(?<![\w-])(--[a-z][a-z-]*|-[A-Za-z])\b', help_))
        for opt in opts:
            assert opt.replace('-', '\\-') in src, (page, opt)


def _site(py):
    return subprocess.run([py, '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'],
                          capture_output=True, text=True).stdout.strip()


def _make(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith('MAKE')}
    env.pop('PYTHONPATH', None)
    return subprocess.run(['make', '--no-print-directory', '-C', SRC,
                           'OUT=' + os.path.dirname(MPROF), 'PYTHONS=' + ' '.join(_pythons())]
                          + list(args), capture_output=True, text=True, env=env, timeout=600)


INSTALLED = '''
import json, subprocess, sys
import memory_profiler, importlib.metadata as md
r = subprocess.run([sys.executable, '-m', 'memory_profiler', sys.argv[1]], capture_output=True,
                   text=True)
print(json.dumps([memory_profiler.__file__, md.version('memory_profiler'),
                  r.returncode, r.stdout]))
'''

BUDGET = '''
import pytest


@pytest.mark.limit_rss("64 MiB")
def test_over():
    data = b"x" * (200 << 20)
    del data


@pytest.mark.limit_rss("64 MiB")
def test_under():
    data = b"x" * (8 << 20)
    del data


def test_imported_from_its_pyc():
    import memory_profiler
    assert type(memory_profiler.__spec__.loader).__name__ == "SourceFileLoader"
    assert memory_profiler.__spec__.cached and memory_profiler.__spec__.has_location
'''


def _junit(path):
    """{test name: failure message or None} of a JUnit XML file."""
    out = {}
    for case in ET.parse(path).getroot().iter('testcase'):
        fail = case.find('failure')
        out[case.get('name')] = None if fail is None else fail.get('message', '')
    return out


@needs_mprof
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which('unshare'),
                    reason='needs root and unshare for a private mount namespace')
def test_install_with_destdir_then_use_it(tmp_path):
    stage, prefix = tmp_path / 'stage', tmp_path / 'prefix'
    prefix.mkdir()
    P = str(prefix)
    r = _make('install', 'DESTDIR=' + str(stage), 'PREFIX=' + P)
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.listdir(P) == []                          # everything went under DESTDIR
    D = str(stage)
    lib = D + P + '/lib/mprof-bpf/python'
    assert os.access(D + P + '/bin/mprof', os.X_OK)
    assert sorted(os.listdir(D + P + '/share/man/man1')) == sorted(os.listdir(MAN))
    info = sorted(d for d in os.listdir(lib) if d.endswith('.dist-info'))
    assert [d.split('-')[0] for d in info] == ['memory_profiler', 'mprof_bpf_pytest'], info
    # the entry point is in a distribution listing no module, so pytest rewrites none of ours
    with open(os.path.join(lib, info[1], 'entry_points.txt')) as f:
        assert f.read().split() == ['[pytest11]', 'memory_profiler.pytest_plugin', '=',
                                    'memory_profiler.pytest_plugin']
    with open(os.path.join(lib, info[1], 'RECORD')) as f:
        assert all(r.startswith(info[1] + '/') for r in f.read().split()), info[1]
    pkg = os.listdir(lib + '/memory_profiler')
    assert {'__init__.py', '__main__.py', '_ipython.py'} <= set(pkg)
    assert len([f for f in pkg if f.startswith('_mprof_hook') and f.endswith('.so')]) >= 1
    sites = {}
    for py in _pythons():
        # byte-compiled by each interpreter: a user who cannot write there compiles nothing
        tag = subprocess.run([py, '-c', 'import sys; print(sys.implementation.cache_tag)'],
                             capture_output=True, text=True).stdout.strip()
        for mod in ('__init__', 'pytest_plugin'):
            assert os.path.exists('%s/memory_profiler/__pycache__/%s.%s.pyc' % (lib, mod, tag)), \
                (py, mod)
        site = _site(py)
        with open(D + site + '/mprof-bpf.pth') as f:
            assert f.read().strip() == P + '/lib/mprof-bpf/python'
        sites[py] = site

    # Use it as installed: the staged folders bound over the real ones.
    binds = [(D + P, P)]
    for site in sorted(set(sites.values())):
        target = site
        while not os.path.isdir(target):
            target = os.path.dirname(target)
        assert target.count('/') >= 3, target           # never over a top-level folder
        binds.append((D + target, target))
    script = tmp_path / 'check.py'
    script.write_text(INSTALLED)
    stamped = tmp_path / 'stamped.py'
    stamped.write_text('@profile\ndef f():\n    return [1] * 10 ** 6\n\nf()\n')
    lines = ['set -e'] + ['mount --bind "%s" "%s"' % b for b in binds]
    for py in _pythons():
        lines.append('env -u PYTHONPATH "%s" "%s" "%s"' % (py, script, stamped))
    lines.append('env -u PYTHONPATH MPROF_PYTHON=%s "%s/bin/mprof" run --backend proc -o "%s" '
                 '"%s" >/dev/null 2>&1' % (_pythons()[0], P, tmp_path / 'x.dat', stamped))
    # pytest finds the installed plugin by its entry point: limit_rss with no -p, and -p naming
    # it again does not register it twice
    budget = tmp_path / 'budget'
    budget.mkdir()
    (budget / 'test_budget.py').write_text(BUDGET)
    with_pytest = [py for py in _pythons() if not subprocess.run(
        [py, '-c', 'import pytest'], capture_output=True).returncode]
    sessions = {}
    for i, py in enumerate(with_pytest):
        for name, extra in (('auto', ''), ('p', '-p memory_profiler.pytest_plugin')):
            junit = tmp_path / ('%s-%d.xml' % (name, i))
            sessions[(py, name)] = junit
            lines.append('(cd "%s" && env -u PYTHONPATH -u PYTEST_ADDOPTS -u '
                         'PYTEST_DISABLE_PLUGIN_AUTOLOAD "%s" -m pytest -q -p no:cacheprovider %s '
                         '--junitxml "%s" test_budget.py >"%s.out" 2>&1 || true)'
                         % (budget, py, extra, junit, junit))
    ns = subprocess.run(['unshare', '-m', '--propagation', 'private', 'sh', '-c',
                         '\n'.join(lines)], capture_output=True, text=True, timeout=300)
    assert ns.returncode == 0, ns.stderr
    results = [json.loads(x) for x in ns.stdout.splitlines()]
    assert len(results) == len(_pythons())
    for (path, version, rc, out), py in zip(results, _pythons()):
        assert path == P + '/lib/mprof-bpf/python/memory_profiler/__init__.py', (py, path)
        assert version.startswith('0.61.0+mprofbpf.'), (py, version)
        assert rc == 0 and 'return [1] * 10 ** 6' in out, (py, out)
    # mprof's Python mode found the installed package next to its binary: FUNC lines
    assert 'FUNC __main__.f ' in (tmp_path / 'x.dat').read_text()
    assert sessions, 'no interpreter with pytest among ' + ' '.join(_pythons())
    for (py, name), junit in sessions.items():
        out = open(str(junit) + '.out').read()
        assert junit.exists(), (py, name, out)
        got = _junit(junit)
        assert got['test_under'] is None, (py, name, out)
        assert got['test_imported_from_its_pyc'] is None, (py, name, out)
        assert got['test_over'] and 'memory limit exceeded' in got['test_over'], (py, name, out)

    r = _make('uninstall', 'DESTDIR=' + D, 'PREFIX=' + P)
    assert r.returncode == 0, r.stderr
    left = [os.path.join(d, f) for d, _, fs in os.walk(D) for f in fs]
    assert left == [], left
