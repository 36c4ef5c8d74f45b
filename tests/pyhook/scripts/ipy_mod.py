# Functions for %mprun in the IPython tests: the seed's, one more, and one that holds a
# child process. Sizes above 32 MiB (glibc's largest mmap threshold) are always new memory.
import subprocess
import sys

CHILD = 'import sys; x = b"x" * (80 * 2 ** 20); print("ready", flush=True); sys.stdin.read()'


def my_func():
    a = [1] * (10 ** 6)
    b = [2] * (2 * 10 ** 7)
    del b
    return a


def other():
    c = [3] * (5 * 10 ** 6)
    return c


def spawn():
    p = subprocess.Popen([sys.executable, '-c', CHILD], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    p.stdout.readline()
    held = p.pid
    p.stdin.close()
    p.wait()
    return held
