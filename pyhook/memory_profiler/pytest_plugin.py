"""pytest plugin: memory budgets for tests, and the tests that used the most.

    pytest                                   (installed: the pytest11 entry point loads it)
    pytest -p memory_profiler.pytest_plugin  (the same plugin, once: the entry point's name)

    @pytest.mark.limit_rss("64 MiB")
    def test_parse_big_file(): ...

A test marked limit_rss fails when the peak RSS growth during its call (setup and teardown
excluded) is above the limit: the peak of the process's resident set while the test body ran,
minus the RSS when it started. `--mprof-top N` prints the N tests with the highest growth at
the end of the session.

Where the peak comes from, best first (the report says which):
  * kernel page: under `sudo mprof run pytest ...` the loader hands the process a page that BPF
    keeps exact on every RSS change (with `mprof run -C`, the sum over the process tree, so a
    child forked inside a test counts); the peak since the test started is read from it: every
    page, every short spike.
  * VmHWM: otherwise the kernel's own high-water mark of this process, reset at the start of
    each measured test (writing 5 to /proc/self/clear_refs, which needs no privilege): short
    spikes count too, but only this process, and at the kernel's counter precision.
With the kernel page and a marked test that fails, the line of the test function during which
the peak was reached is named too (the test function alone is line-profiled, only when marked).

Loaded in every session of an interpreter it is installed for, the plugin stays out of the way
of sessions that do not use it: after collection it looks once for a test marked limit_rss, and
with none and no --mprof-top it hooks nothing into the tests (no reset of VmHWM, which is also
what getrusage() reports as ru_maxrss). Otherwise the marked tests are measured, and with
--mprof-top every test; in VmHWM mode each measured test resets the mark. Loading it imports the
package, whose C hook opens /proc/self/statm (or maps the kernel page under mprof run).
"""
import os

import pytest

MIB = 1048576.0
_WATCH = "mprof-memory"  # the name the per-test part is registered under

_UNITS = {
    "b": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1024 ** 2, "mib": 1024 ** 2,
    "mb": 1000 ** 2, "g": 1024 ** 3, "gib": 1024 ** 3, "gb": 1000 ** 3, "t": 1024 ** 4,
    "tib": 1024 ** 4, "tb": 1000 ** 4,
}


def parse_size(text):
    """Bytes of "64 MiB", "1.5G", "100 MB" (K/M/G and KiB/MiB/GiB: 1024; KB/MB/GB: 1000).

    A number without a unit is refused, as `mprof run --max-rss` refuses it.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        raise ValueError("limit_rss needs a size with a unit, as in '64 MiB', not %r" % (text,))
    s = str(text).strip()
    i = 0
    while i < len(s) and (s[i].isdigit() or s[i] == "."):
        i += 1
    num, unit = s[:i], s[i:].strip()
    if not num or unit.lower() not in _UNITS or unit == "b":
        raise ValueError("limit_rss needs a size with a unit, as in '64 MiB', not %r" % (text,))
    return int(float(num) * _UNITS[unit.lower()])


def _fmt(nbytes):
    return "%.3f MiB" % (nbytes / MIB)


class _Meter:
    """The peak of this process (or its tree) since mark(), from the best source there is."""

    def __init__(self):
        self.hook = None
        self.kind = "VmHWM (this process)"
        self._pid = None  # the process whose /proc files _status and _clear are
        self._status = self._clear = -1
        self._rss = None  # the C hook's read of /proc/self/statm, cheaper than the status file
        try:
            from . import _mprof_hook as hook
        except ImportError:
            hook = None
        if hook is not None and hook.rss_source()[0] == "kernel":
            self.hook = hook
            self.kind = hook.page_scope() + " (kernel page, exact)"
        elif hook is not None and hook.rss_source()[0] == "statm":
            self._rss = hook.rss_bytes

    def mark(self):
        """Start a window; returns the RSS at its start."""
        if self.hook:
            return self.hook.peak_mark()
        self._open()
        if self._clear >= 0:
            os.write(self._clear, b"5")  # resets VmHWM to the current RSS
        return self._rss() if self._rss else self._status_bytes(b"VmRSS:")

    def peak(self):
        if self.hook:
            return self.hook.peak_since_mark()
        return self._status_bytes(b"VmHWM:")

    def _open(self):
        # Kept open: opening them costs more than reading them. Opened again in a child forked
        # to run the test (pytest-forked), where /proc/self is another process.
        pid = os.getpid()
        if pid == self._pid:
            return
        # (the parent's fds are left open in a child: it may have closed and reused their numbers)
        self._pid = pid
        self._status = os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._clear = os.open("/proc/self/clear_refs", os.O_WRONLY | os.O_CLOEXEC)
        except OSError as e:
            self._clear = -1
            # the mark is then the process's peak since it started: say so, not a wrong growth
            self.kind = "VmHWM (this process) since it started: cannot reset it (%s)" % (
                e.strerror,)

    def _status_bytes(self, key):
        # one read of the whole file: VmHWM and VmRSS are within its first kilobyte
        data = os.pread(self._status, 4096, 0)
        i = data.find(key)
        if i < 0:
            return 0
        i += len(key)
        return int(data[i:data.index(b"kB", i)]) * 1024


class _Watch:
    """The per-test part: registered after collection, only when something is to be measured."""

    def __init__(self, top):
        self.meter = _Meter()
        self.results = {}  # nodeid -> (growth bytes, peak bytes)
        self.top = top

    # -- running a test ---------------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        marker = item.get_closest_marker("limit_rss")
        if marker is None and not self.top:
            yield  # a session with marked tests: the others are left alone
            return
        limit = None
        if marker is not None:
            if not marker.args or len(marker.args) > 1 or marker.kwargs:
                raise pytest.UsageError("limit_rss takes one size, as in "
                                        "@pytest.mark.limit_rss('64 MiB')")
            limit = parse_size(marker.args[0])
        prof = None
        if limit is not None and self.meter.hook is not None:
            prof = _line_profile(item)
        start = self.meter.mark()
        outcome = yield
        peak = max(self.meter.peak(), start)
        if prof is not None:
            prof.disable_by_count()
        growth = peak - start
        self.results[item.nodeid] = (growth, peak)
        if limit is None or growth <= limit:
            return
        where = _peak_line(prof) if prof is not None else None
        msg = ("memory limit exceeded: the RSS grew by %s during the test (peak %s), above the "
               "limit of %s%s [%s]" % (_fmt(growth), _fmt(peak), _fmt(limit),
                                       "; the peak was reached at %s" % where if where else "",
                                       self.meter.kind))
        if outcome.excinfo is None:
            # the test's own failure, so xfail, reports and -x treat it as any other
            pytest.fail(msg, pytrace=False)
        item.add_report_section("call", "memory limit", msg)

    # -- the summary ------------------------------------------------------------------------
    def pytest_terminal_summary(self, terminalreporter):
        if not self.top:
            return
        tr = terminalreporter
        tr.section("mprof: %d highest peaks (RSS growth during the test, %s)" % (
            self.top, self.meter.kind))
        rows = sorted(self.results.items(), key=lambda kv: -kv[1][0])[:self.top]
        for nodeid, (growth, peak) in rows:
            tr.write_line("%12s  peak %12s  %s" % ("+" + _fmt(growth), _fmt(peak), nodeid))


def _line_profile(item):
    """Line-profile the test function itself (not its callees), to name the peak's line."""
    func = getattr(item, "obj", None)
    code = getattr(func, "__code__", None)
    if code is None:
        return None
    from . import LineProfiler
    prof = LineProfiler()
    prof.add_function(func)
    prof.enable_by_count()
    return prof


def _peak_line(prof):
    """'file:line: source' of the line whose Mem usage (highest RSS while it ran) is highest."""
    best = None
    try:
        for filename, _name, _first, _nsrc, rows in prof.results():
            for row in rows:
                line, peak = row[0], row[2]
                if best is None or peak > best[2]:
                    best = (filename, line, peak)
    except Exception:  # the report is a courtesy: never fail a test because of it
        return None
    if best is None:
        return None
    src = ""
    try:
        import linecache
        src = linecache.getline(best[0], best[1]).strip()
    except Exception:
        pass
    return "%s:%d%s" % (os.path.relpath(best[0]), best[1], ": " + src if src else "")


def pytest_addoption(parser):
    group = parser.getgroup("mprof", "memory (mprof-bpf)")
    group.addoption("--mprof-top", action="store", type=int, default=0, metavar="N",
                    dest="mprof_top",
                    help="list the N tests whose RSS grew the most during their call")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "limit_rss(size): fail the test when its peak RSS growth during the call is "
        "above size ('64 MiB', '1G', '100 MB')")


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    """Arms the per-test hooks when a collected test is marked or --mprof-top asks for all."""
    config = session.config
    if config.pluginmanager.get_plugin(_WATCH) is not None:
        return
    top = config.getoption("mprof_top")
    if not top and not any(it.get_closest_marker("limit_rss") is not None
                           for it in session.items):
        return
    config.pluginmanager.register(_Watch(top), _WATCH)

