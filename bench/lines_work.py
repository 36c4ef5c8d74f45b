"""Workloads of bench/bench_lines.py. `python3 lines_work.py KIND N` runs one and prints
"work SECONDS" (its own time for the work, start-up excluded).

  cpu    pure Python, no memory growth: calls, arithmetic, a dict; N rounds
  storm  a Python loop that faults memory in and gives it back: N times a 4 MiB bytearray
         (mmapped: glibc's threshold is fixed below it), touched page by page, then freed
The work function carries @profile when a line profiler provides one.
"""
import builtins
import ctypes
import sys
import time

profile = getattr(builtins, "profile", lambda f: f)

try:
    ctypes.CDLL(None).mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD: every 4 MiB block mmapped
except (OSError, AttributeError):
    pass


def step(i, d):
    d[i & 1023] = d.get(i & 1023, 0) + i * 3 % 7
    return i + 1


@profile
def cpu(n):
    d = {}
    total = 0
    for _ in range(n):
        i = 0
        while i < 1000:
            i = step(i, d)
        total += len(d)
    return total


@profile
def storm(n):
    for _ in range(n):
        b = bytearray(4 << 20)
        del b


def main():
    kind, n = sys.argv[1], int(sys.argv[2])
    fn = {"cpu": cpu, "storm": storm}[kind]
    t0 = time.perf_counter()
    fn(n)
    print("work %.6f" % (time.perf_counter() - t0), flush=True)


if __name__ == "__main__":
    main()
