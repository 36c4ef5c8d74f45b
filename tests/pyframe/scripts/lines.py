"""A target with known allocations at known lines, for tests/pyframe/test_pyframe.py.

Started plainly: no hook, no environment. It allocates PRE before the attach, prints "ready",
waits for a line on stdin, runs the steps, prints one "step NAME DELTA" per step (the RSS
change it measured itself across the step, from /proc/self/statm), then "done MAXGAP TRACER"
(the longest pause its heartbeat thread saw, in ms, and the highest TracerPid it saw), and waits
for stdin to close. Lines are found by the test through their "# @NAME" markers.
"""
import ctypes
import os
import sys
import threading
import time

MIB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.pthread_create.argtypes = [ctypes.POINTER(ctypes.c_ulong), ctypes.c_void_p, ctypes.c_void_p,
                                ctypes.c_void_p]
libc.pthread_join.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
# glibc raises its mmap threshold after some frees; a fixed one keeps every block below mmapped
libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD

beats = {"gap": 0.0, "tracer": 0, "run": True}


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def tracer():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return -1


def heartbeat():
    last = time.monotonic()
    while beats["run"]:
        time.sleep(0.005)
        now = time.monotonic()
        beats["gap"] = max(beats["gap"], now - last)
        last = now
        beats["tracer"] = max(beats["tracer"], tracer())


def step(name, fn):
    before = rss()
    out = fn()
    print("step %s %d" % (name, rss() - before), flush=True)
    return out


def inner(n):
    return bytearray(n)  # @INNER


def outer(n):
    return inner(n)  # @OUTER


def gen(n):
    yield bytearray(n)  # @GEN


def thread_work(keep):
    keep.append(bytearray(40 * MIB))  # @THREAD


def native_thread():
    """A thread that never runs Python: strdup() of a 30 MiB string, started by pthread_create."""
    src = libc.malloc(30 * MIB + 1)  # @NSRC
    ctypes.memset(src, 0x41, 30 * MIB)  # @NFILL
    ctypes.memset(src + 30 * MIB, 0, 1)
    tid = ctypes.c_ulong()
    start = ctypes.cast(libc.strdup, ctypes.c_void_p)
    assert libc.pthread_create(ctypes.byref(tid), None, start, src) == 0
    libc.pthread_join(tid.value, None)  # @JOIN
    libc.free(src)


def work():
    keep = []
    keep.append(step("a", lambda: bytearray(100 * MIB)))  # @A
    p = libc.malloc(50 * MIB)  # @MALLOC
    step("memset", lambda: ctypes.memset(p, 1, 50 * MIB))  # @MEMSET
    step("free", lambda: libc.free(p))  # @FREE
    big = bytearray(60 * MIB)  # @BIG
    before = rss()
    del big  # @DEL
    print("step del %d" % (rss() - before), flush=True)
    keep.append(step("x1", lambda: outer(20 * MIB)))  # @X1
    keep.append(step("x2", lambda: outer(40 * MIB)))  # @X2
    keep.append(step("gen", lambda: next(gen(25 * MIB))))  # @NEXT
    t = threading.Thread(target=thread_work, args=(keep,))
    step("thread", lambda: (t.start(), t.join()))
    native_thread()
    return keep


def main():
    pre = bytearray(30 * MIB)  # @PRE
    hb = threading.Thread(target=heartbeat, daemon=True)
    hb.start()
    print("ready", flush=True)
    sys.stdin.readline()
    keep = work()  # @WORK
    beats["run"] = False
    hb.join()
    print("done %.1f %d" % (beats["gap"] * 1000, max(beats["tracer"], tracer())), flush=True)
    sys.stdin.read()
    del pre, keep


main()  # @MAIN
