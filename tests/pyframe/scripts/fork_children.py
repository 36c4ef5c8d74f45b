"""For `mprof run --lines`: forked children that each take memory at one line and exit at once.

A child lives a few milliseconds, often gone before mprof can open it: its frames are named
from BPF's copies of its code, described as its parent's interpreter. Each child measures its
own RSS change around the line (/proc/self/statm; the first read also takes the copy-on-write
faults of a child's first steps) and the parent prints "child PID BYTES".
"""
import os
import time

N = 20
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


time.sleep(0.5)  # mprof attaches once the interpreter is up
r, w = os.pipe()
kids = []
for _ in range(N):
    pid = os.fork()
    if pid == 0:
        before = rss()
        b = bytearray(8 << 20)  # @CHILD
        after = rss()
        os.write(w, b"child %d %d\n" % (os.getpid(), after - before))
        os._exit(0)
    kids.append(pid)
os.close(w)
for k in kids:
    os.waitpid(k, 0)
with os.fdopen(r) as f:
    print(f.read(), end="", flush=True)
