"""memory_profiler 0.61 compatible API on mprof-bpf's C hook.

The measuring is done in C (memory_profiler._mprof_hook): line events come
from sys.monitoring (3.12+) or a C trace function (<= 3.11), memory from the
loader's kernel page or /proc (RSS), /proc/PID/smaps_rollup (PSS, USS) or
tracemalloc. This module adapts 0.61's public API: profile, LineProfiler,
CodeMap, show_results, TimeStamper, memory_usage, MemTimer, LogFile,
MemitResult, choose_backend and the IPython extension
(load_ipython_extension, MemoryProfilerMagics, in memory_profiler._ipython).
"""
_CLEAN_GLOBALS = globals().copy()

import builtins  # noqa: E402 - _CLEAN_GLOBALS must be taken first, as in 0.61
import functools  # noqa: E402
import inspect  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

try:
    from . import _mprof_hook as _hook
except ImportError as e:  # built for other interpreters only
    raise ImportError(
        "memory_profiler: the C hook is not built for this Python (%s %s); "
        "run `make pyhook PYTHONS=%s`" % (sys.version.split()[0], e, sys.executable)
    ) from None

# The loader's fds were taken by the hook (or refused): their numbers must not reach children.
os.environ.pop('MPROF_RSS_FD', None)
os.environ.pop('MPROF_FUNC_FD', None)

__version__ = '0.61.0'

_CMD_USAGE = "python -m memory_profiler script_file.py"
_TWO_20 = float(2 ** 20)
_BACKENDS = ('tracemalloc', 'psutil', 'psutil_pss', 'psutil_uss', 'posix')
# tracemalloc is part of every Python we support.
has_tracemalloc = True


def __getattr__(name):
    # The IPython magics and MemTimer pull in IPython and multiprocessing:
    # loaded on first use, so `import memory_profiler` stays cheap.
    if name == 'MemoryProfilerMagics':
        from . import _ipython
        return _ipython.MemoryProfilerMagics
    if name == 'MemTimer':
        return _mem_timer_class()
    raise AttributeError("module 'memory_profiler' has no attribute %r" % (name,))


def load_ipython_extension(ip):
    """Called by `%load_ext memory_profiler`: registers %mprun and %memit."""
    from . import _ipython
    _ipython.load_ipython_extension(ip)


def choose_backend(new_backend=None):
    """The backend to use: the one asked for (all of 0.61's work without psutil here)."""
    if new_backend is None:
        return 'psutil'
    if new_backend not in _BACKENDS:
        raise ValueError("unknown backend %r: expected one of %s"
                         % (new_backend, ', '.join(_BACKENDS)))
    return new_backend


def _start_tracemalloc(backend):
    if backend == 'tracemalloc':
        import tracemalloc
        if not tracemalloc.is_tracing():
            tracemalloc.start()


class MemitResult(object):
    """What %memit measured: one peak per repeat (MiB) and the baseline before."""

    def __init__(self, mem_usage, baseline, repeat, timeout, interval, include_children):
        self.mem_usage = mem_usage
        self.baseline = baseline
        self.repeat = repeat
        self.timeout = timeout
        self.interval = interval
        self.include_children = include_children

    def __str__(self):
        peak = max(self.mem_usage)
        return 'peak memory: %.02f MiB, increment: %.02f MiB' % (peak, peak - self.baseline)

    def __repr__(self):
        return '<MemitResult : ' + str(self) + '>'

    def _repr_pretty_(self, p, cycle):
        p.text(repr(self))


def _copy_attrs(wrapper, func):
    try:
        functools.update_wrapper(wrapper, func)
    except (AttributeError, TypeError):
        pass
    return wrapper


def _nested_codes(code):
    """code and every code object among its constants, recursively (0.61's CodeMap.add)."""
    out, todo = [], [code]
    while todo:
        c = todo.pop()
        out.append(c)
        todo.extend(x for x in c.co_consts if inspect.iscode(x))
    return out


class CodeMap(dict):
    """{code: {lineno: (increment MiB, mem usage MiB, occurrences)}}, as 0.61 keeps it.

    Nested code objects (comprehensions, lambdas, inner functions) share their
    function's dict. A LineProfiler's code_map is a snapshot of its results;
    a CodeMap made by hand measures with trace() like 0.61's.
    """

    def __init__(self, include_children=False, backend='psutil'):
        super().__init__()
        self.include_children = include_children
        self.backend = backend
        self._toplevel = []

    def add(self, code, toplevel_code=None):
        if code in self:
            return
        if toplevel_code is None:
            filename = code.co_filename
            if filename.endswith(('.pyc', '.pyo')):
                filename = filename[:-1]
            try:
                sub_lines, start_line = inspect.getsourcelines(code)
            except (OSError, TypeError):
                print('ERROR: Could not find file ' + filename)
                return
            self._toplevel.append((filename, code, range(start_line, start_line + len(sub_lines))))
            self[code] = {}
            toplevel_code = code
        else:
            self[code] = self[toplevel_code]
        for sub in code.co_consts:
            if inspect.iscode(sub):
                self.add(sub, toplevel_code=toplevel_code)

    def trace(self, code, lineno, prev_lineno):
        """Charge a sample taken now to lineno (0.61's arithmetic, for hand-made tracers)."""
        memory = _get_memory(-1, self.backend, include_children=self.include_children,
                             filename=code.co_filename)
        lines = self[code]
        inc, peak, occ = lines.get(lineno, (0, 0, 0))
        prev = lines.get(prev_lineno) if prev_lineno else None
        lines[lineno] = (inc + memory - (prev[1] if prev else 0), max(memory, peak), occ + 1)

    def items(self):
        """(filename, iterator of (lineno, measure or None)) of each measured top-level function."""
        for filename, code, linenos in self._toplevel:
            measures = self[code]
            if measures:
                yield filename, ((ln, measures.get(ln)) for ln in linenos)


class LineProfiler(_hook.Profiler):
    """Records, per decorated function, each line's increment, peak and count."""

    def __init__(self, include_children=False, backend='psutil', max_mem=None, **kw):
        backend = choose_backend(backend)
        _start_tracemalloc(backend)
        super().__init__(include_children, backend, max_mem)
        self.include_children = include_children
        self.backend = backend

    def __call__(self, func=None, precision=1):
        if func is None:
            return functools.partial(self.__call__, precision=precision)
        self.add_function(func)
        return self.wrap_function(func)

    def wrap_function(self, func):
        if inspect.iscoroutinefunction(func):
            async def f(*args, **kwargs):
                self.enable_by_count()
                try:
                    return await func(*args, **kwargs)
                finally:
                    self.disable_by_count()
        else:
            f = _hook.Wrapper(self, func)
        return _copy_attrs(f, func)

    @property
    def code_map(self):
        """A CodeMap snapshot of the results, in MiB."""
        cm = CodeMap(self.include_children, self.backend)
        for code, filename, first, nsrc, rows in self.tables():
            measures = {ln: (inc / _TWO_20, peak / _TWO_20, occ) for ln, inc, peak, occ in rows}
            cm._toplevel.append((filename, code, range(first, first + nsrc)))
            for c in _nested_codes(code):
                cm.setdefault(c, measures)
        return cm

    def runctx(self, cmd, globals, locals):
        self.enable_by_count()
        try:
            exec(cmd, globals, locals)
        finally:
            self.disable_by_count()
        return self

    def runcall(self, func, *args, **kw):
        self.add_function(func)
        self.enable_by_count()
        try:
            return func(*args, **kw)
        finally:
            self.disable_by_count()


_TEMPLATE = '{0:>6} {1:>12} {2:>12}  {3:>10}   {4:<}'


def show_results(prof, stream=None, precision=1):
    """Write the 0.61 line-by-line report of prof."""
    if isinstance(prof, _hook.Profiler):
        prof.show_results(stream=stream, precision=precision)
        return
    # Anything else with a 0.61-style code_map (a CodeMap filled by trace()).
    import linecache
    if stream is None:
        stream = sys.stdout
    mem = '{0:%d.%df} MiB' % (precision + 4, precision)
    for filename, lines in prof.code_map.items():
        header = _TEMPLATE.format('Line #', 'Mem usage', 'Increment', 'Occurrences',
                                  'Line Contents')
        stream.write('Filename: ' + filename + '\n\n')
        stream.write(header + '\n')
        stream.write('=' * len(header) + '\n')
        src = linecache.getlines(filename)
        for ln, m in lines:
            text = src[ln - 1] if ln - 1 < len(src) else '\n'
            if m:
                stream.write(_TEMPLATE.format(ln, mem.format(m[1]), mem.format(m[0]), m[2], text))
            else:
                stream.write(_TEMPLATE.format(ln, '', '', '', text))
        stream.write('\n\n')


def profile(func=None, stream=None, precision=1, backend='psutil', include_children=False):
    """Decorator: each call of func prints its own line-by-line report.

    include_children (missing from 0.61, although its README shows it) adds the
    memory of every descendant process.
    """
    if func is None:
        return functools.partial(profile, stream=stream, precision=precision, backend=backend,
                                 include_children=include_children)
    backend = choose_backend(backend)
    _start_tracemalloc(backend)

    def done(prof):
        prof.close()
        prof.show_results(stream=stream, precision=precision)

    if inspect.iscoroutinefunction(func):
        async def wrapper(*args, **kwargs):
            prof = LineProfiler(backend=backend, include_children=include_children)
            try:
                return await prof(func)(*args, **kwargs)
            finally:
                done(prof)
    else:
        def wrapper(*args, **kwargs):
            prof = LineProfiler(backend=backend, include_children=include_children)
            try:
                return prof(func)(*args, **kwargs)
            finally:
                done(prof)
    return _copy_attrs(wrapper, func)


# ---- memory samples ---------------------------------------------------------

def _descendants(pid):
    """Every descendant pid of pid, breadth first (/proc/PID/task/TID/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        try:
            tids = os.listdir('/proc/%d/task' % p)
        except OSError:
            continue
        for tid in tids:
            try:
                with open('/proc/%d/task/%s/children' % (p, tid)) as f:
                    kids = [int(x) for x in f.read().split()]
            except (OSError, ValueError):
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


def _bytes_of(pid, metric):
    """RSS, PSS or USS of pid in bytes."""
    if metric == 'pss' or metric == 'uss':
        return _hook.smaps_bytes(pid, metric)
    return _hook.rss_bytes(pid)


def _metric(backend):
    return {'psutil_pss': 'pss', 'psutil_uss': 'uss'}.get(backend, 'rss')


def _get_child_memory(process, meminfo_attr=None, memory_metric=0):
    """Yield (pid, MiB) for every descendant of process (a pid, -1, or an object with .pid).

    memory_metric 0 or 'rss' is the RSS, 'pss' and 'uss' read smaps_rollup.
    Descendants that exit meanwhile are left out (0.61 yields (0, 0.0)).
    """
    pid = getattr(process, 'pid', process)
    if pid == -1:
        pid = os.getpid()
    metric = memory_metric if memory_metric in ('pss', 'uss') else 'rss'
    for child in _descendants(int(pid)):
        try:
            yield child, _bytes_of(child, metric) / _TWO_20
        except OSError:
            continue


def _get_memory(pid, backend=None, timestamps=False, include_children=False, filename=None):
    """Memory of pid (-1: this process) in MiB, optionally with a time stamp.

    tracemalloc: the bytes traced in this process (pid must be this one); with
    filename, only the traces whose innermost frame is in that file, as 0.61.
    """
    backend = choose_backend(backend)
    if pid == -1:
        pid = os.getpid()
    if backend == 'tracemalloc':
        import tracemalloc
        if pid != os.getpid():
            raise ValueError('tracemalloc only measures this process, not pid %d' % pid)
        if not tracemalloc.is_tracing():
            raise RuntimeError('the tracemalloc backend needs tracemalloc.start() first')
        if filename is not None and filename != '<unknown>':
            stats = tracemalloc.take_snapshot().statistics('filename')
            mem = next((s.size for s in stats if str(s).startswith(filename)), 0)
        else:
            mem = tracemalloc.get_traced_memory()[0]
    else:
        metric = _metric(backend)
        mem = _bytes_of(pid, metric)
        if include_children:
            for child in _descendants(pid):
                try:
                    mem += _bytes_of(child, metric)
                except OSError:
                    pass
    mem /= _TWO_20
    return (mem, time.time()) if timestamps else mem


def _gone(pid):
    """Whether pid has exited (a zombie counts as gone)."""
    try:
        with open('/proc/%d/stat' % pid, 'rb') as f:
            stat = f.read()
    except OSError:
        return True
    return stat[stat.rindex(b')') + 2:][:1] in (b'Z', b'X')


def memory_usage(proc=-1, interval=.1, timeout=None, timestamps=False,
                 include_children=False, multiprocess=False, max_usage=False,
                 retval=False, stream=None, backend=None, max_iterations=None):
    """Sample the memory of this process (-1), a pid, a Popen or a call.

    A callable (f, (f, args) or (f, args, kw)) is called exactly once while a
    thread samples; with max_usage the kernel's high-water mark (reset before
    the call) is reported for RSS, tracemalloc's peak for tracemalloc, so a
    spike between samples is not lost (and no thread is needed). A pid or Popen gets round(timeout /
    interval) samples (one without timeout; a Popen until it exits); with
    multiprocess each sample is [main, child1, ...]. With stream, the samples
    are written as MEM (and CHLD) lines of a .dat file and None is returned.
    """
    backend = choose_backend(backend)
    metric = _metric(backend)
    if stream is not None:
        timestamps = True
    if isinstance(proc, (str, bytes)):
        raise TypeError('memory_usage: proc must be -1, a pid (int), a subprocess.Popen or '
                        'a callable, not %s' % type(proc).__name__)

    if callable(proc) or isinstance(proc, (tuple, list)):
        if callable(proc):
            proc = (proc, (), {})
        if len(proc) == 1:
            proc = (proc[0], (), {})
        elif len(proc) == 2:
            proc = (proc[0], proc[1], {})
        elif len(proc) != 3:
            raise ValueError('memory_usage: the callable must be a tuple of length 1, 2 or 3')
        return _usage_of_call(proc, interval, timestamps, include_children, max_usage, retval,
                              stream, backend)

    popen = proc if hasattr(proc, 'poll') else None
    pid = popen.pid if popen is not None else proc
    if not isinstance(pid, int) or isinstance(pid, bool):
        raise TypeError('memory_usage: proc must be -1, a pid (int), a subprocess.Popen or '
                        'a callable, not %s' % type(pid).__name__)
    if pid == -1:
        pid = os.getpid()
    n = int(round(timeout / interval)) if timeout is not None else (None if popen else 1)
    samples, peak, written = [], None, 0
    while n is None or written < n:
        try:
            m = _get_memory(pid, backend, timestamps=timestamps,
                            include_children=include_children)
        except OSError:
            break
        mem = m[0] if timestamps else m
        if mem == 0 and backend != 'tracemalloc':
            # A process with an address space has resident pages: it is exiting (its
            # memory is already released). Not a 0.0 sample: the end.
            if popen is None or popen.poll() is not None or _gone(pid):
                break
            time.sleep(min(interval, 0.01))
            continue
        kids = []
        if multiprocess:
            for child in _descendants(pid):
                try:
                    kids.append((child, _bytes_of(child, metric) / _TWO_20))
                except OSError:
                    pass
        written += 1
        if max_usage:
            peak = mem if peak is None else max(peak, mem)
        elif stream is not None:
            stream.write("MEM {0:.6f} {1:.4f}\n".format(*m))
            for child, cm in kids:
                stream.write("CHLD {0} {1:.6f} {2:.4f}\n".format(child, cm, time.time()))
            if written % 50 == 0:
                stream.flush()
        else:
            samples.append([m] + [cm for _, cm in kids] if multiprocess else m)
        if popen is not None and popen.poll() is not None:
            break
        if n is not None and written >= n:
            break
        time.sleep(interval)
    if stream is not None:
        stream.flush()
        return None
    if max_usage:
        return peak
    return samples


def _usage_of_call(call, interval, timestamps, include_children, max_usage, retval, stream,
                   backend):
    f, args, kw = call
    samples = []
    lock = threading.Lock()
    tm_own, tm_has_peak = False, False
    if backend == 'tracemalloc':
        import tracemalloc
        if not tracemalloc.is_tracing():
            tracemalloc.start()
            tm_own = True
        tm_has_peak = hasattr(tracemalloc, 'reset_peak')    # 3.9+
        if tm_has_peak:
            tracemalloc.reset_peak()
    hwm_ok = backend in ('psutil', 'posix') and not include_children and _reset_hwm()

    def sample():
        m = _get_memory(-1, backend, include_children=include_children, timestamps=timestamps)
        with lock:
            samples.append(m)

    stop = threading.Event()

    def sampler():
        while not stop.wait(interval):
            sample()

    # The peak from the kernel's high-water mark or tracemalloc needs no sampling in between.
    exact_peak = max_usage and stream is None and (
        hwm_ok or (backend == 'tracemalloc' and tm_has_peak))
    sample()
    th = None
    if not exact_peak:
        th = threading.Thread(target=sampler, daemon=True)
        th.start()
    try:
        ret = f(*args, **kw)
    finally:
        stop.set()
        if th is not None:
            th.join()
        sample()
        tm_peak = None
        if backend == 'tracemalloc':
            import tracemalloc
            tm_peak = tracemalloc.get_traced_memory()[1] / _TWO_20
            if tm_own:
                tracemalloc.stop()
    if stream is not None:
        for m in samples:
            stream.write("MEM {0:.6f} {1:.4f}\n".format(*m))
        stream.flush()
        return None
    if max_usage:
        peak = max(s[0] if timestamps else s for s in samples)
        if hwm_ok:
            peak = max(peak, _read_hwm())
        if tm_peak is not None:
            peak = max(peak, tm_peak)
        out = peak
    else:
        out = samples
    return (out, ret) if retval else out


def _reset_hwm():
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _read_hwm():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024.0
    return 0.0


_MemTimer = None


def _mem_timer_class():
    """MemTimer, 0.61's sampling process, made on first use (it needs multiprocessing)."""
    global _MemTimer
    if _MemTimer is not None:
        return _MemTimer
    from multiprocessing import Process

    class MemTimer(Process):
        """A process that samples monitor_pid every interval until told to stop.

        Protocol (0.61's): it sends 0 when it runs; the parent sends anything
        to stop it; it then sends the samples (or [max] with max_usage) and
        the number of measurements.
        """

        def __init__(self, monitor_pid, interval, pipe, backend, max_usage=False, *args, **kw):
            self.monitor_pid = monitor_pid
            self.interval = interval
            self.pipe = pipe
            self.cont = True
            self.backend = backend
            self.max_usage = max_usage
            self.n_measurements = 1
            self.timestamps = kw.pop('timestamps', False)
            self.include_children = kw.pop('include_children', False)
            self.mem_usage = [_get_memory(monitor_pid, backend, timestamps=self.timestamps,
                                          include_children=self.include_children)]
            super().__init__(*args, **kw)

        def run(self):
            self.pipe.send(0)
            stop = False
            while True:
                cur = _get_memory(self.monitor_pid, self.backend, timestamps=self.timestamps,
                                  include_children=self.include_children)
                if self.max_usage:
                    self.mem_usage[0] = max(cur, self.mem_usage[0])
                else:
                    self.mem_usage.append(cur)
                self.n_measurements += 1
                if stop:
                    break
                stop = self.pipe.poll(self.interval)
            self.pipe.send(self.mem_usage)
            self.pipe.send(self.n_measurements)

    # pickled by reference (the spawn start method): memory_profiler.MemTimer finds it again
    MemTimer.__module__ = __name__
    MemTimer.__qualname__ = 'MemTimer'
    _MemTimer = MemTimer
    return MemTimer


# ---- reporting to logging ---------------------------------------------------

class LogFile(object):
    """A file-like object that sends what is written to it to a logger.

    sys.stdout = LogFile('memory_profile_log') turns the reports into log
    records (one per write, level INFO). With reportIncrementFlag=True only
    the rows with a positive Increment and the headers (Filename:, Line
    Contents) are logged.
    """

    def __init__(self, name=None, reportIncrementFlag=False):
        self.logger = logging.getLogger(name)
        self.reportIncrementFlag = reportIncrementFlag

    @staticmethod
    def _increment(msg):
        """The Increment of a report row (the number between the 1st and 2nd MiB), else None."""
        parts = msg.split('MiB')
        if len(parts) < 3:
            return None
        try:
            return float(parts[1].strip())
        except ValueError:
            # %memit's line: "peak memory: X MiB, increment: Y MiB"
            tail = parts[1].rsplit(':', 1)[-1].strip()
            try:
                return float(tail)
            except ValueError:
                return None

    def write(self, msg, level=logging.INFO):
        if self.reportIncrementFlag:
            inc = self._increment(msg) if 'MiB' in msg else None
            if inc is not None:
                if inc > 0:
                    self.logger.log(level, msg)
            elif 'Filename:' in msg or 'Line Contents' in msg:
                self.logger.log(level, msg)
        else:
            self.logger.log(level, msg)

    def flush(self):
        for handler in self.logger.handlers:
            handler.flush()


# ---- function time stamps (FUNC lines) -----------------------------------------

class _TimeStamperCM(object):
    """`with profile.timestamp(name):` block."""

    def __init__(self, timestamps, label, stamper, func, include_children=False,
                 backend='psutil'):
        self.timestamps = timestamps
        self.label = label
        self.ts = stamper
        self.func = func
        self.include_children = include_children
        self.backend = backend

    def _stamp(self):
        self.timestamps.append(_get_memory(-1, self.backend, timestamps=True,
                                           include_children=self.include_children))

    def __enter__(self):
        if self.ts is not None:
            self.ts.stack[self.func].append(self.ts._enter_level())
        _hook.timestamp(id(self), 0, self.label)
        self._stamp()
        return self

    def __exit__(self, *args):
        if self.ts is not None:
            self.ts._leave_level()
        _hook.timestamp(id(self), 1, self.label)
        self._stamp()


class TimeStamper(object):
    """Records entry/exit memory and time of decorated calls (FUNC lines)."""

    def __init__(self, backend='psutil', include_children=False):
        self.functions = {}
        self.stack = {}
        self.backend = choose_backend(backend)
        _start_tracemalloc(self.backend)
        self.include_children = include_children
        self._tls = threading.local()

    @property
    def current_stack_level(self):
        return getattr(self._tls, 'level', -1)

    def _enter_level(self):
        self._tls.level = self.current_stack_level + 1
        return self._tls.level

    def _leave_level(self):
        self._tls.level = self.current_stack_level - 1

    def __call__(self, func=None, precision=None):
        if func is None:
            return functools.partial(self.__call__, precision=precision)
        if not callable(func):
            raise ValueError("Value must be callable")
        self.add_function(func)
        f = self.wrap_function(func)
        f.__module__ = func.__module__
        f.__name__ = func.__name__
        f.__doc__ = func.__doc__
        f.__dict__.update(getattr(func, '__dict__', {}))
        return f

    def timestamp(self, name="<block>"):
        func = lambda x: x  # noqa: E731 - a key, as in memory_profiler
        func.__module__ = ""
        func.__name__ = name
        self.add_function(func)
        timestamps = []
        self.functions[func].append(timestamps)
        return _TimeStamperCM(timestamps, "." + name, self, func, self.include_children,
                              self.backend)

    def add_function(self, func):
        if func not in self.functions:
            self.functions[func] = []
            self.stack[func] = []

    def wrap_function(self, func):
        code = getattr(func, '__code__', None)
        cid = id(code) if code is not None else id(func)
        line = code.co_firstlineno if code is not None else 0
        label = "%s.%s" % (func.__module__, func.__name__)
        children = self.include_children
        backend = self.backend

        def f(*args, **kwds):
            timestamps = [_get_memory(-1, backend, timestamps=True, include_children=children)]
            self.functions[func].append(timestamps)
            self.stack[func].append(self._enter_level())
            _hook.func_entry(cid, line, label)
            try:
                return func(*args, **kwds)
            finally:
                self._leave_level()
                _hook.func_exit(cid, line, label)
                timestamps.append(_get_memory(-1, backend, timestamps=True,
                                              include_children=children))
        return f

    def show_results(self, stream=None):
        # Under `mprof run` (kernel backend) the hook hands each call boundary to the loader
        # through a pipe and the loader writes the FUNC lines as calls end (so they survive a
        # killed child): writing them again here would duplicate every line.
        if _hook.func_pipe()[0]:
            return
        if stream is None:
            stream = sys.stdout
        for func, timestamps in self.functions.items():
            name = "%s.%s" % (func.__module__, func.__name__)
            for ts, level in zip(timestamps, self.stack[func]):
                if len(ts) < 2:
                    continue  # still running (or killed): no exit stamp
                stream.write("FUNC %s %.4f %.4f %.4f %.4f %d\n" % (
                    (name,) + ts[0] + ts[1] + (level,)))


# ---- running a program --------------------------------------------------------

def _find_script(script_name):
    """The script itself, or the first match on $PATH."""
    if os.path.isfile(script_name):
        return script_name
    for folder in os.getenv('PATH', os.defpath).split(os.pathsep):
        if folder:
            fn = os.path.join(folder, script_name)
            if os.path.isfile(fn):
                return fn
    sys.stderr.write('Could not find script {0}\n'.format(script_name))
    raise SystemExit(1)


def _func_exec(stmt, ns):
    """exec(stmt, ns): what %memit measures."""
    exec(stmt, ns)


def _run_traced(backend, run):
    # 0.61 traces the whole program with tracemalloc and stops it at the end.
    if backend != 'tracemalloc':
        return run()
    import tracemalloc
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        return run()
    finally:
        if started and tracemalloc.is_tracing():
            tracemalloc.stop()


def exec_with_profiler(filename, profiler, backend=None, passed_args=()):
    """Run a script as __main__ with `profile` in builtins (runpy.run_path)."""
    import runpy
    builtins.__dict__['profile'] = profiler
    sys.path.insert(0, os.path.dirname(filename))
    sys.argv = [filename] + list(passed_args)
    _run_traced(choose_backend(backend), lambda: runpy.run_path(
        filename, init_globals={'profile': profiler}, run_name='__main__'))


def run_module_with_profiler(module, profiler, backend=None, passed_args=()):
    """Run a module as __main__ with `profile` in builtins, as `python -m module` would.

    sys.argv[0] becomes the module's file (0.61 leaves the module's name there)
    and the module is sys.modules['__main__'] while it runs, as with python -m.
    """
    import runpy
    builtins.__dict__['profile'] = profiler
    sys.argv = [module] + list(passed_args)
    _run_traced(choose_backend(backend), lambda: runpy.run_module(
        module, run_name='__main__', init_globals={'profile': profiler}, alter_sys=True))


def run_script_with_profiler(filename, profiler, passed_args=(), backend=None):
    """exec_with_profiler under its former name."""
    exec_with_profiler(filename, profiler, backend, passed_args)
