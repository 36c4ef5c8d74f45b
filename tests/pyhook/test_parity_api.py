"""0.61's public API beside ours: names, LineProfiler.code_map, LogFile, MemitResult, errors."""
import json
import textwrap

from conftest import DEBIAN_PY, needs_061, run, run061

NAMES = textwrap.dedent('''
    import json, sys, types
    import memory_profiler as m
    out = {}
    for n, v in sorted(vars(m).items()):
        if n.startswith('__') or isinstance(v, types.ModuleType):
            continue
        mod = getattr(v, '__module__', None)
        if mod not in (None, 'memory_profiler'):
            continue  # imported from elsewhere (functools.partial, IPython's Magics, ...)
        out[n] = 'class' if isinstance(v, type) else 'callable' if callable(v) else 'value'
    for n in ('MemoryProfilerMagics', 'MemTimer'):
        v = getattr(m, n)
        out[n] = 'class' if isinstance(v, type) else 'callable'
    json.dump(out, sys.stdout)
''')


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


@needs_061
def test_every_public_name_of_061_exists(py, mp061, tmp_path):
    script = _write(tmp_path, 'names.py', NAMES)
    theirs = run061(DEBIAN_PY, mp061, [script])
    assert theirs.returncode == 0, theirs.stderr
    ours = run(py, [script])
    assert ours.returncode == 0, ours.stderr
    want, have = json.loads(theirs.stdout), json.loads(ours.stdout)
    missing = {n: k for n, k in want.items() if have.get(n) != k}
    assert not missing, missing


CODE_MAP = '''
    import json, sys
    from memory_profiler import LineProfiler, CodeMap, show_results

    def some_loop():
        for i in range(12):
            a = 1

    def incr():
        use_some_memory = [1] * (10 ** 6)

    def loop_incr():
        # above 32 MiB (glibc's largest mmap threshold): always new memory
        a = []
        b = [2] * (5 * 10 ** 6)
        for i in range(3):
            c = [2] * (5 * 10 ** 6)
            a.append(c)

    def decr():
        b = [2] * (2 * 10 ** 7)
        del b

    def nested():
        g = (j for j in range(2))
        f = lambda x: [x]
        return list(g), f(1)

    out = {}
    for f in (some_loop, incr, loop_incr, decr, nested):
        prof = LineProfiler()
        prof(f)()
        show_results(prof, stream=open('/dev/null', 'w'))
        cm = prof.code_map
        assert isinstance(cm, CodeMap) and isinstance(cm, dict)
        vals = list(cm.values())
        # nested code objects (comprehensions) share their function's dict
        assert all(v is vals[0] for v in vals), f
        out[f.__name__] = {'rows': list(vals[0].values()), 'ncodes': len(cm),
                           'items': [(fn, [(ln, m) for ln, m in it]) for fn, it in cm.items()]}
    json.dump(out, sys.stdout)
'''


def test_code_map_as_061_reads_it(py, tmp_path):
    """0.61's test_increment_display reads profiler.code_map.values(): {line: (inc, mem, occ)}."""
    r = run(py, [_write(tmp_path, 'cm.py', CODE_MAP)], cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    loop = d['some_loop']['rows']
    assert loop[-2][2] == 13 and loop[-1][2] == 12          # the for line, its body
    inc = d['incr']['rows'][-1]
    assert 7.0 < inc[0] < inc[1] and inc[2] == 1            # in MiB: 7.6 MiB of list
    li = d['loop_incr']['rows']
    assert li[-2][2] == 3 and li[-4][2] == 1
    assert abs(li[-2][0] - 3 * li[-4][0]) < 1
    dec = d['decr']['rows']
    assert dec[-1][0] < 0 < dec[-1][1] and abs(-dec[-1][0] - dec[-2][0]) < 1
    assert d['nested']['ncodes'] == 3                      # the function, the genexpr, the lambda
    fn, lines = d['nested']['items'][0]
    assert fn.endswith('cm.py') and [ln for ln, m in lines if m][0] == lines[0][0]


LOGFILE = '''
    import logging, sys
    records = []

    class Keep(logging.Handler):
        def emit(self, rec):
            records.append(rec.getMessage())

    logging.getLogger('mp').addHandler(Keep())
    logging.getLogger('mp').setLevel(logging.INFO)
    from memory_profiler import LogFile, profile

    @profile
    def f():
        a = [1] * (5 * 10 ** 6)
        b = [2] * (6 * 10 ** 6)
        del b
        return a

    real = sys.stdout
    sys.stdout = LogFile('mp', reportIncrementFlag=FLAG)
    f()
    sys.stdout = real
    import json
    json.dump(records, sys.stdout)
'''


def _logged(runner, tmp_path, flag):
    r = runner([_write(tmp_path, 'log%d.py' % flag, LOGFILE.replace('FLAG', str(bool(flag))))])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _mask(recs):
    import re
    return [re.sub(r' +-?\d+\.\d MiB', ' N MiB', x) for x in recs]


def test_logfile_reports_to_logging(py, tmp_path):
    everything = _logged(lambda a: run(py, a, cwd=str(tmp_path)), tmp_path, 0)
    text = ''.join(everything)
    assert text.startswith('Filename: ') and 'a = [1] * (5 * 10 ** 6)' in text
    assert len([x for x in everything if 'MiB' in x]) == 5      # one record per row written
    only = _logged(lambda a: run(py, a, cwd=str(tmp_path)), tmp_path, 1)
    assert any(x.startswith('Filename: ') for x in only)
    assert any('Line Contents' in x for x in only)
    rows = [x for x in only if 'MiB' in x]
    # the positive increments only: the entry row, a, b (not del b, not return a)
    assert len(rows) == 3 and all(float(x.split('MiB')[1]) > 0 for x in rows), only
    assert not any('del b' in x or 'return a' in x or x.startswith('=') for x in only)


@needs_061
def test_logfile_records_as_061(tmp_path, mp061_path):
    for flag in (0, 1):
        ours = _logged(lambda a: run(DEBIAN_PY, a, cwd=str(tmp_path)), tmp_path, flag)
        theirs = _logged(lambda a: run061(DEBIAN_PY, mp061_path, a, cwd=str(tmp_path)),
                         tmp_path, flag)
        assert _mask(ours) == _mask(theirs)


MEMIT = '''
    import json, sys
    from memory_profiler import MemitResult
    r = MemitResult([30.0, 42.5], 20.25, 2, None, 0.1, False)

    class P:
        out = ''
        def text(self, s):
            self.out += s
    p = P()
    r._repr_pretty_(p, False)
    json.dump({'str': str(r), 'pretty': p.out, 'attrs': [r.mem_usage, r.baseline, r.repeat,
               r.timeout, r.interval, r.include_children]}, sys.stdout)
'''


def test_memit_result(py, tmp_path):
    r = run(py, [_write(tmp_path, 'memit.py', MEMIT)])
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d['str'] == 'peak memory: 42.50 MiB, increment: 22.25 MiB'
    assert d['pretty'] == '<MemitResult : peak memory: 42.50 MiB, increment: 22.25 MiB>'
    assert d['attrs'] == [[30.0, 42.5], 20.25, 2, None, 0.1, False]


@needs_061
def test_memit_result_as_061(mp061_path, tmp_path):
    s = _write(tmp_path, 'memit.py', MEMIT)
    ours, theirs = run(DEBIAN_PY, [s]), run061(DEBIAN_PY, mp061_path, [s])
    assert theirs.returncode == 0, theirs.stderr
    assert json.loads(ours.stdout) == json.loads(theirs.stdout)


ERRORS = '''
    import json, sys
    from memory_profiler import memory_usage
    out = {}
    for proc in ('1', '12345', b'1'):
        try:
            memory_usage(proc)
            out[repr(proc)] = 'no error'
        except Exception as e:
            out[repr(proc)] = type(e).__name__
    json.dump(out, sys.stdout)
'''


def test_string_proc_is_a_type_error(py, tmp_path):
    r = run(py, [_write(tmp_path, 'err.py', ERRORS)])
    assert r.returncode == 0, r.stderr
    assert set(json.loads(r.stdout).values()) == {'TypeError'}


@needs_061
def test_string_proc_error_as_061(mp061_path, tmp_path):
    r = run061(DEBIAN_PY, mp061_path, [_write(tmp_path, 'err.py', ERRORS)])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["'1'"] == 'TypeError'


def test_module_mode_argv_is_python_dash_m(py):
    """sys.argv[0] is the module's file, as `python -m argv0` sets it (0.61: the bare name)."""
    direct = run(py, ['-m', 'argv0', 'x'])
    ours = run(py, ['-m', 'memory_profiler', 'argv0', 'x'])
    assert ours.returncode == 0 and direct.returncode == 0, ours.stderr + direct.stderr
    got = json.loads(ours.stdout.splitlines()[0])
    assert got == json.loads(direct.stdout) and got[0].endswith('argv0.py'), got


def test_choose_backend(py):
    r = run(py, ['-c', 'import memory_profiler as m\n'
                 'print([m.choose_backend(b) for b in (None, "psutil", "psutil_pss", '
                 '"psutil_uss", "posix", "tracemalloc")])\n'
                 'try:\n    m.choose_backend("bogus")\nexcept ValueError as e:\n    print(e)'])
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.splitlines()
    assert first == "['psutil', 'psutil', 'psutil_pss', 'psutil_uss', 'posix', 'tracemalloc']"
    assert 'bogus' in second
