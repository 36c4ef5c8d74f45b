"""A 20 MiB allocation 60 calls deep, for tests/pyframe/test_pyframe.py: the stack keeps its 32
most recent frames and says it was cut. Protocol as scripts/lines.py."""
import sys

MIB = 1 << 20


def down(n, keep):
    if n:
        return down(n - 1, keep)
    keep.append(bytearray(20 * MIB))  # @BOTTOM
    return keep


def main():
    print("ready", flush=True)
    sys.stdin.readline()
    keep = down(60, [])  # @CALL
    print("done 0 0", flush=True)
    sys.stdin.read()
    del keep


main()
