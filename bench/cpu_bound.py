"""CPU-bound Python workload for the overhead benchmark: arithmetic and small dicts, no growth."""
import sys


def work(n):
    acc = 0
    d = {}
    for i in range(n):
        acc += i * i % 7
        d[i % 64] = acc
    return acc


if __name__ == "__main__":
    print(work(int(sys.argv[1]) if len(sys.argv) > 1 else 4_000_000))
