"""A script for `mprof run --lines`: known allocations at known lines, no waiting.

Prints one "step NAME DELTA" per step (its own RSS change across the step, /proc/self/statm)
and a last line "hooked MODULES FD": whether memory_profiler was imported into it and whether
it was handed the hook's pipe (it must be neither: --lines reads it from outside).
"""
import ctypes
import os
import sys

MIB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD fixed: the blocks below are mmapped


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def build(n):
    return bytearray(n * MIB)  # @BUILD


def main():
    before = rss()
    a = build(80)  # @CALL
    print("step build %d" % (rss() - before), flush=True)
    p = libc.malloc(40 * MIB)
    before = rss()
    ctypes.memset(p, 7, 40 * MIB)  # @MEMSET
    print("step memset %d" % (rss() - before), flush=True)
    before = rss()
    libc.free(p)  # @FREE
    print("step free %d" % (rss() - before), flush=True)
    print("hooked %s %s" % ("memory_profiler" in sys.modules,
                            os.environ.get("MPROF_FUNC_FD") is not None), flush=True)
    return a


keep = main()
