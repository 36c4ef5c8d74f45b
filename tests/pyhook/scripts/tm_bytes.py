# backend='tracemalloc': the increment of `a = bytearray(n)` is what tracemalloc traces for it
# (0.61's own test allows 0.0001 MiB of error), and `del a` gives it back.
import io
import json
import sys
import tracemalloc

from memory_profiler import profile

out = io.StringIO()


@profile(stream=out, precision=6, backend='tracemalloc')
def mem_prof(n):
    a = bytearray(n)
    del a


def traced(n):
    """The bytes tracemalloc traces for one bytearray(n): the change of its total across the
    allocation, less what keeping the first reading alive costs."""
    m = tracemalloc.get_traced_memory
    x = m()
    y = m()
    before = m()
    a = bytearray(n)
    after = m()
    del a
    return ((after[0] - before[0]) - (y[0] - x[0])) / 2 ** 20


res = []
for n in (100, 1000, 10 ** 4, 10 ** 5, 10 ** 6, 10 ** 7, 10 ** 8):
    start = len(out.getvalue())
    mem_prof(n)
    rows = {}
    for line in out.getvalue()[start:].splitlines():
        parts = line.split()
        if len(parts) > 5 and parts[0].isdigit() and parts[2] == 'MiB':
            rows[line.split('   ')[-1].strip()] = (float(parts[1]), float(parts[3]))
    res.append({'n': n, 'truth': traced(n), 'alloc': rows['a = bytearray(n)'],
                'free': rows['del a']})
json.dump({'tracing': tracemalloc.is_tracing(), 'res': res}, sys.stdout)
