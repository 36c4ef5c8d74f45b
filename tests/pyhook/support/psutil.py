"""A stand-in for psutil, only to run Debian's memory_profiler 0.61 under the pyenv interpreters.

psutil is a compiled module and cannot be installed for them here (no PyPI), and 0.61 imports
it at the top. The line-report tests compare what does not depend on the numbers (which lines
are measured, their occurrences), so RSS from /proc/PID/statm is all 0.61 needs from it.
"""
import collections
import os


class Error(Exception):
    pass


class NoSuchProcess(Error):
    pass


class AccessDenied(Error):
    pass


pmem = collections.namedtuple('pmem', 'rss vms')


class Process(object):
    def __init__(self, pid=None):
        self.pid = os.getpid() if pid is None else int(pid)

    def memory_info(self):
        try:
            with open('/proc/%d/statm' % self.pid) as f:
                size, rss = f.read().split()[:2]
        except OSError:
            raise NoSuchProcess(self.pid)
        page = os.sysconf('SC_PAGE_SIZE')
        return pmem(int(rss) * page, int(size) * page)

    def children(self, recursive=False):
        return []
