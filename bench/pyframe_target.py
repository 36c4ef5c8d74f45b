"""Workloads of bench/bench_pyframe.py. Protocol: prints "ready", waits for a line on stdin,
runs the workload, prints "time SECONDS" (its own measure of the workload, start-up excluded)
and waits for stdin to close.

  storm       2 x bytearray(256 MiB): 65536 page faults inside one line each time, depth 3
  storm-deep  the same 20 calls deeper
  lines       128 MiB of pages touched by two lines in turn: every fault changes line
"""
import mmap
import sys
import time

MIB = 1 << 20
PAGE = mmap.PAGESIZE


def storm():
    for _ in range(2):
        b = bytearray(256 * MIB)  # one line, 65536 faults
        del b


def deep(n):
    if n:
        return deep(n - 1)
    storm()


def lines():
    for _ in range(1):
        m = mmap.mmap(-1, 128 * MIB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        for off in range(0, 128 * MIB, 2 * PAGE):
            m[off] = 1
            m[off + PAGE] = 2
        m.close()


WORK = {"storm": storm, "storm-deep": lambda: deep(20), "lines": lines}


def main():
    work = WORK[sys.argv[1]]
    print("ready", flush=True)
    sys.stdin.readline()
    t = time.perf_counter()
    work()
    print("time %.6f" % (time.perf_counter() - t), flush=True)
    sys.stdin.read()


main()
