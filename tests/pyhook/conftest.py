"""Run every test once per built interpreter (MPROF_PYTHONS, from make)."""
import os
import re
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, 'scripts')
ROOT = os.path.dirname(os.path.dirname(HERE))
MIB = 2.0 ** 20


def _pythons():
    return [p for p in os.environ.get('MPROF_PYTHONS', '').split() if p]


def _label(py):
    try:
        out = subprocess.run([py, '-c', 'import platform; print(platform.python_version())'],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        out = ''
    return '%s(%s)' % (out or '?', 'debian' if py.startswith('/usr/') else 'pyenv')


def pytest_generate_tests(metafunc):
    if 'py' in metafunc.fixturenames:
        pys = _pythons()
        metafunc.parametrize('py', pys, ids=[_label(p) for p in pys])


def pytest_collection_modifyitems(config, items):
    if not _pythons():
        skip = pytest.mark.skip(reason='MPROF_PYTHONS is empty: run through `make test-pyhook`')
        for it in items:
            it.add_marker(skip)


def run(py, args, cwd=SCRIPTS, env=None, **kw):
    e = dict(os.environ)
    e.pop('MPROF_RSS_FD', None)
    e['PYTHONPATH'] = os.environ['MPROF_PYTHONPATH']
    e['PYTHONDONTWRITEBYTECODE'] = '1'
    if env:
        e.update(env)
    return subprocess.run([py] + list(args), cwd=cwd, env=e, capture_output=True,
                          text=True, timeout=120, **kw)


ROW = re.compile(r'^ {0,5}(\d+) (.{12}) (.{12})  (.{10})   (.*)$')
NUM = re.compile(r'^\s*(-?\d+(?:\.\d*)?) MiB$')


def parse_report(text):
    """Tables of a 0.61 report: [{'filename', 'rows': {line: (mem, inc, occ, src)}}]."""
    tables, cur = [], None
    for line in text.splitlines():
        if line.startswith('Filename: '):
            cur = {'filename': line[len('Filename: '):], 'rows': {}, 'raw': []}
            tables.append(cur)
            continue
        m = ROW.match(line)
        if cur is None or not m:
            continue
        cur['raw'].append(line)
        ln, mem, inc, occ, src = m.groups()
        if mem.strip():
            cur['rows'][int(ln)] = (float(NUM.match(mem).group(1)),
                                    float(NUM.match(inc).group(1)), int(occ), src)
        else:
            cur['rows'][int(ln)] = (None, None, None, src)
    return tables


def table(tables, src_contains):
    """The table whose rows include a source line containing src_contains."""
    for t in tables:
        if any(src_contains in r[3] for r in t['rows'].values()):
            return t
    raise AssertionError('no table with %r in %r' % (src_contains, tables))


def row(t, src_contains):
    for r in t['rows'].values():
        if src_contains in r[3]:
            return r
    raise AssertionError('no row %r' % src_contains)


def results_rows(result, name):
    """{line: (inc_bytes, peak_bytes, occ)} of function `name` in Profiler.results()."""
    for filename, fname, first, nsrc, rows in result:
        if fname == name:
            return {r[0]: tuple(r[1:]) for r in rows}
    raise AssertionError('no results for %s' % name)


def line_of(script, text):
    with open(os.path.join(SCRIPTS, script)) as f:
        for i, line in enumerate(f, 1):
            if text in line:
                return i
    raise AssertionError('%r not in %s' % (text, script))


RSS_PAGE_SIZE = 552  # sizeof(struct mp_rss_shared): 4 u32, 2 u64, 64 u64 peak slots, tgid, pad
RSS_PAGE_TGID = 544  # offset of the tgid the page describes


def bpf_rss_map():
    """A real BPF map like the loader's: an mmap-able array of one RSS page (needs root)."""
    import ctypes
    import struct
    if os.geteuid() != 0:
        pytest.skip('creating a BPF map needs root')
    libc = ctypes.CDLL(None, use_errno=True)
    BPF_MAP_CREATE, BPF_MAP_TYPE_ARRAY, BPF_F_MMAPABLE, SYS_bpf = 0, 2, 0x400, 321
    attr = ctypes.create_string_buffer(
        struct.pack('IIIII', BPF_MAP_TYPE_ARRAY, 4, RSS_PAGE_SIZE, 1, BPF_F_MMAPABLE), 128)
    fd = libc.syscall(SYS_bpf, BPF_MAP_CREATE, attr, 128)
    if fd < 0:
        pytest.skip('cannot create a BPF map: %s' % os.strerror(ctypes.get_errno()))
    return fd


def loader_page():
    """bpf_rss_map() with the header the loader writes (magic, version 2, 64 slots, none used)."""
    import mmap
    import struct
    fd = bpf_rss_map()
    m = mmap.mmap(fd, 4096)
    m[0:16] = struct.pack('IIII', 0x5352504d, 2, 64, 0)
    m.close()
    return fd


def page_owner_is_child(fd):
    """preexec_fn: the page describes the child itself (its pid is kept across exec)."""
    import mmap
    import struct

    def set_owner():
        m = mmap.mmap(fd, 4096)
        struct.pack_into('I', m, RSS_PAGE_TGID, os.getpid())
        m.close()
    return set_owner


# ---- memory_profiler 0.61, side by side ----------------------------------------

DEBIAN_PY = '/usr/bin/python3'
SUPPORT = os.path.join(HERE, 'support')


def _find_061():
    """Debian's memory_profiler 0.61 (a single module file), or None."""
    if not os.path.exists(DEBIAN_PY):
        return None
    r = subprocess.run([DEBIAN_PY, '-I', '-c',
                        'import os, site\n'
                        'for d in site.getsitepackages():\n'
                        '    f = os.path.join(d, "memory_profiler.py")\n'
                        '    if os.path.isfile(f):\n'
                        '        print(f); break\n'], capture_output=True, text=True)
    return r.stdout.strip() or None


MP061 = _find_061()
needs_061 = pytest.mark.skipif(MP061 is None,
                               reason="Debian's python3-memory-profiler (0.61) is not installed")


def has_module(py, name):
    return subprocess.run([py, '-c', 'import ' + name], capture_output=True).returncode == 0


@pytest.fixture
def mp061_path(tmp_path):
    """PYTHONPATH that imports 0.61 with Debian's python3 (its own psutil)."""
    if MP061 is None:
        pytest.skip("Debian's python3-memory-profiler (0.61) is not installed")
    d = tmp_path / 'mp061d'
    d.mkdir()
    os.symlink(MP061, str(d / 'memory_profiler.py'))
    return str(d)


@pytest.fixture
def mp061(py, tmp_path):
    """PYTHONPATH that imports 0.61 with interpreter `py`: 0.61's own file, and for interpreters
    without psutil (all but Debian's) the statm stand-in of support/psutil.py."""
    if MP061 is None:
        pytest.skip("Debian's python3-memory-profiler (0.61) is not installed")
    d = tmp_path / 'mp061'
    d.mkdir()
    os.symlink(MP061, str(d / 'memory_profiler.py'))
    if not has_module(py, 'psutil'):
        os.symlink(os.path.join(SUPPORT, 'psutil.py'), str(d / 'psutil.py'))
    return str(d)


def run061(py, path, args, cwd=SCRIPTS, env=None, **kw):
    """Run `py args` with memory_profiler 0.61 (the mp061 fixture's path) instead of ours."""
    e = dict(os.environ)
    e.pop('MPROF_RSS_FD', None)
    e['PYTHONPATH'] = path
    e['PYTHONDONTWRITEBYTECODE'] = '1'
    if env:
        e.update(env)
    return subprocess.run([py] + list(args), cwd=cwd, env=e, capture_output=True,
                          text=True, timeout=300, **kw)


def version_of(py):
    out = subprocess.run([py, '-c', 'import sys; print("%d.%d" % sys.version_info[:2])'],
                         capture_output=True, text=True).stdout.strip()
    return tuple(int(x) for x in out.split('.'))
