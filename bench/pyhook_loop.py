"""Workloads of the line-profiler benchmark (bench/bench_pyhook.py).

hot:  a loop inside the decorated function (every line of it is profiled);
thin: a decorated one-liner calling an undecorated helper that runs the same loop.
The profiled section's own time goes to stderr as "elapsed SEC" (stdout carries the report).
"""
import sys
import time

try:
    profile  # noqa: B018 - injected by `python -m memory_profiler`
except NameError:
    def profile(func):
        return func

N = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000


@profile
def hot():
    acc = []
    d = {}
    for i in range(N):
        acc.append(i)
        d[i % 100] = i
        if len(acc) > 1000:
            acc = []
    return d


def helper(n):
    acc = []
    d = {}
    for i in range(n):
        acc.append(i)
        d[i % 100] = i
        if len(acc) > 1000:
            acc = []
    return d


@profile
def thin():
    return helper(N)


if __name__ == "__main__":
    t0 = time.perf_counter()
    (hot if sys.argv[1] == "hot" else thin)()
    print("elapsed %.6f" % (time.perf_counter() - t0), file=sys.stderr)
