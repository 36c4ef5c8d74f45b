"""memory_profiler 0.61 compatible API on mprof-bpf's C hook.

The measuring is done in C (memory_profiler._mprof_hook): line events come
from sys.monitoring (3.12+) or a C trace function (<= 3.11), RSS from the
loader's kernel page or /proc/self/statm. This module only adapts the
public API: profile, LineProfiler, show_results, TimeStamper,
memory_usage.
"""
import builtins
import functools
import inspect
import os
import sys
import threading
import time

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

_TWO_20 = float(2 ** 20)
_BACKENDS = ('tracemalloc', 'psutil', 'psutil_pss', 'psutil_uss', 'posix')


def choose_backend(new_backend=None):
    """Every backend reads RSS here; say so once for the ones we cannot honour."""
    if new_backend in (None, 'psutil', 'posix'):
        return 'psutil'
    if new_backend not in _BACKENDS:
        raise ValueError("unknown backend %r" % (new_backend,))
    if not _warned.get(new_backend):
        _warned[new_backend] = True
        sys.stderr.write('{0} can not be used, {1} used instead\n'.format(new_backend, 'psutil'))
    return 'psutil'


_warned = {}


def _copy_attrs(wrapper, func):
    try:
        functools.update_wrapper(wrapper, func)
    except (AttributeError, TypeError):
        pass
    return wrapper


class LineProfiler(_hook.Profiler):
    """Records, per decorated function, each line's increment, peak and count."""

    def __init__(self, include_children=False, backend='psutil', max_mem=None, **kw):
        super().__init__(include_children, backend, max_mem)
        self.include_children = include_children
        self.backend = choose_backend(backend)

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


def show_results(prof, stream=None, precision=1):
    """Write the 0.61 line-by-line report of prof."""
    prof.show_results(stream=stream, precision=precision)


def profile(func=None, stream=None, precision=1, backend='psutil'):
    """Decorator: each call of func prints its own line-by-line report."""
    if func is None:
        return functools.partial(profile, stream=stream, precision=precision, backend=backend)
    backend = choose_backend(backend)

    def done(prof):
        prof.close()
        prof.show_results(stream=stream, precision=precision)

    if inspect.iscoroutinefunction(func):
        async def wrapper(*args, **kwargs):
            prof = LineProfiler(backend=backend)
            try:
                return await prof(func)(*args, **kwargs)
            finally:
                done(prof)
    else:
        def wrapper(*args, **kwargs):
            prof = LineProfiler(backend=backend)
            try:
                return prof(func)(*args, **kwargs)
            finally:
                done(prof)
    return _copy_attrs(wrapper, func)


# ---- memory samples ---------------------------------------------------------

def _children_rss(pid):
    """RSS in bytes of every descendant of pid (from /proc, no psutil)."""
    kids = {}
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % d, 'rb') as f:
                stat = f.read()
        except OSError:
            continue
        try:
            ppid = int(stat[stat.rindex(b')') + 2:].split()[1])
        except (ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    total, todo = 0, list(kids.get(pid, ()))
    while todo:
        p = todo.pop()
        try:
            total += _hook.rss_bytes(p)
        except OSError:
            pass
        todo.extend(kids.get(p, ()))
    return total


def _get_memory(pid=-1, backend=None, timestamps=False, include_children=False, filename=None):
    """RSS of pid (-1: this process) in MiB, optionally with a time stamp."""
    if pid == -1:
        pid = os.getpid()
    mem = _hook.rss_bytes(pid)
    if include_children:
        mem += _children_rss(pid)
    mem /= _TWO_20
    return (mem, time.time()) if timestamps else mem


def memory_usage(proc=-1, interval=.1, timeout=None, timestamps=False,
                 include_children=False, multiprocess=False, max_usage=False,
                 retval=False, stream=None, backend=None, max_iterations=None):
    """Sample the memory of this process, a pid, a Popen or a call.

    A callable (f, (f, args) or (f, args, kw)) is called exactly once while
    a thread samples; with max_usage the kernel's high-water mark (reset
    before the call) is reported, so a spike between samples is not lost.
    """
    choose_backend(backend)
    samples = []

    def sample(pid):
        m = _get_memory(pid, include_children=include_children, timestamps=timestamps)
        if stream is not None:
            mm, t = m if timestamps else (m, time.time())
            stream.write("MEM {0:.6f} {1:.4f}\n".format(mm, t))
        samples.append(m)

    if callable(proc) or isinstance(proc, (tuple, list)):
        if callable(proc):
            proc = (proc, (), {})
        if len(proc) == 1:
            proc = (proc[0], (), {})
        elif len(proc) == 2:
            proc = (proc[0], proc[1], {})
        elif len(proc) != 3:
            raise ValueError('The callable must be a tuple of length 1, 2 or 3')
        f, args, kw = proc
        hwm_ok = _reset_hwm()
        stop = threading.Event()

        def sampler():
            while not stop.wait(interval):
                sample(-1)

        sample(-1)
        th = threading.Thread(target=sampler, daemon=True)
        th.start()
        try:
            ret = f(*args, **kw)
        finally:
            stop.set()
            th.join()
        sample(-1)
        if max_usage:
            peak = max(s[0] if timestamps else s for s in samples)
            if hwm_ok:
                peak = max(peak, _read_hwm())
            samples = peak
        return (samples, ret) if retval else samples

    popen = proc if hasattr(proc, 'poll') else None
    pid = popen.pid if popen is not None else int(proc)
    n = int(round(timeout / interval)) if timeout is not None else None
    while True:
        try:
            sample(pid)
        except OSError:
            break
        if popen is not None:
            if popen.poll() is not None or (n is not None and len(samples) >= n):
                break
        elif n is None or len(samples) >= n:
            break
        time.sleep(interval)
    if max_usage:
        return max(s[0] if timestamps else s for s in samples) if samples else None
    return samples


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


# ---- function time stamps (FUNC lines) -----------------------------------------

class _TimeStamperCM(object):
    """`with profile.timestamp(name):` block."""

    def __init__(self, timestamps, label, stamper, func, include_children=False):
        self.timestamps = timestamps
        self.label = label
        self.ts = stamper
        self.func = func
        self.include_children = include_children

    def __enter__(self):
        if self.ts is not None:
            self.ts.stack[self.func].append(self.ts._enter_level())
        _hook.timestamp(id(self), 0, self.label)
        self.timestamps.append(_get_memory(-1, timestamps=True,
                                           include_children=self.include_children))
        return self

    def __exit__(self, *args):
        if self.ts is not None:
            self.ts._leave_level()
        _hook.timestamp(id(self), 1, self.label)
        self.timestamps.append(_get_memory(-1, timestamps=True,
                                           include_children=self.include_children))


class TimeStamper(object):
    """Records entry/exit memory and time of decorated calls (FUNC lines)."""

    def __init__(self, backend='psutil', include_children=False):
        self.functions = {}
        self.stack = {}
        self.backend = choose_backend(backend)
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
        return _TimeStamperCM(timestamps, "." + name, self, func, self.include_children)

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

        def f(*args, **kwds):
            timestamps = [_get_memory(-1, timestamps=True, include_children=children)]
            self.functions[func].append(timestamps)
            self.stack[func].append(self._enter_level())
            _hook.func_entry(cid, line, label)
            try:
                return func(*args, **kwds)
            finally:
                self._leave_level()
                _hook.func_exit(cid, line, label)
                timestamps.append(_get_memory(-1, timestamps=True, include_children=children))
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


def run_script_with_profiler(filename, profiler, passed_args=()):
    """Run a script as __main__ with `profile` in builtins (runpy.run_path)."""
    import runpy
    builtins.__dict__['profile'] = profiler
    sys.path.insert(0, os.path.dirname(filename))
    sys.argv = [filename] + list(passed_args)
    runpy.run_path(filename, init_globals={'profile': profiler}, run_name='__main__')


def run_module_with_profiler(module, profiler, passed_args=()):
    """Run a module as __main__ with `profile` in builtins (runpy.run_module)."""
    import runpy
    builtins.__dict__['profile'] = profiler
    sys.argv = [module] + list(passed_args)
    runpy.run_module(module, run_name='__main__', init_globals={'profile': profiler},
                     alter_sys=True)


def exec_with_profiler(filename, profiler, backend=None, passed_args=()):
    """memory_profiler's name for run_script_with_profiler."""
    choose_backend(backend)
    run_script_with_profiler(filename, profiler, passed_args)
