"""CPU-bound Python workload for the overhead benchmark: arithmetic and small dicts, no growth."""
import sys
import time


def work(n):
    acc = 0
    d = {}
    for i in range(n):
        acc += i * i % 7
        d[i % 64] = acc
    return acc


if __name__ == "__main__":
    t0 = time.perf_counter()
    work(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000_000)
    print("elapsed %.6f" % (time.perf_counter() - t0))
