# include_children in the line profiler: a line runs while a child holds 80 MiB.
import json
import subprocess
import sys
import time

from memory_profiler import LineProfiler

CHILD = 'import sys; x = b"x" * (80 * 2 ** 20); print("ready", flush=True); sys.stdin.read()'


def status_rss(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0


def f():
    p = subprocess.Popen([sys.executable, '-c', CHILD], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    p.stdout.readline()
    rss = status_rss(p.pid)
    time.sleep(0.01)
    p.stdin.close()
    p.wait()
    return rss


out = {}
for children in (False, True):
    prof = LineProfiler(include_children=children)
    child = prof(f)()
    rows = {}
    for code, fn, first, nsrc, lines in prof.tables():
        for ln, inc, peak, occ in lines:
            rows[ln - first] = peak / 2 ** 20
    out[str(children)] = {'child': child, 'rows': rows}
json.dump(out, sys.stdout)
